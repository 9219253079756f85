package fhir_test

import (
	"context"
	"encoding/json"
	"net/http"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"

	r4 "github.com/samply/golang-fhir-models/fhir-models/fhir"
	"github.com/stretchr/testify/require"

	"callout/internal/callout"
	"callout/internal/storetest"
)

// patientBundle adds to the test bundle two orders of one MRN: ORD-M1 with
// a biochemistry report, ORD-M2 with a haematology report (glucose 40 LL,
// a text result, a value "<0.5").
type patientBundle struct {
	*testBundle
	m1, m2      int64 // order ids
	m1Report    int64 // biochemistry report of ORD-M1
	m2Report    int64 // haematology report of ORD-M2
	patient     string
	glucose     int64 // parameter ids in ORD-M2
	note, troph int64
}

func setupPatients(t *testing.T, e storetest.Engine) *patientBundle {
	t.Helper()
	b := &patientBundle{testBundle: setup(t, e)}
	o1 := storetest.Order("ORD-M1", 1)
	o1.Patient.MRN, o1.Patient.BirthDate = "MRN-77", "1985-12-02"
	c1 := b.fx.Create(t, o1)
	o2 := storetest.Order("ORD-M2", 0, callout.NewReport{TestID: "GLU", TestName: "Glucose", Department: "Haematology",
		Parameters: []callout.Parameter{
			{Name: "Glucose", Value: "40", Unit: "mg/dL", NormalLow: ptr(70.0), NormalHigh: ptr(105.0), CriticalLow: ptr(50.0), Flag: "LL"},
			{Name: "Comment", Value: "haemolysed sample"},
			{Name: "Troponin", Value: "<0.5", Unit: "ng/mL"},
		}})
	o2.Patient.MRN = "MRN-77"
	c2 := b.fx.Create(t, o2)
	b.m1, b.m2, b.m1Report, b.m2Report = c1.ID, c2.ID, c1.Reports[0].ID, c2.Reports[0].ID
	bill, err := b.fx.Store.Bill(context.Background(), b.lab, c2.ID)
	require.NoError(t, err)
	b.patient = strconv.FormatInt(bill.PatientID, 10)
	ps := bill.Reports[0].Parameters
	b.glucose, b.note, b.troph = ps[0].ID, ps[1].ID, ps[2].ID
	return b
}

// readR4 reads path with token, requires 200 and a resource valid under the
// R4 schema, and returns it decoded.
func (b *testBundle) readR4(t *testing.T, token, path string) map[string]any {
	t.Helper()
	a := b.get(t, token, path)
	require.Equal(t, http.StatusOK, a.status, "%s: %s", path, a.body)
	require.Equal(t, "application/fhir+json; charset=utf-8", a.header.Get("Content-Type"))
	require.NoError(t, checkR4(a.body), "%s: %s", path, a.body)
	var m map[string]any
	require.NoError(t, json.Unmarshal(a.body, &m))
	return m
}

// entryIDs runs a search, validates the Bundle and returns its total and
// the entries' ids.
func (b *testBundle) entryIDs(t *testing.T, token, path string) (int, []string) {
	t.Helper()
	m := b.readR4(t, token, path)
	require.Equal(t, "searchset", m["type"])
	ids := []string{}
	entries, _ := m["entry"].([]any)
	for _, e := range entries {
		res := e.(map[string]any)["resource"].(map[string]any)
		ids = append(ids, res["id"].(string))
		require.Equal(t, publicBase+"/fhir/r4/"+res["resourceType"].(string)+"/"+res["id"].(string), e.(map[string]any)["fullUrl"])
	}
	return int(m["total"].(float64)), ids
}

var literalRef = regexp.MustCompile(`"reference":"([A-Za-z]+/[A-Za-z0-9\-.]+)"`)

func TestFHIRResources(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, e storetest.Engine) {
		b := setupPatients(t, e)
		id := func(n int64) string { return strconv.FormatInt(n, 10) }

		t.Run("EveryLiteralReferenceResolves", func(t *testing.T) {
			// Crawl from every search of every served type: each literal
			// reference in anything served must read, and validate.
			seen := map[string]bool{}
			queue := []string{}
			for _, typ := range []string{"Communication", "Patient", "ServiceRequest", "DiagnosticReport", "Observation", "Practitioner", "Organization"} {
				a := b.get(t, b.staff, "/fhir/r4/"+typ+"?_count=500")
				require.Equal(t, http.StatusOK, a.status, string(a.body))
				require.NoError(t, checkR4(a.body))
				for _, m := range literalRef.FindAllSubmatch(a.body, -1) {
					queue = append(queue, string(m[1]))
				}
			}
			for len(queue) > 0 {
				ref := queue[0]
				queue = queue[1:]
				if seen[ref] {
					continue
				}
				seen[ref] = true
				a := b.get(t, b.staff, "/fhir/r4/"+ref)
				require.Equal(t, http.StatusOK, a.status, "%s: %s", ref, a.body)
				require.NoError(t, checkR4(a.body), "%s: %s", ref, a.body)
				for _, m := range literalRef.FindAllSubmatch(a.body, -1) {
					queue = append(queue, string(m[1]))
				}
			}
			types := map[string]bool{}
			for ref := range seen {
				types[strings.Split(ref, "/")[0]] = true
			}
			require.Equal(t, map[string]bool{"Patient": true, "ServiceRequest": true, "DiagnosticReport": true,
				"Observation": true, "Practitioner": true}, types, "the crawl reached every referenced type")
		})

		t.Run("OneMRNOnePatient", func(t *testing.T) {
			p := b.readR4(t, b.staff, "/fhir/r4/Patient/"+b.patient)
			require.Equal(t, "1985-12-02", p["birthDate"])
			ident := p["identifier"].([]any)[0].(map[string]any)
			require.Equal(t, "MRN-77", ident["value"])
			require.Equal(t, "urn:callout:lab:"+id(b.lab)+":mrn", ident["system"])
			for _, bill := range []int64{b.m1, b.m2} {
				sr := b.readR4(t, b.staff, "/fhir/r4/ServiceRequest/"+id(bill))
				require.Equal(t, "Patient/"+b.patient, sr["subject"].(map[string]any)["reference"])
			}
			for _, q := range []string{"identifier=MRN-77", "identifier=urn:callout:lab:" + id(b.lab) + ":mrn|MRN-77", "_id=" + b.patient} {
				total, ids := b.entryIDs(t, b.staff, "/fhir/r4/Patient?"+q)
				require.Equal(t, 1, total, q)
				require.Equal(t, []string{b.patient}, ids, q)
			}
			_, ids := b.entryIDs(t, b.staff, "/fhir/r4/Patient?identifier=urn:other|MRN-77")
			require.Empty(t, ids)
			_, ids = b.entryIDs(t, b.staff, "/fhir/r4/ServiceRequest?patient=Patient/"+b.patient)
			require.Equal(t, []string{id(b.m1), id(b.m2)}, ids)
			_, ids = b.entryIDs(t, b.staff, "/fhir/r4/DiagnosticReport?subject="+b.patient)
			require.Equal(t, []string{id(b.m1Report), id(b.m2Report)}, ids)
			// An order without an MRN is its own patient.
			p = b.readR4(t, b.staff, "/fhir/r4/Patient/order-"+id(b.bill1))
			require.Nil(t, p["identifier"])
			_, ids = b.entryIDs(t, b.staff, "/fhir/r4/Patient?_id=order-"+id(b.bill1))
			require.Equal(t, []string{"order-" + id(b.bill1)}, ids)
			b.refused(t, b.get(t, b.staff, "/fhir/r4/Patient/order-"+id(b.m1)), http.StatusNotFound, r4.IssueTypeNotFound)
		})

		t.Run("ServiceRequestByOrderID", func(t *testing.T) {
			sr := b.readR4(t, b.staff, "/fhir/r4/ServiceRequest/"+id(b.m2))
			require.Equal(t, "ORD-M2", sr["identifier"].([]any)[0].(map[string]any)["value"])
			require.Equal(t, "Practitioner/referral-"+id(b.m2), sr["requester"].(map[string]any)["reference"])
			_, ids := b.entryIDs(t, b.staff, "/fhir/r4/ServiceRequest?identifier=ORD-M2")
			require.Equal(t, []string{id(b.m2)}, ids)
		})

		t.Run("DiagnosticReportAndObservations", func(t *testing.T) {
			dr := b.readR4(t, b.staff, "/fhir/r4/DiagnosticReport/"+id(b.m2Report))
			require.Equal(t, "final", dr["status"])
			require.Equal(t, "Glucose", dr["code"].(map[string]any)["text"])
			require.Equal(t, "ServiceRequest/"+id(b.m2), dr["basedOn"].([]any)[0].(map[string]any)["reference"])
			var results []string
			for _, r := range dr["result"].([]any) {
				results = append(results, r.(map[string]any)["reference"].(string))
			}
			require.Equal(t, []string{"Observation/" + id(b.glucose), "Observation/" + id(b.note), "Observation/" + id(b.troph)}, results)

			glu := b.readR4(t, b.staff, "/fhir/r4/Observation/"+id(b.glucose))
			require.Equal(t, map[string]any{"value": 40.0, "unit": "mg/dL"}, glu["valueQuantity"])
			require.Equal(t, map[string]any{"low": map[string]any{"value": 70.0, "unit": "mg/dL"}, "high": map[string]any{"value": 105.0, "unit": "mg/dL"}},
				glu["referenceRange"].([]any)[0])
			interp := glu["interpretation"].([]any)[0].(map[string]any)["coding"].([]any)[0].(map[string]any)
			require.Equal(t, "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation", interp["system"])
			require.Equal(t, "LL", interp["code"])
			require.Equal(t, "haemolysed sample", b.readR4(t, b.staff, "/fhir/r4/Observation/"+id(b.note))["valueString"])
			require.Equal(t, map[string]any{"value": 0.5, "comparator": "<", "unit": "ng/mL"},
				b.readR4(t, b.staff, "/fhir/r4/Observation/"+id(b.troph))["valueQuantity"])

			// Potassium 7.1 without a flag is HH from its critical limit; sodium 140 is in range.
			_, ids := b.entryIDs(t, b.staff, "/fhir/r4/Observation?based-on=ServiceRequest/"+id(b.m1))
			require.Len(t, ids, 2)
			k := b.readR4(t, b.staff, "/fhir/r4/Observation/"+ids[0])
			require.Equal(t, "HH", k["interpretation"].([]any)[0].(map[string]any)["coding"].([]any)[0].(map[string]any)["code"])
			require.Nil(t, b.readR4(t, b.staff, "/fhir/r4/Observation/"+ids[1])["interpretation"])
		})

		t.Run("PagingFollowsNextLinks", func(t *testing.T) {
			var got []string
			next := "/fhir/r4/Observation?_count=2"
			for next != "" {
				m := b.readR4(t, b.staff, next)
				entries, _ := m["entry"].([]any)
				for _, e := range entries {
					got = append(got, e.(map[string]any)["resource"].(map[string]any)["id"].(string))
				}
				next = ""
				for _, l := range m["link"].([]any) {
					if l.(map[string]any)["relation"] == "next" {
						next = strings.TrimPrefix(l.(map[string]any)["url"].(string), publicBase)
					}
				}
			}
			total, all := b.entryIDs(t, b.staff, "/fhir/r4/Observation?_count=500")
			require.Equal(t, all, got)
			require.Equal(t, total, len(all))
			require.True(t, sort.SliceIsSorted(got, func(i, j int) bool { return len(got[i]) < len(got[j]) || len(got[i]) == len(got[j]) && got[i] < got[j] }))
		})

		t.Run("DepartmentsSeeOnlyTheirReports", func(t *testing.T) {
			// The haematology user sees ORD-M2 (glucose) and ORD-1 (CBC),
			// never the biochemistry-only ORD-M1 or ORD-2, nor a
			// biochemistry report or result of any order.
			for _, path := range []string{
				"/fhir/r4/ServiceRequest/" + id(b.m1), "/fhir/r4/ServiceRequest/" + id(b.bill2),
				"/fhir/r4/DiagnosticReport/" + id(b.m1Report), "/fhir/r4/DiagnosticReport/" + id(b.t2),
				"/fhir/r4/Practitioner/referral-" + id(b.m1), "/fhir/r4/Organization/org-" + id(b.bill2),
				"/fhir/r4/Patient/order-" + id(b.bill2),
			} {
				b.refused(t, b.get(t, b.haem, path), http.StatusNotFound, r4.IssueTypeNotFound)
				b.readR4(t, b.staff, path)
			}
			_, ids := b.entryIDs(t, b.haem, "/fhir/r4/DiagnosticReport")
			require.Equal(t, []string{id(b.cbc), id(b.m2Report)}, ids)
			_, ids = b.entryIDs(t, b.haem, "/fhir/r4/ServiceRequest")
			require.Equal(t, []string{id(b.bill1), id(b.m2)}, ids)
			_, obs := b.entryIDs(t, b.haem, "/fhir/r4/Observation")
			require.Len(t, obs, 4, "Hb and ORD-M2's three")
			// The patient is seen through the order the user sees.
			b.readR4(t, b.haem, "/fhir/r4/Patient/"+b.patient)
			// A report's results under another department's report id stay hidden.
			_, ids = b.entryIDs(t, b.haem, "/fhir/r4/Observation?based-on="+id(b.m1))
			require.Empty(t, ids)
			// The biochemistry user sees the patient too, but not ORD-M2's results.
			b.readR4(t, b.bio, "/fhir/r4/Patient/"+b.patient)
			b.refused(t, b.get(t, b.bio, "/fhir/r4/Observation/"+id(b.glucose)), http.StatusNotFound, r4.IssueTypeNotFound)
			b.refused(t, b.get(t, b.bio, "/fhir/r4/DiagnosticReport/"+id(b.m2Report)), http.StatusNotFound, r4.IssueTypeNotFound)
			dr := b.readR4(t, b.staff, "/fhir/r4/DiagnosticReport/"+id(b.m2Report))
			require.NotEmpty(t, dr["result"])
		})

		t.Run("LabsNeverSeeEachOther", func(t *testing.T) {
			for _, path := range []string{
				"/fhir/r4/Patient/" + b.patient, "/fhir/r4/Patient/order-" + id(b.bill1),
				"/fhir/r4/ServiceRequest/" + id(b.m1), "/fhir/r4/DiagnosticReport/" + id(b.m2Report),
				"/fhir/r4/Observation/" + id(b.glucose), "/fhir/r4/Practitioner/referral-" + id(b.m1),
				"/fhir/r4/Organization/org-" + id(b.m1),
			} {
				b.refused(t, b.get(t, b.other, path), http.StatusNotFound, r4.IssueTypeNotFound)
			}
			for _, q := range []string{"Patient?identifier=MRN-77", "ServiceRequest?identifier=ORD-M1", "DiagnosticReport?based-on=" + id(b.m2),
				"Observation?patient=" + b.patient, "Practitioner?_id=referral-" + id(b.m1)} {
				total, ids := b.entryIDs(t, b.other, "/fhir/r4/"+q)
				require.Zero(t, total, q)
				require.Empty(t, ids, q)
			}
		})

		t.Run("EveryFailureIsAnOperationOutcome", func(t *testing.T) {
			for _, tc := range []struct {
				token, method, path string
				status              int
			}{
				{"", "GET", "/fhir/r4/Patient/" + b.patient, 401},
				{"co_nope", "GET", "/fhir/r4/Observation", 401},
				{b.staff, "GET", "/fhir/r4/Observation/abc", 404},
				{b.staff, "GET", "/fhir/r4/Practitioner/" + id(b.m1), 404},
				{b.staff, "GET", "/fhir/r4/Practitioner/referral-0" + id(b.m1), 404},
				{b.staff, "PUT", "/fhir/r4/Patient/" + b.patient, 405},
				{b.staff, "GET", "/fhir/r4/Encounter", 404},
				{b.staff, "GET", "/fhir/r4/ServiceRequest?_count=x", 400},
				{b.staff, "GET", "/fhir/r4/ServiceRequest?identifier=ORD%00", 400},
				{b.staff, "GET", "/fhir/r4/Observation?_format=xml", 406},
			} {
				a := b.do(t, tc.token, tc.method, tc.path)
				require.Equal(t, tc.status, a.status, "%s %s: %s", tc.method, tc.path, a.body)
				require.NoError(t, checkR4(a.body), "%s %s: %s", tc.method, tc.path, a.body)
				require.Contains(t, string(a.body), `"resourceType":"OperationOutcome"`)
			}
		})
	})
}
