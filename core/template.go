package core

import (
	"fmt"
	"html"
	"sort"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"
)

// Channel is how a message reaches its recipient.
type Channel string

// Message channels.
const (
	ChannelEmail Channel = "email"
	ChannelSMS   Channel = "sms"
	ChannelPush  Channel = "push"
)

// ParseChannel accepts email, sms and push (any case, surrounding spaces ignored); ok is false
// for anything else.
func ParseChannel(s string) (Channel, bool) {
	switch ch := Channel(strings.ToLower(strings.TrimSpace(s))); ch {
	case ChannelEmail, ChannelSMS, ChannelPush:
		return ch, true
	}
	return "", false
}

// Template is a list's message for one channel. Which parts it has depends on the channel:
//
//   - email: Subject (one line), and Text or HTML or both;
//   - sms: Text (Subject, HTML, Title and Body stay empty);
//   - push: Title (one line) or Body or both.
//
// Parts may hold placeholders (see Placeholders). Locale and TimeZone say how <expirydate> is
// written (see Locales; a time zone is an IANA name such as Europe/Berlin).
type Template struct {
	ID         uuid.UUID
	MerchantID uuid.UUID
	ListID     uuid.UUID
	Channel    Channel
	Subject    string // email
	Text       string // email plain-text body, or the SMS text
	HTML       string // email HTML body
	Title      string // push
	Body       string // push
	Locale     string
	TimeZone   string
	CreatedAt  time.Time
	UpdatedAt  time.Time
}

// TemplateInput is a template as the API receives it (POST /api/v1/lists/{id}/templates).
type TemplateInput struct {
	Channel  string
	Subject  string
	Text     string
	HTML     string
	Title    string
	Body     string
	Locale   string
	TimeZone string
}

// Limits of template parts, in characters (Unicode code points) of the template as saved;
// placeholders are counted as written, not as rendered.
const (
	MaxSubjectLength   = 998 // one header line (RFC 5322)
	MaxEmailTextLength = 100_000
	MaxEmailHTMLLength = 500_000
	MaxSMSLength       = 1600 // ten concatenated segments, what carriers deliver reliably
	MaxPushTitleLength = 200
	MaxPushBodyLength  = 4000
)

// ErrUnknownPlaceholder is the code of the error a template with an unknown placeholder gets;
// compare with errors.Is. The error itself names the placeholders and the parts they are in.
var ErrUnknownPlaceholder = newError(KindInvalid, "unknown_placeholder", "the template has an unknown placeholder")

// NewTemplate checks in (see ValidateTemplate) and returns the template with a new ID, created
// and updated at now. MerchantID and ListID are the caller's to set.
func NewTemplate(in TemplateInput, now time.Time) (Template, error) {
	ch, ok := ParseChannel(in.Channel)
	if !ok {
		return Template{}, Invalid("channel", "must be email, sms or push")
	}
	t, err := ValidateTemplate(Template{Channel: ch, Subject: in.Subject, Text: in.Text, HTML: in.HTML, Title: in.Title,
		Body: in.Body, Locale: in.Locale, TimeZone: in.TimeZone})
	if err != nil {
		return Template{}, err
	}
	t.ID = uuid.New()
	t.CreatedAt, t.UpdatedAt = now.UTC(), now.UTC()
	return t, nil
}

// templatePart is one part of a template: its API field name, where it lives, its limit and
// whether it is HTML.
type templatePart struct {
	field    string
	text     *string
	max      int
	oneLine  bool
	markup   bool
	verbatim bool // kept as written (email bodies); other parts are trimmed
}

func (t *Template) parts() []templatePart {
	textMax := MaxEmailTextLength
	if t.Channel == ChannelSMS {
		textMax = MaxSMSLength
	}
	return []templatePart{
		{field: "subject", text: &t.Subject, max: MaxSubjectLength, oneLine: true},
		{field: "text", text: &t.Text, max: textMax, verbatim: t.Channel == ChannelEmail},
		{field: "html", text: &t.HTML, max: MaxEmailHTMLLength, markup: true, verbatim: true},
		{field: "title", text: &t.Title, max: MaxPushTitleLength, oneLine: true},
		{field: "body", text: &t.Body, max: MaxPushBodyLength},
	}
}

// channelParts are the parts each channel uses.
var channelParts = map[Channel]map[string]bool{
	ChannelEmail: {"subject": true, "text": true, "html": true},
	ChannelSMS:   {"text": true},
	ChannelPush:  {"title": true, "body": true},
}

// ValidateTemplate checks t for its channel and returns it normalized: the subject, title, SMS
// text and push body trimmed, email bodies kept as written (blank ones emptied), the locale in
// its canonical form (en → en-US, de_de → de-DE) and an empty locale and time zone set to en-US
// and UTC. It refuses, as KindInvalid errors naming the field:
//
//   - parts the channel does not use, and missing required ones (email: subject, and text or
//     html; sms: text; push: title or body);
//   - parts over their limit (MaxSubjectLength …), invalid UTF-8 or control characters other
//     than tab and line breaks, and line breaks in the subject or title;
//   - a locale not in Locales, a time zone time.LoadLocation does not know (or "Local");
//   - unknown placeholders (see Placeholders for what counts as one), all of them at once in an
//     error with Code "unknown_placeholder" (errors.Is ErrUnknownPlaceholder) whose Message
//     names each and whose Details hold one entry per placeholder and field.
func ValidateTemplate(t Template) (Template, error) {
	ch, ok := ParseChannel(string(t.Channel))
	if !ok {
		return Template{}, Invalid("channel", "must be email, sms or push")
	}
	t.Channel = ch
	used := channelParts[ch]
	for _, p := range t.parts() {
		s := *p.text
		if strings.TrimSpace(s) == "" || !p.verbatim {
			s = strings.TrimSpace(s)
		}
		*p.text = s
		if s == "" {
			continue
		}
		if !used[p.field] {
			return Template{}, Invalid(p.field, "is not a part of "+string(ch)+" templates")
		}
		if err := checkPart(p, s); err != nil {
			return Template{}, err
		}
	}
	switch {
	case ch == ChannelEmail && t.Subject == "":
		return Template{}, Invalid("subject", "is required for email templates")
	case ch == ChannelEmail && t.Text == "" && t.HTML == "":
		return Template{}, Invalid("text", "an email template needs a text or an html body, or both")
	case ch == ChannelSMS && t.Text == "":
		return Template{}, Invalid("text", "is required for sms templates")
	case ch == ChannelPush && t.Title == "" && t.Body == "":
		return Template{}, Invalid("body", "a push template needs a title or a body, or both")
	}
	locale, ok := canonicalLocale(t.Locale)
	if !ok {
		return Template{}, Invalid("locale", "must be one of "+strings.Join(Locales(), ", "))
	}
	t.Locale = locale
	t.TimeZone = strings.TrimSpace(t.TimeZone)
	if _, err := loadZone(t.TimeZone); err != nil {
		return Template{}, Invalid("time_zone", "must be an IANA time zone such as Europe/Berlin or America/New_York")
	}
	if t.TimeZone == "" {
		t.TimeZone = "UTC"
	}
	if _, err := t.parse(); err != nil {
		return Template{}, err
	}
	return t, nil
}

func checkPart(p templatePart, s string) error {
	if !utf8.ValidString(s) {
		return Invalid(p.field, "must be valid UTF-8")
	}
	if n := utf8.RuneCountInString(s); n > p.max {
		return Invalid(p.field, fmt.Sprintf("must be at most %d characters, is %d", p.max, n))
	}
	for _, r := range s {
		switch {
		case p.oneLine && isLineBreak(r):
			return Invalid(p.field, "must be one line")
		case r == '\t' || r == '\n' || r == '\r':
		case unicode.IsControl(r):
			return Invalid(p.field, fmt.Sprintf("must not contain control characters (%U)", r))
		}
	}
	return nil
}

// RenderData is what placeholders are replaced with. Empty fields render as empty text.
type RenderData struct {
	Code       string
	ExpiresAt  *time.Time // when the code stops being usable; nil when it does not expire
	ListName   string
	FirstName  string
	LastName   string
	Email      string
	Phone      string
	ExternalID string
	Campaign   string
	// RedeemLink is the recipient's personal redeem link (<redeemlink>): APP_URL/r/{slug}/{token}
	// of the list's oldest redeem link; "" when the list has none.
	RedeemLink string
}

// Rendered is a template with its placeholders replaced. Only the parts of the template's
// channel are set.
type Rendered struct {
	Subject string
	Text    string
	HTML    string
	Title   string
	Body    string
}

// SampleRenderData is what previews render with: the code SAMPLE-CODE-1234 and the recipient
// Ada Lovelace (ada@example.com, +15555550100, external id customer-1815, campaign preview),
// with the list's name and expiry.
func SampleRenderData(listName string, expires *time.Time) RenderData {
	return RenderData{Code: "SAMPLE-CODE-1234", ExpiresAt: expires, ListName: listName, FirstName: "Ada",
		LastName: "Lovelace", Email: "ada@example.com", Phone: "+15555550100", ExternalID: "customer-1815",
		Campaign: "preview", RedeemLink: "https://coupongate.example/r/sample-link/personal-token"}
}

// Render replaces the template's placeholders with d's values. Values are HTML-escaped in the
// HTML part (safe in element text and in quoted attribute values; they are not URL-encoded) and
// inserted as they are everywhere else. <expirydate> is the last day the code can be used, in
// the template's time zone and written the locale's way (en-US "January 2, 2006"): ExpiresAt
// is the first instant the code no longer works, so an expiry at midnight shows the day before;
// with no expiry it renders as "". Line breaks coming from values are replaced by a space in
// the subject and title, which stay one line (no header injection).
//
// Render returns an error only for a template ValidateTemplate would refuse for its placeholders,
// locale or time zone; lengths are not checked again, so a validated template always renders.
func (t Template) Render(d RenderData) (Rendered, error) {
	parsed, err := t.parse()
	if err != nil {
		return Rendered{}, err
	}
	locale, ok := canonicalLocale(t.Locale)
	if !ok {
		return Rendered{}, Invalid("locale", "must be one of "+strings.Join(Locales(), ", "))
	}
	zone, err := loadZone(strings.TrimSpace(t.TimeZone))
	if err != nil {
		return Rendered{}, Invalid("time_zone", "must be an IANA time zone such as Europe/Berlin or America/New_York")
	}
	values := map[string]string{
		"couponcode": d.Code,
		"listname":   d.ListName,
		"firstname":  d.FirstName,
		"lastname":   d.LastName,
		"fullname":   strings.TrimSpace(strings.TrimSpace(d.FirstName) + " " + strings.TrimSpace(d.LastName)),
		"email":      d.Email,
		"phone":      d.Phone,
		"externalid": d.ExternalID,
		"campaign":   d.Campaign,
		"redeemlink": d.RedeemLink,
	}
	if d.ExpiresAt != nil {
		values["expirydate"] = formatDate(lastDay(*d.ExpiresAt, zone), locale)
	}
	out := map[string]string{}
	for _, p := range t.parts() {
		var b strings.Builder
		for _, seg := range parsed[p.field] {
			switch {
			case seg.name == "":
				b.WriteString(seg.text)
			case p.markup:
				b.WriteString(html.EscapeString(values[seg.name]))
			default:
				b.WriteString(values[seg.name])
			}
		}
		s := b.String()
		if p.oneLine {
			s = oneLine(s)
		}
		out[p.field] = s
	}
	return Rendered{Subject: out["subject"], Text: out["text"], HTML: out["html"], Title: out["title"], Body: out["body"]}, nil
}

// Uses reports whether any part of the template holds the placeholder name (canonical).
func (t Template) Uses(name string) bool {
	parsed, err := t.parse()
	if err != nil {
		return false
	}
	for _, segs := range parsed {
		for _, seg := range segs {
			if seg.name == name {
				return true
			}
		}
	}
	return false
}

// parse splits every part into literal text and placeholders, or reports all unknown ones.
func (t *Template) parse() (map[string][]segment, error) {
	parsed := map[string][]segment{}
	var details []FieldError
	var named []string
	for _, p := range t.parts() {
		segs, unknown := parsePart(*p.text, p.markup)
		parsed[p.field] = segs
		seen := map[string]bool{}
		for _, u := range unknown {
			if seen[u] || len(details) == maxUnknownReported {
				continue
			}
			seen[u] = true
			details = append(details, FieldError{Field: p.field, Message: fmt.Sprintf("unknown placeholder %q", u)})
			named = append(named, fmt.Sprintf("%q in %s", u, p.field))
		}
	}
	if len(details) == 0 {
		return parsed, nil
	}
	msg := "unknown placeholder "
	if len(named) > 1 {
		msg = "unknown placeholders "
	}
	known := make([]string, len(canonicalPlaceholders))
	for i, name := range canonicalPlaceholders {
		known[i] = "<" + name + ">"
	}
	return nil, &Error{Kind: KindInvalid, Code: ErrUnknownPlaceholder.Code,
		Message: msg + strings.Join(named, ", ") + "; known placeholders are " + strings.Join(known, ", "), Details: details}
}

const maxUnknownReported = 20

// isLineBreak reports whether r ends a line somewhere: CR, LF, VT, FF, NEL, U+2028 or U+2029.
func isLineBreak(r rune) bool {
	switch r {
	case '\n', '\r', '\v', '\f', '\u0085', '\u2028', '\u2029':
		return true
	}
	return false
}

// oneLine replaces each run of line breaks by one space, drops other control characters (tab
// stays) and trims the ends, so the result is safe as a header line.
func oneLine(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	broken := false
	for _, r := range s {
		switch {
		case isLineBreak(r):
			if !broken {
				b.WriteByte(' ')
			}
			broken = true
			continue
		case r == '\t' || !unicode.IsControl(r):
			b.WriteRune(r)
		}
		broken = false
	}
	return strings.TrimSpace(b.String())
}

// canonicalPlaceholders are the placeholder names, in documentation order.
var canonicalPlaceholders = []string{"couponcode", "expirydate", "listname", "firstname", "lastname", "fullname",
	"email", "phone", "externalid", "campaign", "redeemlink"}

// placeholderNames maps every known name, normalized (lower case, no _ or -), to its canonical
// name.
var placeholderNames = map[string]string{
	"code":           "couponcode",
	"coupon":         "couponcode",
	"discountcode":   "couponcode",
	"promocode":      "couponcode",
	"vouchercode":    "couponcode",
	"expiry":         "expirydate",
	"expires":        "expirydate",
	"expiresat":      "expirydate",
	"expiration":     "expirydate",
	"expirationdate": "expirydate",
	"list":           "listname",
	"fname":          "firstname",
	"lname":          "lastname",
	"name":           "fullname",
	"emailaddress":   "email",
	"phonenumber":    "phone",
	"customerid":     "externalid",
	"campaignname":   "campaign",
}

func init() {
	for _, name := range canonicalPlaceholders {
		placeholderNames[name] = name
	}
}

// Placeholders returns the canonical placeholder names: couponcode, expirydate, listname,
// firstname, lastname, fullname, email, phone, externalid, campaign and redeemlink (the
// recipient's personal redeem link).
//
// A placeholder is written in any of these spellings; its name is matched regardless of case,
// underscores and hyphens (<CouponCode>, {coupon_code} and {{ COUPON-CODE }} are the same):
//
//	<name>                        nothing else between the angle brackets, no spaces
//	{name} {{name}} {{{name}}}    spaces around the name allowed: {{ name }}
//	${name} ${{name}}
//	$name                         the name runs over letters, digits and underscores
//	&lt;name&gt;                  HTML part only: <name> as a visual editor saves it
//
// Besides the canonical names these aliases are known: code, coupon, discount_code,
// promo_code, voucher_code (couponcode); expiry, expires, expires_at, expiration,
// expiration_date (expirydate); list (listname); fname (firstname); lname (lastname); name
// (fullname); email_address (email); phone_number (phone); customer_id (externalid);
// campaign_name (campaign).
//
// What is refused as an unknown placeholder and what is left alone as ordinary text:
//
//   - <word>, word being a letter followed by letters, digits, _ or - (64 at most): a known
//     name is a placeholder; else an HTML element name (p, b, br, div, td, center, …) is left
//     alone; anything else (<couponcod>, <firstnme>) is refused. In the HTML part element names
//     win over aliases, so <code> is the HTML element there and the coupon code in the other
//     parts. Tags with attributes, closing and self-closing tags, comments and doctypes
//     (<a href="…">, </div>, <br/>, <!-- -->) are never taken for placeholders. Inside an
//     HTML comment (Outlook's <!--[if mso]>…<![endif]--> blocks) known placeholders are filled
//     in and nothing is refused.
//   - {word}, one word between single braces, is a placeholder or refused; other uses of single
//     braces (CSS such as p{color:red}) are left alone.
//   - Anything between double or triple braces on one line ({{ customer.first_name }},
//     {{ name | default: "there" }}, {{}}) is template syntax of some platform: a known name or
//     refused, never sent to recipients as it is.
//   - $word is a placeholder when word is known. An unknown $word is left alone ($USD, $HOME),
//     unless it is a near miss of a known name: five letters or more and one letter added,
//     dropped, changed or two swapped ($coupon_cod, $expiry_dat, $emial), refused as a typo.
//     A $ before a digit, a space or punctuation ($5 off, $10.00, $ 5) is just a dollar sign.
func Placeholders() []string { return append([]string(nil), canonicalPlaceholders...) }

// PlaceholderAliases returns the other names each canonical placeholder is known by (see
// Placeholders), sorted; a name without aliases has none in the map.
func PlaceholderAliases() map[string][]string {
	out := map[string][]string{}
	for alias, name := range placeholderNames {
		if alias != name {
			out[name] = append(out[name], alias)
		}
	}
	for _, aliases := range out {
		sort.Strings(aliases)
	}
	return out
}

// segment is a piece of a parsed part: literal text, or a placeholder (name set, text as
// written).
type segment struct {
	text string
	name string
}

// verdict is what a placeholder-like token turned out to be.
type verdict int

const (
	literal     verdict = iota // ordinary text or markup, left alone
	placeholder                // a known placeholder
	unknown                    // looks like a placeholder but names none
)

// maxPlaceholderName bounds the word of <word>, {word} and $word; longer ones are text.
const maxPlaceholderName = 64

// maxBraced bounds what is between double or triple braces.
const maxBraced = 100

// parsePart splits s into literal text and placeholders and returns the unknown placeholders as
// they should be reported. markup says s is an HTML part.
func parsePart(s string, markup bool) (segs []segment, unknowns []string) {
	start := 0       // where the pending literal text begins
	commentEnd := -1 // in the HTML part, where the comment that s[i] is in ends
	for i := 0; i < len(s); {
		if markup && i >= commentEnd && strings.HasPrefix(s[i:], "<!--") {
			commentEnd = len(s)
			if end := strings.Index(s[i+4:], "-->"); end >= 0 {
				commentEnd = i + 4 + end + 3
			}
		}
		n, name, v, report := matchPlaceholder(s, i, markup)
		switch {
		case n == 0:
			i++
			continue
		case v == literal, v == unknown && i < commentEnd:
			// Inside a comment (an Outlook conditional block holds <xml>, <o:…> and the
			// like) a known placeholder is filled in, and nothing is refused.
			i += n
			continue
		}
		if start < i {
			segs = append(segs, segment{text: s[start:i]})
		}
		if v == unknown {
			unknowns = append(unknowns, report)
		} else {
			segs = append(segs, segment{text: s[i : i+n], name: name})
		}
		i += n
		start = i
	}
	if start < len(s) {
		segs = append(segs, segment{text: s[start:]})
	}
	return segs, unknowns
}

// matchPlaceholder looks at s[i:]. n is 0 when nothing placeholder-like starts there; else n
// bytes form a token that is literal, a placeholder (name canonical) or unknown (report is how
// the error names it).
func matchPlaceholder(s string, i int, markup bool) (n int, name string, v verdict, report string) {
	switch s[i] {
	case '<':
		end := wordEnd(s, i+1, true)
		if end == i+1 || end-i-1 > maxPlaceholderName || end >= len(s) || s[end] != '>' {
			return 0, "", literal, ""
		}
		name, v := angled(s[i+1:end], markup)
		return end + 1 - i, name, v, s[i : end+1]
	case '&':
		if !markup || !hasPrefixFold(s[i:], "&lt;") {
			return 0, "", literal, ""
		}
		end := wordEnd(s, i+4, true)
		if end == i+4 || end-i-4 > maxPlaceholderName || !hasPrefixFold(s[end:], "&gt;") {
			return 0, "", literal, ""
		}
		word := s[i+4 : end]
		name, v := angled(word, false)
		return end + 4 - i, name, v, "<" + word + ">"
	case '{':
		return braced(s, i)
	case '$':
		if i+1 < len(s) && s[i+1] == '{' {
			n, name, v, report := braced(s, i+1)
			if n == 0 || v == literal {
				return 0, "", literal, ""
			}
			return n + 1, name, v, "$" + report
		}
		end := wordEnd(s, i+1, false)
		if end == i+1 || end-i-1 > maxPlaceholderName {
			return 0, "", literal, ""
		}
		key := normalizeName(s[i+1 : end])
		if name, ok := placeholderNames[key]; ok {
			return end - i, name, placeholder, ""
		}
		if nearMiss(key) {
			return end - i, "", unknown, s[i:end]
		}
		return end - i, "", literal, ""
	}
	return 0, "", literal, ""
}

// angled judges <word>: see Placeholders.
func angled(word string, markup bool) (string, verdict) {
	name, known := placeholderNames[normalizeName(word)]
	element := htmlElements[strings.ToLower(word)]
	switch {
	case element && (markup || !known):
		return "", literal
	case known:
		return name, placeholder
	}
	return "", unknown
}

// braced judges {word}, {{…}} and {{{…}}} at s[i]: see Placeholders.
func braced(s string, i int) (n int, name string, v verdict, report string) {
	for depth := 3; depth >= 1; depth-- {
		open, closing := "{{{"[:depth], "}}}"[:depth]
		if !strings.HasPrefix(s[i:], open) {
			continue
		}
		from := i + depth
		window := s[from:min(len(s), from+maxBraced+depth)] // bounded: parsing stays linear
		end := strings.Index(window, closing)
		if end < 0 {
			continue
		}
		inner := s[from : from+end]
		if strings.ContainsAny(inner, "{}\r\n") || len(inner) > maxBraced {
			continue
		}
		token := s[i : from+end+depth]
		word := strings.Trim(inner, " \t")
		isWord := word != "" && wordEnd(word, 0, true) == len(word) && len(word) <= maxPlaceholderName
		if name, ok := placeholderNames[normalizeName(word)]; ok && isWord {
			return len(token), name, placeholder, ""
		}
		if depth == 1 && !isWord {
			return 0, "", literal, ""
		}
		return len(token), "", unknown, token
	}
	return 0, "", literal, ""
}

// wordEnd returns where the word starting at s[i] ends: a letter, then letters, digits, _ and
// (with hyphen) -. It returns i when no letter starts there, and stops one byte past
// maxPlaceholderName (a word that long is no placeholder).
func wordEnd(s string, i int, hyphen bool) int {
	if i >= len(s) || !isASCIILetter(s[i]) {
		return i
	}
	j, limit := i+1, min(len(s), i+maxPlaceholderName+1)
	for j < limit && (isASCIILetter(s[j]) || '0' <= s[j] && s[j] <= '9' || s[j] == '_' || hyphen && s[j] == '-') {
		j++
	}
	return j
}

func isASCIILetter(c byte) bool { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }

// normalizeName lowers a placeholder name and drops its underscores and hyphens.
func normalizeName(word string) string {
	b := make([]byte, 0, len(word))
	for i := 0; i < len(word); i++ {
		switch c := word[i]; {
		case c == '_' || c == '-':
		case 'A' <= c && c <= 'Z':
			b = append(b, c+'a'-'A')
		default:
			b = append(b, c)
		}
	}
	return string(b)
}

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

// nearMiss reports whether key (normalized, five bytes or more) is one edit away from a known
// name: one byte added, dropped or changed, or two neighbours swapped.
func nearMiss(key string) bool {
	if len(key) < 5 {
		return false
	}
	for known := range placeholderNames {
		if oneEditApart(key, known) {
			return true
		}
	}
	return false
}

// oneEditApart reports whether a and b differ by exactly one insertion, deletion, substitution
// or swap of adjacent bytes.
func oneEditApart(a, b string) bool {
	if len(a) < len(b) {
		a, b = b, a
	}
	if len(a)-len(b) > 1 || a == b {
		return false
	}
	i := 0
	for i < len(b) && a[i] == b[i] {
		i++
	}
	if len(a) > len(b) {
		return a[i+1:] == b[i:]
	}
	if a[i+1:] == b[i+1:] {
		return true
	}
	return i+1 < len(a) && a[i] == b[i+1] && a[i+1] == b[i] && a[i+2:] == b[i+2:]
}

// htmlElements are the names of HTML elements, current and obsolete, and of the SVG and MathML
// elements that appear in emails: <name> with one of them is markup, not a placeholder.
var htmlElements = func() map[string]bool {
	m := map[string]bool{}
	for _, name := range strings.Fields(`
		a abbr acronym address applet area article aside audio b base basefont bdi bdo bgsound big
		blink blockquote body br button canvas caption center cite code col colgroup data datalist
		dd del details dfn dialog dir div dl dt em embed fieldset figcaption figure font footer form
		frame frameset h1 h2 h3 h4 h5 h6 head header hgroup hr html i iframe image img input ins
		isindex kbd keygen label legend li link listing main map mark marquee menu menuitem meta
		meter multicol nav nextid nobr noembed noframes noscript object ol optgroup option output p
		param picture plaintext pre progress q rb rp rt rtc ruby s samp script search section select
		slot small source spacer span strike strong style sub summary sup table tbody td template
		textarea tfoot th thead time title tr track tt u ul var video wbr xml xmp
		svg g path rect circle ellipse line polyline polygon text tspan textpath defs symbol use
		lineargradient radialgradient stop clippath mask pattern filter desc metadata foreignobject
		marker switch view
		math mi mo mn ms mtext mrow msup msub msubsup mfrac msqrt mroot mtable mtr mtd semantics
		annotation`) {
		m[name] = true
	}
	return m
}()
