package messagingfake

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"fmt"
	"io"
	"math/big"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"net/textproto"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/coupongate/coupongate/integrations/messaging"
)

// DefaultSinkFrom is the From that SMTPSink.Settings uses when given none.
const DefaultSinkFrom = "Coupongate <no-reply@coupongate.test>"

// SinkConfig sets an SMTPSink's behaviour; the zero value is a plain-text sink without AUTH
// that accepts everything.
type SinkConfig struct {
	// TLS speaks TLS from the first byte (implicit TLS, as on port 465).
	TLS bool
	// StartTLS offers STARTTLS (as on port 587). AUTH is then offered only after it. With TLS
	// set too, TLS wins.
	StartTLS bool
	// Username and Password, when set, make the sink offer AUTH PLAIN and answer MAIL with
	// "530 5.7.0 Authentication required" to a session that has not authenticated. Wrong
	// credentials get "535 5.7.8 Authentication failed".
	Username string
	Password string
	// RejectRecipients maps an address (case-insensitive) to the code RCPT TO answers for it:
	// 550 (or any 5xx) "5.1.1 user unknown", 4xx "4.2.1 try again later".
	RejectRecipients map[string]int
	// CountOnly keeps no message, only counts them (for benchmarks that need no content).
	CountOnly bool
}

// Message is a message the sink received. From and To are the envelope (MAIL FROM and RCPT
// TO); Subject (decoded), MessageID (without angle brackets), Text and HTML (decoded, with
// CRLF turned into LF) come from the content, parsed with net/mail and mime/multipart.
type Message struct {
	From      string
	To        []string
	Subject   string
	Text      string
	HTML      string
	MessageID string
	Header    mail.Header
	Raw       []byte
	// TLS reports that the session was encrypted (implicit TLS or STARTTLS).
	TLS bool
	// AuthUser is the name the session authenticated as ("" without AUTH).
	AuthUser string
}

// SMTPSink is a running SMTP server on 127.0.0.1. Close it when done (NewSMTPSink does).
type SMTPSink struct {
	cfg       SinkConfig
	reject    map[string]int
	srv       *smtp.Server
	ln        net.Listener
	port      int
	cert      *x509.Certificate
	serverTLS *tls.Config
	served    chan struct{}

	count    atomic.Int64
	accepted atomic.Int64

	mu       sync.Mutex
	raw      []rawMessage
	failures []int
	conns    map[*trackedConn]struct{}
}

type rawMessage struct {
	from string
	to   []string
	data []byte
	tls  bool
	user string
}

// NewSMTPSink starts a sink and closes it when the test ends.
func NewSMTPSink(t testingT, cfg SinkConfig) *SMTPSink {
	t.Helper()
	s, err := StartSMTPSink(cfg)
	if err != nil {
		t.Fatalf("messagingfake: %v", err)
	}
	t.Cleanup(s.Close)
	return s
}

// StartSMTPSink starts a sink outside a test.
func StartSMTPSink(cfg SinkConfig) (*SMTPSink, error) {
	s := &SMTPSink{cfg: cfg, reject: make(map[string]int), conns: make(map[*trackedConn]struct{}), served: make(chan struct{})}
	for addr, code := range cfg.RejectRecipients {
		s.reject[strings.ToLower(strings.TrimSpace(addr))] = code
	}
	certPEM, tlsCert, err := selfSignedCert()
	if err != nil {
		return nil, err
	}
	s.cert = certPEM
	s.serverTLS = &tls.Config{Certificates: []tls.Certificate{tlsCert}, MinVersion: tls.VersionTLS12}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("sink: listen: %w", err)
	}
	s.port = ln.Addr().(*net.TCPAddr).Port
	var l net.Listener = &trackingListener{Listener: ln, sink: s}
	if cfg.TLS {
		l = tls.NewListener(l, s.serverTLS)
	}
	s.ln = l

	srv := smtp.NewServer(smtp.BackendFunc(s.newSession))
	srv.Domain = "sink.coupongate.test"
	srv.MaxMessageBytes = 32 << 20
	srv.MaxRecipients = 100
	srv.ReadTimeout = time.Minute
	srv.WriteTimeout = time.Minute
	srv.ErrorLog = discardLogger{}
	if cfg.StartTLS && !cfg.TLS {
		srv.TLSConfig = s.serverTLS
	}
	// Without any TLS the sink lets AUTH run in clear text (it listens on loopback only).
	srv.AllowInsecureAuth = !cfg.TLS && !cfg.StartTLS
	s.srv = srv
	go func() {
		defer close(s.served)
		_ = srv.Serve(l)
	}()
	return s, nil
}

// Close stops the server and closes every connection.
func (s *SMTPSink) Close() {
	_ = s.srv.Close()
	_ = s.ln.Close() // in case Serve had not registered it yet
	<-s.served
}

// Addr returns the host ("127.0.0.1") and port the sink listens on.
func (s *SMTPSink) Addr() (string, int) { return "127.0.0.1", s.port }

// TLSConfig returns a client configuration that trusts the sink's certificate (which names
// 127.0.0.1, ::1 and localhost).
func (s *SMTPSink) TLSConfig() *tls.Config {
	pool := x509.NewCertPool()
	pool.AddCert(s.cert)
	return &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
}

// Settings returns messaging settings for the sink: its address, credentials, the security
// it speaks and a TLS config trusting it. from "" means DefaultSinkFrom.
func (s *SMTPSink) Settings(from string) messaging.SMTPSettings {
	if from == "" {
		from = DefaultSinkFrom
	}
	sec := messaging.SecurityNone
	switch {
	case s.cfg.TLS:
		sec = messaging.SecurityTLS
	case s.cfg.StartTLS:
		sec = messaging.SecurityStartTLS
	}
	host, port := s.Addr()
	return messaging.SMTPSettings{Host: host, Port: port, Username: s.cfg.Username, Password: s.cfg.Password,
		From: from, Security: sec, TLSConfig: s.TLSConfig()}
}

// Count is how many messages the sink accepted.
func (s *SMTPSink) Count() int { return int(s.count.Load()) }

// Connections is how many connections the sink accepted in all.
func (s *SMTPSink) Connections() int { return int(s.accepted.Load()) }

// OpenConnections is how many connections are open now.
func (s *SMTPSink) OpenConnections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

// DropConnections closes every open connection without a word, as a server does to an idle
// client, and returns how many it closed.
func (s *SMTPSink) DropConnections() int {
	s.mu.Lock()
	conns := make([]*trackedConn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		_ = c.Close()
	}
	return len(conns)
}

// FailNext makes the next n messages fail at the end of DATA with code (a 4xx such as 451 or
// 421 for a transient failure, or a 5xx), after their content was read.
func (s *SMTPSink) FailNext(n int, code int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.failures = append(s.failures, code)
	}
}

// Reset forgets the messages received so far (not the counts).
func (s *SMTPSink) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.raw = nil
}

// Messages parses and returns the messages received, in order (none with CountOnly).
func (s *SMTPSink) Messages() []Message {
	s.mu.Lock()
	raw := append([]rawMessage(nil), s.raw...)
	s.mu.Unlock()
	out := make([]Message, len(raw))
	for i, rm := range raw {
		out[i] = parseMessage(rm)
	}
	return out
}

func (s *SMTPSink) newSession(c *smtp.Conn) (smtp.Session, error) {
	_, isTLS := c.TLSConnectionState()
	return &sinkSession{sink: s, tls: isTLS}, nil
}

func (s *SMTPSink) takeFailure() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.failures) == 0 {
		return 0
	}
	code := s.failures[0]
	s.failures = s.failures[1:]
	return code
}

// sinkSession is one SMTP session (a new one after STARTTLS).
type sinkSession struct {
	sink *SMTPSink
	tls  bool
	user string
	from string
	to   []string
}

var errAuthRequired = &smtp.SMTPError{Code: 530, EnhancedCode: smtp.EnhancedCode{5, 7, 0}, Message: "Authentication required"}

func (ss *sinkSession) AuthMechanisms() []string {
	if ss.sink.cfg.Username == "" {
		return nil
	}
	return []string{sasl.Plain}
}

func (ss *sinkSession) Auth(mech string) (sasl.Server, error) {
	if ss.sink.cfg.Username == "" || mech != sasl.Plain {
		return nil, smtp.ErrAuthUnknownMechanism
	}
	return sasl.NewPlainServer(func(identity, username, password string) error {
		cfg := ss.sink.cfg
		okUser := subtle.ConstantTimeCompare([]byte(username), []byte(cfg.Username)) == 1
		okPass := subtle.ConstantTimeCompare([]byte(password), []byte(cfg.Password)) == 1
		if !okUser || !okPass || (identity != "" && identity != username) {
			return smtp.ErrAuthFailed
		}
		ss.user = username
		return nil
	}), nil
}

func (ss *sinkSession) Mail(from string, _ *smtp.MailOptions) error {
	if ss.sink.cfg.Username != "" && ss.user == "" {
		return errAuthRequired
	}
	ss.from = from
	ss.to = nil
	return nil
}

func (ss *sinkSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	if code, ok := ss.sink.reject[strings.ToLower(to)]; ok {
		if code >= 500 {
			return &smtp.SMTPError{Code: code, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "<" + to + ">: Recipient address rejected: User unknown"}
		}
		return &smtp.SMTPError{Code: code, EnhancedCode: smtp.EnhancedCode{4, 2, 1}, Message: "<" + to + ">: Recipient address rejected: Try again later"}
	}
	ss.to = append(ss.to, to)
	return nil
}

func (ss *sinkSession) Data(r io.Reader) error {
	s := ss.sink
	var data []byte
	if s.cfg.CountOnly {
		if _, err := io.Copy(io.Discard, r); err != nil {
			return err
		}
	} else {
		b, err := io.ReadAll(r)
		if err != nil {
			return err
		}
		data = b
	}
	if code := s.takeFailure(); code != 0 {
		if code >= 500 {
			return &smtp.SMTPError{Code: code, EnhancedCode: smtp.EnhancedCode{5, 3, 0}, Message: "Message rejected"}
		}
		return &smtp.SMTPError{Code: code, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "Temporary failure, try again later"}
	}
	if !s.cfg.CountOnly {
		rm := rawMessage{from: ss.from, to: ss.to, data: data, tls: ss.tls, user: ss.user}
		s.mu.Lock()
		s.raw = append(s.raw, rm)
		s.mu.Unlock()
	}
	s.count.Add(1)
	ss.to = nil
	return nil
}

func (ss *sinkSession) Reset() {
	ss.from = ""
	ss.to = nil
}

func (ss *sinkSession) Logout() error { return nil }

// parseMessage reads the content of a received message.
func parseMessage(rm rawMessage) Message {
	m := Message{From: rm.from, To: rm.to, Raw: rm.data, TLS: rm.tls, AuthUser: rm.user}
	msg, err := mail.ReadMessage(bytes.NewReader(rm.data))
	if err != nil {
		return m
	}
	m.Header = msg.Header
	subject := msg.Header.Get("Subject")
	if dec, err := new(mime.WordDecoder).DecodeHeader(subject); err == nil {
		subject = dec
	}
	m.Subject = subject
	m.MessageID = strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(msg.Header.Get("Message-Id")), "<"), ">")
	walkPart(textproto.MIMEHeader(msg.Header), msg.Body, &m, true)
	return m
}

// walkPart collects the first text/plain and text/html parts of a (possibly multipart) body.
// The line break that ends a single-part message (every SMTP message ends with one) is not
// part of its text.
func walkPart(h textproto.MIMEHeader, body io.Reader, m *Message, top bool) {
	mt, params, err := mime.ParseMediaType(h.Get("Content-Type"))
	if err != nil {
		mt = "text/plain"
	}
	if strings.HasPrefix(mt, "multipart/") {
		mr := multipart.NewReader(body, params["boundary"])
		for {
			p, err := mr.NextPart()
			if err != nil {
				return
			}
			walkPart(p.Header, p, m, false)
		}
	}
	switch strings.ToLower(strings.TrimSpace(h.Get("Content-Transfer-Encoding"))) {
	case "quoted-printable":
		body = quotedprintable.NewReader(body)
	case "base64":
		body = base64.NewDecoder(base64.StdEncoding, body)
	}
	b, err := io.ReadAll(body)
	if err != nil {
		return
	}
	text := strings.ReplaceAll(string(b), "\r\n", "\n")
	if top {
		text = strings.TrimSuffix(text, "\n")
	}
	switch mt {
	case "text/plain":
		if m.Text == "" {
			m.Text = text
		}
	case "text/html":
		if m.HTML == "" {
			m.HTML = text
		}
	}
}

// selfSignedCert makes a short-lived ECDSA certificate for 127.0.0.1, ::1 and localhost.
func selfSignedCert() (*x509.Certificate, tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, tls.Certificate{}, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return nil, tls.Certificate{}, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "messagingfake SMTP sink"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		DNSNames:              []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, tls.Certificate{}, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, tls.Certificate{}, err
	}
	return cert, tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: cert}, nil
}

// trackingListener remembers the connections it accepts, so DropConnections can cut them.
type trackingListener struct {
	net.Listener
	sink *SMTPSink
}

func (l *trackingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	tc := &trackedConn{Conn: c, sink: l.sink}
	l.sink.mu.Lock()
	l.sink.conns[tc] = struct{}{}
	l.sink.mu.Unlock()
	l.sink.accepted.Add(1)
	return tc, nil
}

type trackedConn struct {
	net.Conn
	sink *SMTPSink
	once sync.Once
}

func (c *trackedConn) Close() error {
	c.once.Do(func() {
		c.sink.mu.Lock()
		delete(c.sink.conns, c)
		c.sink.mu.Unlock()
	})
	return c.Conn.Close()
}

// discardLogger silences go-smtp's error log (dropped connections are expected here).
type discardLogger struct{}

func (discardLogger) Printf(string, ...any) {}
func (discardLogger) Println(...any)        {}
