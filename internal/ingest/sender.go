package ingest

import (
	"context"

	"callout/internal/hl7"
)

// senderAllowed reports whether the connection a message came over may send
// for facility. A facility bound to a certificate subject is accepted only
// from a connection whose verified client certificate has that subject, so
// a sender cannot post results as another lab by writing that lab's
// facility into MSH-4. Without a connection (no Peer), or without a
// verified certificate, a bound facility is refused. The binding is cached
// with the lab (labCacheTTL).
func (in *Ingester) senderAllowed(ctx context.Context, facility, bound string) bool {
	if bound == "" {
		return true
	}
	peer, _ := hl7.PeerFromContext(ctx)
	if peer.Subject == bound {
		return true
	}
	remote := ""
	if peer.Addr != nil {
		remote = peer.Addr.String()
	}
	in.log().Warn("hl7: message refused: the facility is bound to another client certificate",
		"facility", facility, "bound_subject", bound, "connection_subject", peer.Subject, "remote", remote)
	return false
}
