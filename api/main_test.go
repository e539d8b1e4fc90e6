package api_test

import (
	"testing"

	"github.com/coupongate/coupongate/internal/dbtest"
)

var env dbtest.Env

func TestMain(m *testing.M) { dbtest.Main(m, &env) }
