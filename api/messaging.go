package api

import (
	"encoding/json"
	"errors"
	"io"
	"math"
	"mime"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/coupongate/coupongate/core"
)

// channelParam reads {channel} of /api/v1/channels/{channel}.
func channelParam(c *gin.Context) (core.Channel, bool) {
	switch ch := core.Channel(c.Param("channel")); ch {
	case core.ChannelEmail, core.ChannelSMS, core.ChannelPush:
		return ch, true
	}
	fail(c, &core.Error{Kind: core.KindNotFound, Code: "route_not_found", Message: "channels are email, sms and push"})
	return "", false
}

type channelResponse struct {
	Channel   string          `json:"channel"`
	Settings  json.RawMessage `json:"settings"`
	UpdatedAt time.Time       `json:"updated_at"`
}

func toChannelResponse(c core.ChannelConfig) channelResponse {
	return channelResponse{Channel: string(c.Channel), Settings: c.Public, UpdatedAt: c.UpdatedAt}
}

// getChannel is GET /api/v1/channels/{channel}: the settings, never the secrets.
func (h *handlers) getChannel(c *gin.Context) {
	ch, ok := channelParam(c)
	if !ok {
		return
	}
	cfg, err := h.Channels.Get(c.Request.Context(), merchantID(c), ch)
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, toChannelResponse(cfg))
}

type emailChannelRequest struct {
	Host     *string `json:"host" validate:"required"`
	Port     *int    `json:"port" validate:"required"`
	Username string  `json:"username"`
	Password string  `json:"password"`
	From     *string `json:"from" validate:"required"`
	Security string  `json:"security"`
}

type smsChannelRequest struct {
	Provider   *string `json:"provider" validate:"required"`
	AccountSID *string `json:"account_sid" validate:"required"`
	AuthToken  *string `json:"auth_token" validate:"required"`
	From       *string `json:"from" validate:"required"`
}

type pushChannelRequest struct {
	Provider       *string         `json:"provider" validate:"required"`
	ServiceAccount json.RawMessage `json:"service_account" validate:"required"`
}

// putChannel is PUT /api/v1/channels/{channel}.
func (h *handlers) putChannel(c *gin.Context) {
	ch, ok := channelParam(c)
	if !ok {
		return
	}
	var cfg core.ChannelConfig
	var err error
	switch ch {
	case core.ChannelEmail:
		var req emailChannelRequest
		if !h.bindJSON(c, &req) {
			return
		}
		cfg, err = h.Channels.PutEmail(c.Request.Context(), merchantID(c), core.EmailChannel{Host: *req.Host, Port: *req.Port, Username: req.Username,
			Password: req.Password, From: *req.From, Security: req.Security})
	case core.ChannelSMS:
		var req smsChannelRequest
		if !h.bindJSON(c, &req) {
			return
		}
		cfg, err = h.Channels.PutSMS(c.Request.Context(), merchantID(c), core.SMSChannel{Provider: *req.Provider, AccountSID: *req.AccountSID,
			AuthToken: *req.AuthToken, From: *req.From})
	case core.ChannelPush:
		var req pushChannelRequest
		if !h.bindJSON(c, &req) {
			return
		}
		cfg, err = h.Channels.PutPush(c.Request.Context(), merchantID(c), core.PushChannel{Provider: *req.Provider, ServiceAccount: req.ServiceAccount})
	}
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, toChannelResponse(cfg))
}

type templateRequest struct {
	Channel  *string `json:"channel" validate:"required,oneof=email sms push"`
	Subject  string  `json:"subject"`
	Text     string  `json:"text"`
	HTML     string  `json:"html"`
	Title    string  `json:"title"`
	Body     string  `json:"body"`
	Locale   string  `json:"locale"`
	TimeZone string  `json:"time_zone"`
}

type templateResponse struct {
	ID        string    `json:"id"`
	ListID    string    `json:"list_id"`
	Channel   string    `json:"channel"`
	Subject   string    `json:"subject"`
	Text      string    `json:"text"`
	HTML      string    `json:"html"`
	Title     string    `json:"title"`
	Body      string    `json:"body"`
	Locale    string    `json:"locale"`
	TimeZone  string    `json:"time_zone"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

func toTemplateResponse(t core.Template) templateResponse {
	return templateResponse{ID: t.ID.String(), ListID: t.ListID.String(), Channel: string(t.Channel), Subject: t.Subject, Text: t.Text,
		HTML: t.HTML, Title: t.Title, Body: t.Body, Locale: t.Locale, TimeZone: t.TimeZone, CreatedAt: t.CreatedAt, UpdatedAt: t.UpdatedAt}
}

// createTemplate is POST /api/v1/lists/{id}/templates.
func (h *handlers) createTemplate(c *gin.Context) {
	listID, ok := pathUUID(c, "list_id", core.ErrListNotFound)
	if !ok {
		return
	}
	var req templateRequest
	if !h.bindJSON(c, &req) {
		return
	}
	t, err := h.Templates.Create(c.Request.Context(), merchantID(c), listID, core.TemplateInput{Channel: *req.Channel, Subject: req.Subject, Text: req.Text,
		HTML: req.HTML, Title: req.Title, Body: req.Body, Locale: req.Locale, TimeZone: req.TimeZone})
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusCreated, toTemplateResponse(t))
}

// listTemplates is GET /api/v1/lists/{id}/templates: newest first.
func (h *handlers) listTemplates(c *gin.Context) {
	listID, p, ok := listIDAndPage(c)
	if !ok {
		return
	}
	items, next, err := h.Templates.List(c.Request.Context(), merchantID(c), listID, p)
	if err != nil {
		fail(c, err)
		return
	}
	renderPage(c, items, next, toTemplateResponse)
}

// templatePatchRequest is the body of PATCH /api/v1/templates/{id}: absent fields stay.
type templatePatchRequest struct {
	Channel  *string `json:"channel"`
	Subject  *string `json:"subject"`
	Text     *string `json:"text"`
	HTML     *string `json:"html"`
	Title    *string `json:"title"`
	Body     *string `json:"body"`
	Locale   *string `json:"locale"`
	TimeZone *string `json:"time_zone"`
}

// patchTemplate is PATCH /api/v1/templates/{id}: the fields sent change, the others stay.
func (h *handlers) patchTemplate(c *gin.Context) {
	id, ok := pathUUID(c, "template_id", core.ErrTemplateNotFound)
	if !ok {
		return
	}
	var req templatePatchRequest
	if !h.bindJSON(c, &req) {
		return
	}
	h.saveTemplate(c, id, core.TemplatePatch{Channel: req.Channel, Subject: req.Subject, Text: req.Text, HTML: req.HTML,
		Title: req.Title, Body: req.Body, Locale: req.Locale, TimeZone: req.TimeZone})
}

// putTemplate is PUT /api/v1/templates/{id}: the whole template as POST creates it; parts left
// out are emptied, and the channel must be the template's own.
func (h *handlers) putTemplate(c *gin.Context) {
	id, ok := pathUUID(c, "template_id", core.ErrTemplateNotFound)
	if !ok {
		return
	}
	var req templateRequest
	if !h.bindJSON(c, &req) {
		return
	}
	h.saveTemplate(c, id, core.TemplatePatch{Channel: req.Channel, Subject: &req.Subject, Text: &req.Text, HTML: &req.HTML,
		Title: &req.Title, Body: &req.Body, Locale: &req.Locale, TimeZone: &req.TimeZone})
}

func (h *handlers) saveTemplate(c *gin.Context, id uuid.UUID, p core.TemplatePatch) {
	t, err := h.Templates.Update(c.Request.Context(), merchantID(c), id, p)
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, toTemplateResponse(t))
}

// deleteTemplate is DELETE /api/v1/templates/{id}: 409 template_in_use while messages made with
// it are still to be sent.
func (h *handlers) deleteTemplate(c *gin.Context) {
	id, ok := pathUUID(c, "template_id", core.ErrTemplateNotFound)
	if !ok {
		return
	}
	if err := h.Templates.Delete(c.Request.Context(), merchantID(c), id); err != nil {
		fail(c, err)
		return
	}
	c.Status(http.StatusNoContent)
}

// previewTemplate is POST /api/v1/templates/{id}/preview.
func (h *handlers) previewTemplate(c *gin.Context) {
	id, ok := pathUUID(c, "template_id", core.ErrTemplateNotFound)
	if !ok {
		return
	}
	t, r, err := h.Templates.Preview(c.Request.Context(), merchantID(c), id)
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"template_id": t.ID.String(), "channel": string(t.Channel), "subject": r.Subject, "text": r.Text,
		"html": r.HTML, "title": r.Title, "body": r.Body})
}

type deliveryRequest struct {
	Recipient *struct {
		Email      string `json:"email"`
		Phone      string `json:"phone"`
		PushToken  string `json:"push_token"`
		ExternalID string `json:"external_id"`
		FirstName  string `json:"first_name"`
		LastName   string `json:"last_name"`
	} `json:"recipient" validate:"required"`
	Campaign   string  `json:"campaign"`
	Channel    *string `json:"channel" validate:"required,oneof=email sms push"`
	TemplateID *string `json:"template_id" validate:"required"`
}

type deliveryResponse struct {
	ID         string                `json:"id"`
	ListID     string                `json:"list_id"`
	Status     string                `json:"status"`
	Channel    string                `json:"channel"`
	TemplateID string                `json:"template_id"`
	JobID      *string               `json:"job_id"`
	Recipient  core.MessageRecipient `json:"recipient"`
	Code       *string               `json:"code"`
	Campaign   string                `json:"campaign"`
	Error      string                `json:"error"`
	Attempts   int                   `json:"attempts"`
	CreatedAt  time.Time             `json:"created_at"`
	SentAt     *time.Time            `json:"sent_at"`
}

func toDeliveryResponse(d core.Delivery) deliveryResponse {
	status := d.Status
	if status == core.DeliverySending {
		status = core.DeliveryQueued // sending is the worker's business
	}
	out := deliveryResponse{ID: d.ID.String(), ListID: d.ListID.String(), Status: status, Channel: string(d.Channel),
		TemplateID: d.TemplateID.String(), Recipient: d.Recipient, Campaign: d.Campaign,
		Error: d.Error, Attempts: d.Attempts, CreatedAt: d.CreatedAt, SentAt: d.SentAt}
	if d.JobID != nil {
		job := d.JobID.String()
		out.JobID = &job
	}
	if d.Code != "" {
		code := d.Code
		out.Code = &code
	}
	return out
}

// listDeliveries is GET /api/v1/lists/{id}/deliveries: newest first.
func (h *handlers) listDeliveries(c *gin.Context) {
	listID, p, ok := listIDAndPage(c)
	if !ok {
		return
	}
	items, next, err := h.Deliveries.List(c.Request.Context(), merchantID(c), listID, p)
	if err != nil {
		fail(c, err)
		return
	}
	renderPage(c, items, next, toDeliveryResponse)
}

// createDelivery is POST /api/v1/lists/{id}/deliveries: 202 for a new delivery, 200 for the
// recipient's delivery of that campaign asked for again.
func (h *handlers) createDelivery(c *gin.Context) {
	listID, ok := pathUUID(c, "list_id", core.ErrListNotFound)
	if !ok {
		return
	}
	var req deliveryRequest
	if !h.bindJSON(c, &req) {
		return
	}
	templateID, err := uuid.Parse(*req.TemplateID)
	if err != nil {
		fail(c, core.ErrTemplateNotFound)
		return
	}
	r := req.Recipient
	d, created, err := h.Deliveries.Create(c.Request.Context(), merchantID(c), listID, core.DeliveryInput{
		Recipient: core.MessageRecipient{Email: r.Email, Phone: r.Phone, PushToken: r.PushToken, ExternalID: r.ExternalID,
			FirstName: r.FirstName, LastName: r.LastName},
		Campaign: req.Campaign, Channel: core.Channel(*req.Channel), TemplateID: templateID, Actor: actor(c),
	})
	if err != nil {
		fail(c, err)
		return
	}
	status := http.StatusOK
	if created {
		status = http.StatusAccepted
	}
	c.JSON(status, toDeliveryResponse(d))
}

// getDelivery is GET /api/v1/lists/{id}/deliveries/{delivery_id}.
func (h *handlers) getDelivery(c *gin.Context) {
	listID, ok := pathUUID(c, "list_id", core.ErrListNotFound)
	if !ok {
		return
	}
	id, ok := pathUUID(c, "delivery_id", core.ErrDeliveryNotFound)
	if !ok {
		return
	}
	d, err := h.Deliveries.Get(c.Request.Context(), merchantID(c), listID, id)
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, toDeliveryResponse(d))
}

// createBulkSend is POST /api/v1/lists/{id}/deliveries/bulk: multipart with the fields
// channel, template_id and campaign (or query parameters) and a file field holding the CSV of
// recipients. When the fields come first the file is streamed straight into storage; a file sent
// before them (curl -F file=@… -F channel=…) is spooled to a temporary file until they are read.
// The worker does the rest.
func (h *handlers) createBulkSend(c *gin.Context) {
	listID, ok := pathUUID(c, "list_id", core.ErrListNotFound)
	if !ok {
		return
	}
	mediaType, _, err := mime.ParseMediaType(c.GetHeader("Content-Type"))
	if err != nil || mediaType != "multipart/form-data" {
		fail(c, core.ErrUnsupportedMedia)
		return
	}
	limit := h.Config.MaxUploadBytes
	c.Request.Body = http.MaxBytesReader(c.Writer, c.Request.Body, limit+multipartSlack)
	mr, err := c.Request.MultipartReader()
	if err != nil {
		fail(c, core.Malformed("the multipart body cannot be read: "+err.Error()))
		return
	}
	fields := map[string]string{"channel": c.Query("channel"), "template_id": c.Query("template_id"), "campaign": c.Query("campaign")}
	var spooled *os.File // the file, when it came before the fields
	defer func() {
		if spooled != nil {
			_ = spooled.Close()
			_ = os.Remove(spooled.Name())
		}
	}()
	// start checks the fields and creates the job from file.
	start := func(file io.Reader) {
		ch, ok := core.ParseChannel(fields["channel"])
		if !ok {
			fail(c, core.Invalid("channel", "must be email, sms or push"))
			return
		}
		templateID, err := uuid.Parse(fields["template_id"])
		if err != nil {
			fail(c, core.Invalid("template_id", "is required"))
			return
		}
		j, err := h.BulkSends.Create(c.Request.Context(), merchantID(c), listID, core.BulkSendInput{Channel: ch, TemplateID: templateID,
			Campaign: fields["campaign"], File: file, Limit: limit})
		if err != nil {
			fail(c, err)
			return
		}
		c.JSON(http.StatusAccepted, toBulkSendResponse(j))
	}
	for {
		part, err := mr.NextPart()
		var maxErr *http.MaxBytesError
		switch {
		case errors.Is(err, io.EOF) && spooled != nil:
			if _, err := spooled.Seek(0, io.SeekStart); err != nil {
				fail(c, err)
				return
			}
			start(spooled)
			return
		case errors.Is(err, io.EOF):
			fail(c, core.Malformed("the multipart body has no file field"))
			return
		case errors.As(err, &maxErr):
			fail(c, core.ErrUploadTooLarge)
			return
		case err != nil:
			fail(c, core.Malformed("the multipart body cannot be read: "+err.Error()))
			return
		}
		name := part.FormName()
		if _, ok := fields[name]; ok && part.FileName() == "" {
			v, err := io.ReadAll(io.LimitReader(part, 1024))
			if err != nil {
				fail(c, core.Malformed("the multipart body cannot be read: "+err.Error()))
				return
			}
			fields[name] = strings.TrimSpace(string(v))
			continue
		}
		if name != "file" || spooled != nil {
			continue
		}
		if fields["channel"] != "" && fields["template_id"] != "" {
			start(part)
			return
		}
		if spooled, err = os.CreateTemp("", "coupongate-recipients-*.csv"); err != nil {
			fail(c, err)
			return
		}
		n, err := io.Copy(spooled, io.LimitReader(part, limit+1))
		switch {
		case errors.As(err, &maxErr) || n > limit:
			fail(c, core.ErrUploadTooLarge)
			return
		case err != nil:
			fail(c, core.Malformed("the multipart body cannot be read: "+err.Error()))
			return
		}
	}
}

type bulkSendResponse struct {
	ID        string    `json:"id"`
	ListID    string    `json:"list_id"`
	Status    string    `json:"status"`
	Channel   string    `json:"channel"`
	Campaign  string    `json:"campaign"`
	Total     int64     `json:"total"`
	Queued    int64     `json:"queued"`
	Sent      int64     `json:"sent"`
	Failed    int64     `json:"failed"`
	Waiting   int64     `json:"waiting"`
	Invalid   int64     `json:"invalid"`
	Progress  float64   `json:"progress"`
	Error     string    `json:"error"`
	CreatedAt time.Time `json:"created_at"`
}

func toBulkSendResponse(j core.BulkSend) bulkSendResponse {
	return bulkSendResponse{ID: j.ID.String(), ListID: j.ListID.String(), Status: j.Status, Channel: string(j.Channel), Campaign: j.Campaign,
		Total: j.Total(), Queued: j.Queued, Sent: j.Sent, Failed: j.Failed, Waiting: j.Waiting, Invalid: j.Invalid,
		Progress: math.Round(j.Progress()*1000) / 1000, Error: j.Error, CreatedAt: j.CreatedAt}
}

// listBulkSends is GET /api/v1/lists/{id}/deliveries/bulk: newest first.
func (h *handlers) listBulkSends(c *gin.Context) {
	listID, p, ok := listIDAndPage(c)
	if !ok {
		return
	}
	items, next, err := h.BulkSends.List(c.Request.Context(), merchantID(c), listID, p)
	if err != nil {
		fail(c, err)
		return
	}
	renderPage(c, items, next, toBulkSendResponse)
}

// getBulkSend is GET /api/v1/lists/{id}/deliveries/bulk/{job_id}.
func (h *handlers) getBulkSend(c *gin.Context) {
	listID, ok := pathUUID(c, "list_id", core.ErrListNotFound)
	if !ok {
		return
	}
	jobID, ok := pathUUID(c, "job_id", core.ErrBulkSendMissing)
	if !ok {
		return
	}
	j, err := h.BulkSends.Get(c.Request.Context(), merchantID(c), listID, jobID)
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, toBulkSendResponse(j))
}
