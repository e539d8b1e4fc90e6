package messaging

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	netmail "net/mail"
	"net/textproto"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	gomail "github.com/wneessen/go-mail"
	gosmtp "github.com/wneessen/go-mail/smtp"

	"github.com/coupongate/coupongate/internal/netguard"
)

// Security modes of SMTPSettings.
const (
	// SecurityStartTLS connects in plain text and upgrades with STARTTLS before anything else;
	// a server that does not offer STARTTLS is refused (usually port 587).
	SecurityStartTLS = "starttls"
	// SecurityTLS speaks TLS from the first byte (implicit TLS, usually port 465).
	SecurityTLS = "tls"
	// SecurityNone never encrypts. It is accepted with credentials only for a loopback host.
	SecurityNone = "none"
)

// DefaultMailerConns is how many SMTP connections a Mailer keeps open at most by default.
const DefaultMailerConns = 4

// DefaultSMTPTimeout bounds connecting and each send when SMTPSettings.Timeout is zero.
const DefaultSMTPTimeout = 30 * time.Second

// mailerIdleTimeout is how long an unused connection stays in the pool; servers drop idle
// clients after a while (RFC 5321 asks them to wait at least five minutes, some do not).
const mailerIdleTimeout = 30 * time.Second

// ErrMailerClosed is returned by Send after Close.
var ErrMailerClosed = errors.New("messaging: mailer closed")

// SMTPSettings says how to reach an SMTP submission server. It prints with the password
// redacted.
type SMTPSettings struct {
	Host     string
	Port     int
	Username string // empty: no AUTH
	Password string
	// From is the sender, as an address or "Name <address>"; it is also the envelope sender.
	From string
	// Security is SecurityStartTLS, SecurityTLS or SecurityNone.
	Security string
	// TLSConfig is used for STARTTLS and implicit TLS (tests: trust the sink's certificate); nil
	// means the system roots. Its ServerName defaults to Host.
	TLSConfig *tls.Config
	// Timeout bounds connecting (TCP, TLS, greeting, AUTH) and each send; zero means
	// DefaultSMTPTimeout. The context given to Send bounds both as well.
	Timeout time.Duration
	// MaxConns is how many connections a Mailer keeps open at most; zero means
	// DefaultMailerConns.
	MaxConns int
	// Dial opens the TCP connection; nil means a plain net.Dialer. The gateway passes
	// netguard's, which refuses non-public addresses at connect time (CodeAddressRefused).
	Dial func(ctx context.Context, network, address string) (net.Conn, error)
}

// String prints the settings without the password.
func (s SMTPSettings) String() string {
	pw := ""
	if s.Password != "" {
		pw = "[redacted]"
	}
	return fmt.Sprintf("SMTPSettings{Host:%s Port:%d Username:%s Password:%s From:%s Security:%s}",
		s.Host, s.Port, s.Username, pw, s.From, s.Security)
}

// GoString is String, so %#v does not print the password either.
func (s SMTPSettings) GoString() string { return s.String() }

// Validate checks that the settings can be used: a host, a port in 1..65535, a From address,
// a known Security, a username and a password together, and no password in clear text to
// anything but a loopback host.
func (s SMTPSettings) Validate() error {
	var problems []string
	host := strings.TrimSpace(s.Host)
	switch {
	case host == "":
		problems = append(problems, "host is required")
	case strings.ContainsAny(host, " /:@") && net.ParseIP(host) == nil:
		problems = append(problems, fmt.Sprintf("host %q is not a host name", s.Host))
	}
	if s.Port < 1 || s.Port > 65535 {
		problems = append(problems, fmt.Sprintf("port %d is not in 1..65535", s.Port))
	}
	if strings.TrimSpace(s.From) == "" {
		problems = append(problems, "from is required")
	} else if _, err := netmail.ParseAddress(s.From); err != nil {
		problems = append(problems, fmt.Sprintf("from %q is not an e-mail address", s.From))
	}
	switch s.Security {
	case SecurityStartTLS, SecurityTLS, SecurityNone:
	default:
		problems = append(problems, fmt.Sprintf("security %q is not one of starttls, tls, none", s.Security))
	}
	switch {
	case s.Username != "" && s.Password == "":
		problems = append(problems, "a username needs a password")
	case s.Username == "" && s.Password != "":
		problems = append(problems, "a password needs a username")
	case s.Username != "" && s.Security == SecurityNone && !isLoopbackHost(host):
		problems = append(problems, "security none would send the password in clear text; use starttls or tls")
	}
	if s.Timeout < 0 {
		problems = append(problems, "timeout is negative")
	}
	if s.MaxConns < 0 {
		problems = append(problems, "max conns is negative")
	}
	if len(problems) > 0 {
		return fmt.Errorf("messaging: SMTP settings: %s", strings.Join(problems, "; "))
	}
	return nil
}

// isLoopbackHost reports the host names go-mail lets authenticate without TLS.
func isLoopbackHost(h string) bool {
	return h == "localhost" || h == "127.0.0.1" || h == "::1"
}

// Email is one message to one recipient.
type Email struct {
	To      string // an address or "Name <address>"
	Subject string
	// Text and HTML are the bodies; with both the message is multipart/alternative. At least
	// one is required.
	Text string
	HTML string
	// MessageID is set as the Message-ID header (with or without the angle brackets) so a
	// resend of the same message is recognisable; "" means a new random one.
	MessageID string
	// Headers are extra header fields (List-Unsubscribe, Reply-To, X-…). The fields the
	// Mailer writes itself (From, To, Cc, Bcc, Subject, Date, Message-ID, MIME and Content-
	// fields) are refused.
	Headers map[string]string
}

// Mailer sends e-mail through one SMTP server, keeping up to SMTPSettings.MaxConns
// connections open across sends and reconnecting when one fails or was dropped. It is safe
// for concurrent use; Close it when done.
type Mailer struct {
	s       SMTPSettings
	err     error // settings error, returned by every Send
	from    *netmail.Address
	tlsConf *tls.Config
	timeout time.Duration
	slots   chan struct{}
	secrets []string // the password as it may travel (plain, base64 alone, in a PLAIN blob)

	mu     sync.Mutex
	idle   []*smtpConn
	closed bool
}

// smtpConn is one open, greeted and authenticated SMTP connection.
type smtpConn struct {
	c    *gosmtp.Client
	raw  net.Conn
	last time.Time
}

// NewMailer returns a Mailer for the settings. It does not connect: the first Send does.
// Settings that fail Validate make every Send fail with a permanent CodeSettings error.
func NewMailer(s SMTPSettings) *Mailer {
	m := &Mailer{s: s, timeout: s.Timeout}
	if m.timeout <= 0 {
		m.timeout = DefaultSMTPTimeout
	}
	n := s.MaxConns
	if n <= 0 {
		n = DefaultMailerConns
	}
	m.slots = make(chan struct{}, n)
	if err := s.Validate(); err != nil {
		m.err = &SendError{Channel: ChannelEmail, Permanent: true, Code: CodeSettings, Reason: err.Error()}
		return m
	}
	m.s.Host = strings.TrimSpace(s.Host)
	if s.Password != "" {
		b64 := base64.StdEncoding.EncodeToString
		m.secrets = []string{s.Password, b64([]byte(s.Password)), b64([]byte("\x00" + s.Username + "\x00" + s.Password))}
	}
	m.from, _ = netmail.ParseAddress(s.From)
	if s.TLSConfig != nil {
		m.tlsConf = s.TLSConfig.Clone()
	} else {
		m.tlsConf = &tls.Config{}
	}
	if m.tlsConf.ServerName == "" {
		m.tlsConf.ServerName = m.s.Host
	}
	if m.tlsConf.MinVersion == 0 {
		m.tlsConf.MinVersion = tls.VersionTLS12
	}
	return m
}

// Close quits the idle connections and makes later sends fail with ErrMailerClosed.
// Connections busy with a send are closed when it ends.
func (m *Mailer) Close() error {
	m.mu.Lock()
	idle := m.idle
	m.idle = nil
	m.closed = true
	m.mu.Unlock()
	for _, pc := range idle {
		pc.quit()
	}
	return nil
}

// Send sends one message. It returns nil once the server accepted it (250 after DATA), else a
// *SendError (or ErrMailerClosed). A connection found dropped before the message was offered
// (the server closed it while it was idle) is replaced and the send tried once more.
func (m *Mailer) Send(ctx context.Context, e Email) (err error) {
	defer func() { err = m.scrub(err) }()
	if m.err != nil {
		return m.err
	}
	msg, from, to, err := m.build(e)
	if err != nil {
		return err
	}
	if ctx.Err() != nil {
		return ctxSendError(ChannelEmail, ctx.Err(), "before sending")
	}
	select {
	case m.slots <- struct{}{}:
	case <-ctx.Done():
		return ctxSendError(ChannelEmail, ctx.Err(), "waiting for a connection")
	}
	defer func() { <-m.slots }()

	g := &connGuard{}
	stop := context.AfterFunc(ctx, g.fire)
	defer stop()

	for attempt := 0; ; attempt++ {
		pc, reused, err := m.get(ctx, g)
		if err != nil {
			if ctx.Err() != nil {
				return ctxSendError(ChannelEmail, ctx.Err(), "connecting")
			}
			return err
		}
		res := m.transact(ctx, pc, msg, from, to)
		if g.fired() {
			// The context ended and closed the connection; an accepted message stays sent.
			pc.close()
			if res.err == nil {
				return nil
			}
			return ctxSendError(ChannelEmail, ctx.Err(), "sending")
		}
		if res.keep {
			m.put(pc)
		} else {
			pc.close()
		}
		if res.err != nil && res.stale && reused && attempt == 0 {
			continue // the pooled connection was dead before the message was offered
		}
		return res.err
	}
}

// scrub takes every form of the password out of a *SendError's reason (a server may quote a
// command it did not like, AUTH included).
func (m *Mailer) scrub(err error) error {
	var se *SendError
	if len(m.secrets) > 0 && errors.As(err, &se) {
		se.Reason = redact(se.Reason, m.secrets...)
	}
	return err
}

// get returns a pooled connection (reused true) or a new one.
func (m *Mailer) get(ctx context.Context, g *connGuard) (*smtpConn, bool, error) {
	now := time.Now()
	for {
		m.mu.Lock()
		if m.closed {
			m.mu.Unlock()
			return nil, false, ErrMailerClosed
		}
		n := len(m.idle)
		if n == 0 {
			m.mu.Unlock()
			break
		}
		pc := m.idle[n-1]
		m.idle = m.idle[:n-1]
		m.mu.Unlock()
		if now.Sub(pc.last) > mailerIdleTimeout {
			pc.close() // likely dropped by the server already: no QUIT to wait on
			continue
		}
		if !g.set(pc.raw) {
			return nil, false, ctx.Err()
		}
		return pc, true, nil
	}
	pc, err := m.dial(ctx, g)
	return pc, false, err
}

// put returns a healthy connection to the pool.
func (m *Mailer) put(pc *smtpConn) {
	pc.last = time.Now()
	m.mu.Lock()
	if m.closed || len(m.idle) >= cap(m.slots) {
		m.mu.Unlock()
		pc.quit()
		return
	}
	m.idle = append(m.idle, pc)
	m.mu.Unlock()
}

// dial opens, greets, secures and authenticates a new connection with go-mail.
func (m *Mailer) dial(ctx context.Context, g *connGuard) (*smtpConn, error) {
	var raw net.Conn
	dial := m.s.Dial
	if dial == nil {
		dial = (&net.Dialer{}).DialContext
	}
	dialFn := func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		raw = c
		if !g.set(c) {
			return nil, context.Canceled
		}
		if m.s.Security == SecurityTLS {
			tc := tls.Client(c, m.tlsConf)
			if err := tc.HandshakeContext(ctx); err != nil {
				return nil, err
			}
			return tc, nil
		}
		return c, nil
	}
	opts := []gomail.Option{
		gomail.WithPort(m.s.Port),
		gomail.WithTimeout(m.timeout),
		gomail.WithDialContextFunc(dialFn),
		gomail.WithTLSConfig(m.tlsConf),
	}
	if m.s.Security == SecurityStartTLS {
		opts = append(opts, gomail.WithTLSPolicy(gomail.TLSMandatory))
	} else {
		opts = append(opts, gomail.WithTLSPolicy(gomail.NoTLS))
	}
	if m.s.Username != "" {
		// A fresh Auth per connection: go-mail's LOGIN keeps state between steps.
		opts = append(opts, gomail.WithSMTPAuthCustom(&plainOrLogin{user: m.s.Username, pass: m.s.Password, host: m.s.Host}))
	}
	client, err := gomail.NewClient(m.s.Host, opts...)
	if err != nil {
		return nil, &SendError{Channel: ChannelEmail, Permanent: true, Code: CodeSettings, Reason: err.Error()}
	}
	sc, err := client.DialToSMTPClientWithContext(ctx)
	if err != nil {
		if raw != nil {
			_ = raw.Close()
		}
		return nil, m.dialError(err)
	}
	return &smtpConn{c: sc, raw: raw}, nil
}

// dialError classifies a failure to connect, greet, secure or authenticate.
func (m *Mailer) dialError(err error) error {
	msg := err.Error()
	se := &SendError{Channel: ChannelEmail, Reason: "connecting to " + m.s.Host + ": " + msg}
	var tp *textproto.Error
	var certErr *tls.CertificateVerificationError
	var unknownAuth x509.UnknownAuthorityError
	var hostErr x509.HostnameError
	var invalidErr x509.CertificateInvalidError
	var refused *netguard.ForbiddenError
	switch {
	case errors.As(err, &refused):
		se.Permanent, se.Code, se.Err = true, CodeAddressRefused, err
		se.Reason = "connecting to " + m.s.Host + ": refused: " + refused.Error()
	case strings.Contains(msg, "SMTP AUTH failed") || errors.Is(err, errNoAuthMechanism) ||
		errors.Is(err, gosmtp.ErrUnencrypted) || errors.Is(err, gosmtp.ErrWrongHostname):
		if errors.As(err, &tp) && tp.Code >= 400 && tp.Code < 500 {
			// 4xx during AUTH (454 "temporary authentication failure") is "try later".
			se.Code = strconv.Itoa(tp.Code)
			return se
		}
		se.Permanent, se.Code = true, CodeAuth
		se.Reason = "authentication refused (check the SMTP username and password): " + msg
	case errors.As(err, &certErr) || errors.As(err, &unknownAuth) || errors.As(err, &hostErr) ||
		errors.As(err, &invalidErr) || strings.Contains(msg, "does not support STARTTLS"):
		se.Permanent, se.Code = true, CodeTLS
		se.Reason = "TLS refused (check the security setting and the server's certificate): " + msg
	case errors.As(err, &tp):
		return replyError("connecting to "+m.s.Host, tp)
	default:
		se.Code = networkCode(err)
		se.Err = err
	}
	return se
}

// txResult is the outcome of one SMTP transaction: the error, whether the connection can carry
// another message, and whether the connection was found dead before the message was offered.
type txResult struct {
	err   error
	keep  bool
	stale bool
}

// transact runs MAIL, RCPT and DATA for one message on pc.
func (m *Mailer) transact(ctx context.Context, pc *smtpConn, msg *gomail.Msg, from, to string) txResult {
	timeout := m.timeout
	if dl, ok := ctx.Deadline(); ok {
		if left := time.Until(dl); left < timeout {
			timeout = left
		}
	}
	if err := pc.c.UpdateDeadline(timeout); err != nil {
		return txResult{err: m.connError("MAIL FROM", err), stale: true}
	}
	c := pc.c
	if err := c.Mail(from); err != nil {
		var tp *textproto.Error
		if errors.As(err, &tp) {
			if tp.Code == 421 {
				return txResult{err: replyError("MAIL FROM "+from, tp), stale: true}
			}
			return txResult{err: replyError("MAIL FROM "+from, tp), keep: c.Reset() == nil}
		}
		return txResult{err: m.connError("MAIL FROM", err), stale: true}
	}
	if err := c.Rcpt(to); err != nil {
		var tp *textproto.Error
		if errors.As(err, &tp) {
			return txResult{err: replyError("RCPT TO "+to, tp), keep: tp.Code != 421 && c.Reset() == nil}
		}
		return txResult{err: m.connError("RCPT TO", err)}
	}
	w, err := c.Data()
	if err != nil {
		var tp *textproto.Error
		if errors.As(err, &tp) {
			return txResult{err: replyError("DATA", tp), keep: tp.Code != 421 && c.Reset() == nil}
		}
		return txResult{err: m.connError("DATA", err)}
	}
	if _, err := msg.WriteTo(w); err != nil {
		return txResult{err: m.connError("writing the message", err)}
	}
	if err := w.Close(); err != nil {
		var tp *textproto.Error
		if errors.As(err, &tp) {
			return txResult{err: replyError("end of DATA", tp), keep: tp.Code != 421}
		}
		return txResult{err: m.connError("end of DATA", err)}
	}
	return txResult{keep: true}
}

// connError is a transient error for a connection that broke or timed out.
func (m *Mailer) connError(stage string, err error) *SendError {
	return &SendError{Channel: ChannelEmail, Code: networkCode(err), Err: err,
		Reason: stage + ": " + err.Error()}
}

var enhancedStatusRE = regexp.MustCompile(`^([245])\.\d{1,3}\.\d{1,3}\b`)

// replyError classifies an SMTP reply: 5xx permanent (530, 534, 535 and 538 as CodeAuth),
// 4xx transient. Code is the enhanced status code when the reply has one, else the reply code.
func replyError(stage string, tp *textproto.Error) *SendError {
	se := &SendError{Channel: ChannelEmail, Code: strconv.Itoa(tp.Code), Reason: stage + ": " + tp.Error()}
	if esc := enhancedStatusRE.FindString(tp.Msg); esc != "" && esc[0] == byte('0'+tp.Code/100) {
		se.Code = esc
	}
	switch {
	case tp.Code == 530 || tp.Code == 534 || tp.Code == 535 || tp.Code == 538:
		se.Permanent, se.Code = true, CodeAuth
		se.Reason = "authentication refused or required (check the SMTP username and password): " + se.Reason
	case tp.Code >= 500:
		se.Permanent = true
	}
	return se
}

// networkCode is CodeTimeout for a timeout, else CodeNetwork.
func networkCode(err error) string {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, context.DeadlineExceeded) {
		return CodeTimeout
	}
	return CodeNetwork
}

// ctxSendError is the transient error of a send whose context ended.
func ctxSendError(channel string, err error, stage string) *SendError {
	return &SendError{Channel: channel, Code: CodeTimeout, Err: err, Reason: stage + ": " + err.Error()}
}

func (pc *smtpConn) quit() {
	_ = pc.c.UpdateDeadline(2 * time.Second)
	_ = pc.c.Quit()
	_ = pc.raw.Close()
}

func (pc *smtpConn) close() { _ = pc.raw.Close() }

// connGuard closes the connection of a send when its context ends, which unblocks any read
// or write on it.
type connGuard struct {
	mu   sync.Mutex
	conn net.Conn
	done bool
}

// set makes c the guarded connection; it closes c and returns false when the context already
// ended.
func (g *connGuard) set(c net.Conn) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.done {
		_ = c.Close()
		return false
	}
	g.conn = c
	return true
}

// fired reports whether the context ended.
func (g *connGuard) fired() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.done
}

func (g *connGuard) fire() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.done = true
	if g.conn != nil {
		_ = g.conn.Close()
	}
}

// errNoAuthMechanism is a server that offers neither AUTH PLAIN nor AUTH LOGIN.
var errNoAuthMechanism = errors.New("the server offers neither AUTH PLAIN nor AUTH LOGIN")

// plainOrLogin authenticates with PLAIN when the server offers it, else with LOGIN (which some
// servers, Office 365 among them, offer alone). Both refuse to run without TLS except on
// loopback. One value serves one connection.
type plainOrLogin struct {
	user, pass, host string
	inner            gosmtp.Auth
}

func (a *plainOrLogin) Start(si *gosmtp.ServerInfo) (string, []byte, error) {
	has := func(mech string) bool {
		for _, m := range si.Auth {
			if strings.EqualFold(m, mech) {
				return true
			}
		}
		return false
	}
	switch {
	case has("PLAIN"):
		a.inner = gosmtp.PlainAuth("", a.user, a.pass, a.host, false)
	case has("LOGIN"):
		a.inner = gosmtp.LoginAuth(a.user, a.pass, a.host, false)
	default:
		return "", nil, errNoAuthMechanism
	}
	return a.inner.Start(si)
}

func (a *plainOrLogin) Next(fromServer []byte, more bool) ([]byte, error) {
	return a.inner.Next(fromServer, more)
}

// mailUserAgent is the User-Agent and X-Mailer of every message.
const mailUserAgent = "Coupongate"

// reservedHeaders are the fields Send writes itself.
var reservedHeaders = map[string]bool{
	"from": true, "to": true, "cc": true, "bcc": true, "subject": true, "date": true,
	"message-id": true, "mime-version": true, "sender": true,
}

// build turns e into a go-mail message and the envelope addresses.
func (m *Mailer) build(e Email) (*gomail.Msg, string, string, error) {
	invalid := func(format string, args ...any) error {
		return &SendError{Channel: ChannelEmail, Permanent: true, Code: CodeInvalid, Reason: fmt.Sprintf(format, args...)}
	}
	to, err := netmail.ParseAddress(e.To)
	if err != nil {
		return nil, "", "", invalid("recipient %q is not an e-mail address", e.To)
	}
	if e.Text == "" && e.HTML == "" {
		return nil, "", "", invalid("the message has no body")
	}
	if strings.ContainsAny(e.Subject, "\r\n") {
		return nil, "", "", invalid("the subject contains a line break")
	}
	id := strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(e.MessageID), "<"), ">")
	if id == "" {
		id = newMessageID(m.from.Address)
	} else if !validMessageID(id) {
		return nil, "", "", invalid("message ID %q is not of the form left@right", e.MessageID)
	}

	msg := gomail.NewMsg()
	msg.FromMailAddress(m.from)
	msg.ToMailAddress(to)
	msg.Subject(e.Subject)
	msg.SetMessageIDWithValue(id)
	msg.SetDate()
	msg.SetUserAgent(mailUserAgent)
	switch {
	case e.Text != "" && e.HTML != "":
		msg.SetBodyString(gomail.TypeTextPlain, e.Text)
		msg.AddAlternativeString(gomail.TypeTextHTML, e.HTML)
	case e.HTML != "":
		msg.SetBodyString(gomail.TypeTextHTML, e.HTML)
	default:
		msg.SetBodyString(gomail.TypeTextPlain, e.Text)
	}
	for k, v := range e.Headers {
		if !validHeaderName(k) {
			return nil, "", "", invalid("header name %q is not valid", k)
		}
		lk := strings.ToLower(k)
		if reservedHeaders[lk] || strings.HasPrefix(lk, "content-") {
			return nil, "", "", invalid("header %q is set by the mailer", k)
		}
		if strings.ContainsAny(v, "\r\n") {
			return nil, "", "", invalid("header %q contains a line break", k)
		}
		msg.SetGenHeader(gomail.Header(k), v)
	}
	from, err := msg.GetSender(false)
	if err != nil {
		return nil, "", "", invalid("sender: %v", err)
	}
	return msg, from, "<" + to.Address + ">", nil
}

// newMessageID is a random Message-ID on the sender's domain.
func newMessageID(from string) string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	domain := "coupongate.invalid"
	if i := strings.LastIndexByte(from, '@'); i >= 0 && i < len(from)-1 {
		domain = from[i+1:]
	}
	return hex.EncodeToString(b[:]) + "@" + domain
}

func validMessageID(id string) bool {
	at := strings.IndexByte(id, '@')
	if at <= 0 || at == len(id)-1 || len(id) > 900 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if c <= ' ' || c >= 0x7f || c == '<' || c == '>' || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

func validHeaderName(k string) bool {
	if k == "" || len(k) > 76 {
		return false
	}
	for i := 0; i < len(k); i++ {
		if c := k[i]; c <= ' ' || c >= 0x7f || c == ':' {
			return false
		}
	}
	return true
}
