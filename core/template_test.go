package core_test

import (
	"errors"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/coupongate/coupongate/core"
)

var templateNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.FixedZone("CET", 3600))

// renderText validates an SMS template with text and renders it with d.
func renderText(t *testing.T, text string, d core.RenderData) string {
	t.Helper()
	tmpl, err := core.NewTemplate(core.TemplateInput{Channel: "sms", Text: text}, templateNow)
	if err != nil {
		t.Fatalf("NewTemplate(%q): %v", text, err)
	}
	r, err := tmpl.Render(d)
	if err != nil {
		t.Fatalf("Render(%q): %v", text, err)
	}
	return r.Text
}

func sample() core.RenderData {
	expires := time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC)
	return core.SampleRenderData("Spring sale", &expires)
}

func TestPlaceholderSpellings(t *testing.T) {
	t.Parallel()
	tests := []struct {
		text, want string
	}{
		{"<couponcode>", "SAMPLE-CODE-1234"},
		{"<CouponCode>", "SAMPLE-CODE-1234"},
		{"<COUPONCODE>", "SAMPLE-CODE-1234"},
		{"<coupon_code>", "SAMPLE-CODE-1234"},
		{"<coupon-code>", "SAMPLE-CODE-1234"},
		{"{couponcode}", "SAMPLE-CODE-1234"},
		{"{ couponcode }", "SAMPLE-CODE-1234"},
		{"{{couponcode}}", "SAMPLE-CODE-1234"},
		{"{{ CouponCode }}", "SAMPLE-CODE-1234"},
		{"{{{couponcode}}}", "SAMPLE-CODE-1234"},
		{"${couponcode}", "SAMPLE-CODE-1234"},
		{"${{ code }}", "SAMPLE-CODE-1234"},
		{"$couponcode", "SAMPLE-CODE-1234"},
		{"$code", "SAMPLE-CODE-1234"},
		{"$CODE", "SAMPLE-CODE-1234"},
		{"$Coupon", "SAMPLE-CODE-1234"},
		{"<code>", "SAMPLE-CODE-1234"}, // an element name, but not in an HTML part
		{"{discount_code}", "SAMPLE-CODE-1234"},
		{"{{ promo_code }}", "SAMPLE-CODE-1234"},
		{"$voucher_code", "SAMPLE-CODE-1234"},
		{"<expirydate>", "March 31, 2026"},
		{"{expiry}", "March 31, 2026"},
		{"$expires", "March 31, 2026"},
		{"{{expires_at}}", "March 31, 2026"},
		{"{expiration_date}", "March 31, 2026"},
		{"<listname>", "Spring sale"},
		{"{list}", "Spring sale"},
		{"$list_name", "Spring sale"},
		{"<firstname>", "Ada"},
		{"{first_name}", "Ada"},
		{"{{ FirstName }}", "Ada"},
		{"$fname", "Ada"},
		{"<lastname>", "Lovelace"},
		{"$last_name", "Lovelace"},
		{"{lname}", "Lovelace"},
		{"<fullname>", "Ada Lovelace"},
		{"{name}", "Ada Lovelace"},
		{"<email>", "ada@example.com"},
		{"{email_address}", "ada@example.com"},
		{"<phone>", "+15555550100"},
		{"$phone_number", "+15555550100"},
		{"<externalid>", "customer-1815"},
		{"{external_id}", "customer-1815"},
		{"{{customer_id}}", "customer-1815"},
		{"<campaign>", "preview"},
		{"$campaign_name", "preview"},
		{"Hi $first_name, use $code by <expirydate>!", "Hi Ada, use SAMPLE-CODE-1234 by March 31, 2026!"},
		{"<couponcode><couponcode>", "SAMPLE-CODE-1234SAMPLE-CODE-1234"},
		{"$code.", "SAMPLE-CODE-1234."},
		{"$$code", "$SAMPLE-CODE-1234"},
		{"<<couponcode>>", "<SAMPLE-CODE-1234>"},
	}
	for _, tc := range tests {
		t.Run(tc.text, func(t *testing.T) {
			t.Parallel()
			if got := renderText(t, tc.text, sample()); got != tc.want {
				t.Fatalf("rendered %q, want %q", got, tc.want)
			}
		})
	}
}

func TestEmptyValuesRenderEmpty(t *testing.T) {
	t.Parallel()
	got := renderText(t, "[<couponcode>|<expirydate>|<listname>|<fullname>|<campaign>]", core.RenderData{})
	if got != "[||||]" {
		t.Fatalf("rendered %q", got)
	}
	if got := renderText(t, "Hi <fullname>", core.RenderData{LastName: "Lovelace"}); got != "Hi Lovelace" {
		t.Fatalf("full name without first name: %q", got)
	}
}

// unknownPlaceholder returns the *core.Error of an unknown placeholder, failing otherwise.
func unknownPlaceholder(t *testing.T, err error) *core.Error {
	t.Helper()
	var e *core.Error
	if !errors.As(err, &e) || e.Kind != core.KindInvalid || e.Code != "unknown_placeholder" || !errors.Is(err, core.ErrUnknownPlaceholder) {
		t.Fatalf("err = %v, want an unknown_placeholder error", err)
	}
	return e
}

func TestUnknownPlaceholderRefused(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		in    core.TemplateInput
		field string
		token string // as the error names it
	}{
		{"angle in subject", core.TemplateInput{Channel: "email", Subject: "Your <coupon_cod>", Text: "x"}, "subject", "<coupon_cod>"},
		{"angle in email text", core.TemplateInput{Channel: "email", Subject: "s", Text: "Use <couponcod>"}, "text", "<couponcod>"},
		{"angle in html", core.TemplateInput{Channel: "email", Subject: "s", HTML: "<p>Use <coupon></p><p><firstnme></p>"}, "html", "<firstnme>"},
		{"escaped angle in html", core.TemplateInput{Channel: "email", Subject: "s", HTML: "<p>Use &lt;couponcod&gt;</p>"}, "html", "<couponcod>"},
		{"typo of an element in html", core.TemplateInput{Channel: "email", Subject: "s", HTML: "<dvi>x</div>"}, "html", "<dvi>"},
		{"single brace in sms", core.TemplateInput{Channel: "sms", Text: "Code: {couponcod}"}, "text", "{couponcod}"},
		{"double brace with a path", core.TemplateInput{Channel: "sms", Text: "Hi {{ customer.first_name }}"}, "text", "{{ customer.first_name }}"},
		{"double brace with a filter", core.TemplateInput{Channel: "sms", Text: `Hi {{ first_name | default: "you" }}`}, "text", `{{ first_name | default: "you" }}`},
		{"empty double brace", core.TemplateInput{Channel: "sms", Text: "Hi {{}}"}, "text", "{{}}"},
		{"triple brace", core.TemplateInput{Channel: "sms", Text: "Hi {{{ nickname }}}"}, "text", "{{{ nickname }}}"},
		{"dollar brace", core.TemplateInput{Channel: "sms", Text: "Code ${coupon_cod}"}, "text", "${coupon_cod}"},
		{"dollar near miss", core.TemplateInput{Channel: "sms", Text: "Code $coupon_cod"}, "text", "$coupon_cod"},
		{"dollar swapped letters", core.TemplateInput{Channel: "sms", Text: "Mail $emial"}, "text", "$emial"},
		{"dollar extra letter", core.TemplateInput{Channel: "sms", Text: "Until $expirys"}, "text", "$expirys"},
		{"push title", core.TemplateInput{Channel: "push", Title: "{{ nickname }}", Body: "b"}, "title", "{{ nickname }}"},
		{"push body", core.TemplateInput{Channel: "push", Title: "t", Body: "Code <coupon_id>"}, "body", "<coupon_id>"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := core.NewTemplate(tc.in, templateNow)
			e := unknownPlaceholder(t, err)
			if want := `"` + strings.ReplaceAll(tc.token, `"`, `\"`) + `" in ` + tc.field; !strings.Contains(e.Message, want) {
				t.Fatalf("message %q does not name %s", e.Message, want)
			}
			found := false
			for _, d := range e.Details {
				found = found || d.Field == tc.field && strings.Contains(d.Message, tc.token[:2])
			}
			if !found {
				t.Fatalf("details %+v have no entry for %s", e.Details, tc.field)
			}
		})
	}
}

func TestUnknownPlaceholdersAllReported(t *testing.T) {
	t.Parallel()
	_, err := core.NewTemplate(core.TemplateInput{Channel: "email", Subject: "<nickname> <nickname>", Text: "{foo} <couponcode>",
		HTML: "<p>{{ bar }}</p>"}, templateNow)
	e := unknownPlaceholder(t, err)
	want := []core.FieldError{
		{Field: "subject", Message: `unknown placeholder "<nickname>"`},
		{Field: "text", Message: `unknown placeholder "{foo}"`},
		{Field: "html", Message: `unknown placeholder "{{ bar }}"`},
	}
	if len(e.Details) != len(want) {
		t.Fatalf("details %+v, want %+v", e.Details, want)
	}
	for i := range want {
		if e.Details[i] != want[i] {
			t.Fatalf("detail %d = %+v, want %+v", i, e.Details[i], want[i])
		}
	}
	if !strings.HasPrefix(e.Message, `unknown placeholders "<nickname>" in subject, "{foo}" in text, "{{ bar }}" in html; known placeholders are <couponcode>, <expirydate>`) {
		t.Fatalf("message %q", e.Message)
	}
}

func TestOrdinaryTextIsNotAPlaceholder(t *testing.T) {
	t.Parallel()
	for _, text := range []string{
		"$5 off", "Price: $10.00", "Save $ 5", "Pay in $USD or $CAD", "echo $HOME", "US$20", "R$ 10,00", "$", "a$",
		"Ca$hback", "$codeword", "$listing", "100% off", "a<b and c>d", "x < y > z", "I <3 it", "<b>bold</b>",
		"<br/>", "<p>", "</div>", "<a href=\"x\">", "<!-- note -->", "p{color:red}", "{}", "{ }", "{ two words }",
		"{1}", "<1>", "<_x>", "ada@example.com", "}} {{", "{{ no close", "$_x", "{{\n}}",
	} {
		t.Run(text, func(t *testing.T) {
			t.Parallel()
			if got := renderText(t, text, sample()); got != text {
				t.Fatalf("rendered %q", got)
			}
		})
	}
}

func TestHTMLMarkupIsLeftAlone(t *testing.T) {
	t.Parallel()
	htmlBody := `<!DOCTYPE html>
<html><head><style>p{color:red} @media (max-width:600px){.x{display:none}}</style></head>
<body><!--[if mso]><table><tr><td><![endif]--><center><h1>Hi <firstname>,</h1>
<p>Your code: <b><code><couponcode></code></b><br/><br>
<a href="https://shop.example/?code={couponcode}" style="color:#000">Shop</a></p>
<o:p></o:p><P>Valid until &lt;expirydate&gt;.</P><TABLE><TBODY><TR><TD>$5 off</TD></TR></TBODY></TABLE>
<svg><g><path></path></g></svg></center><![if mso]></td></tr></table><![endif]></body></html>`
	want := strings.NewReplacer("<firstname>", "Ada", "<couponcode>", "SAMPLE-CODE-1234", "{couponcode}", "SAMPLE-CODE-1234",
		"&lt;expirydate&gt;", "March 31, 2026").Replace(htmlBody)
	tmpl, err := core.NewTemplate(core.TemplateInput{Channel: "email", Subject: "Your code", HTML: htmlBody}, templateNow)
	if err != nil {
		t.Fatal(err)
	}
	r, err := tmpl.Render(sample())
	if err != nil {
		t.Fatal(err)
	}
	if r.HTML != want {
		t.Fatalf("rendered\n%s\nwant\n%s", r.HTML, want)
	}
}

// TestHTMLCommentsAreNotRefused: exports of Mailchimp, Stripo and the like carry Outlook's
// conditional blocks (<xml>, <o:OfficeDocumentSettings>) and notes in comments; nothing there is
// refused, and a placeholder inside an Outlook-only block is still filled in. Outside comments
// a typo is still caught.
func TestHTMLCommentsAreNotRefused(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, html, want, refused string
	}{
		{name: "Outlook settings block",
			html: `<head><!--[if gte mso 9]><xml><o:OfficeDocumentSettings><o:AllowPNG/></o:OfficeDocumentSettings></xml><![endif]--></head><p><couponcode></p>`,
			want: `<head><!--[if gte mso 9]><xml><o:OfficeDocumentSettings><o:AllowPNG/></o:OfficeDocumentSettings></xml><![endif]--></head><p>SAMPLE-CODE-1234</p>`},
		{name: "a note in a comment", html: `<!-- <todo> check <header-image> --><p>Hi <firstname></p>`,
			want: `<!-- <todo> check <header-image> --><p>Hi Ada</p>`},
		{name: "a placeholder in an Outlook-only block", html: `<!--[if mso]><td><couponcode></td><![endif]--><p>{couponcode}</p>`,
			want: `<!--[if mso]><td>SAMPLE-CODE-1234</td><![endif]--><p>SAMPLE-CODE-1234</p>`},
		{name: "an unclosed comment", html: `<p><couponcode></p><!-- <todo>`, want: `<p>SAMPLE-CODE-1234</p><!-- <todo>`},
		{name: "xml outside a comment is markup", html: `<xml></xml><couponcode>`, want: `<xml></xml>SAMPLE-CODE-1234`},
		{name: "a typo after a comment is refused", html: `<!-- note --><p><couponcod></p>`, refused: "<couponcod>"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tmpl, err := core.NewTemplate(core.TemplateInput{Channel: "email", Subject: "Your code", HTML: tc.html}, templateNow)
			if tc.refused != "" {
				if err == nil || !strings.Contains(err.Error(), tc.refused) {
					t.Fatalf("want %s refused, got %v", tc.refused, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			r, err := tmpl.Render(sample())
			if err != nil {
				t.Fatal(err)
			}
			if r.HTML != tc.want {
				t.Fatalf("rendered\n%s\nwant\n%s", r.HTML, tc.want)
			}
		})
	}
}

func TestValuesEscapedInHTMLOnly(t *testing.T) {
	t.Parallel()
	d := sample()
	d.Code, d.FirstName = `<b>&"'`, "<script>alert(1)</script>"
	tmpl, err := core.NewTemplate(core.TemplateInput{Channel: "email", Subject: "<firstname>: <couponcode>",
		Text: "<firstname>: <couponcode>", HTML: `<p><firstname>: <a title="{couponcode}">$code</a></p>`}, templateNow)
	if err != nil {
		t.Fatal(err)
	}
	r, err := tmpl.Render(d)
	if err != nil {
		t.Fatal(err)
	}
	wantHTML := `<p>&lt;script&gt;alert(1)&lt;/script&gt;: <a title="&lt;b&gt;&amp;&#34;&#39;">&lt;b&gt;&amp;&#34;&#39;</a></p>`
	if r.HTML != wantHTML {
		t.Errorf("html %q, want %q", r.HTML, wantHTML)
	}
	if want := `<script>alert(1)</script>: <b>&"'`; r.Text != want || r.Subject != want {
		t.Errorf("text %q, subject %q, want %q raw", r.Text, r.Subject, want)
	}
	for _, ch := range []string{"sms", "push"} {
		in := core.TemplateInput{Channel: ch, Text: "<couponcode>"}
		if ch == "push" {
			in = core.TemplateInput{Channel: ch, Title: "<couponcode>", Body: "<couponcode>"}
		}
		tmpl, err := core.NewTemplate(in, templateNow)
		if err != nil {
			t.Fatal(err)
		}
		r, err := tmpl.Render(d)
		if err != nil {
			t.Fatal(err)
		}
		if got := r.Text + r.Title + r.Body; strings.ReplaceAll(got, d.Code, "") != "" {
			t.Errorf("%s rendered %+v, want the raw code", ch, r)
		}
	}
}

func TestExpiryDateLocalesAndZones(t *testing.T) {
	t.Parallel()
	evening := time.Date(2026, 3, 31, 20, 0, 0, 0, time.UTC) // already April 1 in Tokyo
	january := time.Date(2027, 1, 15, 12, 0, 0, 0, time.UTC)
	midnightUTC := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	berlin, _ := time.LoadLocation("Europe/Berlin")
	midnightBerlin := time.Date(2026, 12, 1, 0, 0, 0, 0, berlin)
	tests := []struct {
		name     string
		locale   string
		zone     string
		expires  time.Time
		want     string
		wantCode string // the stored locale
	}{
		{"default locale and zone", "", "", evening, "March 31, 2026", "en-US"},
		{"en-US in Tokyo is the next day", "en-US", "Asia/Tokyo", evening, "April 1, 2026", "en-US"},
		{"bare en", "en", "UTC", evening, "March 31, 2026", "en-US"},
		{"en-GB", "en-GB", "Europe/London", evening, "31 March 2026", "en-GB"},
		{"de-DE", "de-DE", "Europe/Berlin", evening, "31. März 2026", "de-DE"},
		{"de-DE in Tokyo", "de-DE", "Asia/Tokyo", evening, "1. April 2026", "de-DE"},
		{"de_de spelled loosely", " de_de ", "UTC", january, "15. Januar 2027", "de-DE"},
		{"de-AT says Jänner", "de-AT", "Europe/Vienna", january, "15. Jänner 2027", "de-AT"},
		{"fr-FR", "fr-FR", "Europe/Paris", january, "15 janvier 2027", "fr-FR"},
		{"es-ES", "es-ES", "Europe/Madrid", january, "15 de enero de 2027", "es-ES"},
		{"it-IT", "it-IT", "Europe/Rome", january, "15 gennaio 2027", "it-IT"},
		{"nl-NL", "nl-NL", "Europe/Amsterdam", january, "15 januari 2027", "nl-NL"},
		{"pt-BR", "pt-BR", "America/Sao_Paulo", january, "15 de janeiro de 2027", "pt-BR"},
		{"bare pt", "PT", "UTC", evening, "31 de março de 2026", "pt-BR"},
		{"tr-TR", "tr-TR", "Europe/Istanbul", time.Date(2026, 2, 10, 12, 0, 0, 0, time.UTC), "10 Şubat 2026", "tr-TR"},
		{"west of UTC is the day before", "en-US", "America/Los_Angeles", time.Date(2026, 4, 1, 3, 0, 0, 0, time.UTC), "March 31, 2026", "en-US"},
		{"expiry at midnight shows the last day it works", "en-US", "UTC", midnightUTC, "November 30, 2026", "en-US"},
		{"the same instant in Tokyo", "en-US", "Asia/Tokyo", midnightUTC, "December 1, 2026", "en-US"},
		{"local midnight in Berlin", "de-DE", "Europe/Berlin", midnightBerlin, "30. November 2026", "de-DE"},
		{"a second after midnight", "en-GB", "UTC", midnightUTC.Add(time.Second), "1 December 2026", "en-GB"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tmpl, err := core.NewTemplate(core.TemplateInput{Channel: "push", Body: "<expirydate>", Locale: tc.locale, TimeZone: tc.zone}, templateNow)
			if err != nil {
				t.Fatal(err)
			}
			if tmpl.Locale != tc.wantCode {
				t.Errorf("locale stored as %q, want %q", tmpl.Locale, tc.wantCode)
			}
			r, err := tmpl.Render(core.RenderData{ExpiresAt: &tc.expires})
			if err != nil {
				t.Fatal(err)
			}
			if r.Body != tc.want {
				t.Fatalf("rendered %q, want %q", r.Body, tc.want)
			}
		})
	}
}

func TestEveryLocaleRendersEveryMonth(t *testing.T) {
	t.Parallel()
	for _, locale := range core.Locales() {
		tmpl, err := core.NewTemplate(core.TemplateInput{Channel: "sms", Text: "<expirydate>", Locale: locale}, templateNow)
		if err != nil || tmpl.Locale != locale {
			t.Fatalf("%s: %v, stored as %q", locale, err, tmpl.Locale)
		}
		seen := map[string]bool{}
		for m := time.January; m <= time.December; m++ {
			expires := time.Date(2026, m, 5, 0, 0, 0, 0, time.UTC)
			r, err := tmpl.Render(core.RenderData{ExpiresAt: &expires})
			if err != nil || !strings.Contains(r.Text, "4") || !strings.Contains(r.Text, "2026") || seen[r.Text] {
				t.Fatalf("%s, %s: %q, %v", locale, m, r.Text, err)
			}
			seen[r.Text] = true
		}
	}
}

func TestValidateTemplate(t *testing.T) {
	t.Parallel()
	long := func(n int) string { return strings.Repeat("é", n) } // counted in characters, not bytes
	tests := []struct {
		name  string
		in    core.TemplateInput
		field string // "" when valid
	}{
		{"email with text", core.TemplateInput{Channel: "email", Subject: "s", Text: "t"}, ""},
		{"email with html", core.TemplateInput{Channel: "email", Subject: "s", HTML: "<p>h</p>"}, ""},
		{"email channel in capitals", core.TemplateInput{Channel: " EMAIL ", Subject: "s", Text: "t"}, ""},
		{"sms", core.TemplateInput{Channel: "sms", Text: "t"}, ""},
		{"push title only", core.TemplateInput{Channel: "push", Title: "t"}, ""},
		{"push body only", core.TemplateInput{Channel: "push", Body: "b"}, ""},
		{"no channel", core.TemplateInput{Text: "t"}, "channel"},
		{"unknown channel", core.TemplateInput{Channel: "fax", Text: "t"}, "channel"},
		{"email without subject", core.TemplateInput{Channel: "email", Text: "t"}, "subject"},
		{"email with a blank subject", core.TemplateInput{Channel: "email", Subject: " \t", Text: "t"}, "subject"},
		{"email without body", core.TemplateInput{Channel: "email", Subject: "s", Text: "  \n"}, "text"},
		{"email with a title", core.TemplateInput{Channel: "email", Subject: "s", Text: "t", Title: "x"}, "title"},
		{"sms without text", core.TemplateInput{Channel: "sms"}, "text"},
		{"sms with a body", core.TemplateInput{Channel: "sms", Body: "b"}, "body"},
		{"sms with a subject", core.TemplateInput{Channel: "sms", Subject: "s", Text: "t"}, "subject"},
		{"push without title or body", core.TemplateInput{Channel: "push"}, "body"},
		{"push with text", core.TemplateInput{Channel: "push", Title: "t", Text: "x"}, "text"},
		{"push with html", core.TemplateInput{Channel: "push", Title: "t", HTML: "<p>x</p>"}, "html"},
		{"sms at its limit", core.TemplateInput{Channel: "sms", Text: long(1600)}, ""},
		{"sms over its limit", core.TemplateInput{Channel: "sms", Text: long(1601)}, "text"},
		{"email text longer than an sms", core.TemplateInput{Channel: "email", Subject: "s", Text: long(5000)}, ""},
		{"email text over its limit", core.TemplateInput{Channel: "email", Subject: "s", Text: long(100_001)}, "text"},
		{"html over its limit", core.TemplateInput{Channel: "email", Subject: "s", HTML: long(500_001)}, "html"},
		{"subject at its limit", core.TemplateInput{Channel: "email", Subject: long(998), Text: "t"}, ""},
		{"subject over its limit", core.TemplateInput{Channel: "email", Subject: long(999), Text: "t"}, "subject"},
		{"subject on two lines", core.TemplateInput{Channel: "email", Subject: "a\r\nBcc: x@example.com", Text: "t"}, "subject"},
		{"subject with a line separator", core.TemplateInput{Channel: "email", Subject: "a\u2028b", Text: "t"}, "subject"},
		{"push title at its limit", core.TemplateInput{Channel: "push", Title: long(200)}, ""},
		{"push title over its limit", core.TemplateInput{Channel: "push", Title: long(201)}, "title"},
		{"push title on two lines", core.TemplateInput{Channel: "push", Title: "a\nb"}, "title"},
		{"push body at its limit", core.TemplateInput{Channel: "push", Body: long(4000)}, ""},
		{"push body over its limit", core.TemplateInput{Channel: "push", Body: long(4001)}, "body"},
		{"text with lines and tabs", core.TemplateInput{Channel: "sms", Text: "a\r\n\tb"}, ""},
		{"text with NUL", core.TemplateInput{Channel: "sms", Text: "a\x00b"}, "text"},
		{"text with escape", core.TemplateInput{Channel: "sms", Text: "a\x1bb"}, "text"},
		{"html with invalid UTF-8", core.TemplateInput{Channel: "email", Subject: "s", HTML: "a\xffb"}, "html"},
		{"every locale spelling", core.TemplateInput{Channel: "sms", Text: "t", Locale: "fr_ca"}, ""},
		{"unknown locale", core.TemplateInput{Channel: "sms", Text: "t", Locale: "xx-XX"}, "locale"},
		{"unsupported region", core.TemplateInput{Channel: "sms", Text: "t", Locale: "en-ZA"}, "locale"},
		{"zone", core.TemplateInput{Channel: "sms", Text: "t", TimeZone: "America/New_York"}, ""},
		{"unknown zone", core.TemplateInput{Channel: "sms", Text: "t", TimeZone: "Mars/Olympus_Mons"}, "time_zone"},
		{"zone in the wrong case", core.TemplateInput{Channel: "sms", Text: "t", TimeZone: "europe/berlin"}, "time_zone"},
		{"the server's zone", core.TemplateInput{Channel: "sms", Text: "t", TimeZone: "Local"}, "time_zone"},
		{"a path for a zone", core.TemplateInput{Channel: "sms", Text: "t", TimeZone: "../../etc/passwd"}, "time_zone"},
		{"an offset for a zone", core.TemplateInput{Channel: "sms", Text: "t", TimeZone: "+02:00"}, "time_zone"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tmpl, err := core.NewTemplate(tc.in, templateNow)
			if tc.field == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				again, err := core.ValidateTemplate(tmpl)
				if err != nil || again != tmpl {
					t.Fatalf("validating again: %+v, %v", again, err)
				}
				return
			}
			var e *core.Error
			if !errors.As(err, &e) || e.Kind != core.KindInvalid || len(e.Details) != 1 || e.Details[0].Field != tc.field {
				t.Fatalf("err = %v, want invalid %s", err, tc.field)
			}
		})
	}
}

func TestNewTemplateNormalizes(t *testing.T) {
	t.Parallel()
	tmpl, err := core.NewTemplate(core.TemplateInput{Channel: "Email", Subject: "  Your code  ", Text: "\n  Hi,\n", HTML: " \n ",
		Locale: "EN", TimeZone: " Europe/Berlin "}, templateNow)
	if err != nil {
		t.Fatal(err)
	}
	want := core.Template{ID: tmpl.ID, Channel: core.ChannelEmail, Subject: "Your code", Text: "\n  Hi,\n", Locale: "en-US",
		TimeZone: "Europe/Berlin", CreatedAt: templateNow.UTC(), UpdatedAt: templateNow.UTC()}
	if tmpl != want || tmpl.ID.String() == "00000000-0000-0000-0000-000000000000" || tmpl.CreatedAt.Location() != time.UTC {
		t.Fatalf("got %+v\nwant %+v", tmpl, want)
	}
	sms, err := core.NewTemplate(core.TemplateInput{Channel: "sms", Text: "  Code <couponcode>\n"}, templateNow)
	if err != nil || sms.Text != "Code <couponcode>" || sms.TimeZone != "UTC" || sms.Locale != "en-US" {
		t.Fatalf("sms %+v, %v", sms, err)
	}
}

func TestOneLineParts(t *testing.T) {
	t.Parallel()
	d := sample()
	d.FirstName = "Ada\r\nBcc: evil@example.com\n\n"
	d.LastName = "Love\x00lace\u2028"
	tmpl, err := core.NewTemplate(core.TemplateInput{Channel: "email", Subject: "Hi <firstname> <lastname>", Text: "Hi <firstname>"}, templateNow)
	if err != nil {
		t.Fatal(err)
	}
	r, err := tmpl.Render(d)
	if err != nil {
		t.Fatal(err)
	}
	if want := "Hi Ada Bcc: evil@example.com  Lovelace"; r.Subject != want { // the breaks of a value become one space
		t.Fatalf("subject %q, want %q", r.Subject, want)
	}
	if r.Text != "Hi "+d.FirstName {
		t.Fatalf("text %q keeps its lines", r.Text)
	}
	push, err := core.NewTemplate(core.TemplateInput{Channel: "push", Title: "Hi <firstname>", Body: "Hi <firstname>"}, templateNow)
	if err != nil {
		t.Fatal(err)
	}
	if r, err = push.Render(d); err != nil || r.Title != "Hi Ada Bcc: evil@example.com" || r.Body != "Hi "+d.FirstName {
		t.Fatalf("push %+v, %v", r, err)
	}
}

func TestRenderRefusesWhatValidationWould(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		tmpl  core.Template
		code  string
		field string
	}{
		{"unknown placeholder", core.Template{Channel: core.ChannelSMS, Text: "{nope}"}, "unknown_placeholder", "text"},
		{"unknown locale", core.Template{Channel: core.ChannelSMS, Text: "x", Locale: "xx"}, "invalid_field", "locale"},
		{"unknown zone", core.Template{Channel: core.ChannelSMS, Text: "x", TimeZone: "Nowhere/Town"}, "invalid_field", "time_zone"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := tc.tmpl.Render(sample())
			var e *core.Error
			if !errors.As(err, &e) || e.Code != tc.code || e.Details[0].Field != tc.field {
				t.Fatalf("err = %v, want %s on %s", err, tc.code, tc.field)
			}
		})
	}
	// A stored template without locale or zone (rows from before they existed) renders with the defaults.
	expires := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	r, err := core.Template{Channel: core.ChannelSMS, Text: "<expirydate>"}.Render(core.RenderData{ExpiresAt: &expires})
	if err != nil || r.Text != "May 1, 2026" {
		t.Fatalf("%+v, %v", r, err)
	}
}

func TestPreview(t *testing.T) {
	t.Parallel()
	tmpl, err := core.NewTemplate(core.TemplateInput{Channel: "email", Subject: "{{first_name}}, your <listname> code",
		Text: "Use $code before <expirydate>.", HTML: "<p>Use <b>$code</b> before <expirydate>.</p>", Locale: "en-GB",
		TimeZone: "Europe/London"}, templateNow)
	if err != nil {
		t.Fatal(err)
	}
	expires := time.Date(2026, 7, 1, 0, 0, 0, 0, time.UTC) // 1 a.m. in London: still July 1
	r, err := tmpl.Render(core.SampleRenderData("Summer & Co", &expires))
	if err != nil {
		t.Fatal(err)
	}
	want := core.Rendered{Subject: "Ada, your Summer & Co code", Text: "Use SAMPLE-CODE-1234 before 1 July 2026.",
		HTML: "<p>Use <b>SAMPLE-CODE-1234</b> before 1 July 2026.</p>"}
	if r != want {
		t.Fatalf("got %+v\nwant %+v", r, want)
	}
}

func TestPlaceholdersAreDocumentedAndUsable(t *testing.T) {
	t.Parallel()
	names := core.Placeholders()
	want := []string{"couponcode", "expirydate", "listname", "firstname", "lastname", "fullname", "email", "phone", "externalid", "campaign", "redeemlink"}
	if strings.Join(names, ",") != strings.Join(want, ",") {
		t.Fatalf("Placeholders() = %v", names)
	}
	names[0] = "changed"
	if core.Placeholders()[0] != "couponcode" {
		t.Fatal("Placeholders shares its slice")
	}
	for _, name := range want {
		for _, spelling := range []string{"<" + name + ">", "{" + name + "}", "{{ " + name + " }}", "$" + name} {
			if _, err := core.NewTemplate(core.TemplateInput{Channel: "email", Subject: spelling, Text: spelling, HTML: spelling}, templateNow); err != nil {
				t.Errorf("%s: %v", spelling, err)
			}
		}
	}
	if got := core.Locales(); len(got) == 0 || got[0] != "en-US" {
		t.Fatalf("Locales() = %v", got)
	}
}

func TestParseChannel(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]core.Channel{"email": core.ChannelEmail, " SMS ": core.ChannelSMS, "Push": core.ChannelPush, "": "", "fax": ""} {
		if got, ok := core.ParseChannel(in); got != want || ok != (want != "") {
			t.Errorf("ParseChannel(%q) = %q, %v", in, got, ok)
		}
	}
}

// FuzzRenderTemplate checks that validation never panics, that whatever it accepts renders with
// any data, that validating twice changes nothing, and that subjects and titles stay one line.
func FuzzRenderTemplate(f *testing.F) {
	f.Add("email", "Hi <firstname>", "Code $code", "<p>{{ couponcode }}</p>", "", "", "de-DE", "Europe/Berlin", `<b>&"'`, "Ada\r\n", int64(1775001600))
	f.Add("sms", "", "$5 off with {code} until <expirydate>", "", "", "", "en", "", "SAVE", "", int64(0))
	f.Add("push", "", "", "", "{{ first_name }}", "&lt;code&gt; ${coupon}", "tr-TR", "Asia/Tokyo", "X", "Ada", int64(-1))
	f.Fuzz(func(t *testing.T, channel, subject, text, htmlBody, title, body, locale, zone, code, firstName string, expiresUnix int64) {
		tmpl, err := core.NewTemplate(core.TemplateInput{Channel: channel, Subject: subject, Text: text, HTML: htmlBody,
			Title: title, Body: body, Locale: locale, TimeZone: zone}, templateNow)
		if err != nil {
			var e *core.Error
			if !errors.As(err, &e) || e.Kind != core.KindInvalid || len(e.Details) == 0 {
				t.Fatalf("refused with %v", err)
			}
			return
		}
		again, err := core.ValidateTemplate(tmpl)
		if err != nil || again != tmpl {
			t.Fatalf("validating %+v again: %+v, %v", tmpl, again, err)
		}
		expires := time.Unix(expiresUnix, 0)
		d := core.SampleRenderData("List", &expires)
		d.Code, d.FirstName = code, firstName
		r, err := tmpl.Render(d)
		if err != nil {
			t.Fatalf("validated template %+v does not render: %v", tmpl, err)
		}
		if strings.ContainsAny(r.Subject, "\r\n") || strings.ContainsAny(r.Title, "\r\n") {
			t.Fatalf("subject %q or title %q has a line break", r.Subject, r.Title)
		}
		if utf8.ValidString(code) && utf8.ValidString(firstName) && (!utf8.ValidString(r.Subject) || !utf8.ValidString(r.Text) || !utf8.ValidString(r.HTML)) {
			t.Fatalf("invalid UTF-8 rendered: %+v", r)
		}
		// Escaped values bring none of these characters: the HTML has at most the template's.
		for _, c := range []string{"<", ">", `"`, "'"} {
			if strings.Count(r.HTML, c) > strings.Count(tmpl.HTML, c) {
				t.Fatalf("unescaped %s from a value in html %q", c, r.HTML)
			}
		}
	})
}

func TestParsingStaysLinear(t *testing.T) {
	t.Parallel()
	for _, unit := range []string{"{", "{{", "{{{", "${", "<", "<a", "$a", "&lt;", "&lt;a", "{a", "a"} {
		huge := strings.Repeat(unit, core.MaxEmailHTMLLength/len(unit))
		start := time.Now()
		_, err := core.NewTemplate(core.TemplateInput{Channel: "email", Subject: "s", HTML: huge}, templateNow)
		if err != nil {
			t.Fatalf("%q repeated: %v", unit, err)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Fatalf("%q repeated took %v", unit, d)
		}
	}
}
