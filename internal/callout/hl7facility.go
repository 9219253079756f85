package callout

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
