package notify

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	netmail "net/mail"
	"net/textproto"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	mail "github.com/wneessen/go-mail"
)

// DefaultSMTPTimeout bounds one Send (connect, TLS, auth and transfer) when
// neither SMTPConfig.Timeout nor the context sets a shorter limit.
const DefaultSMTPTimeout = 30 * time.Second

// Default ports when the SMTP URL has none, as curl and most tools use them.
const (
	defaultSMTPPort  = 25
	defaultSMTPSPort = 465
)

// ErrInvalidEmail marks an Email or configuration the mailer refuses before
// talking to any server. Such errors are permanent: retrying cannot help.
var ErrInvalidEmail = errors.New("invalid email")

// SMTPConfig configures a Mailer.
type SMTPConfig struct {
	// URL is smtp://[user:pass@]host[:port] (STARTTLS when the server offers
	// it, plain otherwise; default port 25) or smtps://[user:pass@]host[:port]
	// (implicit TLS; default port 465). User and password must be
	// percent-encoded; authentication happens only when a user is given.
	URL string
	// From is the sender, e.g. "Acme Lab <alerts@lab.example>".
	From string
	// HelloName is the EHLO name; "" lets go-mail use the local hostname.
	HelloName string
	// TLSConfig overrides the TLS settings (e.g. a private CA); nil uses the
	// system roots. ServerName defaults to the URL's host.
	TLSConfig *tls.Config
	// Timeout bounds one Send; 0 means DefaultSMTPTimeout. A context
	// deadline that is sooner wins.
	Timeout time.Duration
}

// SMTPServer is a parsed SMTP URL.
type SMTPServer struct {
	Host        string
	Port        int
	Username    string
	Password    string
	Auth        bool // user info was given: authenticate
	ImplicitTLS bool // smtps://: TLS from the first byte
}

// String returns the URL with the password masked, for logs.
func (s SMTPServer) String() string {
	scheme := "smtp"
	if s.ImplicitTLS {
		scheme = "smtps"
	}
	u := url.URL{Scheme: scheme, Host: net.JoinHostPort(s.Host, strconv.Itoa(s.Port))}
	if s.Auth {
		u.User = url.UserPassword(s.Username, "xxxxx")
	}
	return u.String()
}

// ParseSMTPURL parses smtp://user:pass@host:port or smtps://user:pass@host:port.
// Error messages never include the password.
func ParseSMTPURL(s string) (SMTPServer, error) {
	if strings.TrimSpace(s) == "" {
		return SMTPServer{}, errors.New("smtp url: empty")
	}
	u, err := url.Parse(strings.TrimSpace(s))
	if err != nil {
		// url.Error repeats the whole URL, password included: keep only
		// the reason.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return SMTPServer{}, fmt.Errorf("smtp url: %w", err)
	}
	var srv SMTPServer
	switch strings.ToLower(u.Scheme) {
	case "smtp":
		srv.Port = defaultSMTPPort
	case "smtps":
		srv.Port, srv.ImplicitTLS = defaultSMTPSPort, true
	case "":
		return SMTPServer{}, errors.New("smtp url: missing scheme, want smtp:// or smtps://")
	default:
		return SMTPServer{}, fmt.Errorf("smtp url: unsupported scheme %q, want smtp or smtps", u.Scheme)
	}
	if u.Opaque != "" {
		return SMTPServer{}, errors.New("smtp url: want smtp://host[:port], missing // after the scheme")
	}
	srv.Host = u.Hostname()
	if srv.Host == "" {
		return SMTPServer{}, errors.New("smtp url: missing host")
	}
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return SMTPServer{}, fmt.Errorf("smtp url: invalid port %q", p)
		}
		srv.Port = n
	}
	if (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return SMTPServer{}, errors.New("smtp url: unexpected path, query or fragment")
	}
	if u.User != nil {
		srv.Username = u.User.Username()
		srv.Password, _ = u.User.Password()
		if srv.Username == "" {
			return SMTPServer{}, errors.New("smtp url: empty user name (omit user info for no authentication)")
		}
		srv.Auth = true
	}
	return srv, nil
}

// Attachment is a file attached to an Email.
type Attachment struct {
	Name        string
	ContentType string // e.g. "application/pdf"; "" means application/octet-stream
	Data        []byte
}

// Email is one message to one recipient.
type Email struct {
	// MessageID is the Message-ID without angle brackets, e.g.
	// "callout-42.recipient-7@lab.example". The caller derives it from the
	// callout and the recipient so a retry after a crash re-sends the very
	// same message, which receiving systems can de-duplicate.
	MessageID string
	// To is exactly one recipient: recipients never see each other. It
	// may carry a display name ("Dr. A <a@x>"); pass the bare address when
	// the patient's name is hidden and the patient is the recipient.
	To          string
	Subject     string
	HTML        string
	Text        string
	Attachments []Attachment
}

// Mailer sends Emails over SMTP. It is safe for concurrent use; every Send
// uses its own connection.
type Mailer struct {
	cfg    SMTPConfig
	server SMTPServer
}

// NewMailer validates cfg and returns a Mailer. It does not connect.
func NewMailer(cfg SMTPConfig) (*Mailer, error) {
	srv, err := ParseSMTPURL(cfg.URL)
	if err != nil {
		return nil, err
	}
	if _, err := netmail.ParseAddress(cfg.From); err != nil {
		return nil, fmt.Errorf("smtp from address %q: %w", cfg.From, err)
	}
	if cfg.Timeout < 0 {
		return nil, fmt.Errorf("smtp timeout %s: must not be negative", cfg.Timeout)
	}
	if strings.ContainsAny(cfg.HelloName, " \r\n") {
		return nil, fmt.Errorf("smtp hello name %q: must be a host name", cfg.HelloName)
	}
	return &Mailer{cfg: cfg, server: srv}, nil
}

// Server returns the parsed SMTP URL (String() masks the password).
func (m *Mailer) Server() SMTPServer { return m.server }

// Send delivers e. The returned error is a *SendError; use IsPermanent to
// decide whether retrying makes sense. Cancelling ctx aborts the transfer.
func (m *Mailer) Send(ctx context.Context, e Email) error {
	msg, err := m.buildMessage(e)
	if err != nil {
		return &SendError{Permanent: true, Err: err}
	}

	timeout := m.cfg.Timeout
	if timeout == 0 {
		timeout = DefaultSMTPTimeout
	}
	if dl, ok := ctx.Deadline(); ok {
		timeout = min(timeout, time.Until(dl))
	}
	if timeout <= 0 || ctx.Err() != nil {
		return &SendError{Err: fmt.Errorf("smtp send to %s: %w", e.To, context.Cause(ctx))}
	}

	// go-mail applies its timeout to each network operation but only
	// watches ctx while dialling: closing the connection when ctx is done
	// makes cancellation work during the whole conversation too. And the
	// connection never outlives Send: when go-mail gives up on its own
	// timeout, its QUIT fails on the expired deadline and leaves the
	// connection open, so a mail server could still be holding this
	// attempt while the job's next one begins.
	var (
		mu    sync.Mutex
		stops []func() bool
		conns []net.Conn
	)
	defer func() {
		mu.Lock()
		defer mu.Unlock()
		for _, stop := range stops {
			stop()
		}
		for _, c := range conns {
			_ = c.Close()
		}
	}()
	tlsCfg := m.tlsConfig()
	dial := func(dctx context.Context, network, addr string) (net.Conn, error) {
		nd := &net.Dialer{}
		var conn net.Conn
		var err error
		if m.server.ImplicitTLS {
			// Dialling TLS ourselves (instead of go-mail's WithSSL) keeps
			// the cancellation hook; go-mail still sees a *tls.Conn and
			// treats the session as encrypted.
			conn, err = (&tls.Dialer{NetDialer: nd, Config: tlsCfg}).DialContext(dctx, network, addr)
		} else {
			conn, err = nd.DialContext(dctx, network, addr)
		}
		if err != nil {
			return nil, err
		}
		mu.Lock()
		stops = append(stops, context.AfterFunc(ctx, func() { _ = conn.Close() }))
		conns = append(conns, conn)
		mu.Unlock()
		return conn, nil
	}

	opts := []mail.Option{
		mail.WithPort(m.server.Port),
		mail.WithTimeout(timeout),
		mail.WithTLSPolicy(mail.TLSOpportunistic),
		mail.WithTLSConfig(tlsCfg),
		mail.WithDialContextFunc(dial),
	}
	if m.cfg.HelloName != "" {
		opts = append(opts, mail.WithHELO(m.cfg.HelloName))
	}
	if m.server.Auth {
		// Strongest shared mechanism first; PLAIN and LOGIN are refused by
		// go-mail over a cleartext connection (except to localhost), so a
		// server without STARTTLS never receives the password in clear.
		// Anything else falls back to go-mail's auto-discovery.
		opts = append(opts,
			mail.WithUsername(m.server.Username),
			mail.WithPassword(m.server.Password),
			mail.WithOpportunisticSMTPAuth(mail.SMTPAuthSCRAMSHA256, mail.SMTPAuthSCRAMSHA1,
				mail.SMTPAuthPlain, mail.SMTPAuthLogin),
		)
	}
	// A fresh client per Send: go-mail's opportunistic auth mutates the
	// client, so sharing one between concurrent sends would race.
	client, err := mail.NewClient(m.server.Host, opts...)
	if err != nil {
		return &SendError{Permanent: true, Err: fmt.Errorf("smtp client for %s: %w", m.server, err)}
	}
	if err := client.DialAndSendWithContext(ctx, msg); err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("%w (%v)", context.Cause(ctx), err)
		}
		return classify(fmt.Errorf("smtp send to %s via %s: %w", e.To, m.server, err))
	}
	return nil
}

func (m *Mailer) tlsConfig() *tls.Config {
	var c *tls.Config
	if m.cfg.TLSConfig != nil {
		c = m.cfg.TLSConfig.Clone()
	} else {
		c = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	if c.ServerName == "" {
		c.ServerName = m.server.Host
	}
	return c
}

func (m *Mailer) buildMessage(e Email) (*mail.Msg, error) {
	if err := validMessageID(e.MessageID); err != nil {
		return nil, err
	}
	to, err := netmail.ParseAddressList(e.To)
	if err != nil || len(to) != 1 {
		return nil, fmt.Errorf("%w: To %q must be exactly one address", ErrInvalidEmail, e.To)
	}
	if e.HTML == "" && e.Text == "" {
		return nil, fmt.Errorf("%w: no body", ErrInvalidEmail)
	}
	msg := mail.NewMsg(mail.WithNoDefaultUserAgent())
	if err := msg.From(m.cfg.From); err != nil {
		return nil, fmt.Errorf("%w: From %q: %v", ErrInvalidEmail, m.cfg.From, err)
	}
	if err := msg.To(to[0].String()); err != nil {
		return nil, fmt.Errorf("%w: To %q: %v", ErrInvalidEmail, e.To, err)
	}
	// A subject is a single header line: never let a stray newline in a
	// lab name become header injection.
	msg.Subject(strings.Join(strings.Fields(e.Subject), " "))
	msg.SetMessageIDWithValue(e.MessageID)
	msg.SetDate()
	// RFC 3834: tells autoresponders not to reply to this notification.
	msg.SetGenHeader("Auto-Submitted", "auto-generated")

	switch {
	case e.Text != "" && e.HTML != "":
		msg.SetBodyString(mail.TypeTextPlain, e.Text)
		msg.AddAlternativeString(mail.TypeTextHTML, e.HTML)
	case e.Text != "":
		msg.SetBodyString(mail.TypeTextPlain, e.Text)
	default:
		msg.SetBodyString(mail.TypeTextHTML, e.HTML)
	}
	for _, a := range e.Attachments {
		if a.Name == "" || strings.ContainsAny(a.Name, "\r\n/\\") {
			return nil, fmt.Errorf("%w: attachment name %q", ErrInvalidEmail, a.Name)
		}
		ct := a.ContentType
		if ct == "" {
			ct = string(mail.TypeAppOctetStream)
		}
		if err := msg.AttachReader(a.Name, bytes.NewReader(a.Data), mail.WithFileContentType(mail.ContentType(ct))); err != nil {
			return nil, fmt.Errorf("attach %s: %w", a.Name, err)
		}
	}
	return msg, nil
}

// validMessageID checks the id-left "@" id-right form of RFC 5322 loosely:
// enough to guarantee a well-formed, stable header.
func validMessageID(id string) error {
	switch {
	case id == "":
		return fmt.Errorf("%w: empty Message-ID", ErrInvalidEmail)
	case strings.ContainsAny(id, "<> \t\r\n\"(),;:\\[]"):
		return fmt.Errorf("%w: Message-ID %q must be bare (no angle brackets, spaces or specials)", ErrInvalidEmail, id)
	case strings.Count(id, "@") != 1 || strings.HasPrefix(id, "@") || strings.HasSuffix(id, "@"):
		return fmt.Errorf("%w: Message-ID %q must look like left@right", ErrInvalidEmail, id)
	}
	return nil
}

// SendError is the error Mailer.Send returns.
type SendError struct {
	// Code is the SMTP reply code that failed the send, 0 when there was
	// none (network error, timeout, local validation).
	Code int
	// Permanent is true for 5xx replies and for messages the mailer
	// refused locally; retrying them cannot succeed.
	Permanent bool
	Err       error
}

// Error describes the failure and whether it is worth retrying.
func (e *SendError) Error() string {
	kind := "temporary"
	if e.Permanent {
		kind = "permanent"
	}
	if e.Code != 0 {
		return fmt.Sprintf("%s smtp error %d: %v", kind, e.Code, e.Err)
	}
	return fmt.Sprintf("%s smtp error: %v", kind, e.Err)
}

// Unwrap returns the underlying error.
func (e *SendError) Unwrap() error { return e.Err }

// IsPermanent reports whether err is a permanent delivery failure: a 5xx
// SMTP reply (e.g. 550 user unknown) or a message refused before sending.
// Everything else (connection refused, timeouts, TLS or auth negotiation
// problems without a 5xx reply, 4xx replies) is treated as temporary,
// because for a critical result retrying is the safer default.
func IsPermanent(err error) bool {
	if err == nil {
		return false
	}
	var se *SendError
	if errors.As(err, &se) {
		return se.Permanent
	}
	if errors.Is(err, ErrInvalidEmail) {
		return true
	}
	code := replyCode(err)
	return code >= 500 && code < 600
}

// classify wraps a go-mail error into a *SendError with the SMTP reply code
// when there is one.
func classify(err error) *SendError {
	code := replyCode(err)
	return &SendError{Code: code, Permanent: code >= 500 && code < 600, Err: err}
}

// replyCode extracts the SMTP reply code from err: go-mail reports replies
// during the transaction as *mail.SendError and replies while connecting
// (greeting, EHLO, AUTH) as *textproto.Error.
func replyCode(err error) int {
	var tp *textproto.Error
	if errors.As(err, &tp) {
		return tp.Code
	}
	var me *mail.SendError
	if errors.As(err, &me) {
		return me.ErrorCode()
	}
	return 0
}

// FaxAddress returns the email address of a fax number at an email-to-fax
// gateway: the number's digits (spaces, dashes, parentheses and a leading
// "+" dropped) "@" gateway, e.g. "+1 (555) 123-4567" at "fax.example" is
// "15551234567@fax.example".
func FaxAddress(number, gateway string) (string, error) {
	var digits strings.Builder
	for _, r := range number {
		if r >= '0' && r <= '9' {
			digits.WriteRune(r)
		}
	}
	if digits.Len() < 6 {
		return "", fmt.Errorf("fax number %q: want at least 6 digits", number)
	}
	gw := strings.TrimPrefix(strings.TrimSpace(gateway), "@")
	if gw == "" {
		return "", errors.New("fax gateway domain is not configured")
	}
	addr := digits.String() + "@" + gw
	if strings.ContainsAny(gw, "@ <>") {
		return "", fmt.Errorf("fax gateway %q: want a domain name", gateway)
	}
	if _, err := netmail.ParseAddress(addr); err != nil {
		return "", fmt.Errorf("fax gateway %q: %w", gateway, err)
	}
	return addr, nil
}
