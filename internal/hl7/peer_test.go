package hl7

import (
	"crypto/x509/pkix"
	"encoding/asn1"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestParseSubject(t *testing.T) {
	t.Parallel()
	const acme = "C=US,CN=lis.acme.example,O=Acme"
	tests := []struct {
		in, want, err string
	}{
		{in: "CN=lis.acme.example,O=Acme,C=US", want: acme},
		{in: "C=US, O=Acme, CN=lis.acme.example", want: acme},
		{in: "subject=C = US, O = Acme, CN = lis.acme.example", want: acme},
		{in: "/C=US/O=Acme/CN=lis.acme.example", want: acme},
		{in: "cn=lis.acme.example;o=Acme;c=US", want: acme},
		{in: "CN=lis.acme.example+O=Acme,C=US", want: acme},
		{in: "CommonName=lis.acme.example,OID.2.5.4.10=Acme,2.5.4.6=US", want: acme},
		{in: `CN=Acme\, Inc.`, want: `CN=Acme\, Inc.`},
		{in: `CN="Acme, Inc."`, want: `CN=Acme\, Inc.`},
		{in: `CN=Acme\2C Inc.`, want: `CN=Acme\, Inc.`},
		{in: `CN=\ padded\ `, want: `CN=\ padded\ `},
		{in: "emailAddress=lis@acme.example", want: "EMAILADDRESS=lis@acme.example"},
		{in: "E=lis@acme.example", want: "EMAILADDRESS=lis@acme.example"},
		{in: "1.3.6.1.4.1.99999.1=x", want: "1.3.6.1.4.1.99999.1=x"},
		{in: "OU=b,OU=a", want: "OU=a,OU=b"},
		{in: "", err: "empty"},
		{in: "subject=", err: "empty"},
		{in: "CN", err: "is not TYPE=value"},
		{in: "CN=a,,O=b", err: "is not TYPE=value"},
		{in: "FOO=bar", err: "unknown attribute type"},
		{in: "1=x", err: "unknown attribute type"},
		{in: "CN=", err: "empty value"},
		{in: "CN=#0c036c6973", want: "CN=lis"},
		{in: "1.3.6.1.4.1.99999.1=#0201FF", want: "1.3.6.1.4.1.99999.1=#0201ff"},
		{in: "CN=#0c", err: "not hex-encoded DER"},
		{in: "CN=#zz", err: "not hex-encoded DER"},
		{in: `CN=a\`, err: "lone backslash"},
		{in: `CN=a"b`, err: "double quote"},
		{in: `CN=\FF`, err: "UTF-8"},
	}
	for _, tt := range tests {
		got, err := ParseSubject(tt.in)
		if tt.err != "" {
			require.ErrorContains(t, err, tt.err, tt.in)
			continue
		}
		require.NoError(t, err, tt.in)
		require.Equal(t, tt.want, got, tt.in)
	}
}

// TestSubjectOfCertificate: a subject as Go prints it, or as it is written
// in another order, matches the certificate's.
func TestSubjectOfCertificate(t *testing.T) {
	t.Parallel()
	name := pkix.Name{CommonName: "Acme, Inc. LIS", Organization: []string{"Acme"}, OrganizationalUnit: []string{"Lab", "IT"},
		Country: []string{"US"}, ExtraNames: []pkix.AttributeTypeAndValue{
			{Type: asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 1}, Value: "lis@acme.example"}}}
	// Names is what a parsed certificate carries.
	var parsed pkix.Name
	parsed.FillFromRDNSequence(new(name.ToRDNSequence()))
	canon := CanonicalSubject(parsed)
	require.Equal(t, `C=US,CN=Acme\, Inc. LIS,EMAILADDRESS=lis@acme.example,O=Acme,OU=IT,OU=Lab`, canon)
	for _, written := range []string{
		parsed.String(),
		"emailAddress=lis@acme.example, CN=Acme\\, Inc. LIS, OU=Lab, OU=IT, O=Acme, C=US",
	} {
		got, err := ParseSubject(written)
		require.NoError(t, err, written)
		require.Equal(t, canon, got, written)
	}
}

// FuzzParseSubject: no input panics, and a parsed subject parses to itself.
func FuzzParseSubject(f *testing.F) {
	for _, s := range []string{"CN=a,O=b", `CN=Acme\, Inc.`, `/C=US/CN="x y"`, "subject=C = US", `CN=\ a\ +OU=\#b`, "2.5.4.3=x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		got, err := ParseSubject(in)
		if err != nil {
			return
		}
		again, err := ParseSubject(got)
		if err != nil || again != got {
			t.Fatalf("ParseSubject(%q) = %q, which parses to %q, %v", in, got, again, err)
		}
	})
}
