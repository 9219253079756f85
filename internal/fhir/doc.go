// Package fhir serves callout records as FHIR R4 Communication resources, so
// that hospitals read Callout the way they read everything else.
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
//	GET /fhir/r4/metadata              the CapabilityStatement, served without a token
//	GET /fhir/r4/Communication/{id}    read: one callout record
//	GET /fhir/r4/Communication?…       search-type: a searchset Bundle
//	    /fhir/r4/…                     anything else: an OperationOutcome (404, or 405 for a wrong method)
//
// # Authentication and isolation
//
// Read and search need the API's bearer token and see exactly what the API
// sees: the token fixes the lab, and a record of another lab answers 404 like
// a missing one (an empty Bundle in a search). A token limited to departments
// sees what callout.VisibleRecord lets it see, as on every other door: the
// records of reports in its departments and the attempts that covered at
// least one of them, without other departments' reports and values, and
// without the comment of a callout that also covered such reports (a note
// says it was withheld). Links (fullUrl, self, next) are built from the
// configured base URL, never from the request's Host. A missing
// or unknown token is answered 401 in the API's own error shape, because the
// API's authentication answers it; every other error is an OperationOutcome
// with the matching status. The CapabilityStatement is served openly, as FHIR
// clients expect to discover a server before they authenticate; it names no
// lab and no data.
//
// # Mapping
//
// Patient data lives on the order (the bill), not in a patient registry, so
// the order's database id stands for both the Patient and the ServiceRequest:
// subject is Patient/{billID} and basedOn is ServiceRequest/{billID}, the
// latter with the Order ID (lab_bill_id) as its identifier in the system
// urn:callout:lab:{labID}:order, Order IDs being unique within a lab. Those
// references, and Practitioner/referral-{billID} and Organization/org-{billID}
// for the order's referral and organization, are stable handles that carry a
// display; this server serves Communication only. A report is
// DiagnosticReport/{lab_report_id}. See NewCommunication for every element.
//
// Search understands based-on (ServiceRequest/{billID}, or with the
// :identifier modifier the Order ID), subject and patient (Patient/{billID}),
// sent (eq, gt, ge, lt, le, sa, eb; dates without a time zone are UTC),
// status (completed for done, in-progress for attempts), _count (default 50,
// at most 500), _total (Bundle.total only with _total=accurate or _count=0:
// counting reads every matching record, so an ordinary page does not) and
// _format (JSON only). Commas are OR, repeated parameters
// AND. Any other parameter is refused with 400 rather than silently ignored:
// an integrator who misspells a filter must not receive every record.
// Results come oldest first (by id); a next link pages on with an opaque
// _cursor.
package fhir
