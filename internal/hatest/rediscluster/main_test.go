//go:build ha

package rediscluster

import (
	"testing"

	"github.com/coupongate/coupongate/internal/dbtest"
)

// env is the package's PostgreSQL database (and a leased database of the local Redis, unused:
// the tests run on clusters of their own).
var env dbtest.Env

func TestMain(m *testing.M) { dbtest.Main(m, &env) }
