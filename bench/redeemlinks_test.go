package bench

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
)

func redeemHandOuts() int {
	if n, err := strconv.Atoi(os.Getenv("BENCH_REDEEM_HANDOUTS")); err == nil && n > 0 {
		return n
	}
	return 50_000
}

var (
	benchCSRF = regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)
	benchCode = regexp.MustCompile(`id="redeem-code">([^<]*)<`)
)

// BenchmarkRedeemLinks: codes handed out per second through a redeem link's public page (POST
// /r/{slug}, the form with a distinct email each, as browsers send it) with 64 clients, beside the
// API's allocation rate measured in the same run on a list of the same size, in alternating rounds
// (goal ≥ 0.8 of it).
// Afterwards every code handed out through the link is checked to have gone out once, to the
// address that asked.
func BenchmarkRedeemLinks(b *testing.B) {
	n := redeemHandOuts()
	p := pool(b, 4)
	defer p.Close()
	resetCodes(b, p)
	s := startStack(b, "REDEEM_HANDOUTS_PER_CLIENT=100000000", "REDEEM_HANDOUTS_PER_LINK=100000000")
	defer s.stop(b)
	keys := merchant(b)
	apiList, _ := seedList(b, s, keys.APIKey, n+n/4, "P")
	linkList, _ := seedList(b, s, keys.APIKey, n+n/4, "L")
	var link map[string]any
	if st := call(b, "POST", s.url+"/api/v1/lists/"+linkList+"/redeem-links", keys.APIKey, map[string]any{"name": "bench"}, &link); st != 201 {
		b.Fatalf("create redeem link: %d %v", st, link)
	}
	page := s.url + "/r/" + link["slug"].(string)

	allocURL := s.url + "/api/v1/lists/" + apiList + "/allocations"
	auth := "Bearer " + keys.APIKey
	apiOp := func(i int) error {
		body := []byte(`{"recipient":{"email":"a` + strconv.Itoa(i) + `@example.com"},"campaign":"bench"}`)
		st, out, err := post(allocURL, "Authorization", auth, body)
		if err != nil || st != 201 {
			return fmt.Errorf("allocation %d: %d %s %v", i, st, out, err)
		}
		return nil
	}

	// One form token (and its cookie) per client, as each browser gets from the page.
	tokens := make([]string, clients)
	for c := range tokens {
		resp, err := client.Get(page)
		if err != nil {
			b.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		m := benchCSRF.FindSubmatch(body)
		if m == nil {
			b.Fatalf("GET %s: %d, no form", page, resp.StatusCode)
		}
		tokens[c] = string(m[1])
	}
	var mu sync.Mutex
	got := make(map[string]string, n)
	linkOp := func(i int) error {
		token := tokens[i%clients]
		email := "r" + strconv.Itoa(i) + "@example.com"
		form := url.Values{"csrf_token": {token}, "email": {email}}.Encode()
		req, _ := http.NewRequest("POST", page, strings.NewReader(form))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.AddCookie(&http.Cookie{Name: "cg_rcsrf", Value: token})
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		m := benchCode.FindSubmatch(body)
		if err != nil || resp.StatusCode != 200 || m == nil {
			return fmt.Errorf("hand-out %d: %d %.300s %v", i, resp.StatusCode, body, err)
		}
		mu.Lock()
		got[email] = string(m[1])
		mu.Unlock()
		return nil
	}

	// The two run in alternating rounds, so that whatever else the machine does weighs on both.
	const rounds = 4
	var api, links loadResult
	for r := 0; r < rounds; r++ {
		part := n/rounds + min(1, max(0, n%rounds-r))
		base := r*(n/rounds) + min(r, n%rounds)
		a := load(b, part, clients, 0, func(i int) error { return apiOp(base + i) })
		l := load(b, part, clients, 0, func(i int) error { return linkOp(base + i) })
		api = loadResult{ops: api.ops + a.ops, elapsed: api.elapsed + a.elapsed, lat: append(api.lat, a.lat...)}
		links = loadResult{ops: links.ops + l.ops, elapsed: links.elapsed + l.elapsed, lat: append(links.lat, l.lat...)}
	}
	for _, r := range []*loadResult{&api, &links} {
		sort.Slice(r.lat, func(i, j int) bool { return r.lat[i] < r.lat[j] })
	}

	// Every code once, to the address that asked.
	var handed, distinct, wrong int
	if err := p.QueryRow(context.Background(), `SELECT count(*), count(DISTINCT seq) FROM allocations WHERE list_id = $1`, linkList).
		Scan(&handed, &distinct); err != nil {
		b.Fatal(err)
	}
	codes := map[string]bool{}
	for _, c := range got {
		codes[c] = true
	}
	rows, err := p.Query(context.Background(), `SELECT a.recipient_email, c.code FROM allocations a
		JOIN codes c USING (merchant_id, list_id, seq) WHERE a.list_id = $1`, linkList)
	if err != nil {
		b.Fatal(err)
	}
	for rows.Next() {
		var email, code string
		if err := rows.Scan(&email, &code); err != nil {
			b.Fatal(err)
		}
		if got[email] != code {
			wrong++
		}
	}
	if rows.Err() != nil {
		b.Fatal(rows.Err())
	}
	if handed != n || distinct != n || len(codes) != n || wrong != 0 {
		b.Fatalf("%d hand-outs, %d distinct codes, %d codes shown, %d shown to another address; want %d, %d, %d, 0",
			handed, distinct, len(codes), wrong, n, n, n)
	}
	report(row{fmt.Sprintf("redeem-link hand-outs/s, POST /r/{slug}, %d clients, %d distinct emails, every code once", clients, n),
		fmt.Sprintf("%.0f (p50 %s, p99 %s)", links.perSecond(), ms(links.pct(.5)), ms(links.pct(.99))),
		fmt.Sprintf("API allocations %.0f/s (p99 %s)", api.perSecond(), ms(api.pct(.99))),
		fmt.Sprintf("%.2f (goal ≥ 0.8)", links.perSecond()/api.perSecond()), "same run, same stack, lists of the same size"})
}
