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
const capabilityDate = "2026-11-27"

// capabilityStatement describes the server at base.
func capabilityStatement(base string) CapabilityStatement {
	const def = "http://hl7.org/fhir/SearchParameter/"
	return CapabilityStatement{
		ResourceType: "CapabilityStatement",
		Name:         "CalloutFHIR",
		Title:        "Callout FHIR R4 server",
		Status:       "active",
		Date:         capabilityDate,
		Publisher:    "Callout",
		Description:  "Critical result callouts of a clinical laboratory as read-only Communication resources.",
		Kind:         "instance",
		Software:     Software{Name: "Callout"},
		Implementation: Implementation{
			Description: "Callout critical result callouts",
			URL:         base,
		},
		FHIRVersion: "4.0.1",
		Format:      []string{"json"},
		Rest: []CapabilityRest{{
			Mode: "server",
			Security: RestSecurity{Description: "Send a Callout API token as Authorization: Bearer <token>. " +
				"The token fixes the lab (and may limit the departments) whose callouts are visible."},
			Resource: []CapabilityResource{{
				Type:        "Communication",
				Interaction: []Interaction{{Code: "read"}, {Code: "search-type"}},
				SearchParam: []SearchParam{
					{Name: "based-on", Definition: def + "Communication-based-on", Type: "reference",
						Documentation: "The order: ServiceRequest/{id}, or based-on:identifier={Order ID}."},
					{Name: "subject", Definition: def + "Communication-subject", Type: "reference",
						Documentation: "The patient of the order: Patient/{id}, the same id as the order's."},
					{Name: "patient", Definition: def + "clinical-patient", Type: "reference",
						Documentation: "The same as subject."},
					{Name: "sent", Definition: def + "Communication-sent", Type: "date",
						Documentation: "When the callout was recorded; prefixes eq, gt, ge, lt, le, sa, eb; UTC unless a zone is given."},
					{Name: "status", Definition: def + "Communication-status", Type: "token",
						Documentation: "completed for a done callout, in-progress for an attempt."},
				},
			}},
		}},
	}
}
