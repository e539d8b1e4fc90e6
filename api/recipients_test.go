package api_test

import (
	"bytes"
	"encoding/xml"
	"image/png"
	"net/http"
	"testing"

	"github.com/makiuchi-d/gozxing"
	"github.com/makiuchi-d/gozxing/qrcode"

	"github.com/coupongate/coupongate/internal/apptest"
)

func TestRecipientView(t *testing.T) {
	t.Parallel()
	h := apptest.Start(t, env, apptest.Options{})
	m := h.NewMerchant(t, "Recipient Shop")
	other := h.NewMerchant(t, "Other Recipient Shop")
	spring := h.CreateList(t, m, map[string]any{"name": "Spring"})
	seedCodes(t, h, m, spring, "SPR", 3)
	autumn := h.CreateList(t, m, map[string]any{"name": "Autumn"})
	seedCodes(t, h, m, autumn, "AUT", 3)
	a := allocate(t, h, m, spring, "dana@example.com", "launch").Map(t)["code"]
	b := allocate(t, h, m, autumn, "Dana@Example.com", "fall").Map(t)["code"]
	allocate(t, h, m, spring, "someone@example.com", "launch")
	order(t, h, m, "dana-order", "paid", a.(string))

	var view struct {
		Items []struct {
			List struct {
				ID   string `json:"id"`
				Name string `json:"name"`
			} `json:"list"`
			Code     string `json:"code"`
			State    string `json:"state"`
			Campaign string `json:"campaign"`
			Timeline []struct {
				Type    string `json:"type"`
				Actor   string `json:"actor"`
				Channel string `json:"channel"`
				Order   string `json:"order"`
			} `json:"timeline"`
		} `json:"items"`
	}
	r := h.Admin(t, m, http.MethodGet, "/api/v1/recipients/codes?email=dana@example.com", nil)
	r.JSON(t, &view)
	if r.Status != 200 || len(view.Items) != 2 {
		t.Fatalf("recipient view: %d %s", r.Status, r.Body)
	}
	byCode := map[string]int{}
	for i, it := range view.Items {
		byCode[it.Code] = i
	}
	sa, sb := view.Items[byCode[a.(string)]], view.Items[byCode[b.(string)]]
	if sa.List.Name != "Spring" || sa.State != "redeemed" || sb.List.Name != "Autumn" || sb.State != "delivered" || sb.Campaign != "fall" {
		t.Fatalf("entries: %+v", view.Items)
	}
	types := []string{}
	for _, e := range sa.Timeline {
		types = append(types, e.Type)
	}
	if len(types) != 3 || types[1] != "delivered" || types[2] != "redeemed" || sa.Timeline[1].Channel != "api" || sa.Timeline[2].Order == "" {
		t.Fatalf("timeline of the redeemed code: %+v", sa.Timeline)
	}
	if r := h.Admin(t, other, http.MethodGet, "/api/v1/recipients/codes?email=dana@example.com", nil); r.Status != 200 || bytes.Contains(r.Body, []byte("SPR")) {
		t.Fatalf("another merchant sees dana's codes: %s", r.Body)
	}
	if r := h.Admin(t, m, http.MethodGet, "/api/v1/recipients/codes", nil); r.Status != 422 {
		t.Fatalf("no identifier: %d", r.Status)
	}
}

func TestQRCodes(t *testing.T) {
	t.Parallel()
	h := apptest.Start(t, env, apptest.Options{})
	m := h.NewMerchant(t, "QR Shop")
	list := h.CreateList(t, m, map[string]any{"name": "qr"})
	seedCodes(t, h, m, list, "QR", 1)

	r := h.Admin(t, m, http.MethodGet, "/api/v1/lists/"+list+"/codes/QR-1/qr.png?size=300", nil)
	if r.Status != 200 || r.Header.Get("Content-Type") != "image/png" {
		t.Fatalf("png: %d %s", r.Status, r.Header.Get("Content-Type"))
	}
	img, err := png.Decode(bytes.NewReader(r.Body))
	if err != nil || img.Bounds().Dx() != 300 {
		t.Fatalf("png does not decode at 300 px: %v", err)
	}
	bmp, err := gozxing.NewBinaryBitmapFromImage(img)
	if err != nil {
		t.Fatal(err)
	}
	res, err := qrcode.NewQRCodeReader().Decode(bmp, nil)
	if err != nil || res.GetText() != "QR-1" {
		t.Fatalf("the QR code reads %v (%v), want QR-1", res, err)
	}

	r = h.Admin(t, m, http.MethodGet, "/api/v1/lists/"+list+"/codes/QR-1/qr.svg", nil)
	var svg struct {
		XMLName xml.Name `xml:"svg"`
		ViewBox string   `xml:"viewBox,attr"`
		Path    struct {
			D string `xml:"d,attr"`
		} `xml:"path"`
	}
	if r.Status != 200 || r.Header.Get("Content-Type") != "image/svg+xml" || xml.Unmarshal(r.Body, &svg) != nil || len(svg.Path.D) < 100 {
		t.Fatalf("svg: %d %s", r.Status, r.Body[:min(len(r.Body), 200)])
	}
	for _, tc := range []struct {
		path   string
		status int
	}{{"/codes/NOPE/qr.png", 404}, {"/codes/QR-1/qr.png?size=5", 422}, {"/codes/%00/qr.png", 404}, {"/codes/%FF/qr.svg", 404}} {
		if r := h.Admin(t, m, http.MethodGet, "/api/v1/lists/"+list+tc.path, nil); r.Status != tc.status {
			t.Fatalf("%s: %d", tc.path, r.Status)
		}
	}
}
