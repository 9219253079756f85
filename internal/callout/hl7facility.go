package callout

// DefaultHL7Numbering is the HL7 order numbering of a new lab: "auto", the
// placer order number (ORC-2/OBR-2), else the filler number (ORC-3/OBR-3),
// since many senders leave the placer number empty for orders the lab
// created itself. The others are "placer" and "filler" (hl7.Numbering).
// Labs created before it keep the numbering they had.
const DefaultHL7Numbering = "auto"

// HL7Facility is a sending facility (MSH-4) whose result messages a lab
// accepts.
type HL7Facility struct {
	Name string
	// CertSubject binds the facility to one sender: when set, its messages
	// are accepted only over an MLLP connection whose verified TLS client
	// certificate has this subject (in the canonical form of
	// hl7.CanonicalSubject), so that one sender cannot post results as
	// another lab. Empty accepts the facility's messages from any
	// connection.
	CertSubject string
}
