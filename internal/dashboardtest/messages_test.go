package dashboardtest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/coupongate/coupongate/core"
	"github.com/coupongate/coupongate/integrations/messaging/messagingfake"
	"github.com/coupongate/coupongate/internal/browsertest"
)

// TestJourneyMessages: an owner sets up email (the password never comes back to the page), sends
// a test message, writes a template for a list (an unknown placeholder is refused beside the
// text; the preview shows the sample code), sends one code and watches its delivery be sent, then
// uploads a CSV of recipients and watches the bulk send finish; axe finds nothing serious on the
// pages.
func TestJourneyMessages(t *testing.T) {
	t.Parallel()
	s := newSite(t, options{worker: true})
	sink := messagingfake.NewSMTPSink(t, messagingfake.SinkConfig{Username: "codes", Password: "journey-smtp-password"})
	host, port := sink.Addr()
	ctx := context.Background()
	app := s.h.App
	list := s.list(t, "Winter <sale>")
	imp, err := app.Imports.Start(ctx, s.merchant, list.ID, core.FormatText, "", strings.NewReader("WINTER-01\nWINTER-02\nWINTER-03\n"), 1<<20, "test")
	if err != nil {
		t.Fatal(err)
	}
	s.runImport(t, list.ID, imp.ID)
	email := s.member(t, "owner", core.RoleOwner)
	b := browsertest.New(t)
	signIn(b, s.h.URL, email, password)
	b.WaitText("main h1", "Lists")

	// Email settings, then a test message.
	b.ClickText("Messages")
	b.WaitText("main h1", "Messages")
	axeClean(t, b, "the messages page")
	b.ClickText("Set up Email")
	b.WaitText("main h1", "Email settings")
	b.Fill("#email-host", host)
	b.Fill("#email-port", fmt.Sprint(port))
	browsertest.Run(b, "choose no security", chromedp.SetValue(chromedp.CSS("#email-security"), "none"))
	b.Fill("#email-username", "codes")
	b.Fill("#email-password", "journey-smtp-password")
	b.Fill("#email-from", "Winter Shop <codes@shop.example>")
	b.ClickText("Save settings")
	b.WaitText("main", "The Email settings are saved")
	b.WaitText("#email-password-help", "A password is set")
	if html := browsertest.Eval[string](b, `document.documentElement.outerHTML`); strings.Contains(html, "journey-smtp-password") {
		t.Error("the settings page holds the SMTP password")
	}
	axeClean(t, b, "the email settings")
	b.Fill("#test-to", "ada@example.com")
	b.ClickText("Send test")
	b.WaitText("#send-test", "The test message went to ada@example.com")
	axeClean(t, b, "the test message sent")

	// A template for the list.
	b.ClickText("Messages")
	b.WaitText("main h1", "Messages")
	b.ClickText("Winter <sale>")
	b.WaitText("main h1", "Winter <sale>")
	axeClean(t, b, "a list without templates")
	b.ClickText("New email template")
	b.WaitText("main h1", "New Email template")
	b.Fill("#tpl-subject", "Your winter code")
	browsertest.Run(b, "type the text", chromedp.SendKeys(chromedp.CSS("#tpl-text"), "Hi <firstname>, use <couponcode> <coupon_cod>"))
	b.ClickText("Save template")
	b.WaitText("#error-text", `Unknown placeholder "<coupon_cod>"`)
	axeClean(t, b, "the editor with an error")
	b.Fill("#tpl-text", "Hi <firstname>, use <couponcode> in our shop.")
	b.ClickText("Preview")
	b.WaitText("#template-preview", "Hi Ada, use SAMPLE-CODE-1234 in our shop.")
	axeClean(t, b, "the editor with the preview")
	b.ClickText("Save template")
	b.WaitText("main", "The template is saved")

	// Send one code.
	b.ClickText("Winter <sale>")
	b.WaitText("main", "Send one code")
	tplValue := browsertest.Eval[string](b, `document.querySelector("#send-template option:nth-child(2)").value`)
	browsertest.Run(b, "choose the template", chromedp.SetValue(chromedp.CSS("#send-template"), tplValue))
	b.Fill("#send-email", "bea@example.com")
	b.Fill("#send-first-name", "Bea")
	axeClean(t, b, "a list with its templates")
	b.ClickText("Send code")
	b.WaitText("main h1", "Email to bea@example.com")
	b.WaitText("#delivery-status .badge", "Sent")
	axeClean(t, b, "a delivery")
	sent := sink.Messages()
	if len(sent) != 2 || sent[1].To[0] != "bea@example.com" || !strings.Contains(sent[1].Text, "Hi Bea, use WINTER-0") {
		t.Fatalf("the emails: %+v", sent)
	}

	// Bulk send from a CSV.
	b.ClickText("Winter <sale>")
	b.WaitText("main", "Bulk send")
	browsertest.Run(b, "choose the bulk template", chromedp.SetValue(chromedp.CSS("#bulk-template"), tplValue))
	b.Fill("#bulk-campaign", "winter")
	file := filepath.Join(t.TempDir(), "people.csv")
	if err := os.WriteFile(file, []byte("email,first_name\ncy@example.com,Cy\ndi@example.com,Di\nnobody,X\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	browsertest.Run(b, "choose the file", chromedp.SetUploadFiles(chromedp.CSS("#bulk-file"), []string{file}))
	b.ClickText("Upload and send")
	b.WaitURL("/bulk/")
	b.WaitText("#bulk-progress .badge", "Done")
	report := strings.Join(strings.Fields(b.Text("#bulk-progress .report")), "")
	if !strings.Contains(report, "Sent2Failed0Waiting0") || !strings.Contains(report, "Rowsrefused1") {
		t.Errorf("the finished bulk send reads %q", report)
	}
	axeClean(t, b, "a bulk send")
	screenshot(t, b, "bulk-send")
}
