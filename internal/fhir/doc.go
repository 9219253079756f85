// Package fhir serves callout records as FHIR R4 Communication resources,
// with the Patient, ServiceRequest, DiagnosticReport, Observation,
// Practitioner and Organization they refer to, so that hospitals read
// Callout the way they read everything else.
//
// # Mounting
//
// The lead wires it beside the JSON API in cmd/callout/serve.go:
//
//	api := httpapi.New(…)
//	fhir.Mount(api, st, baseURL, log) // st is the *sqlstore.Store, baseURL CALLOUT_BASE_URL, log the *slog.Logger
//
// Mount adds, on any Router (*httpapi.Server is one):
//
//	GET /fhir/r4/metadata          the CapabilityStatement, served without a token
//	GET /fhir/r4/{type}/{id}       read, for each type in served
//	GET /fhir/r4/{type}?…          search-type: a searchset Bundle
//	    /fhir/r4/…                 anything else: an OperationOutcome (404, or 405 for a wrong method)
//
// # Authentication and isolation
//
// Read and search need the API's bearer token (Router.Authenticate) and see
// exactly what the API sees: the token fixes the lab, and a resource of
// another lab answers 404 like a missing one (an empty Bundle in a search).
// A token limited to departments sees reports, results and orders of its
// departments only, patients through those orders, and callout records as
// callout.VisibleRecord lets it see them, as on every other door. Links
// (fullUrl, self, next) are built from the configured base URL, never from
// the request's Host. Every failure, a missing or unknown token included
// (401, issue code login), is an OperationOutcome with the matching status;
// the CapabilityStatement is served openly, as FHIR clients expect to
// discover a server before they authenticate; it names no lab and no data.
//
// # Mapping
//
// Callout keeps orders, not registries: every resource but Communication is
// read from an order (see the New* functions). A patient is an MRN in a lab
// (PatientID); an order without an MRN is its own patient, "order-{billID}".
// The order's referral is Practitioner/referral-{billID} and its
// organization Organization/org-{billID}.
//
// Search parameters are listed in the CapabilityStatement (searchParams).
// Commas are OR, repeated parameters AND. A parameter a type does not
// support is ignored, FHIR's lenient default, and left out of the self link;
// under Prefer: handling=strict it is refused with 400. Only JSON is served:
// _format=xml or an Accept header that admits no JSON answers 406. Results
// come oldest first (by id); a next link pages on with an opaque _cursor.
package fhir
