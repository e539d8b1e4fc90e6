package store_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/google/uuid"
)

func TestSecretIsCreatedOnceUnderARace(t *testing.T) {
	t.Parallel()
	db := open(t)
	// A name of its own, so a second run (-count=2) races for a secret nobody made yet.
	name := "race_secret_" + uuid.NewString()
	var wg sync.WaitGroup
	values := make([]string, 16)
	created := make([]bool, 16)
	for i := range values {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			v, c, err := db.Secret(context.Background(), name, func() string { return fmt.Sprint("value-", i) })
			if err != nil {
				t.Error(err)
			}
			values[i], created[i] = v, c
		}(i)
	}
	wg.Wait()
	makers := 0
	for i, v := range values {
		if v != values[0] {
			t.Fatalf("process %d got %q, process 0 got %q", i, v, values[0])
		}
		if created[i] {
			makers++
		}
	}
	if makers != 1 {
		t.Fatalf("%d callers say they created the secret, want 1", makers)
	}
}
