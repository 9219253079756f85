package fhir

// The few R4 structures Callout produces, with exactly the elements it
// fills. Their JSON is checked against the full R4 models in the tests.

// Code systems and value sets the resources use.
const (
	systemEventStatus   = "http://hl7.org/fhir/event-status"
	systemCategory      = "http://terminology.hl7.org/CodeSystem/communication-category"
	systemParticipation = "http://terminology.hl7.org/CodeSystem/v3-ParticipationMode"
	systemRecord        = "urn:callout:record"
)

// EventStatus is the status of a Communication (R4 value set event-status).
type EventStatus string

// The statuses a callout record maps to.
const (
	StatusCompleted  EventStatus = "completed"
	StatusInProgress EventStatus = "in-progress"
)

// Communication is an R4 Communication: one callout record.
type Communication struct {
	ResourceType string            `json:"resourceType"`
	ID           string            `json:"id"`
	Meta         *Meta             `json:"meta,omitempty"`
	Identifier   []Identifier      `json:"identifier,omitempty"`
	BasedOn      []Reference       `json:"basedOn,omitempty"`
	PartOf       []Reference       `json:"partOf,omitempty"`
	Status       EventStatus       `json:"status"`
	StatusReason *CodeableConcept  `json:"statusReason,omitempty"`
	Category     []CodeableConcept `json:"category,omitempty"`
	Priority     string            `json:"priority,omitempty"`
	Medium       []CodeableConcept `json:"medium,omitempty"`
	Subject      *Reference        `json:"subject,omitempty"`
	About        []Reference       `json:"about,omitempty"`
	Sent         string            `json:"sent,omitempty"`
	Recipient    []Reference       `json:"recipient,omitempty"`
	Sender       *Reference        `json:"sender,omitempty"`
	Payload      []Payload         `json:"payload,omitempty"`
	Note         []Annotation      `json:"note,omitempty"`
}

// Meta is a resource's metadata.
type Meta struct {
	VersionID   string `json:"versionId,omitempty"`
	LastUpdated string `json:"lastUpdated,omitempty"`
}

// Identifier is a business identifier.
type Identifier struct {
	System string `json:"system,omitempty"`
	Value  string `json:"value,omitempty"`
}

// Reference points at another resource; Display alone is allowed when the
// target has no resource of its own.
type Reference struct {
	Reference  string      `json:"reference,omitempty"`
	Type       string      `json:"type,omitempty"`
	Identifier *Identifier `json:"identifier,omitempty"`
	Display    string      `json:"display,omitempty"`
}

// Coding is a code from a code system.
type Coding struct {
	System  string `json:"system,omitempty"`
	Code    string `json:"code,omitempty"`
	Display string `json:"display,omitempty"`
}

// CodeableConcept is codings and/or text.
type CodeableConcept struct {
	Coding []Coding `json:"coding,omitempty"`
	Text   string   `json:"text,omitempty"`
}

// Payload is one part of what was communicated; Callout sends text only.
type Payload struct {
	ContentString string `json:"contentString"`
}

// Annotation is a note.
type Annotation struct {
	Text string `json:"text"`
}

// Bundle is a searchset Bundle.
type Bundle struct {
	ResourceType string `json:"resourceType"`
	Type         string `json:"type"`
	// Total is the number of matches, counted only when the search asks
	// (_total=accurate, or _count=0): counting reads every matching record.
	Total *int          `json:"total,omitempty"`
	Link  []BundleLink  `json:"link"`
	Entry []BundleEntry `json:"entry,omitempty"`
}

// BundleLink is a link of a Bundle (self, next).
type BundleLink struct {
	Relation string `json:"relation"`
	URL      string `json:"url"`
}

// BundleEntry is one resource of a Bundle.
type BundleEntry struct {
	FullURL  string       `json:"fullUrl"`
	Resource any          `json:"resource"`
	Search   *EntrySearch `json:"search,omitempty"`
}

// EntrySearch says why an entry is in a searchset.
type EntrySearch struct {
	Mode string `json:"mode"`
}

// OperationOutcome is how FHIR reports an error.
type OperationOutcome struct {
	ResourceType string  `json:"resourceType"`
	Issue        []Issue `json:"issue"`
}

// Issue is one problem of an OperationOutcome; Code is from the R4 value set
// issue-type.
type Issue struct {
	Severity    string `json:"severity"`
	Code        string `json:"code"`
	Diagnostics string `json:"diagnostics,omitempty"`
}
