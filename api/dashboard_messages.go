package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/coupongate/coupongate/core"
	"github.com/coupongate/coupongate/web"
)

// The Messages pages (issue 11, point 9): the email, SMS and push channel settings (secrets are
// write-only: a secret field left empty keeps the stored secret, and no page ever shows one) with
// "Send test"; each list's templates (create, edit, delete, preview with a sample code, the
// placeholders beside the editor); sending one code; a bulk send from a CSV with its progress;
// the list's deliveries and bulk sends.

// dashboardMessages registers the Messages pages, all for owners.
func (h *handlers) dashboardMessages(owner *gin.RouterGroup) {
	owner.GET("/messages", h.messagesPage)
	owner.GET("/messages/channels/:channel", h.channelPage)
	owner.POST("/messages/channels/:channel", h.channelForm)
	owner.POST("/messages/channels/:channel/test", h.channelTestForm)
	owner.GET("/messages/lists/:list_id", h.listMessagesPage)
	owner.GET("/messages/lists/:list_id/templates/new", h.newTemplatePage)
	owner.POST("/messages/lists/:list_id/templates/new", h.createTemplateForm)
	owner.GET("/messages/lists/:list_id/templates/:template_id", h.editTemplatePage)
	owner.POST("/messages/lists/:list_id/templates/:template_id", h.updateTemplateForm)
	owner.POST("/messages/lists/:list_id/templates/:template_id/delete", h.deleteTemplateForm)
	owner.POST("/messages/lists/:list_id/send", h.sendOneForm)
	owner.GET("/messages/lists/:list_id/deliveries", h.deliveriesPage)
	owner.GET("/messages/lists/:list_id/deliveries/:delivery_id", h.deliveryPage)
	owner.POST("/messages/lists/:list_id/bulk", h.bulkForm)
	owner.GET("/messages/lists/:list_id/bulk", h.bulkJobsPage)
	owner.GET("/messages/lists/:list_id/bulk/:job_id", h.bulkJobPage)
}

// channelNames are the channels in words.
var channelNames = map[core.Channel]string{core.ChannelEmail: "Email", core.ChannelSMS: "SMS", core.ChannelPush: "Push"}

// channelOrder is the order the pages list the channels in.
var channelOrder = []core.Channel{core.ChannelEmail, core.ChannelSMS, core.ChannelPush}

// ---- Channels -----------------------------------------------------------------------------------

// channelView is a channel's settings as the pages show them: never a secret, only whether one is
// stored.
type channelView struct {
	Channel   core.Channel
	Name      string
	Set       bool
	SecretSet bool
	UpdatedAt time.Time
	Email     core.EmailChannel
	SMS       core.SMSChannel
	Push      core.PushChannel
	// Summary is one line about the settings: the sender and the server, the number, the project.
	Summary string
}

// channelViewOf reads a channel's public settings (ErrChannelNotFound: not set up).
func (h *handlers) channelViewOf(c *gin.Context, ch core.Channel) (channelView, error) {
	v := channelView{Channel: ch, Name: channelNames[ch]}
	cfg, err := h.Channels.Get(c.Request.Context(), merchantID(c), ch)
	if errors.Is(err, core.ErrChannelNotFound) {
		return v, nil
	}
	if err != nil {
		return v, err
	}
	v.Set, v.SecretSet, v.UpdatedAt = true, cfg.SecretSet, cfg.UpdatedAt
	switch ch {
	case core.ChannelEmail:
		err = json.Unmarshal(cfg.Public, &v.Email)
		v.Summary = v.Email.From + " through " + v.Email.Host + ":" + strconv.Itoa(v.Email.Port)
	case core.ChannelSMS:
		err = json.Unmarshal(cfg.Public, &v.SMS)
		v.Summary = "Twilio, from " + v.SMS.From
	case core.ChannelPush:
		err = json.Unmarshal(cfg.Public, &v.Push)
		v.Summary = "Firebase Cloud Messaging, project " + v.Push.ProjectID
	}
	// The public settings never hold a secret; they are cleared here all the same.
	v.Email.Password, v.SMS.AuthToken, v.Push.ServiceAccount = "", "", nil
	return v, err
}

// dashChannel reads :channel.
func dashChannel(c *gin.Context) (core.Channel, bool) {
	ch, ok := core.ParseChannel(c.Param("channel"))
	if !ok || string(ch) != c.Param("channel") {
		fail(c, &core.Error{Kind: core.KindNotFound, Code: "route_not_found", Message: "channels are email, sms and push"})
		return "", false
	}
	return ch, true
}

// messagesData is what messages.html shows.
type messagesData struct {
	Channels []channelView
	Lists    []listRow
	Next     string
	After    string
}

// messagesPage is GET /app/messages: the channels and the lists, whose templates and sends have a
// page each.
func (h *handlers) messagesPage(c *gin.Context) {
	data := messagesData{After: c.Query("after")}
	if data.After == "" {
		for _, ch := range channelOrder {
			v, err := h.channelViewOf(c, ch)
			if err != nil {
				fail(c, err)
				return
			}
			data.Channels = append(data.Channels, v)
		}
	}
	lists, next, err := h.Lists.List(c.Request.Context(), merchantID(c), core.Page{Limit: dashPageSize, Cursor: data.After})
	if err != nil {
		fail(c, err)
		return
	}
	now := time.Now()
	data.Lists = mapped(lists, func(l core.List) listRow { return listRowOf(l, now) })
	data.Next = next
	h.page(c, http.StatusOK, "messages.html", data)
}

// channelForm is a channel form's values as typed; secrets are never kept in it.
type channelFormValues struct {
	Host, Port, Username, From, Security string
	AccountSID, SMSFrom                  string
	To                                   string
}

// channelData is what messages_channel.html shows.
type channelData struct {
	Channel channelView
	Form    channelFormValues
	Errors  web.FieldErrors
	Error   string
	Saved   bool
	// Test is the test message just sent; TestErrors and TestError say why one was not.
	Test       *core.TestSend
	TestErrors web.FieldErrors
	TestError  string
}

// formOf is the form of stored settings.
func formOf(v channelView) channelFormValues {
	f := channelFormValues{Host: v.Email.Host, Username: v.Email.Username, From: v.Email.From, Security: v.Email.Security,
		AccountSID: v.SMS.AccountSID, SMSFrom: v.SMS.From}
	if v.Email.Port > 0 {
		f.Port = strconv.Itoa(v.Email.Port)
	}
	if f.Security == "" {
		f.Security = "starttls"
	}
	return f
}

// channelPage is GET /app/messages/channels/:channel: the settings form and "Send test".
func (h *handlers) channelPage(c *gin.Context) {
	ch, ok := dashChannel(c)
	if !ok {
		return
	}
	v, err := h.channelViewOf(c, ch)
	if err != nil {
		fail(c, err)
		return
	}
	if !v.Set && ch == core.ChannelEmail {
		v.Email.Port = 587
	}
	h.page(c, http.StatusOK, "messages_channel.html", channelData{Channel: v, Form: formOf(v), Saved: c.Query("saved") == "1"})
}

// channelFieldSentences are core's channel errors as the forms say them.
var channelFieldSentences = map[string]string{
	"host":            "Enter the SMTP server's host name, such as smtp.example.com.",
	"port":            "Enter the SMTP server's port, from 1 to 65535 (usually 587, or 465 for TLS).",
	"security":        "Choose STARTTLS, TLS or none.",
	"from":            `Enter the sender, such as "Shop <codes@shop.example>".`,
	"account_sid":     "Enter your Twilio account SID: AC followed by 32 letters and digits.",
	"auth_token":      "Enter your Twilio auth token.",
	"sms_from":        "Enter a phone number in international form (+4915112345678) or a Messaging Service SID (MG…).",
	"service_account": "Paste the service account's JSON key file from the Firebase console (Project settings → Service accounts).",
}

// labelled writes a field's message from core as a sentence: messages that start with a verb
// ("is required", "must be …") get the field's label in front.
func labelled(label, msg string) string {
	for _, verb := range []string{"is ", "must ", "are "} {
		if strings.HasPrefix(msg, verb) {
			return web.Sentence(label + " " + msg)
		}
	}
	return web.Sentence(msg)
}

// channelLabels name the channel forms' fields in sentences.
var channelLabels = map[string]string{"host": "The host", "port": "The port", "security": "The security", "username": "The username",
	"from": "The sender", "sms_from": "The sender", "account_sid": "The account SID", "auth_token": "The auth token",
	"service_account": "The service account", "provider": "The provider"}

// channelFieldErrors turns core's validation error into the form's sentences; the SMS sender is
// the form's sms_from.
func channelFieldErrors(ch core.Channel, err error) (web.FieldErrors, bool) {
	var ce *core.Error
	if !errors.As(err, &ce) || ce.Kind != core.KindInvalid || len(ce.Details) == 0 {
		return nil, false
	}
	out := web.FieldErrors{}
	for _, d := range ce.Details {
		field := d.Field
		if ch == core.ChannelSMS && field == "from" {
			field = "sms_from"
		}
		msg := labelled(channelLabels[field], d.Message)
		if s, ok := channelFieldSentences[field]; ok && !strings.Contains(d.Message, "private") {
			msg = s
		}
		out[field] = msg
	}
	return out, true
}

// channelForm is POST /app/messages/channels/:channel: the settings are saved through core; a
// secret field left empty keeps the stored secret.
func (h *handlers) channelForm(c *gin.Context) {
	ch, ok := dashChannel(c)
	if !ok {
		return
	}
	f := channelFormValues{Host: strings.TrimSpace(c.PostForm("host")), Port: strings.TrimSpace(c.PostForm("port")),
		Username: strings.TrimSpace(c.PostForm("username")), From: strings.TrimSpace(c.PostForm("from")), Security: c.PostForm("security"),
		AccountSID: strings.TrimSpace(c.PostForm("account_sid")), SMSFrom: strings.TrimSpace(c.PostForm("sms_from"))}
	var err error
	switch ch {
	case core.ChannelEmail:
		port, perr := strconv.Atoi(f.Port)
		if perr != nil {
			h.renderChannel(c, http.StatusUnprocessableEntity, ch, channelData{Form: f, Errors: web.FieldErrors{"port": channelFieldSentences["port"]}})
			return
		}
		in := core.EmailChannel{Host: f.Host, Port: port, Username: f.Username, Password: c.PostForm("password"), From: f.From, Security: f.Security}
		if c.PostForm("remove_password") == "1" {
			_, err = h.Channels.PutEmail(c.Request.Context(), merchantID(c), core.EmailChannel{Host: in.Host, Port: in.Port, Username: in.Username, From: in.From, Security: in.Security})
		} else {
			_, err = h.Channels.EditEmail(c.Request.Context(), merchantID(c), in)
		}
	case core.ChannelSMS:
		_, err = h.Channels.EditSMS(c.Request.Context(), merchantID(c), core.SMSChannel{Provider: "twilio", AccountSID: f.AccountSID,
			AuthToken: c.PostForm("auth_token"), From: f.SMSFrom})
	case core.ChannelPush:
		_, err = h.Channels.EditPush(c.Request.Context(), merchantID(c), core.PushChannel{Provider: "fcm",
			ServiceAccount: json.RawMessage(strings.TrimSpace(c.PostForm("service_account")))})
	}
	if fields, ok := channelFieldErrors(ch, err); ok {
		h.renderChannel(c, http.StatusUnprocessableEntity, ch, channelData{Form: f, Errors: fields})
		return
	}
	if err != nil {
		fail(c, err)
		return
	}
	h.seeOther(c, "/app/messages/channels/"+string(ch)+"?saved=1")
}

// renderChannel shows a channel's page with the stored settings' facts and data's form.
func (h *handlers) renderChannel(c *gin.Context, status int, ch core.Channel, data channelData) {
	v, err := h.channelViewOf(c, ch)
	if err != nil {
		fail(c, err)
		return
	}
	data.Channel = v
	h.page(c, status, "messages_channel.html", data)
}

// channelTestForm is POST /app/messages/channels/:channel/test: one test message to the address,
// number or device typed, through the saved settings; the page says what the provider answered.
func (h *handlers) channelTestForm(c *gin.Context) {
	ch, ok := dashChannel(c)
	if !ok {
		return
	}
	to := strings.TrimSpace(c.PostForm("to"))
	v, err := h.channelViewOf(c, ch)
	if err != nil {
		fail(c, err)
		return
	}
	data := channelData{Form: formOf(v)}
	data.Form.To = to
	sent, err := h.Channels.SendTest(c.Request.Context(), merchantID(c), ch, to)
	var ce *core.Error
	switch {
	case err == nil:
		data.Test = &sent
		h.renderChannel(c, http.StatusOK, ch, data)
	case errors.Is(err, core.ErrChannelNotSet):
		data.TestError = "Save the " + strings.ToLower(channelNames[ch]) + " settings first; the test message is sent with them."
		h.renderChannel(c, http.StatusConflict, ch, data)
	case errors.As(err, &ce) && ce.Code == "test_send_failed":
		data.TestError = web.Sentence(ce.Message)
		h.renderChannel(c, http.StatusUnprocessableEntity, ch, data)
	default:
		if fields, ok := web.FieldErrorsOf(err); ok {
			data.TestErrors = fields
			h.renderChannel(c, http.StatusUnprocessableEntity, ch, data)
			return
		}
		fail(c, err)
	}
}

// ---- A list's templates and sends -----------------------------------------------------------

// templateView is a template as the pages show it.
type templateView struct {
	ID          uuid.UUID
	Channel     core.Channel
	ChannelName string
	// Label names the template in lists and selects: its channel and the start of its subject,
	// title or text.
	Label     string
	Excerpt   string
	Locale    string
	TimeZone  string
	CreatedAt time.Time
	UpdatedAt time.Time
}

func templateViewOf(t core.Template) templateView {
	excerpt := t.Subject
	for _, s := range []string{t.Title, t.Text, t.Body, t.HTML} {
		if excerpt == "" {
			excerpt = s
		}
	}
	excerpt = strings.Join(strings.Fields(excerpt), " ")
	if utf8.RuneCountInString(excerpt) > 80 {
		excerpt = string([]rune(excerpt)[:79]) + "…"
	}
	name := channelNames[t.Channel]
	return templateView{ID: t.ID, Channel: t.Channel, ChannelName: name, Label: name + ": " + excerpt, Excerpt: excerpt,
		Locale: t.Locale, TimeZone: t.TimeZone, CreatedAt: t.CreatedAt, UpdatedAt: t.UpdatedAt}
}

// deliveryView is a delivery as the pages show it.
type deliveryView struct {
	ID          uuid.UUID
	ListID      uuid.UUID
	Status      string
	StatusText  string
	Badge       string
	Running     bool
	ChannelName string
	To          string
	Recipient   core.MessageRecipient
	Code        string
	Campaign    string
	Error       string
	Attempts    int
	TemplateID  uuid.UUID
	JobID       *uuid.UUID
	CreatedAt   time.Time
	SentAt      *time.Time
}

func deliveryViewOf(d core.Delivery) deliveryView {
	v := deliveryView{ID: d.ID, ListID: d.ListID, Status: d.Status, ChannelName: channelNames[d.Channel], Recipient: d.Recipient,
		Code: d.Code, Campaign: d.Campaign, Error: web.Sentence(d.Error), Attempts: d.Attempts, TemplateID: d.TemplateID,
		JobID: d.JobID, CreatedAt: d.CreatedAt, SentAt: d.SentAt}
	switch d.Channel {
	case core.ChannelEmail:
		v.To = d.Recipient.Email
	case core.ChannelSMS:
		v.To = d.Recipient.Phone
	case core.ChannelPush:
		v.To = d.Recipient.PushToken
		if utf8.RuneCountInString(v.To) > 24 {
			v.To = string([]rune(v.To)[:23]) + "…"
		}
	}
	switch d.Status {
	case core.DeliverySent:
		v.StatusText, v.Badge = "Sent", "success"
	case core.DeliveryFailed:
		v.StatusText, v.Badge = "Failed", "critical"
	case core.DeliveryWaiting:
		v.StatusText, v.Badge, v.Running = "Waiting for codes", "low", true
	default: // queued, sending
		v.Status, v.StatusText, v.Badge, v.Running = core.DeliveryQueued, "Sending", "info", true
	}
	return v
}

// jobView is a bulk send as the pages show it.
type jobView struct {
	ID          uuid.UUID
	ListID      uuid.UUID
	Status      string
	StatusText  string
	Badge       string
	Running     bool
	ChannelName string
	Campaign    string
	Sent        int64
	Failed      int64
	Waiting     int64
	Queued      int64
	Invalid     int64
	Rows        int64
	Percent     int
	Error       string
	CreatedAt   time.Time
}

func jobViewOf(j core.BulkSend) jobView {
	v := jobView{ID: j.ID, ListID: j.ListID, Status: j.Status, ChannelName: channelNames[j.Channel], Campaign: j.Campaign,
		Sent: j.Sent, Failed: j.Failed, Waiting: j.Waiting, Queued: j.Queued, Invalid: j.Invalid, Rows: j.Total() + j.Invalid,
		Percent: int(j.Progress() * 100), Error: web.Sentence(j.Error), CreatedAt: j.CreatedAt}
	switch j.Status {
	case core.JobDone:
		v.StatusText, v.Badge = "Done", "success"
	case core.JobFailed:
		v.StatusText, v.Badge = "Failed", "critical"
	case core.JobRunning:
		v.StatusText, v.Badge, v.Running = "Sending", "info", true
	default: // uploading, queued
		v.StatusText, v.Badge, v.Running = "Waiting for a worker", "info", true
	}
	return v
}

// sendForm is the "Send one code" form's values, as typed.
type sendForm struct {
	TemplateID string
	Email      string
	Phone      string
	PushToken  string
	FirstName  string
	LastName   string
	ExternalID string
	Campaign   string
}

// listMessagesData is what messages_list.html shows.
type listMessagesData struct {
	List       listRow
	Templates  []templateView
	Next       string
	After      string
	Channels   map[core.Channel]bool
	Send       sendForm
	SendErrors web.FieldErrors
	SendError  string
	BulkTpl    string
	BulkCamp   string
	BulkErrors web.FieldErrors
	BulkError  string
	Jobs       []jobView
	MoreJobs   bool
	Deliveries []deliveryView
	MoreDeliv  bool
	Deleted    bool
	Error      string
	MaxUpload  string
}

// listMessagesPage is GET /app/messages/lists/:list_id.
func (h *handlers) listMessagesPage(c *gin.Context) {
	l, ok := h.dashList(c)
	if !ok {
		return
	}
	h.renderListMessages(c, http.StatusOK, l, listMessagesData{Deleted: c.Query("deleted") == "1"})
}

// recentRows is how many bulk sends and deliveries a list's messages page shows.
const recentRows = 10

func (h *handlers) renderListMessages(c *gin.Context, status int, l core.List, data listMessagesData) {
	m := merchantID(c)
	data.List = listRowOf(l, time.Now())
	data.MaxUpload = byteSize(h.Config.MaxUploadBytes)
	data.After = c.Query("after")
	tpls, next, err := h.Templates.List(c.Request.Context(), m, l.ID, core.Page{Limit: dashPageSize, Cursor: data.After})
	if err != nil {
		fail(c, err)
		return
	}
	data.Templates, data.Next = mapped(tpls, templateViewOf), next
	data.Channels = map[core.Channel]bool{}
	for _, ch := range channelOrder {
		v, err := h.channelViewOf(c, ch)
		if err != nil {
			fail(c, err)
			return
		}
		data.Channels[ch] = v.Set
	}
	jobs, nextJob, err := h.BulkSends.List(c.Request.Context(), m, l.ID, core.Page{Limit: recentRows / 2})
	if err != nil {
		fail(c, err)
		return
	}
	for _, j := range jobs {
		data.Jobs = append(data.Jobs, jobViewOf(j))
	}
	data.MoreJobs = nextJob != ""
	ds, nextDeliv, err := h.Deliveries.List(c.Request.Context(), m, l.ID, core.Page{Limit: recentRows})
	if err != nil {
		fail(c, err)
		return
	}
	for _, d := range ds {
		data.Deliveries = append(data.Deliveries, deliveryViewOf(d))
	}
	data.MoreDeliv = nextDeliv != ""
	h.page(c, status, "messages_list.html", data)
}

// placeholderView is one placeholder as the editor lists it.
type placeholderView struct {
	Name    string
	Meaning string
	Aliases []string
}

// placeholderMeanings say what each of core's placeholders is replaced with.
var placeholderMeanings = map[string]string{
	"couponcode": "The code handed to the recipient",
	"expirydate": "The last day the code can be used, in the template's time zone and language",
	"listname":   "The list's name",
	"firstname":  "The recipient's first name",
	"lastname":   "The recipient's last name",
	"fullname":   "First and last name",
	"email":      "The recipient's email address",
	"phone":      "The recipient's phone number",
	"externalid": "Your id of the recipient",
	"campaign":   "The send's campaign",
	"redeemlink": "The recipient's personal link to the list's redeem page, which shows their code",
}

// placeholders are core's placeholders, as the editor lists them.
func placeholders() []placeholderView {
	aliases := core.PlaceholderAliases()
	var out []placeholderView
	for _, name := range core.Placeholders() {
		v := placeholderView{Name: "<" + name + ">", Meaning: placeholderMeanings[name]}
		for _, a := range aliases[name] {
			v.Aliases = append(v.Aliases, "<"+a+">")
		}
		out = append(out, v)
	}
	return out
}

// templateForm is the editor's values, as typed.
type templateFormValues struct {
	Channel  core.Channel
	Subject  string
	Text     string
	HTML     string
	Title    string
	Body     string
	Locale   string
	TimeZone string
}

func (f templateFormValues) input() core.TemplateInput {
	return core.TemplateInput{Channel: string(f.Channel), Subject: f.Subject, Text: f.Text, HTML: f.HTML, Title: f.Title,
		Body: f.Body, Locale: f.Locale, TimeZone: f.TimeZone}
}

func templateFormOf(t core.Template) templateFormValues {
	return templateFormValues{Channel: t.Channel, Subject: t.Subject, Text: t.Text, HTML: t.HTML, Title: t.Title, Body: t.Body,
		Locale: t.Locale, TimeZone: t.TimeZone}
}

// bindTemplateForm reads the editor; the channel comes from the template or the page.
func bindTemplateForm(c *gin.Context, ch core.Channel) templateFormValues {
	return templateFormValues{Channel: ch, Subject: c.PostForm("subject"), Text: c.PostForm("text"), HTML: c.PostForm("html"),
		Title: c.PostForm("title"), Body: c.PostForm("body"), Locale: c.PostForm("locale"), TimeZone: strings.TrimSpace(c.PostForm("time_zone"))}
}

// templateData is what messages_template.html shows.
type templateData struct {
	List         listRow
	New          bool
	ID           uuid.UUID
	ChannelName  string
	Form         templateFormValues
	Errors       web.FieldErrors
	Error        string
	Saved        bool
	Preview      *core.Rendered
	Placeholders []placeholderView
	Locales      []string
}

// templateLabels name the editor's fields in sentences.
var templateLabels = map[string]string{"subject": "The subject", "text": "The text", "html": "The HTML body", "title": "The title",
	"body": "The body", "locale": "The language", "time_zone": "The time zone", "channel": "The channel"}

// templateFieldErrors turns core's validation errors into the editor's sentences: every unknown
// placeholder of a part is named beside it.
func templateFieldErrors(err error) (web.FieldErrors, bool) {
	var ce *core.Error
	if !errors.As(err, &ce) || ce.Kind != core.KindInvalid || len(ce.Details) == 0 {
		return nil, false
	}
	out := web.FieldErrors{}
	if ce.Code != core.ErrUnknownPlaceholder.Code {
		for _, d := range ce.Details {
			msg := d.Message
			if d.Field == "locale" {
				msg = "is not one Coupongate writes dates in"
			}
			out[d.Field] = labelled(templateLabels[d.Field], msg)
		}
		return out, true
	}
	unknown := map[string][]string{}
	var order []string
	for _, d := range ce.Details {
		if _, ok := unknown[d.Field]; !ok {
			order = append(order, d.Field)
		}
		unknown[d.Field] = append(unknown[d.Field], strings.TrimPrefix(d.Message, "unknown placeholder "))
	}
	for _, field := range order {
		names := unknown[field]
		s := "Unknown placeholder " + names[0]
		if len(names) > 1 {
			s = "Unknown placeholders " + strings.Join(names, ", ")
		}
		out[field] = s + ". The placeholders you can use are listed beside the editor."
	}
	return out, true
}

func (h *handlers) renderTemplate(c *gin.Context, status int, l core.List, data templateData) {
	data.List = listRowOf(l, time.Now())
	data.ChannelName = channelNames[data.Form.Channel]
	data.Placeholders = placeholders()
	data.Locales = core.Locales()
	h.page(c, status, "messages_template.html", data)
}

// newTemplatePage is GET /app/messages/lists/:list_id/templates/new?channel=: the editor for a
// new template of that channel.
func (h *handlers) newTemplatePage(c *gin.Context) {
	l, ok := h.dashList(c)
	if !ok {
		return
	}
	ch, ok := core.ParseChannel(c.Query("channel"))
	if !ok {
		ch = core.ChannelEmail
	}
	h.renderTemplate(c, http.StatusOK, l, templateData{New: true, Form: templateFormValues{Channel: ch, Locale: "en-US", TimeZone: "UTC"}})
}

// createTemplateForm is POST /app/messages/lists/:list_id/templates/new: "Preview" renders what
// the editor holds without saving it; "Save template" saves it and goes to its page.
func (h *handlers) createTemplateForm(c *gin.Context) {
	l, ok := h.dashList(c)
	if !ok {
		return
	}
	ch, ok := core.ParseChannel(c.PostForm("channel"))
	if !ok {
		ch = core.ChannelEmail
	}
	f := bindTemplateForm(c, ch)
	data := templateData{New: true, Form: f}
	if c.PostForm("action") == "preview" {
		h.previewDraft(c, l, data)
		return
	}
	t, err := h.Templates.Create(c.Request.Context(), merchantID(c), l.ID, f.input())
	if fields, ok := templateFieldErrors(err); ok {
		data.Errors = fields
		h.renderTemplate(c, http.StatusUnprocessableEntity, l, data)
		return
	}
	if err != nil {
		fail(c, err)
		return
	}
	h.seeOther(c, fmt.Sprintf("/app/messages/lists/%s/templates/%s?saved=1", l.ID, t.ID))
}

// previewDraft shows the editor with the preview of what it holds (or the errors that keep it
// from rendering).
func (h *handlers) previewDraft(c *gin.Context, l core.List, data templateData) {
	_, r, err := h.Templates.PreviewDraft(c.Request.Context(), merchantID(c), l.ID, data.Form.input())
	if fields, ok := templateFieldErrors(err); ok {
		data.Errors = fields
		h.renderTemplate(c, http.StatusUnprocessableEntity, l, data)
		return
	}
	if err != nil {
		fail(c, err)
		return
	}
	data.Preview = &r
	h.renderTemplate(c, http.StatusOK, l, data)
}

// dashTemplate loads :template_id, a template of the list.
func (h *handlers) dashTemplate(c *gin.Context, l core.List) (core.Template, bool) {
	id, ok := pathUUID(c, "template_id", core.ErrTemplateNotFound)
	if !ok {
		return core.Template{}, false
	}
	t, err := h.Templates.Get(c.Request.Context(), merchantID(c), id)
	if err == nil && t.ListID != l.ID {
		err = core.ErrTemplateNotFound
	}
	if err != nil {
		fail(c, err)
		return core.Template{}, false
	}
	return t, true
}

// editTemplatePage is GET /app/messages/lists/:list_id/templates/:template_id: the editor and
// the saved template's preview with the sample code.
func (h *handlers) editTemplatePage(c *gin.Context) {
	l, ok := h.dashList(c)
	if !ok {
		return
	}
	t, ok := h.dashTemplate(c, l)
	if !ok {
		return
	}
	_, r, err := h.Templates.Preview(c.Request.Context(), merchantID(c), t.ID)
	if err != nil {
		fail(c, err)
		return
	}
	h.renderTemplate(c, http.StatusOK, l, templateData{ID: t.ID, Form: templateFormOf(t), Preview: &r, Saved: c.Query("saved") == "1"})
}

// updateTemplateForm is POST /app/messages/lists/:list_id/templates/:template_id: "Preview" or
// "Save template", as for a new one.
func (h *handlers) updateTemplateForm(c *gin.Context) {
	l, ok := h.dashList(c)
	if !ok {
		return
	}
	t, ok := h.dashTemplate(c, l)
	if !ok {
		return
	}
	f := bindTemplateForm(c, t.Channel)
	data := templateData{ID: t.ID, Form: f}
	if c.PostForm("action") == "preview" {
		h.previewDraft(c, l, data)
		return
	}
	_, err := h.Templates.Update(c.Request.Context(), merchantID(c), t.ID, core.TemplatePatch{Subject: &f.Subject, Text: &f.Text, HTML: &f.HTML,
		Title: &f.Title, Body: &f.Body, Locale: &f.Locale, TimeZone: &f.TimeZone})
	if fields, ok := templateFieldErrors(err); ok {
		data.Errors = fields
		h.renderTemplate(c, http.StatusUnprocessableEntity, l, data)
		return
	}
	if err != nil {
		fail(c, err)
		return
	}
	h.seeOther(c, fmt.Sprintf("/app/messages/lists/%s/templates/%s?saved=1", l.ID, t.ID))
}

// deleteTemplateForm is POST /app/messages/lists/:list_id/templates/:template_id/delete; core
// refuses while messages made with the template are still to be sent, and the page says so.
func (h *handlers) deleteTemplateForm(c *gin.Context) {
	l, ok := h.dashList(c)
	if !ok {
		return
	}
	t, ok := h.dashTemplate(c, l)
	if !ok {
		return
	}
	err := h.Templates.Delete(c.Request.Context(), merchantID(c), t.ID)
	if errors.Is(err, core.ErrTemplateInUse) {
		h.renderListMessages(c, http.StatusConflict, l, listMessagesData{Error: "This template cannot be deleted yet: " +
			"messages made with it are still waiting to be sent (queued, waiting for codes, or in a bulk send that is running). Delete it once they are sent or failed."})
		return
	}
	if err != nil {
		fail(c, err)
		return
	}
	h.seeOther(c, "/app/messages/lists/"+l.ID.String()+"?deleted=1")
}

// sendFieldSentences are core's delivery errors as the "Send one code" form says them.
var sendFieldSentences = map[string]string{
	"recipient.email":       "Enter the recipient's email address: the template is an email.",
	"recipient.phone":       "Enter the recipient's phone number in international form, such as +4915112345678: the template is an SMS.",
	"recipient.push_token":  "Enter the device's push token: the template is a push message.",
	"recipient.first_name":  "A first name is at most 200 characters.",
	"recipient.last_name":   "A last name is at most 200 characters.",
	"recipient.external_id": "An external id is at most 200 characters.",
	"campaign":              "A campaign is at most 200 characters.",
}

// sendOneForm is POST /app/messages/lists/:list_id/send: one code to one recipient with the
// chosen template (its channel), through core; the delivery's page follows.
func (h *handlers) sendOneForm(c *gin.Context) {
	l, ok := h.dashList(c)
	if !ok {
		return
	}
	f := sendForm{TemplateID: c.PostForm("template_id"), Email: c.PostForm("email"), Phone: c.PostForm("phone"), PushToken: c.PostForm("push_token"),
		FirstName: c.PostForm("first_name"), LastName: c.PostForm("last_name"), ExternalID: c.PostForm("external_id"), Campaign: c.PostForm("campaign")}
	again := func(status int, errs web.FieldErrors, msg string) {
		h.renderListMessages(c, status, l, listMessagesData{Send: f, SendErrors: errs, SendError: msg})
	}
	t, err := h.templateOf(c, l, f.TemplateID)
	if err != nil {
		if errors.Is(err, core.ErrTemplateNotFound) {
			again(http.StatusUnprocessableEntity, web.FieldErrors{"template_id": "Choose the template of the message."}, "")
			return
		}
		fail(c, err)
		return
	}
	d, _, err := h.Deliveries.Create(c.Request.Context(), merchantID(c), l.ID, core.DeliveryInput{Channel: t.Channel, TemplateID: t.ID, Campaign: f.Campaign,
		Recipient: core.MessageRecipient{Email: f.Email, Phone: f.Phone, PushToken: f.PushToken, FirstName: f.FirstName, LastName: f.LastName,
			ExternalID: f.ExternalID}, Actor: dash(c).Actor})
	if status, errs, msg, ok := sendErrors(err); ok {
		again(status, errs, msg)
		return
	}
	if err != nil {
		fail(c, err)
		return
	}
	h.seeOther(c, fmt.Sprintf("/app/messages/lists/%s/deliveries/%s", l.ID, d.ID))
}

// templateOf loads a template of the list by the id a form sent.
func (h *handlers) templateOf(c *gin.Context, l core.List, raw string) (core.Template, error) {
	id, err := uuid.Parse(strings.TrimSpace(raw))
	if err != nil {
		return core.Template{}, core.ErrTemplateNotFound
	}
	t, err := h.Templates.Get(c.Request.Context(), merchantID(c), id)
	if err == nil && t.ListID != l.ID {
		err = core.ErrTemplateNotFound
	}
	return t, err
}

// sendErrors sorts an error of a send into the form's fields or a sentence of its own.
func sendErrors(err error) (int, web.FieldErrors, string, bool) {
	var ce *core.Error
	if !errors.As(err, &ce) {
		return 0, nil, "", false
	}
	switch {
	case errors.Is(err, core.ErrChannelNotSet):
		return http.StatusConflict, nil, "The template's channel is not set up yet: set it up under Messages first.", true
	case ce.Kind == core.KindConflict:
		return http.StatusConflict, nil, web.Sentence(ce.Message), true
	case ce.Kind == core.KindInvalid && len(ce.Details) > 0:
		out := web.FieldErrors{}
		for _, d := range ce.Details {
			field := strings.TrimPrefix(d.Field, "recipient.")
			if s, ok := sendFieldSentences[d.Field]; ok {
				out[field] = s
			} else {
				out[field] = web.Sentence(d.Message)
			}
		}
		return http.StatusUnprocessableEntity, out, "", true
	case ce.Kind == core.KindInvalid:
		return http.StatusUnprocessableEntity, nil, web.Sentence(ce.Message), true
	}
	return 0, nil, "", false
}

// deliveryData is what messages_delivery.html shows.
type deliveryData struct {
	List     listRow
	Delivery deliveryView
	Template string
}

// deliveryPage is GET /app/messages/lists/:list_id/deliveries/:delivery_id: its status, followed
// while it is sent.
func (h *handlers) deliveryPage(c *gin.Context) {
	l, ok := h.dashList(c)
	if !ok {
		return
	}
	id, ok := pathUUID(c, "delivery_id", core.ErrDeliveryNotFound)
	if !ok {
		return
	}
	d, err := h.Deliveries.Get(c.Request.Context(), merchantID(c), l.ID, id)
	if err != nil {
		fail(c, err)
		return
	}
	data := deliveryData{List: listRowOf(l, time.Now()), Delivery: deliveryViewOf(d)}
	if t, err := h.Templates.Get(c.Request.Context(), merchantID(c), d.TemplateID); err == nil {
		data.Template = templateViewOf(t).Label
	} else if !errors.Is(err, core.ErrTemplateNotFound) {
		fail(c, err)
		return
	}
	h.page(c, http.StatusOK, "messages_delivery.html", data)
}

// deliveriesData is what messages_deliveries.html shows.
type deliveriesData struct {
	List       listRow
	Deliveries []deliveryView
	Next       string
	After      string
}

// deliveriesPage is GET /app/messages/lists/:list_id/deliveries: every delivery of the list,
// newest first, 50 at a time.
func (h *handlers) deliveriesPage(c *gin.Context) {
	l, ok := h.dashList(c)
	if !ok {
		return
	}
	data := deliveriesData{List: listRowOf(l, time.Now()), After: c.Query("after")}
	ds, next, err := h.Deliveries.List(c.Request.Context(), merchantID(c), l.ID, core.Page{Limit: dashPageSize, Cursor: data.After})
	if err != nil {
		fail(c, err)
		return
	}
	data.Deliveries, data.Next = mapped(ds, deliveryViewOf), next
	h.page(c, http.StatusOK, "messages_deliveries.html", data)
}

// bulkForm is POST /app/messages/lists/:list_id/bulk: multipart (the form's action carries the
// CSRF token), the template and campaign before the file, which is streamed into storage; the
// job's page follows.
func (h *handlers) bulkForm(c *gin.Context) {
	l, ok := h.dashList(c)
	if !ok {
		return
	}
	fields, file, filename, err := h.readBulkForm(c)
	if err != nil {
		fail(c, err)
		return
	}
	data := listMessagesData{BulkTpl: fields["template_id"], BulkCamp: fields["campaign"]}
	again := func(status int, errs web.FieldErrors, msg string) {
		data.BulkErrors, data.BulkError = errs, msg
		h.renderListMessages(c, status, l, data)
	}
	t, err := h.templateOf(c, l, fields["template_id"])
	if errors.Is(err, core.ErrTemplateNotFound) {
		again(http.StatusUnprocessableEntity, web.FieldErrors{"bulk_template_id": "Choose the template of the messages."}, "")
		return
	}
	if err != nil {
		fail(c, err)
		return
	}
	if file == nil || filename == "" {
		again(http.StatusUnprocessableEntity, web.FieldErrors{"file": "Choose a CSV file of recipients."}, "")
		return
	}
	j, err := h.BulkSends.Create(c.Request.Context(), merchantID(c), l.ID, core.BulkSendInput{Channel: t.Channel, TemplateID: t.ID,
		Campaign: fields["campaign"], File: file, Limit: h.Config.MaxUploadBytes})
	if status, errs, msg, ok := sendErrors(err); ok {
		if campaign, ok := errs["campaign"]; ok {
			errs = web.FieldErrors{"bulk_campaign": campaign}
		}
		again(status, errs, msg)
		return
	}
	if err != nil {
		fail(c, err)
		return
	}
	h.seeOther(c, fmt.Sprintf("/app/messages/lists/%s/bulk/%s", l.ID, j.ID))
}

// readBulkForm reads the bulk form's fields up to its file part, which it returns unread (nil
// when the body has none; the fields after it are not read).
func (h *handlers) readBulkForm(c *gin.Context) (map[string]string, io.Reader, string, error) {
	fields := map[string]string{"template_id": "", "campaign": ""}
	if !strings.HasPrefix(c.ContentType(), "multipart/form-data") {
		return nil, nil, "", core.ErrUnsupportedMedia
	}
	c.Request.Body = http.MaxBytesReader(c.Writer, c.Request.Body, h.Config.MaxUploadBytes+multipartSlack)
	mr, err := c.Request.MultipartReader()
	if err != nil {
		return nil, nil, "", core.Malformed("the form cannot be read: " + err.Error())
	}
	for {
		part, err := mr.NextPart()
		var maxErr *http.MaxBytesError
		switch {
		case errors.Is(err, io.EOF):
			return fields, nil, "", nil
		case errors.As(err, &maxErr):
			return nil, nil, "", core.ErrUploadTooLarge
		case err != nil:
			return nil, nil, "", core.Malformed("the form cannot be read: " + err.Error())
		}
		name := part.FormName()
		if name == "file" {
			return fields, part, part.FileName(), nil
		}
		if _, ok := fields[name]; ok {
			v, err := io.ReadAll(io.LimitReader(part, 1024))
			if err != nil {
				return nil, nil, "", core.Malformed("the form cannot be read: " + err.Error())
			}
			fields[name] = strings.TrimSpace(string(v))
		}
	}
}

// jobData is what messages_bulk.html shows.
type jobData struct {
	List listRow
	Job  jobView
}

// bulkJobPage is GET /app/messages/lists/:list_id/bulk/:job_id: the bulk send's progress (sent,
// failed, waiting), followed while it runs.
func (h *handlers) bulkJobPage(c *gin.Context) {
	l, ok := h.dashList(c)
	if !ok {
		return
	}
	id, ok := pathUUID(c, "job_id", core.ErrBulkSendMissing)
	if !ok {
		return
	}
	j, err := h.BulkSends.Get(c.Request.Context(), merchantID(c), l.ID, id)
	if err != nil {
		fail(c, err)
		return
	}
	h.page(c, http.StatusOK, "messages_bulk.html", jobData{List: listRowOf(l, time.Now()), Job: jobViewOf(j)})
}

// jobsData is what messages_bulk_list.html shows.
type jobsData struct {
	List  listRow
	Jobs  []jobView
	Next  string
	After string
}

// bulkJobsPage is GET /app/messages/lists/:list_id/bulk: every bulk send of the list, newest
// first, 50 at a time.
func (h *handlers) bulkJobsPage(c *gin.Context) {
	l, ok := h.dashList(c)
	if !ok {
		return
	}
	data := jobsData{List: listRowOf(l, time.Now()), After: c.Query("after")}
	jobs, next, err := h.BulkSends.List(c.Request.Context(), merchantID(c), l.ID, core.Page{Limit: dashPageSize, Cursor: data.After})
	if err != nil {
		fail(c, err)
		return
	}
	data.Jobs, data.Next = mapped(jobs, jobViewOf), next
	h.page(c, http.StatusOK, "messages_bulk_list.html", data)
}
