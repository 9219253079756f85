package ingest_test

import (
	"context"
	"net"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"callout/internal/callout"
	"callout/internal/hl7"
	"callout/internal/storetest"
)

// TestFacilityBoundToCertificate: a facility bound to a certificate subject
// is accepted only from a connection whose verified client certificate has
// that subject; any other sender gets AR and nothing is stored. (The real
// TLS handshakes are in cmd/callout's TestHL7FacilityBoundToCertificate.)
func TestFacilityBoundToCertificate(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, e storetest.Engine) {
		b := setup(t, e)
		ctx := context.Background()
		acme, err := hl7.ParseSubject("CN=lis.acme.example, O=Acme")
		require.NoError(t, err)
		require.NoError(t, b.fx.Store.SetHL7Facilities(ctx, b.fx.Lab, []callout.HL7Facility{
			{Name: "ACME LAB", CertSubject: acme}, {Name: "GENERAL HOSPITAL"}}, "placer"))
		addr := &net.TCPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 40000}
		msg := oru("B1", "P1", "K^Potassium", "K^Potassium||7.1|mmol/L|3.5-5.1|HH|||F")

		before := storetest.Dump(t, b.fx.Store.DB)
		for name, peer := range map[string]*hl7.Peer{
			"no connection":       nil,
			"no certificate":      {Addr: addr},
			"another certificate": {Addr: addr, Subject: "CN=lis.other.example"},
			"a subject that only contains the bound one": {Addr: addr, Subject: acme + ",OU=x"},
		} {
			ctx := context.Background()
			if peer != nil {
				ctx = hl7.ContextWithPeer(ctx, *peer)
			}
			ack, out := b.in.Process(ctx, msg)
			require.Equal(t, hl7.AckReject, out.Code, name)
			require.Contains(t, out.Reason, `"ACME LAB" is bound to a TLS client certificate`, name)
			m, err := hl7.Parse(ack)
			require.NoError(t, err)
			require.Equal(t, "AR", m.Get("MSA", 1), name)
			require.Equal(t, before, storetest.Dump(t, b.fx.Store.DB), "%s: nothing stored", name)
		}

		_, out := b.in.Process(hl7.ContextWithPeer(ctx, hl7.Peer{Addr: addr, Subject: acme}), msg)
		require.Equal(t, hl7.AckAccept, out.Code, out.Reason)
		require.Len(t, out.BillIDs, 1)

		// An unbound facility is accepted from any connection, as before.
		general := strings.Replace(string(oru("B2", "P2", "K^Potassium", "K^Potassium||4.1|mmol/L|3.5-5.1||||F")),
			"|ACME LAB|", "|GENERAL HOSPITAL|", 1)
		_, out = b.in.Process(ctx, []byte(general))
		require.Equal(t, hl7.AckAccept, out.Code, out.Reason)

		facilities, err := b.fx.Store.LabHL7Facilities(ctx, b.fx.Lab)
		require.NoError(t, err)
		require.Equal(t, []callout.HL7Facility{{Name: "ACME LAB", CertSubject: "CN=lis.acme.example,O=Acme"},
			{Name: "GENERAL HOSPITAL"}}, facilities)
	})
}
