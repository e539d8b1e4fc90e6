package api_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/coupongate/coupongate/config"
	"github.com/coupongate/coupongate/internal/apptest"
)

// A PATCH of a list holds one pool connection for its transaction and takes no other: three times
// as many concurrent PATCHes as the pool has connections all finish.
func TestConcurrentListPatchesOnASmallPool(t *testing.T) {
	t.Parallel()
	const poolSize = 2
	h := apptest.Start(t, env, apptest.Options{Configure: func(c *config.Config) { c.DBMaxConns = poolSize }})
	m := h.NewMerchant(t, "Small Pool Shop")
	lists := []string{
		h.CreateList(t, m, map[string]any{"name": "Spring"}),
		h.CreateList(t, m, map[string]any{"name": "Summer"}),
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	const patches = 3 * poolSize * 2
	results := make(chan string, patches)
	var wg sync.WaitGroup
	for i := range patches {
		wg.Add(1)
		go func() {
			defer wg.Done()
			body := fmt.Appendf(nil, `{"description": "patch %d"}`, i)
			req, err := http.NewRequestWithContext(ctx, "PATCH", h.URL+"/api/v1/lists/"+lists[i%len(lists)], bytes.NewReader(body))
			if err != nil {
				results <- err.Error()
				return
			}
			req.Header.Set("Authorization", "Bearer "+m.APIKey)
			req.Header.Set("Content-Type", "application/json")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				results <- fmt.Sprintf("patch %d: %v", i, err)
				return
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != http.StatusOK {
				results <- fmt.Sprintf("patch %d: %d %s", i, resp.StatusCode, b)
				return
			}
			results <- ""
		}()
	}
	wg.Wait()
	close(results)
	for r := range results {
		if r != "" {
			t.Error(r)
		}
	}
}
