package core

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"log/slog"
	"net/mail"
	"net/url"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
)

// Redeem link identification: how the public page knows who is asking.
const (
	// IdentifyByEmail asks for an email address; one code per address.
	IdentifyByEmail = "email"
	// IdentifyByNone asks nothing; one code per browser (a cookie).
	IdentifyByNone = "none"
)

// Where "Use it in the shop" on a redeem page leads.
const (
	RedirectNone    = "none"
	RedirectShopify = "shopify"
	RedirectURL     = "url"
)

// ChannelRedeemLink is the channel of codes handed out through a redeem link.
const ChannelRedeemLink = "redeem_link"

// What a redeem page shows.
const (
	// RedeemCode shows the recipient's code.
	RedeemCode = "code"
	// RedeemExhausted shows the merchant's text for a list with no codes left.
	RedeemExhausted = "exhausted"
	// RedeemExpired shows the merchant's text for a link or list that ended (or is archived).
	RedeemExpired = "expired"
	// RedeemNotStarted shows the merchant's text for a link or list that has not started.
	RedeemNotStarted = "not_started"
	// RedeemAsk shows the form (the link asks for an email address).
	RedeemAsk = "ask"
)

// ErrRedeemLinkNotFound is an unknown redeem link (or slug, or a personal link's bad signature).
var ErrRedeemLinkNotFound = newError(KindNotFound, "redeem_link_not_found", "no such redeem link")

// RedeemPage is the merchant's texts on a redeem link's public page.
type RedeemPage struct {
	Title         string `json:"title"`
	Text          string `json:"text"`
	Button        string `json:"button"`
	SuccessText   string `json:"success_text"`
	ExhaustedText string `json:"exhausted_text"`
	ExpiredText   string `json:"expired_text"`
}

// RedeemLink is a public page that hands out a list's codes, one per recipient.
type RedeemLink struct {
	MerchantID  uuid.UUID
	ID          uuid.UUID
	ListID      uuid.UUID
	Slug        string
	Name        string
	IdentifyBy  string
	StartsAt    *time.Time
	EndsAt      *time.Time
	Page        RedeemPage
	Redirect    string
	RedirectURL string
	// HandedOut counts the codes handed out through the link.
	HandedOut int64
	CreatedAt time.Time
	UpdatedAt time.Time
}

// Campaign is the allocation campaign of the link's hand-outs.
func (l RedeemLink) Campaign() string { return "redeem_link:" + l.ID.String() }

// RedeemLinkInput creates a redeem link.
type RedeemLinkInput struct {
	Name        string
	IdentifyBy  string
	StartsAt    *time.Time
	EndsAt      *time.Time
	Page        RedeemPage
	Redirect    string
	RedirectURL string
}

// RedeemPagePatch changes some of a page's texts (nil: keep).
type RedeemPagePatch struct {
	Title, Text, Button, SuccessText, ExhaustedText, ExpiredText *string
}

// RedeemLinkPatch changes a redeem link; nil fields stay as they are, a nil *time.Time behind a
// non-nil pointer clears the date.
type RedeemLinkPatch struct {
	Name        *string
	IdentifyBy  *string
	StartsAt    **time.Time
	EndsAt      **time.Time
	Page        RedeemPagePatch
	Redirect    *string
	RedirectURL *string
}

// RedeemLinkStore keeps redeem links.
type RedeemLinkStore interface {
	CreateRedeemLink(ctx context.Context, l RedeemLink) error
	GetRedeemLink(ctx context.Context, merchantID, id uuid.UUID) (RedeemLink, error)
	// RedeemLinkBySlug finds a link by its public slug, whatever its merchant.
	RedeemLinkBySlug(ctx context.Context, slug string) (RedeemLink, error)
	// ListRedeemLinks returns a list's links, oldest first, keyset paged.
	ListRedeemLinks(ctx context.Context, merchantID, listID uuid.UUID, page Page) ([]RedeemLink, string, error)
	// UpdateRedeemLink applies change under the link's row lock.
	UpdateRedeemLink(ctx context.Context, merchantID, id uuid.UUID, change func(*RedeemLink) error) (RedeemLink, error)
	DeleteRedeemLink(ctx context.Context, merchantID, id uuid.UUID) error
}

// PushedShops finds where a list's codes are.
type PushedShops interface {
	// PushedShopifyShop is the domain of a connected Shopify shop the list's codes were pushed
	// into (a push active or under way); "" for none.
	PushedShopifyShop(ctx context.Context, merchantID, listID uuid.UUID) (string, error)
}

// RedeemLimits bound hand-outs through redeem links: per client address and link, and per link,
// each in a fixed window.
type RedeemLimits struct {
	PerClient FailureLimiter
	PerLink   FailureLimiter
}

// RedeemLinks manages redeem links and hands out codes through their public pages.
type RedeemLinks struct {
	store RedeemLinkStore
	lists interface {
		GetList(ctx context.Context, merchantID, listID uuid.UUID) (List, error)
	}
	pushes PushedShops
	alloc  *Allocator
	limits RedeemLimits
	key    []byte
	appURL string
	log    *slog.Logger
	Clock
	// or deletion through this process is seen at once, through another within that moment.
	slugCache sync.Map // slug → cachedLink
}

// slugCacheFor is how long a public page may answer from a link read before.
const slugCacheFor = 2 * time.Second

type cachedLink struct {
	link  RedeemLink
	until time.Time
}

// NewRedeemLinks returns the redeem link service. secret signs personal links (APP_SECRET);
// appURL is the public base of the pages' addresses.
func NewRedeemLinks(store RedeemLinkStore, lists interface {
	GetList(ctx context.Context, merchantID, listID uuid.UUID) (List, error)
}, pushes PushedShops, alloc *Allocator, limits RedeemLimits, secret, appURL string, log *slog.Logger) *RedeemLinks {
	sum := sha256.Sum256([]byte("coupongate redeem links|" + secret))
	return &RedeemLinks{store: store, lists: lists, pushes: pushes, alloc: alloc, limits: limits, key: sum[:],
		appURL: strings.TrimRight(appURL, "/"), log: log}
}

// URL is the link's public address.
func (s *RedeemLinks) URL(l RedeemLink) string { return s.appURL + "/r/" + l.Slug }

// Create makes a redeem link for a list.
func (s *RedeemLinks) Create(ctx context.Context, merchantID, listID uuid.UUID, in RedeemLinkInput) (RedeemLink, error) {
	if _, err := s.lists.GetList(ctx, merchantID, listID); err != nil {
		return RedeemLink{}, err
	}
	now := s.Now().UTC()
	l := RedeemLink{
		MerchantID: merchantID, ID: uuid.New(), ListID: listID, Slug: newSlug(), Name: strings.TrimSpace(in.Name),
		IdentifyBy: in.IdentifyBy, StartsAt: utc(in.StartsAt), EndsAt: utc(in.EndsAt), Page: in.Page,
		Redirect: in.Redirect, RedirectURL: strings.TrimSpace(in.RedirectURL), CreatedAt: now, UpdatedAt: now,
	}
	if l.IdentifyBy == "" {
		l.IdentifyBy = IdentifyByEmail
	}
	if l.Redirect == "" {
		l.Redirect = RedirectNone
	}
	if err := validateRedeemLink(l); err != nil {
		return RedeemLink{}, err
	}
	if err := s.store.CreateRedeemLink(ctx, l); err != nil {
		return RedeemLink{}, err
	}
	return l, nil
}

// Get returns one of the merchant's redeem links.
func (s *RedeemLinks) Get(ctx context.Context, merchantID, id uuid.UUID) (RedeemLink, error) {
	return s.store.GetRedeemLink(ctx, merchantID, id)
}

// List returns a list's redeem links, oldest first.
func (s *RedeemLinks) List(ctx context.Context, merchantID, listID uuid.UUID, page Page) ([]RedeemLink, string, error) {
	if _, err := s.lists.GetList(ctx, merchantID, listID); err != nil {
		return nil, "", err
	}
	return s.store.ListRedeemLinks(ctx, merchantID, listID, page.Normalize())
}

// Update changes a redeem link.
func (s *RedeemLinks) Update(ctx context.Context, merchantID, id uuid.UUID, p RedeemLinkPatch) (RedeemLink, error) {
	l, err := s.update(ctx, merchantID, id, p)
	if err == nil {
		s.slugCache.Delete(l.Slug)
	}
	return l, err
}

func (s *RedeemLinks) update(ctx context.Context, merchantID, id uuid.UUID, p RedeemLinkPatch) (RedeemLink, error) {
	return s.store.UpdateRedeemLink(ctx, merchantID, id, func(l *RedeemLink) error {
		if p.Name != nil {
			l.Name = strings.TrimSpace(*p.Name)
		}
		set(&l.IdentifyBy, p.IdentifyBy)
		if p.StartsAt != nil {
			l.StartsAt = utc(*p.StartsAt)
		}
		if p.EndsAt != nil {
			l.EndsAt = utc(*p.EndsAt)
		}
		set(&l.Page.Title, p.Page.Title)
		set(&l.Page.Text, p.Page.Text)
		set(&l.Page.Button, p.Page.Button)
		set(&l.Page.SuccessText, p.Page.SuccessText)
		set(&l.Page.ExhaustedText, p.Page.ExhaustedText)
		set(&l.Page.ExpiredText, p.Page.ExpiredText)
		set(&l.Redirect, p.Redirect)
		if p.RedirectURL != nil {
			l.RedirectURL = strings.TrimSpace(*p.RedirectURL)
		}
		l.UpdatedAt = s.Now().UTC()
		return validateRedeemLink(*l)
	})
}

// Delete removes a redeem link; the codes handed out through it stay with their recipients.
func (s *RedeemLinks) Delete(ctx context.Context, merchantID, id uuid.UUID) error {
	l, err := s.store.GetRedeemLink(ctx, merchantID, id)
	if err != nil {
		return err
	}
	if err := s.store.DeleteRedeemLink(ctx, merchantID, id); err != nil {
		return err
	}
	s.slugCache.Delete(l.Slug)
	return nil
}

func validateRedeemLink(l RedeemLink) error {
	switch {
	case l.Name == "":
		return Invalid("name", "is required")
	case utf8.RuneCountInString(l.Name) > 200:
		return Invalid("name", "must be at most 200 characters")
	case l.IdentifyBy != IdentifyByEmail && l.IdentifyBy != IdentifyByNone:
		return Invalid("identify_by", "must be email or none")
	case l.StartsAt != nil && l.EndsAt != nil && !l.EndsAt.After(*l.StartsAt):
		return Invalid("ends_at", "must be after starts_at")
	case l.Redirect != RedirectNone && l.Redirect != RedirectShopify && l.Redirect != RedirectURL:
		return Invalid("redirect", "must be none, shopify or url")
	case l.Redirect == RedirectURL && l.RedirectURL == "":
		return Invalid("redirect_url", "is required when redirect is url")
	}
	if l.RedirectURL != "" {
		u, err := url.Parse(l.RedirectURL)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || len(l.RedirectURL) > 2000 {
			return Invalid("redirect_url", "must be an http or https address of at most 2000 characters")
		}
	}
	for field, text := range map[string]string{"page.title": l.Page.Title, "page.button": l.Page.Button} {
		if utf8.RuneCountInString(text) > 200 {
			return Invalid(field, "must be at most 200 characters")
		}
	}
	for field, text := range map[string]string{"page.text": l.Page.Text, "page.success_text": l.Page.SuccessText,
		"page.exhausted_text": l.Page.ExhaustedText, "page.expired_text": l.Page.ExpiredText} {
		if utf8.RuneCountInString(text) > 4000 {
			return Invalid(field, "must be at most 4000 characters")
		}
	}
	return nil
}

// newSlug is an unguessable public slug: 128 random bits, base64url.
func newSlug() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// ---- The public page ---------------------------------------------------------------------------

// HandOutRequest is one visit of a redeem page asking for a code.
type HandOutRequest struct {
	// Email is what the visitor typed (links that identify by email).
	Email string
	// Token is a personal link's token (/r/{slug}/{token}); it names the recipient itself.
	Token string
	// Visitor is the browser's own id (links that identify nobody).
	Visitor string
	// Client is the visitor's address, for the limits.
	Client string
	// Honeypot is the hidden field people never fill; when it is filled nothing is handed out.
	Honeypot string
}

// HandOut is what a redeem page shows.
type HandOut struct {
	Link RedeemLink
	// State is RedeemCode, RedeemExhausted, RedeemExpired, RedeemNotStarted or RedeemAsk.
	State     string
	Code      string
	ExpiresAt *time.Time
	// ShopURL is where "Use it in the shop" leads ("" for nowhere).
	ShopURL string
}

// Open returns the link of a public slug and what its page shows before anyone asks: the form, or
// the merchant's text when the link has not started or has ended.
func (s *RedeemLinks) Open(ctx context.Context, slug string) (HandOut, error) {
	l, err := s.bySlug(ctx, slug)
	if err != nil {
		return HandOut{}, err
	}
	return HandOut{Link: l, State: s.window(l)}, nil
}

func (s *RedeemLinks) bySlug(ctx context.Context, slug string) (RedeemLink, error) {
	if len(slug) != 22 {
		return RedeemLink{}, ErrRedeemLinkNotFound
	}
	now := s.Now()
	if c, ok := s.slugCache.Load(slug); ok && now.Before(c.(cachedLink).until) {
		return c.(cachedLink).link, nil
	}
	l, err := s.store.RedeemLinkBySlug(ctx, slug)
	if err != nil {
		s.slugCache.Delete(slug)
		return l, err
	}
	s.slugCache.Store(slug, cachedLink{link: l, until: now.Add(slugCacheFor)})
	return l, nil
}

// window is RedeemNotStarted or RedeemExpired outside the link's dates, else RedeemAsk.
func (s *RedeemLinks) window(l RedeemLink) string {
	now := s.Now()
	switch {
	case l.StartsAt != nil && now.Before(*l.StartsAt):
		return RedeemNotStarted
	case l.EndsAt != nil && !now.Before(*l.EndsAt):
		return RedeemExpired
	}
	return RedeemAsk
}

// HandOut hands the visitor their code through the link: the same allocation as the API
// (recipient: the email, the personal link's recipient or the browser; campaign: the link;
// channel redeem_link), so one recipient gets one code however often and however concurrently
// they ask. A link or list that ended, has not started or ran out answers its state, not an
// error. Hand-outs are limited per client address and per link (a rate_limited error with its
// wait); a filled honeypot hands out nothing and answers as for a list with no codes left.
func (s *RedeemLinks) HandOut(ctx context.Context, slug string, req HandOutRequest) (HandOut, error) {
	l, err := s.bySlug(ctx, slug)
	if err != nil {
		return HandOut{}, err
	}
	var who Recipient
	switch {
	case req.Token != "":
		r, ok := s.verifyToken(l, req.Token)
		if !ok {
			return HandOut{}, ErrRedeemLinkNotFound
		}
		who = r
	case l.IdentifyBy == IdentifyByEmail:
		email := strings.TrimSpace(req.Email)
		if a, err := mail.ParseAddress(email); err != nil || a.Address != email || len(email) > 300 {
			return HandOut{Link: l, State: RedeemAsk}, Invalid("email", "must be an email address such as name@example.com")
		}
		who = Recipient{Email: email}
	default:
		if req.Visitor == "" || len(req.Visitor) > 100 {
			return HandOut{}, Malformed("the visitor has no id")
		}
		who = Recipient{ExternalID: "visitor:" + req.Visitor}
	}
	out := HandOut{Link: l, State: s.window(l)}
	if out.State != RedeemAsk {
		return out, nil
	}
	if wait, err := s.blocked(ctx, l, req.Client); err != nil || wait > 0 {
		if err != nil {
			return HandOut{}, err
		}
		return HandOut{}, &Error{Kind: KindRateLimited, Code: "rate_limited", RetryAfter: wait,
			Message: "too many codes were asked for here; try again later"}
	}
	if req.Honeypot != "" {
		s.count(ctx, l, req.Client)
		out.State = RedeemExhausted
		return out, nil
	}
	// The hand-out is counted against the limits while the code is allocated.
	counted := make(chan struct{})
	go func() {
		defer close(counted)
		s.count(ctx, l, req.Client)
	}()
	defer func() { <-counted }()
	a, err := s.alloc.Allocate(ctx, l.MerchantID, l.ListID, AllocationRequest{
		Recipient: who, Campaign: l.Campaign(), Channel: ChannelRedeemLink, Actor: l.Campaign(), RedeemLink: l.ID,
	})
	switch {
	case errors.Is(err, ErrListExhausted):
		out.State = RedeemExhausted
		return out, nil
	case errors.Is(err, ErrListExpired), errors.Is(err, ErrListArchived), errors.Is(err, ErrListNotFound):
		out.State = RedeemExpired
		return out, nil
	case errors.Is(err, ErrListNotStarted):
		out.State = RedeemNotStarted
		return out, nil
	case err != nil:
		return HandOut{}, err
	}
	out.State, out.Code, out.ExpiresAt = RedeemCode, a.Code, a.ExpiresAt
	out.ShopURL = s.shopURL(ctx, l, a.Code)
	return out, nil
}

// blocked is how long the client, or the link as a whole, must wait before the next hand-out.
func (s *RedeemLinks) blocked(ctx context.Context, l RedeemLink, client string) (time.Duration, error) {
	var wait time.Duration
	if s.limits.PerClient != nil {
		w, err := s.limits.PerClient.Blocked(ctx, l.MerchantID, "redeem:"+l.ID.String()+":"+client)
		if err != nil {
			return 0, err
		}
		wait = max(wait, w)
	}
	if s.limits.PerLink != nil {
		w, err := s.limits.PerLink.Blocked(ctx, l.MerchantID, "redeem:"+l.ID.String())
		if err != nil {
			return 0, err
		}
		wait = max(wait, w)
	}
	return wait, nil
}

// count counts one hand-out (asked for, whatever its answer) against the limits.
func (s *RedeemLinks) count(ctx context.Context, l RedeemLink, client string) {
	if s.limits.PerClient != nil {
		if err := s.limits.PerClient.Fail(ctx, l.MerchantID, "redeem:"+l.ID.String()+":"+client); err != nil {
			s.log.WarnContext(ctx, "redeem link hand-out not counted", "err", err)
		}
	}
	if s.limits.PerLink != nil {
		if err := s.limits.PerLink.Fail(ctx, l.MerchantID, "redeem:"+l.ID.String()); err != nil {
			s.log.WarnContext(ctx, "redeem link hand-out not counted", "err", err)
		}
	}
}

// shopURL is where "Use it in the shop" leads: the shop's discount address, which applies the code
// at checkout, for a link that says shopify and a list pushed to a connected Shopify shop; else
// the link's redirect_url, or nowhere.
func (s *RedeemLinks) shopURL(ctx context.Context, l RedeemLink, code string) string {
	switch l.Redirect {
	case RedirectShopify:
		shop, err := s.pushes.PushedShopifyShop(ctx, l.MerchantID, l.ListID)
		if err != nil {
			s.log.WarnContext(ctx, "redeem link: pushes not read", "err", err)
		}
		if shop != "" {
			return "https://" + shop + "/discount/" + url.PathEscape(code)
		}
		return l.RedirectURL
	case RedirectURL:
		return l.RedirectURL
	}
	return ""
}

// ---- Personal links ----------------------------------------------------------------------------

// PersonalURL is the recipient's own address of the link (the <redeemlink> placeholder):
// APP_URL/r/{slug}/{token}, where the token names the recipient and is signed for this link and
// this recipient only. ok is false for a recipient with no identifier.
func (s *RedeemLinks) PersonalURL(l RedeemLink, r Recipient) (string, bool) {
	who := personalOf(r)
	if who == "" {
		return "", false
	}
	mac := s.sign(l, who)
	return s.URL(l) + "/" + base64.RawURLEncoding.EncodeToString([]byte(who)) + "." +
		base64.RawURLEncoding.EncodeToString(mac), true
}

// personalOf is the recipient as a personal link names it: e:<email>, p:<phone> or x:<external id>
// (the same precedence as RecipientKey).
func personalOf(r Recipient) string {
	switch {
	case strings.TrimSpace(r.ExternalID) != "":
		return "x:" + strings.TrimSpace(r.ExternalID)
	case strings.TrimSpace(r.Email) != "":
		return "e:" + strings.TrimSpace(r.Email)
	case strings.TrimSpace(r.Phone) != "":
		return "p:" + strings.TrimSpace(r.Phone)
	}
	return ""
}

func (s *RedeemLinks) sign(l RedeemLink, who string) []byte {
	m := hmac.New(sha256.New, s.key)
	m.Write([]byte(l.ID.String()))
	m.Write([]byte{0})
	m.Write([]byte(who))
	return m.Sum(nil)[:18]
}

// verifyToken checks a personal link's token for the link (constant time) and returns its
// recipient.
func (s *RedeemLinks) verifyToken(l RedeemLink, token string) (Recipient, bool) {
	whoPart, macPart, ok := strings.Cut(token, ".")
	if !ok || len(token) > 1000 {
		return Recipient{}, false
	}
	who, err1 := base64.RawURLEncoding.DecodeString(whoPart)
	mac, err2 := base64.RawURLEncoding.DecodeString(macPart)
	if err1 != nil || err2 != nil || !hmac.Equal(mac, s.sign(l, string(who))) {
		return Recipient{}, false
	}
	kind, value, _ := strings.Cut(string(who), ":")
	switch kind {
	case "e":
		return Recipient{Email: value}, value != ""
	case "p":
		return Recipient{Phone: value}, value != ""
	case "x":
		return Recipient{ExternalID: value}, value != ""
	}
	return Recipient{}, false
}

// PersonalLink is the recipient's personal link to the list's oldest redeem link (what
// <redeemlink> renders); "" when the list has no redeem link or the recipient no identifier.
func (s *RedeemLinks) PersonalLink(ctx context.Context, merchantID, listID uuid.UUID, r Recipient) (string, error) {
	l, ok, err := s.FirstOfList(ctx, merchantID, listID)
	if err != nil || !ok {
		return "", err
	}
	u, _ := s.PersonalURL(l, r)
	return u, nil
}

// QRToken is the signed name of a code's QR image on the link's page (/r/{slug}/qr/{token}), so
// that the page draws the codes it handed out and nothing else.
func (s *RedeemLinks) QRToken(l RedeemLink, code string) string {
	who := "qr:" + code
	return base64.RawURLEncoding.EncodeToString([]byte(code)) + "." + base64.RawURLEncoding.EncodeToString(s.sign(l, who))
}

// QRCode returns the code a QR token names, when the token was signed for the link.
func (s *RedeemLinks) QRCode(ctx context.Context, slug, token string) (string, error) {
	l, err := s.bySlug(ctx, slug)
	if err != nil {
		return "", err
	}
	codePart, macPart, ok := strings.Cut(token, ".")
	code, err1 := base64.RawURLEncoding.DecodeString(codePart)
	mac, err2 := base64.RawURLEncoding.DecodeString(macPart)
	if !ok || len(token) > 1200 || err1 != nil || err2 != nil || !hmac.Equal(mac, s.sign(l, "qr:"+string(code))) {
		return "", ErrRedeemLinkNotFound
	}
	return string(code), nil
}

// FirstOfList is the oldest redeem link of a list (what <redeemlink> in the list's templates
// points to); ok is false when the list has none.
func (s *RedeemLinks) FirstOfList(ctx context.Context, merchantID, listID uuid.UUID) (RedeemLink, bool, error) {
	links, _, err := s.store.ListRedeemLinks(ctx, merchantID, listID, Page{Limit: 1})
	if err != nil || len(links) == 0 {
		return RedeemLink{}, false, err
	}
	return links[0], true, nil
}
