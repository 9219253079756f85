package web

import (
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestLocalPath(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		next string
		ok   bool
	}{
		{"/", true},
		{"/bills/7", true},
		{"/bills/7?x=1", true},
		{"/?tab=done&q=M%C3%BCller", true},
		{"/?q=a+b&q2=%20x", true}, // the query is not a path: encoded spaces are fine
		{"/settings#template", true},
		{"/bills/7?next=//evil.example", true}, // in the query, not a host
		{"/@evil.example", true},               // a path segment, not userinfo
		{"/signing-sheet", true},

		{"/\t/evil.example", false}, // reported: browsers drop the tab, leaving //evil.example
		{"/\n/evil.example", false},
		{"/\r/evil.example", false},
		{"/ /evil.example", false},
		{"/\x00/evil.example", false},
		{"/\x1f/evil.example", false},
		{"/\x7f/evil.example", false},
		{"/\u00a0/evil.example", false},
		{"/\u3000/evil.example", false},
		{"//evil.example", false},
		{"///evil.example", false},
		{"/\\evil.example", false},
		{"/\\/evil.example", false},
		{"/bills\\..\\..\\evil", false},
		{"\\\\evil.example", false},
		{"/%2F/evil.example", false},
		{"/%2f%2fevil.example", false},
		{"/%5cevil.example", false},
		{"/%5C%5Cevil.example", false},
		{"/%09/evil.example", false},
		{"/%0d%0a/evil.example", false},
		{"/%00", false},
		{"/%7f", false},
		{"/bills/%20", false},
		{"%2F%2Fevil.example", false},
		{"https://evil.example/", false},
		{"HTTPS://evil.example/", false},
		{"http:evil.example", false},
		{"http:/evil.example", false},
		{"javascript:alert(1)", false},
		{"data:text/html,x", false},
		{"mailto:x@evil.example", false},
		{"evil.example", false},
		{"", false},
		{" /bills/1", false},
		{"/bills/1 ", false},
		{"./bills/1", false},
		{"../bills/1", false},
		{"?x=1", false},
		{"#x", false},
		{"/signin", false},
		{"/signin?next=/bills/1", false},
		{"/signin/", false},
		{"/%73ignin", false}, // the decoded path is /signin: a loop
	} {
		want := "/"
		if tc.ok {
			want = tc.next
		}
		require.Equal(t, want, localPath(tc.next), "%q", tc.next)
	}
}

// FuzzLocalPath checks that whatever next is, the answer is next or "/",
// and that a browser resolving it against this site stays on this site.
func FuzzLocalPath(f *testing.F) {
	for _, s := range []string{"/", "/bills/7?x=1", "/\t/evil.example", "//evil.example", "/\\evil", "/%2F/x", "https://e.example", "/a/../..//b"} {
		f.Add(s)
	}
	base, _ := url.Parse("https://callout.example/worklist")
	f.Fuzz(func(t *testing.T, next string) {
		got := localPath(next)
		if got != "/" && got != next {
			t.Fatalf("localPath(%q) = %q, want the input or /", next, got)
		}
		if strings.ContainsFunc(got, func(r rune) bool { return r <= ' ' || r >= 0x7f || r == '\\' }) {
			t.Fatalf("localPath(%q) = %q keeps a character a browser would drop or rewrite", next, got)
		}
		ref, err := url.Parse(got)
		if err != nil {
			t.Fatalf("localPath(%q) = %q does not parse: %v", next, got, err)
		}
		if to := base.ResolveReference(ref); to.Host != base.Host || to.Scheme != base.Scheme {
			t.Fatalf("localPath(%q) = %q leads to %s", next, got, to)
		}
		// A path decoded once must not begin a network-path reference either.
		if dec, err := url.PathUnescape(ref.EscapedPath()); err == nil && strings.HasPrefix(dec, "//") {
			t.Fatalf("localPath(%q) = %q decodes to %q", next, got, dec)
		}
	})
}

func TestClientAddr(t *testing.T) {
	t.Parallel()
	proxies, err := ParseTrustedProxies(" 10.0.0.0/8, 192.0.2.1 ,2001:db8:1::/48")
	require.NoError(t, err)
	for _, tc := range []struct {
		name      string
		remote    string
		forwarded []string
		trusted   []netip.Prefix
		want      string
	}{
		{"peer", "198.51.100.7:5123", nil, proxies, "198.51.100.7"},
		{"peer IPv6", "[2001:db8:2::7]:5123", nil, proxies, "2001:db8:2::7"},
		{"mapped IPv4", "[::ffff:198.51.100.7]:5123", nil, proxies, "198.51.100.7"},
		{"no trusted proxies: header ignored", "198.51.100.7:5123", []string{"203.0.113.9"}, nil, "198.51.100.7"},
		{"untrusted peer: header ignored", "198.51.100.7:5123", []string{"203.0.113.9"}, proxies, "198.51.100.7"},
		{"trusted proxy", "10.1.2.3:5123", []string{"203.0.113.9"}, proxies, "203.0.113.9"},
		{"forged entries left of the client", "10.1.2.3:5123", []string{"1.1.1.1, 203.0.113.9"}, proxies, "203.0.113.9"},
		{"chain of trusted proxies", "10.1.2.3:5123", []string{"203.0.113.9, 192.0.2.1", "10.9.9.9"}, proxies, "203.0.113.9"},
		{"IPv6 proxy", "[2001:db8:1::5]:443", []string{"2001:db8:9::1"}, proxies, "2001:db8:9::1"},
		{"port in the header", "10.1.2.3:5123", []string{"203.0.113.9:4711"}, proxies, "203.0.113.9"},
		{"bracketed IPv6 in the header", "10.1.2.3:5123", []string{"[2001:db8:9::1]"}, proxies, "2001:db8:9::1"},
		{"garbage: the last trusted hop", "10.1.2.3:5123", []string{"203.0.113.9, nonsense, 10.2.2.2"}, proxies, "10.2.2.2"},
		{"empty header", "10.1.2.3:5123", []string{""}, proxies, "10.1.2.3"},
		{"only proxies", "10.1.2.3:5123", []string{"10.5.5.5"}, proxies, "10.5.5.5"},
	} {
		require.Equal(t, tc.want, clientAddr(tc.remote, tc.forwarded, tc.trusted).String(), tc.name)
	}
	require.False(t, clientAddr("@", nil, proxies).IsValid(), "an unparsable peer is unknown")

	_, err = ParseTrustedProxies("10.0.0.0/33")
	require.Error(t, err)
	_, err = ParseTrustedProxies("proxy.example")
	require.Error(t, err)
}

// FuzzClientAddr checks that X-Forwarded-For can only name an address when
// the peer is a trusted proxy, and then only one of the header's entries.
func FuzzClientAddr(f *testing.F) {
	f.Add("10.1.2.3:5123", "203.0.113.9, 10.2.2.2")
	f.Add("198.51.100.7:1", "1.1.1.1")
	f.Add("[2001:db8:1::5]:443", "[::1]:80,garbage,,")
	trusted, _ := ParseTrustedProxies("10.0.0.0/8,2001:db8:1::/48")
	f.Fuzz(func(t *testing.T, remote, header string) {
		got := clientAddr(remote, []string{header}, trusted)
		peer := parseHop(remote)
		if !isTrusted(peer, trusted) && got != peer {
			t.Fatalf("untrusted peer %q, header %q: got %v", remote, header, got)
		}
		if got != peer && !slices.ContainsFunc(strings.Split(header, ","), func(e string) bool { return parseHop(e) == got }) {
			t.Fatalf("peer %q, header %q: got %v, which the header does not hold", remote, header, got)
		}
	})
}
