package hl7

import (
	"context"
	"crypto/tls"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"unicode/utf8"
)

// Peer is the sender at the other end of an MLLP connection, as a Handler
// sees it.
type Peer struct {
	Addr net.Addr
	// Subject is the subject of the client certificate verified in the TLS
	// handshake, in the form of CanonicalSubject; "" when the connection
	// has no verified client certificate (plain TCP, or TLS without client
	// authentication).
	Subject string
}

type peerKey struct{}

// PeerFromContext returns the peer of the connection a Handler's message
// came over; ok is false outside a Server's handler.
func PeerFromContext(ctx context.Context) (p Peer, ok bool) {
	p, ok = ctx.Value(peerKey{}).(Peer)
	return p, ok
}

// ContextWithPeer returns ctx carrying p, as Server gives it to a Handler.
// It is for calling handlers outside a Server, as tests do.
func ContextWithPeer(ctx context.Context, p Peer) context.Context {
	return context.WithValue(ctx, peerKey{}, p)
}

// verifiedSubject is the subject of the verified client certificate of a
// TLS connection, or "". Only a verified chain counts: a certificate the
// client merely presented proves nothing.
func verifiedSubject(cs tls.ConnectionState) string {
	if len(cs.VerifiedChains) == 0 || len(cs.VerifiedChains[0]) == 0 {
		return ""
	}
	return CanonicalSubject(cs.VerifiedChains[0][0].Subject)
}

// Attribute names of distinguished names, by OID: the names Go and OpenSSL
// print (upper-cased), so that a subject copied from either reads back.
var attrNames = map[string]string{
	"2.5.4.3": "CN", "2.5.4.4": "SN", "2.5.4.5": "SERIALNUMBER", "2.5.4.6": "C",
	"2.5.4.7": "L", "2.5.4.8": "ST", "2.5.4.9": "STREET", "2.5.4.10": "O",
	"2.5.4.11": "OU", "2.5.4.12": "TITLE", "2.5.4.17": "POSTALCODE", "2.5.4.42": "GN",
	"0.9.2342.19200300.100.1.1": "UID", "0.9.2342.19200300.100.1.25": "DC",
	"1.2.840.113549.1.9.1": "EMAILADDRESS",
}

// attrAliases maps other spellings of attribute names to those above.
var attrAliases = map[string]string{
	"E": "EMAILADDRESS", "EMAIL": "EMAILADDRESS", "S": "ST", "GIVENNAME": "GN", "SURNAME": "SN",
	"DOMAINCOMPONENT": "DC", "USERID": "UID", "COMMONNAME": "CN",
}

// CanonicalSubject renders a certificate subject in the one form used to
// compare subjects: its attributes as TYPE=value (OpenSSL's upper-cased
// short names, else the dotted OID), sorted and joined by commas, values
// escaped as RFC 4514 says. Attribute order and spelling do not matter to
// who a certificate names, so they do not matter here; values are compared
// exactly.
func CanonicalSubject(name pkix.Name) string {
	attrs := make([]string, 0, len(name.Names))
	for _, atv := range name.Names {
		attrs = append(attrs, attr(atv.Type, atv.Value))
	}
	return joinAttrs(attrs)
}

func attr(oid asn1.ObjectIdentifier, v any) string {
	typ, ok := attrNames[oid.String()]
	if !ok {
		typ = oid.String()
	}
	if s, ok := v.(string); ok {
		return typ + "=" + escapeDNValue(s)
	}
	// Not text: the DER in hex, as RFC 4514 writes such values.
	der, err := asn1.Marshal(v)
	if err != nil {
		return typ + "=" + escapeDNValue(fmt.Sprint(v))
	}
	return typ + "=#" + hex.EncodeToString(der)
}

func joinAttrs(attrs []string) string {
	slices.Sort(attrs)
	return strings.Join(attrs, ",")
}

// escapeDNValue escapes a value as RFC 4514 section 2.4 asks.
func escapeDNValue(v string) string {
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case strings.IndexByte(`,+"\<>;=`, c) >= 0,
			c == '#' && i == 0,
			c == ' ' && (i == 0 || i == len(v)-1):
			b.WriteByte('\\')
			b.WriteByte(c)
		case c < 0x20 || c == 0x7f:
			fmt.Fprintf(&b, "\\%02X", c)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// ParseSubject reads a distinguished name as people copy it — RFC 4514
// (`CN=lis.acme.example,O=Acme`, as Go and `openssl x509 -noout -subject
// -nameopt RFC2253` print it), OpenSSL's default (`subject=C = US, O = Acme,
// CN = lis`) or its old slash form (`/C=US/O=Acme/CN=lis`) — and returns it in
// the form of CanonicalSubject, to be compared with a certificate's.
func ParseSubject(dn string) (string, error) {
	dn = trimDN(dn)
	if low := strings.ToLower(dn); strings.HasPrefix(low, "subject=") || strings.HasPrefix(low, "subject:") {
		dn = trimDN(dn[len("subject="):])
	}
	if dn == "" {
		return "", errors.New("empty certificate subject")
	}
	if !utf8.ValidString(dn) {
		return "", errors.New("certificate subject is not valid UTF-8")
	}
	sep := ",;"
	if strings.HasPrefix(dn, "/") {
		sep, dn = "/", dn[1:]
	}
	var attrs []string
	for _, rdn := range splitUnescaped(dn, sep) {
		for _, a := range splitUnescaped(rdn, "+") {
			typ, val, ok := cutUnescaped(a, '=')
			if !ok {
				return "", fmt.Errorf("certificate subject: %q is not TYPE=value", strings.TrimSpace(a))
			}
			name, err := attrType(strings.TrimSpace(typ))
			if err != nil {
				return "", err
			}
			v, err := dnValue(val)
			if err != nil {
				return "", fmt.Errorf("certificate subject: %s: %w", name, err)
			}
			attrs = append(attrs, name+"="+v)
		}
	}
	return joinAttrs(attrs), nil
}

// attrType returns the canonical name of an attribute type: a short name
// (any case) or a dotted OID.
func attrType(t string) (string, error) {
	up := strings.ToUpper(t)
	if a, ok := attrAliases[up]; ok {
		return a, nil
	}
	for _, name := range attrNames {
		if name == up {
			return name, nil
		}
	}
	if strings.HasPrefix(up, "OID.") {
		t = t[4:]
	}
	var oid asn1.ObjectIdentifier
	for part := range strings.SplitSeq(t, ".") {
		n := 0
		if part == "" || len(part) > 9 {
			return "", fmt.Errorf("certificate subject: unknown attribute type %q (use a short name such as CN, O, OU, C, or a dotted OID)", t)
		}
		for _, c := range part {
			if c < '0' || c > '9' {
				return "", fmt.Errorf("certificate subject: unknown attribute type %q (use a short name such as CN, O, OU, C, or a dotted OID)", t)
			}
			n = n*10 + int(c-'0')
		}
		oid = append(oid, n)
	}
	if len(oid) < 2 {
		return "", fmt.Errorf("certificate subject: unknown attribute type %q", t)
	}
	if name, ok := attrNames[oid.String()]; ok {
		return name, nil
	}
	return oid.String(), nil
}

// splitUnescaped splits s at the bytes of seps that are neither escaped
// with a backslash nor inside double quotes.
func splitUnescaped(s, seps string) []string {
	var parts []string
	start, quoted := 0, false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\\':
			i++
		case c == '"':
			quoted = !quoted
		case !quoted && strings.IndexByte(seps, c) >= 0:
			parts = append(parts, s[start:i])
			start = i + 1
		}
	}
	return append(parts, s[start:])
}

// cutUnescaped is strings.Cut at the first unescaped sep.
func cutUnescaped(s string, sep byte) (before, after string, ok bool) {
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case sep:
			return s[:i], s[i+1:], true
		}
	}
	return s, "", false
}

// trimDN trims white space around s, except a space escaped at its end.
func trimDN(s string) string {
	s = strings.TrimLeft(s, " \t\r\n")
	for s != "" && strings.IndexByte(" \t\r\n", s[len(s)-1]) >= 0 && !strings.HasSuffix(s, `\ `) {
		s = s[:len(s)-1]
	}
	return s
}

// dnValue returns a written value in canonical form: text escaped by
// escapeDNValue, whatever its escaping or quoting was; a #hex DER value as
// its text when it is a string (Go prints e-mail addresses so), else as
// lower-case #hex.
func dnValue(v string) (string, error) {
	v = trimDN(v)
	if !strings.HasPrefix(v, "#") {
		text, err := unescapeDNValue(v)
		return escapeDNValue(text), err
	}
	der, err := hex.DecodeString(v[1:])
	if err != nil || len(der) == 0 {
		return "", fmt.Errorf("%q is not hex-encoded DER", v)
	}
	var val any
	if rest, err := asn1.Unmarshal(der, &val); err != nil || len(rest) > 0 {
		return "", fmt.Errorf("%q is not hex-encoded DER", v)
	}
	if text, ok := val.(string); ok {
		if text == "" || !utf8.ValidString(text) {
			return "", fmt.Errorf("%q is not a usable text value", v)
		}
		return escapeDNValue(text), nil
	}
	return "#" + hex.EncodeToString(der), nil
}

// unescapeDNValue undoes RFC 4514 escaping (\, and \2C alike) and the
// quotes of RFC 1779.
func unescapeDNValue(v string) (string, error) {
	if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
		v = v[1 : len(v)-1]
	}
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c == '"' {
			return "", errors.New(`a double quote inside a value must be escaped as \"`)
		}
		if c != '\\' {
			b.WriteByte(c)
			continue
		}
		if i+1 >= len(v) {
			return "", errors.New("value ends with a lone backslash")
		}
		if i+2 < len(v) && isHex(v[i+1]) && isHex(v[i+2]) {
			b.WriteByte(unhex(v[i+1])<<4 | unhex(v[i+2]))
			i += 2
			continue
		}
		b.WriteByte(v[i+1])
		i++
	}
	out := b.String()
	if out == "" {
		return "", errors.New("empty value")
	}
	if !utf8.ValidString(out) {
		return "", errors.New("value is not valid UTF-8")
	}
	return out, nil
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c >= 'a':
		return c - 'a' + 10
	}
	return c - 'A' + 10
}
