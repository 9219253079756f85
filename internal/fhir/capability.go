package fhir

// CapabilityStatement is an R4 CapabilityStatement, with the elements
// Callout fills.
type CapabilityStatement struct {
	ResourceType   string           `json:"resourceType"`
	Name           string           `json:"name"`
	Title          string           `json:"title"`
	Status         string           `json:"status"`
	Date           string           `json:"date"`
	Publisher      string           `json:"publisher"`
	Description    string           `json:"description"`
	Kind           string           `json:"kind"`
	Software       Software         `json:"software"`
	Implementation Implementation   `json:"implementation"`
	FHIRVersion    string           `json:"fhirVersion"`
	Format         []string         `json:"format"`
	Rest           []CapabilityRest `json:"rest"`
}

// Software names the product.
type Software struct {
	Name string `json:"name"`
}

// Implementation is the instance the statement describes.
type Implementation struct {
	Description string `json:"description"`
	URL         string `json:"url"`
}

// CapabilityRest is the server's RESTful capability.
type CapabilityRest struct {
	Mode     string               `json:"mode"`
	Security RestSecurity         `json:"security"`
	Resource []CapabilityResource `json:"resource"`
}

// RestSecurity says how to authenticate.
type RestSecurity struct {
	Description string `json:"description"`
}

// CapabilityResource is what the server does with one resource type.
type CapabilityResource struct {
	Type        string        `json:"type"`
	Interaction []Interaction `json:"interaction"`
	SearchParam []SearchParam `json:"searchParam"`
}

// Interaction is a RESTful interaction (R4 value set type-restful-interaction).
type Interaction struct {
	Code string `json:"code"`
}

// SearchParam is a supported search parameter.
type SearchParam struct {
	Name          string `json:"name"`
	Definition    string `json:"definition"`
	Type          string `json:"type"`
	Documentation string `json:"documentation"`
}

// capabilityDate is when the capabilities below last changed.
const capabilityDate = "2026-12-02"

// capabilityStatement describes the server at base: exactly the types
// Mount serves and exactly the search parameters parseSearch applies.
func capabilityStatement(base string) CapabilityStatement {
	const def = "http://hl7.org/fhir/SearchParameter/"
	param := func(name, definition, typ, doc string) SearchParam {
		return SearchParam{Name: name, Definition: def + definition, Type: typ, Documentation: doc}
	}
	id := param("_id", "Resource-id", "token", "The resource id.")
	patient := func(typ string) []SearchParam {
		return []SearchParam{
			param("subject", typ+"-subject", "reference", "The patient: Patient/{id} (a patient with an MRN, or order-{orderID} for an order without one)."),
			param("patient", "clinical-patient", "reference", "The same as subject."),
		}
	}
	basedOn := func(typ string) SearchParam {
		return param("based-on", typ+"-based-on", "reference", "The order: ServiceRequest/{id}, or based-on:identifier={Order ID}.")
	}
	resources := []CapabilityResource{
		{Type: "Communication", SearchParam: append([]SearchParam{basedOn("Communication")}, append(patient("Communication"),
			param("sent", "Communication-sent", "date", "When the callout was recorded; prefixes eq, gt, ge, lt, le, sa, eb; UTC unless a zone is given."),
			param("status", "Communication-status", "token", "completed for a done callout, in-progress for an attempt."))...)},
		{Type: "Patient", SearchParam: []SearchParam{id,
			param("identifier", "Patient-identifier", "token", "The MRN (PID-3), as [urn:callout:lab:{labID}:mrn|]value.")}},
		{Type: "ServiceRequest", SearchParam: append([]SearchParam{id,
			param("identifier", "ServiceRequest-identifier", "token", "The Order ID, as [urn:callout:lab:{labID}:order|]value.")}, patient("ServiceRequest")...)},
		{Type: "DiagnosticReport", SearchParam: append([]SearchParam{id, basedOn("DiagnosticReport")}, patient("DiagnosticReport")...)},
		{Type: "Observation", SearchParam: append([]SearchParam{id, basedOn("Observation")}, patient("Observation")...)},
		{Type: "Practitioner", SearchParam: []SearchParam{id}},
		{Type: "Organization", SearchParam: []SearchParam{id}},
	}
	for i := range resources {
		resources[i].Interaction = []Interaction{{Code: "read"}, {Code: "search-type"}}
	}
	return CapabilityStatement{
		ResourceType: "CapabilityStatement",
		Name:         "CalloutFHIR",
		Title:        "Callout FHIR R4 server",
		Status:       "active",
		Date:         capabilityDate,
		Publisher:    "Callout",
		Description: "Critical result callouts of a clinical laboratory as read-only Communication resources, " +
			"with the patients, orders, reports and results they refer to.",
		Kind:     "instance",
		Software: Software{Name: "Callout"},
		Implementation: Implementation{
			Description: "Callout critical result callouts",
			URL:         base,
		},
		FHIRVersion: "4.0.1",
		Format:      []string{"json"},
		Rest: []CapabilityRest{{
			Mode: "server",
			Security: RestSecurity{Description: "Send a Callout API token as Authorization: Bearer <token>. " +
				"The token fixes the lab (and may limit the departments) whose data is visible."},
			Resource: resources,
		}},
	}
}
