package woocommerce_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/coupongate/coupongate/integrations/woocommerce"
	"github.com/coupongate/coupongate/integrations/woocommerce/woofake"
)

// recordedBatchAnswer is the fake store's own answer to a batch that creates two coupons, refuses
// a third (the code exists) and deletes one, as the client receives it.
func recordedBatchAnswer(t testing.TB) []byte {
	fake := woofake.New(t, woofake.Config{TLS: true})
	existing := fake.AddCoupon(woofake.Coupon{Code: "taken", DiscountType: "percent", Amount: "5"})
	gone := fake.AddCoupon(woofake.Coupon{Code: "gone", DiscountType: "percent", Amount: "5"})
	_ = existing
	body, _ := json.Marshal(map[string]any{
		"create": []any{
			map[string]any{"code": `Quote"and]brace}`, "discount_type": "percent", "amount": "10",
				"meta_data": []any{map[string]any{"key": "_coupongate_push", "value": `a "tag" with {brackets} and \ back`}}},
			map[string]any{"code": "PLAIN-1", "discount_type": "fixed_cart", "amount": "5", "description": "Ünïcødé ✓ / slash"},
			map[string]any{"code": "taken", "discount_type": "percent", "amount": "10"},
		},
		"delete": []any{gone},
	})
	req, _ := http.NewRequest(http.MethodPost, fake.URL()+"/wp-json/wc/v3/coupons/batch", bytes.NewReader(body))
	req.SetBasicAuth(woofake.DefaultConsumerKey, woofake.DefaultConsumerSecret)
	req.Header.Set("Content-Type", "application/json")
	resp, err := fake.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("batch: %d %s %v", resp.StatusCode, raw, err)
	}
	return raw
}

// TestBatchAnswerScanner: the scanner that reads batch answers takes from the store's answer
// exactly what encoding/json takes, and hands what it does not follow to encoding/json.
func TestBatchAnswerScanner(t *testing.T) {
	t.Parallel()
	store := recordedBatchAnswer(t)
	cases := []struct {
		name    string
		raw     string
		scanned bool // the scanner reads it itself
	}{
		{"the fake store's answer", string(store), true},
		{"ids and codes of every JSON type", `{"create":[{"id":"12","code":7},{"id":13.0,"code":null},{"id":true,"code":false}],"delete":[]}`, true},
		{"skipped values of every kind", ` {"x":[1,{"y":"]}\"{"},[[]],null,-1.5e3,true], "create" : [ {"meta":{"a":[{"b":"c\"}\\"}]},"id":5 , "code":"k"} ] } `, true},
		{"keys in another case", `{"Create":[{"ID":9,"Code":"a"}]}`, true},
		{"an item error", `{"create":[{"id":0,"error":{"code":"woocommerce_rest_coupon_code_already_exists","message":"The coupon code already exists","data":{"status":400}}}]}`, true},
		{"null lists and errors", `{"create":null,"delete":[{"id":3,"error":null}]}`, true},
		{"a repeated list", `{"create":[{"id":1}],"create":[{"id":2},{"id":3}]}`, true},
		{"a PHP notice before the JSON", "<b>Notice</b>: something\n" + string(store), false},
		{"a byte-order mark", "\xef\xbb\xbf" + `{"create":[{"id":1,"code":"a"}]}`, false},
		{"an escaped key", `{"cre\u0061te":[{"id":1}]}`, false},
		{"a null item", `{"create":[null,{"id":2}]}`, false},
		{"an error that is a string", `{"create":[{"id":0,"error":"nope"}]}`, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			wantC, wantD, wantErr := woocommerce.DecodeBatchAnswerJSON([]byte(tc.raw))
			_, _, scanned := woocommerce.ScanBatchAnswer([]byte(tc.raw))
			if scanned != tc.scanned {
				t.Errorf("scanned %v, want %v", scanned, tc.scanned)
			}
			gotC, gotD, err := woocommerce.DecodeBatchAnswer([]byte(tc.raw))
			if (err != nil) != (wantErr != nil) || !reflect.DeepEqual(gotC, wantC) || !reflect.DeepEqual(gotD, wantD) {
				t.Fatalf("read %+v %+v (%v), encoding/json read %+v %+v (%v)", gotC, gotD, err, wantC, wantD, wantErr)
			}
		})
	}
	create, del, _ := woocommerce.DecodeBatchAnswer(store)
	if len(create) != 3 || create[0].ID == 0 || create[0].Code != `quote"and]brace}` || create[1].Code != "plain-1" ||
		!create[2].HasErr || create[2].ErrCode != "woocommerce_rest_coupon_code_already_exists" || create[2].ErrStatus != 400 ||
		len(del) != 1 || del[0].HasErr {
		t.Fatalf("the store's answer read as %+v and %+v", create, del)
	}
}

// TestBatchCouponsThroughTheScanner: a batch against the fake store reads every item's result.
func TestBatchCouponsThroughTheScanner(t *testing.T) {
	t.Parallel()
	fake := woofake.New(t, woofake.Config{TLS: true})
	api := woocommerce.Store{SiteURL: fake.URL(), ConsumerKey: woofake.DefaultConsumerKey, ConsumerSecret: woofake.DefaultConsumerSecret, HTTP: fake.Client()}
	var batch woocommerce.CouponBatch
	for _, code := range []string{"A-1", "A-2", "a-1"} {
		batch.Create = append(batch.Create, woocommerce.CouponInput{Code: code, DiscountType: "percent", Amount: "10",
			MetaData: []woocommerce.Meta{{Key: woocommerce.PushTagKey, Value: "list:x connection:y"}}})
	}
	res, err := api.BatchCoupons(context.Background(), batch)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Create) != 3 || res.Create[0].ID == 0 || res.Create[0].Code != "a-1" || res.Create[1].ID == 0 ||
		res.Create[2].Err == nil || !strings.Contains(res.Create[2].Err.Code, "already_exists") || res.Create[2].Code != "a-1" {
		t.Fatalf("batch: %+v", res.Create)
	}
}

// FuzzBatchAnswer: whatever the store answers, what the scanner reads is what encoding/json reads
// whenever encoding/json reads it.
func FuzzBatchAnswer(f *testing.F) {
	f.Add(recordedBatchAnswer(f))
	f.Add([]byte(`{"create":[{"id":"12","code":7,"x":{"y":["]"]}}],"delete":null}`))
	f.Add([]byte(`{"create":[{"id":0,"error":{"code":"c","message":"m","data":{"status":"400"}}}]}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		wantC, wantD, wantErr := woocommerce.DecodeBatchAnswerJSON(raw)
		gotC, gotD, ok := woocommerce.ScanBatchAnswer(raw)
		if !ok || wantErr != nil {
			return
		}
		if !reflect.DeepEqual(gotC, wantC) || !reflect.DeepEqual(gotD, wantD) {
			t.Fatalf("scanner read %+v %+v, encoding/json %+v %+v", gotC, gotD, wantC, wantD)
		}
	})
}
