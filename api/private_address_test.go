package api_test

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coupongate/coupongate/config"
	"github.com/coupongate/coupongate/core"
	"github.com/coupongate/coupongate/integrations/messaging/messagingfake"
	"github.com/coupongate/coupongate/integrations/woocommerce/woofake"
	"github.com/coupongate/coupongate/internal/apptest"
)

// TestMerchantAddressesCheckedAtDialTime: addresses a merchant saved while they were acceptable
// (an SMTP server, a service account's token_uri, a WooCommerce store, a webhook endpoint) and
// that now lead to a loopback address are refused when the connection is made, not only when
// they were saved: the delivery, the push and the webhook fail at once with the reason, nothing
// reaches the servers, and nothing is retried.
//
// A first gateway, allowed private networks, stands for the time the addresses were checked
// (and resolved to public ones); the second, which refuses them, is the gateway that later
// finds them resolving to 127.0.0.1. With private networks allowed the same paths deliver: the
// other tests of this package run that way.
func TestMerchantAddressesCheckedAtDialTime(t *testing.T) {
	t.Parallel()
	sink := messagingfake.NewSMTPSink(t, messagingfake.SinkConfig{})
	fcm := messagingfake.NewFCM(t)
	store := woofake.New(t, woofake.Config{})
	var hooks atomic.Int64
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { hooks.Add(1) }))
	t.Cleanup(receiver.Close)

	// Saved while allowed.
	then := apptest.Start(t, env, apptest.Options{Configure: func(c *config.Config) {
		c.FCMAPIURL = fcm.URL()
		c.WebhooksAllowPrivate = true
	}})
	m := then.NewMerchant(t, "Moving Addresses")
	_, sinkPort := sink.Addr()
	for channel, body := range map[string]map[string]any{
		"email": {"host": "localhost", "port": sinkPort, "username": "", "password": "", "from": "Shop <codes@shop.example>", "security": "none"},
		"push":  {"provider": "fcm", "service_account": json.RawMessage(fcm.ServiceAccountJSON())},
	} {
		if r := then.Admin(t, m, http.MethodPut, "/api/v1/channels/"+channel, body); r.Status != http.StatusOK {
			t.Fatalf("PUT channel %s: %d %s", channel, r.Status, r.Body)
		}
	}
	_, hookPort, _ := net.SplitHostPort(receiver.Listener.Addr().String())
	if r := then.Admin(t, m, http.MethodPost, "/api/v1/webhook-endpoints", map[string]any{"url": "http://localhost:" + hookPort + "/hook",
		"events": []string{"code.delivered"}}); r.Status != http.StatusCreated {
		t.Fatalf("endpoint: %d %s", r.Status, r.Body)
	}
	var conn struct {
		ID string `json:"id"`
	}
	r := then.Admin(t, m, http.MethodPost, "/api/v1/connections/woocommerce", map[string]any{"site_url": store.URL(),
		"consumer_key": woofake.DefaultConsumerKey, "consumer_secret": woofake.DefaultConsumerSecret})
	if r.Status != http.StatusCreated {
		t.Fatalf("connect the store: %d %s", r.Status, r.Body)
	}
	r.JSON(t, &conn)
	storeCalls := store.Requests()

	// Used when refused.
	now := apptest.Start(t, env, apptest.Options{Worker: true, Database: then.DatabaseURL, Configure: func(c *config.Config) {
		c.FCMAPIURL = fcm.URL()
		c.AllowPrivateNetworks = false
		c.WebhooksAllowPrivate = false
		c.ReconcileInterval = time.Hour
	}})
	s := messagingStack{Harness: now}
	list := now.CreateList(t, m, map[string]any{"name": "Moving"})
	importByHand(t, now, m, list, "test", "MOVE-1", "MOVE-2", "MOVE-3")
	email := s.template(t, m, list, map[string]any{"channel": "email", "subject": "Your code", "text": "Code {couponcode}"})
	push := s.template(t, m, list, map[string]any{"channel": "push", "title": "A gift", "body": "Code {couponcode}"})

	for name, body := range map[string]map[string]any{
		"email (SMTP server)":  {"recipient": map[string]any{"email": "ada@example.com"}, "channel": "email", "template_id": email},
		"push (FCM token_uri)": {"recipient": map[string]any{"push_token": "device-1"}, "channel": "push", "template_id": push},
	} {
		d := s.deliver(t, m, list, body, http.StatusAccepted)
		d = s.waitDelivery(t, m, list, d.ID, "failed")
		if !strings.Contains(d.Error, "address_refused") || !strings.Contains(d.Error, "127.0.0.1") || !strings.Contains(d.Error, "non-public address") {
			t.Errorf("%s: failed with %q, want the refused address", name, d.Error)
		}
		if d.Attempts != 1 {
			t.Errorf("%s: %d attempts, want 1 (a refused address is not retried)", name, d.Attempts)
		}
	}
	if sink.Connections() != 0 || fcm.Tokens() != 0 || len(fcm.Messages()) != 0 {
		t.Fatalf("a refused server was reached: %d SMTP connections, %d tokens, %d pushes", sink.Connections(), fcm.Tokens(), len(fcm.Messages()))
	}

	// The deliveries above handed out two codes: two code.delivered events went to the webhook
	// endpoint, and each message failed with its one attempt, refused.
	ctx := context.Background()
	db := now.App.DB.Pool()
	var messages, failed int
	apptest.Eventually(t, 20*time.Second, "both webhook messages to fail", func() bool {
		err := db.QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE status = 'failed') FROM webhook_messages WHERE merchant_id = $1`,
			m.ID).Scan(&messages, &failed)
		return err == nil && messages == 2 && failed == 2
	})
	rows, err := db.Query(ctx, `SELECT error FROM webhook_attempts WHERE merchant_id = $1`, m.ID)
	if err != nil {
		t.Fatal(err)
	}
	var attemptErrs []string
	for rows.Next() {
		var e string
		if err := rows.Scan(&e); err != nil {
			t.Fatal(err)
		}
		attemptErrs = append(attemptErrs, e)
	}
	if rows.Err() != nil {
		t.Fatal(rows.Err())
	}
	if len(attemptErrs) != 2 {
		t.Errorf("webhook: %d attempts for 2 messages, want one each: %q", len(attemptErrs), attemptErrs)
	}
	for _, e := range attemptErrs {
		if !strings.Contains(e, "refused") || !strings.Contains(e, "non-public address") {
			t.Errorf("webhook attempt error %q, want the refused address", e)
		}
	}
	if hooks.Load() != 0 {
		t.Fatalf("the endpoint was reached %d times", hooks.Load())
	}

	// The WooCommerce push stops with the reason, and the connection says why.
	if r := now.Admin(t, m, http.MethodPost, "/api/v1/lists/"+list+"/connections", map[string]any{"connection_id": conn.ID,
		"discount": map[string]any{"title": "Ten", "value_type": "percentage", "value": 10}}); r.Status != http.StatusAccepted {
		t.Fatalf("push: %d %s", r.Status, r.Body)
	}
	p := waitPushOf(t, now, m, list, func(p pushState) bool { return p.State == core.PushStopped })
	if !strings.Contains(p.Error, "address was refused") || !strings.Contains(p.Error, "127.0.0.1") {
		t.Errorf("push stopped with %q, want the refused address", p.Error)
	}
	var connections struct {
		Items []struct {
			ID    string `json:"id"`
			State string `json:"state"`
			Error string `json:"error"`
		} `json:"items"`
	}
	get(t, now, m, "/api/v1/connections").JSON(t, &connections)
	if len(connections.Items) != 1 || connections.Items[0].State != core.ConnectionError || !strings.Contains(connections.Items[0].Error, "address was refused") {
		t.Errorf("connection after the refused push: %+v", connections.Items)
	}
	if store.Requests() != storeCalls {
		t.Fatalf("the store was called %d times after its address was refused", store.Requests()-storeCalls)
	}
}
