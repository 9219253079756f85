package fhir_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	r4 "github.com/samply/golang-fhir-models/fhir-models/fhir"
	"github.com/stretchr/testify/require"

	"callout/internal/callout"
	"callout/internal/fhir"
	"callout/internal/httpapi"
	"callout/internal/storetest"
)

var _ fhir.Router = (*httpapi.Server)(nil)

// publicBase is the address the server is configured with
// (CALLOUT_BASE_URL); the tests dial another, so every link must come from
// the configuration, never from the request.
const publicBase = "https://callout.lab.example"

// testBundle is a lab with two orders and three callout records, a second
// lab with one, and tokens for each kind of caller.
type testBundle struct {
	srv *httptest.Server
	fx  *storetest.Fixture
	// tokens: the lab's staff, a haematology-only and a biochemistry-only
	// user, and an admin of the other lab.
	staff, haem, bio, other string
	bill1, bill2            int64
	lab                     int64
	// records: done on ORD-1's T1 (biochemistry) at 2026-03-10T09:00Z; the
	// attempt on ORD-1's T2 and CBC (haematology) at 2026-03-11T10:00Z;
	// done on ORD-2's T1 at 2026-04-01T08:00Z; the other lab's done callout.
	done1, attempt1, done2, otherDone int64
	t2, cbc                           int64 // report ids in ORD-1
}

func at(s string) func() time.Time {
	return func() time.Time {
		v, err := time.Parse(time.RFC3339, s)
		if err != nil {
			panic(err)
		}
		return v.UTC()
	}
}

func setup(t *testing.T, e storetest.Engine) *testBundle {
	t.Helper()
	ctx := context.Background()
	fx := storetest.NewFixture(t, e, callout.Settings{HidePatientName: true})
	api := httpapi.New(httpapi.Config{Service: fx.Svc})
	fhir.Mount(api, fx.Store, publicBase+"/", nil)
	b := &testBundle{srv: httptest.NewServer(api), fx: fx, lab: fx.Lab}
	t.Cleanup(b.srv.Close)

	var err error
	b.staff, err = fx.Svc.CreateToken(ctx, fx.Lab, "Asha", callout.RoleStaff)
	require.NoError(t, err)
	b.haem, err = fx.Svc.CreateToken(ctx, fx.Lab, "Hema", callout.RoleStaff, "Haematology")
	require.NoError(t, err)
	b.bio, err = fx.Svc.CreateToken(ctx, fx.Lab, "Bio", callout.RoleStaff, "Biochemistry")
	require.NoError(t, err)

	cbc := callout.NewReport{TestID: "CBC", TestName: "Blood Count", Department: "Haematology",
		Parameters: []callout.Parameter{{Name: "Hb", Value: "5.1", Unit: "g/dL", Flag: "LL"}}}
	o1 := fx.Create(t, storetest.Order("ORD-1", 2, cbc))
	ids := storetest.ReportIDs(o1)
	b.bill1, b.t2, b.cbc = o1.ID, ids[1], ids[2]
	fx.Svc.Now = at("2026-03-10T09:00:00Z")
	res, err := fx.Svc.Callout(ctx, fx.Staff, o1.ID, storetest.Done(ids[0]), nil)
	require.NoError(t, err)
	b.done1 = res.Callouts[0].ID
	fx.Svc.Now = at("2026-03-11T10:00:00Z")
	res, err = fx.Svc.Callout(ctx, fx.Staff, o1.ID, storetest.Attempt(ids[1], ids[2]), nil)
	require.NoError(t, err)
	b.attempt1 = res.Callouts[0].ID

	o2 := fx.Create(t, storetest.Order("ORD-2", 1))
	b.bill2 = o2.ID
	fx.Svc.Now = at("2026-04-01T08:00:00Z")
	res, err = fx.Svc.Callout(ctx, fx.Staff, o2.ID, storetest.Done(o2.Reports[0].ID), nil)
	require.NoError(t, err)
	b.done2 = res.Callouts[0].ID

	otherLab := fx.AddLab(t, callout.Settings{Name: "Other Lab"})
	b.other, err = fx.Svc.CreateToken(ctx, otherLab, "Eve", callout.RoleAdmin)
	require.NoError(t, err)
	eve := callout.Principal{LabID: otherLab, User: "Eve", Role: callout.RoleAdmin}
	o3, err := fx.Svc.CreateOrder(ctx, eve, storetest.Order("ORD-1", 1), nil)
	require.NoError(t, err)
	res, err = fx.Svc.Callout(ctx, eve, o3.ID, storetest.Done(o3.Reports[0].ID), nil)
	require.NoError(t, err)
	b.otherDone = res.Callouts[0].ID
	return b
}

type answer struct {
	status int
	header http.Header
	body   []byte
}

func (b *testBundle) get(t *testing.T, token, path string) answer {
	t.Helper()
	return b.do(t, token, http.MethodGet, path)
}

func (b *testBundle) do(t *testing.T, token, method, path string) answer {
	t.Helper()
	// Links name the public address; the test server listens elsewhere.
	path = b.srv.URL + strings.TrimPrefix(path, publicBase)
	req, err := http.NewRequest(method, path, nil)
	require.NoError(t, err)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	return answer{res.StatusCode, res.Header, body}
}

// read fetches one Communication and validates it.
func (b *testBundle) read(t *testing.T, token string, id int64) r4.Communication {
	t.Helper()
	a := b.get(t, token, "/fhir/r4/Communication/"+strconv.FormatInt(id, 10))
	require.Equal(t, http.StatusOK, a.status, string(a.body))
	require.Equal(t, "application/fhir+json; charset=utf-8", a.header.Get("Content-Type"))
	c, err := checkCommunication(a.body)
	require.NoError(t, err, string(a.body))
	return c
}

// search runs a search asking for the total (_total=accurate), validates the
// Bundle and returns its total and the entries' ids.
func (b *testBundle) search(t *testing.T, token, query string) (int, []int64, r4.Bundle, []r4.Communication) {
	t.Helper()
	sep := "&"
	if query == "" {
		sep = ""
	}
	a := b.get(t, token, "/fhir/r4/Communication?"+query+sep+"_total=accurate")
	require.Equal(t, http.StatusOK, a.status, "%s: %s", query, a.body)
	bundle, cs, err := checkBundle(a.body)
	require.NoError(t, err, string(a.body))
	ids := []int64{}
	for _, c := range cs {
		id, err := strconv.ParseInt(*c.Id, 10, 64)
		require.NoError(t, err)
		ids = append(ids, id)
	}
	require.NotNil(t, bundle.Total, "%s: _total=accurate gives the total", query)
	return *bundle.Total, ids, bundle, cs
}

// refused checks an OperationOutcome answer.
func (b *testBundle) refused(t *testing.T, a answer, status int, code r4.IssueType) {
	t.Helper()
	require.Equal(t, status, a.status, string(a.body))
	o, err := checkOutcome(a.body)
	require.NoError(t, err, string(a.body))
	require.Equal(t, code, o.Issue[0].Code, string(a.body))
	require.Equal(t, r4.IssueSeverityError, o.Issue[0].Severity)
	require.NotNil(t, o.Issue[0].Diagnostics)
}

func refs(rs []r4.Reference) []string {
	out := []string{}
	for _, r := range rs {
		if r.Reference != nil {
			out = append(out, *r.Reference)
		}
	}
	return out
}

func TestFHIR(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, e storetest.Engine) {
		b := setup(t, e)
		id := func(n int64) string { return strconv.FormatInt(n, 10) }

		t.Run("ReadDone", func(t *testing.T) {
			c := b.read(t, b.staff, b.done1)
			require.Equal(t, r4.EventStatusCompleted, c.Status)
			require.Nil(t, c.StatusReason)
			require.Equal(t, "2026-03-10T09:00:00Z", *c.Sent)
			require.Equal(t, "Patient/"+id(b.bill1), *c.Subject.Reference)
			// hide_patient_name is for screens; an integrator gets the name.
			require.Equal(t, "Maria Müller", *c.Subject.Display)
			require.Equal(t, []string{"ServiceRequest/" + id(b.bill1)}, refs(c.BasedOn))
			require.Equal(t, "ORD-1", *c.BasedOn[0].Identifier.Value)
			require.Equal(t, []string{"Practitioner/referral-" + id(b.bill1)}, refs(c.Recipient))
			require.Equal(t, "Dr. Rao", *c.Recipient[0].Display)
			require.Equal(t, "Asha", *c.Sender.Display)
			require.Len(t, c.About, 1)
			require.Equal(t, refs(c.About), refs(c.PartOf))
			require.Equal(t, "Electrolytes 1: Potassium 7.1 mmol/L (critical > 6.5)", c.Payload[0].ContentString)
			require.Equal(t, "Read back by Dr. Rao: yes", c.Note[0].Text)
			var modes []string
			for _, m := range c.Medium {
				modes = append(modes, *m.Coding[0].Code)
			}
			require.Equal(t, []string{"PHONE", "EMAILWRIT"}, modes)
			require.Equal(t, r4.RequestPriorityStat, *c.Priority)
		})

		t.Run("ReadAttempt", func(t *testing.T) {
			c := b.read(t, b.staff, b.attempt1)
			require.Equal(t, r4.EventStatusInProgress, c.Status)
			require.Equal(t, "Callout attempted: No answer", *c.StatusReason.Text)
			require.Equal(t, []string{"DiagnosticReport/" + id(b.t2), "DiagnosticReport/" + id(b.cbc)}, refs(c.About))
			require.Equal(t, refs(c.About), refs(c.PartOf))
			require.Len(t, c.Payload, 2)
			require.Equal(t, "Blood Count: Hb 5.1 g/dL (LL)", c.Payload[1].ContentString)
			require.Len(t, c.Medium, 1, "an attempt sends no copies")
		})

		t.Run("ReadUnknownIsNotFound", func(t *testing.T) {
			for _, path := range []string{"/fhir/r4/Communication/99999999", "/fhir/r4/Communication/abc",
				"/fhir/r4/Communication/0", "/fhir/r4/Communication/" + id(b.otherDone)} {
				b.refused(t, b.get(t, b.staff, path), http.StatusNotFound, r4.IssueTypeNotFound)
			}
			// The other lab reads its own record, and none of ours.
			b.read(t, b.other, b.otherDone)
			for _, rec := range []int64{b.done1, b.attempt1, b.done2} {
				b.refused(t, b.get(t, b.other, "/fhir/r4/Communication/"+id(rec)), http.StatusNotFound, r4.IssueTypeNotFound)
			}
		})

		t.Run("TokenRequired", func(t *testing.T) {
			for _, path := range []string{"/fhir/r4/Communication/" + id(b.done1), "/fhir/r4/Communication"} {
				for _, token := range []string{"", "co_not-a-token"} {
					a := b.get(t, token, path)
					require.Equal(t, http.StatusUnauthorized, a.status)
					require.Contains(t, string(a.body), `"unauthorized"`)
				}
			}
		})

		t.Run("SearchByEachParameter", func(t *testing.T) {
			all := []int64{b.done1, b.attempt1, b.done2}
			for _, tc := range []struct {
				query string
				want  []int64
			}{
				{"", all},
				{"based-on=ServiceRequest/" + id(b.bill1), []int64{b.done1, b.attempt1}},
				{"based-on=" + id(b.bill2), []int64{b.done2}},
				{"based-on:identifier=ORD-2", []int64{b.done2}},
				{"based-on:identifier=urn:callout:lab:" + id(b.lab) + ":order|ORD-1", []int64{b.done1, b.attempt1}},
				{"based-on:identifier=urn:callout:lab:999:order|ORD-1", []int64{}},
				{"based-on=ServiceRequest/99999999", []int64{}},
				{"subject=Patient/" + id(b.bill2), []int64{b.done2}},
				{"patient=" + id(b.bill1), []int64{b.done1, b.attempt1}},
				{"subject=Patient/" + id(b.bill1) + "&based-on=ServiceRequest/" + id(b.bill2), []int64{}},
				{"status=completed", []int64{b.done1, b.done2}},
				{"status=in-progress", []int64{b.attempt1}},
				{"status=completed,in-progress", all},
				{"status=not-done", []int64{}},
				{"status=completed&based-on=ServiceRequest/" + id(b.bill1), []int64{b.done1}},
				{"sent=2026-03", []int64{b.done1, b.attempt1}},
				{"sent=ge2026-03-11&sent=lt2026-04-01", []int64{b.attempt1}},
				{"sent=gt2026-03-10", []int64{b.attempt1, b.done2}},
				{"sent=le2026-03-10", []int64{b.done1}},
				{"sent=2026-03-10T09:00:00Z", []int64{b.done1}},
				{"sent=2026-03-10T09:00:01Z", []int64{}},
				{"sent=ge2026-03-10T09:00:00Z&sent=le2026-03-11T10:00:00Z", []int64{b.done1, b.attempt1}},
				// 05:00 at -05:00 is 10:00Z: the attempt is not before it.
				{"sent=lt2026-03-11T05:00:00-05:00", []int64{b.done1}},
				{"sent=lt2026-03-11T05:00:00%2B05:00", []int64{b.done1}},
				{"sent=ge2027-01-01", []int64{}},
			} {
				total, got, _, _ := b.search(t, b.staff, tc.query)
				require.Equal(t, tc.want, got, tc.query)
				require.Equal(t, len(tc.want), total, tc.query)
			}
		})

		t.Run("SearchBundle", func(t *testing.T) {
			_, _, bundle, _ := b.search(t, b.staff, "status=completed")
			require.Equal(t, "self", bundle.Link[0].Relation)
			require.Equal(t, publicBase+"/fhir/r4/Communication?_total=accurate&status=completed", bundle.Link[0].Url)
			require.Len(t, bundle.Link, 1, "no next page")
			require.Equal(t, publicBase+"/fhir/r4/Communication/"+id(b.done1), *bundle.Entry[0].FullUrl)
		})

		t.Run("LinksIgnoreTheHostHeader", func(t *testing.T) {
			// A client (or a proxy passing on the client's Host) must not
			// be able to make the server name another site in its links.
			for _, path := range []string{"/fhir/r4/Communication?_count=1", "/fhir/r4/metadata"} {
				req, err := http.NewRequest(http.MethodGet, b.srv.URL+path, nil)
				require.NoError(t, err)
				req.Host = "evil.example"
				req.Header.Set("X-Forwarded-Proto", "https")
				req.Header.Set("X-Forwarded-Host", "evil.example")
				req.Header.Set("Authorization", "Bearer "+b.staff)
				res, err := http.DefaultClient.Do(req)
				require.NoError(t, err)
				body, err := io.ReadAll(res.Body)
				res.Body.Close()
				require.NoError(t, err)
				require.Equal(t, http.StatusOK, res.StatusCode, string(body))
				require.NotContains(t, string(body), "evil.example", path)
				require.Contains(t, string(body), publicBase+"/fhir/r4", path)
			}
		})

		t.Run("BearerSchemeIsCaseInsensitive", func(t *testing.T) {
			for _, scheme := range []string{"bearer", "BEARER", "Bearer"} {
				req, err := http.NewRequest(http.MethodGet, b.srv.URL+"/fhir/r4/Communication/"+id(b.done1), nil)
				require.NoError(t, err)
				req.Header.Set("Authorization", scheme+" "+b.staff)
				res, err := http.DefaultClient.Do(req)
				require.NoError(t, err)
				res.Body.Close()
				require.Equal(t, http.StatusOK, res.StatusCode, scheme)
			}
		})

		t.Run("TotalOnlyWhenAsked", func(t *testing.T) {
			for _, q := range []string{"", "_total=none", "_total=estimate", "status=completed"} {
				a := b.get(t, b.staff, "/fhir/r4/Communication?"+q)
				require.Equal(t, http.StatusOK, a.status, string(a.body))
				bundle, _, err := checkBundle(a.body)
				require.NoError(t, err)
				require.Nil(t, bundle.Total, q)
			}
			a := b.get(t, b.staff, "/fhir/r4/Communication?_total=accurate&_count=1")
			require.Equal(t, http.StatusOK, a.status, string(a.body))
			bundle, cs, err := checkBundle(a.body)
			require.NoError(t, err)
			require.NotNil(t, bundle.Total)
			require.Equal(t, 3, *bundle.Total)
			require.Len(t, cs, 1)
			a = b.get(t, b.staff, "/fhir/r4/Communication?_total=maybe")
			b.refused(t, a, http.StatusBadRequest, r4.IssueTypeInvalid)
		})

		t.Run("Paging", func(t *testing.T) {
			total, _, _, _ := b.search(t, b.staff, "_count=0")
			require.Equal(t, 3, total)
			var got []int64
			next := "/fhir/r4/Communication?_count=1"
			for pages := 0; next != ""; pages++ {
				require.Less(t, pages, 4, "paging does not end")
				a := b.get(t, b.staff, next)
				require.Equal(t, http.StatusOK, a.status, string(a.body))
				bundle, cs, err := checkBundle(a.body)
				require.NoError(t, err)
				// A page costs its page: nothing counted unless asked.
				require.Nil(t, bundle.Total, "a page without _total has no total")
				require.NotContains(t, string(a.body), `"total"`)
				require.Len(t, cs, 1)
				n, _ := strconv.ParseInt(*cs[0].Id, 10, 64)
				got = append(got, n)
				next = ""
				for _, l := range bundle.Link {
					if l.Relation == "next" {
						next = l.Url
					}
				}
			}
			require.Equal(t, []int64{b.done1, b.attempt1, b.done2}, got)
		})

		t.Run("LabIsolation", func(t *testing.T) {
			total, got, _, _ := b.search(t, b.other, "")
			require.Equal(t, []int64{b.otherDone}, got)
			require.Equal(t, 1, total)
			// The other lab's ORD-1 is not ours, and ours is not theirs.
			_, got, _, _ = b.search(t, b.other, "based-on=ServiceRequest/"+id(b.bill1))
			require.Empty(t, got)
			_, got, _, _ = b.search(t, b.staff, "based-on:identifier=ORD-1")
			require.Equal(t, []int64{b.done1, b.attempt1}, got)
		})

		t.Run("DepartmentIsolation", func(t *testing.T) {
			// Haematology sees only the attempt (it includes its CBC), and in
			// it only its own report and value.
			total, got, _, cs := b.search(t, b.haem, "")
			require.Equal(t, []int64{b.attempt1}, got)
			require.Equal(t, 1, total)
			require.Equal(t, []string{"DiagnosticReport/" + id(b.cbc)}, refs(cs[0].About))
			require.Len(t, cs[0].Payload, 1)
			require.Contains(t, cs[0].Payload[0].ContentString, "Hb 5.1")
			for _, rec := range []int64{b.done1, b.done2} {
				b.refused(t, b.get(t, b.haem, "/fhir/r4/Communication/"+id(rec)), http.StatusNotFound, r4.IssueTypeNotFound)
			}
			c := b.read(t, b.haem, b.attempt1)
			require.Equal(t, []string{"DiagnosticReport/" + id(b.cbc)}, refs(c.About))
			// The attempt also covered T2, of Biochemistry: its comment
			// ("No answer") may speak of it, and is not shown, as in the
			// activity log.
			for _, comm := range []r4.Communication{c, cs[0]} {
				require.NotContains(t, *comm.StatusReason.Text, "No answer")
				for _, n := range comm.Note {
					require.NotContains(t, n.Text, "No answer")
				}
			}

			_, got, _, cs = b.search(t, b.bio, "")
			require.Equal(t, []int64{b.done1, b.attempt1, b.done2}, got)
			require.Equal(t, []string{"DiagnosticReport/" + id(b.t2)}, refs(cs[1].About))
			_, got, _, _ = b.search(t, b.bio, "status=in-progress&_count=0")
			require.Empty(t, got)
		})

		t.Run("BadParameters", func(t *testing.T) {
			for _, tc := range []struct {
				query  string
				status int
				code   r4.IssueType
			}{
				{"stauts=completed", 400, r4.IssueTypeNotSupported},
				{"_sort=sent", 400, r4.IssueTypeNotSupported},
				{"sent=2026-13-01", 400, r4.IssueTypeInvalid},
				{"sent=yesterday", 400, r4.IssueTypeInvalid},
				{"sent=ne2026-03-10", 400, r4.IssueTypeNotSupported},
				{"status=done", 400, r4.IssueTypeCodeInvalid},
				{"based-on=ServiceRequest/", 400, r4.IssueTypeInvalid},
				{"_count=-5", 400, r4.IssueTypeInvalid},
				{"_format=xml", 406, r4.IssueTypeNotSupported},
			} {
				b.refused(t, b.get(t, b.staff, "/fhir/r4/Communication?"+tc.query), tc.status, tc.code)
			}
			b.refused(t, b.get(t, b.staff, "/fhir/r4/Communication/"+id(b.done1)+"?_elements=id"), 400, r4.IssueTypeNotSupported)
		})

		t.Run("OtherPathsAndMethods", func(t *testing.T) {
			b.refused(t, b.do(t, b.staff, http.MethodPost, "/fhir/r4/Communication"), 405, r4.IssueTypeNotSupported)
			b.refused(t, b.do(t, b.staff, http.MethodDelete, "/fhir/r4/Communication/"+id(b.done1)), 405, r4.IssueTypeNotSupported)
			b.refused(t, b.get(t, b.staff, "/fhir/r4/Patient/"+id(b.bill1)), 404, r4.IssueTypeNotSupported)
		})

		t.Run("Metadata", func(t *testing.T) {
			a := b.get(t, "", "/fhir/r4/metadata") // served without a token
			require.Equal(t, http.StatusOK, a.status, string(a.body))
			cs, err := checkCapability(a.body)
			require.NoError(t, err, string(a.body))
			require.Equal(t, r4.PublicationStatusActive, cs.Status)
			require.Equal(t, r4.CapabilityStatementKindInstance, cs.Kind)
			require.Equal(t, r4.FHIRVersion4_0_1, cs.FhirVersion)
			require.Equal(t, []string{"json"}, cs.Format)
			require.Equal(t, publicBase+"/fhir/r4", *cs.Implementation.Url)
			require.Len(t, cs.Rest, 1)
			require.Equal(t, r4.RestfulCapabilityModeServer, cs.Rest[0].Mode)
			res := cs.Rest[0].Resource
			require.Len(t, res, 1)
			require.Equal(t, r4.ResourceTypeCommunication, res[0].Type)
			var codes []r4.TypeRestfulInteraction
			for _, i := range res[0].Interaction {
				codes = append(codes, i.Code)
			}
			require.Equal(t, []r4.TypeRestfulInteraction{r4.TypeRestfulInteractionRead, r4.TypeRestfulInteractionSearchType}, codes)
			params := map[string]r4.SearchParamType{}
			for _, p := range res[0].SearchParam {
				params[p.Name] = p.Type
			}
			require.Equal(t, map[string]r4.SearchParamType{"based-on": r4.SearchParamTypeReference,
				"subject": r4.SearchParamTypeReference, "patient": r4.SearchParamTypeReference,
				"sent": r4.SearchParamTypeDate, "status": r4.SearchParamTypeToken}, params)
			// Every parameter it lists is one the server accepts.
			for name := range params {
				a := b.get(t, b.staff, "/fhir/r4/Communication?"+name+"=1")
				require.NotEqual(t, r4.IssueTypeNotSupported, issueCode(a.body), name)
			}
		})
	})
}

// TestFHIRCommentsOfOtherDepartments checks that a user limited to
// departments reads a Communication's comment only when its callout
// covered nothing but reports they see, the rule of the activity log.
func TestFHIRCommentsOfOtherDepartments(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, e storetest.Engine) {
		ctx := context.Background()
		b := setup(t, e)
		const secret = "HIV screen positive"
		cbc := callout.NewReport{TestID: "CBC", TestName: "Blood Count", Department: "Haematology",
			Parameters: []callout.Parameter{{Name: "Hb", Value: "5.1", Unit: "g/dL", Flag: "LL"}}}
		notes := func(c r4.Communication) string {
			var all []string
			if c.StatusReason != nil {
				all = append(all, *c.StatusReason.Text)
			}
			for _, n := range c.Note {
				all = append(all, n.Text)
			}
			return strings.Join(all, "\n")
		}

		// A done callout of T1 (Biochemistry) and CBC: one record each.
		o := b.fx.Create(t, storetest.Order("ORD-3", 1, cbc))
		req := storetest.Done(storetest.ReportIDs(o)...)
		req.Payload.Comment = secret
		res, err := b.fx.Svc.Callout(ctx, b.fx.Staff, o.ID, req, nil)
		require.NoError(t, err)
		t1Rec, cbcRec := res.Callouts[0].ID, res.Callouts[1].ID
		require.Contains(t, notes(b.read(t, b.staff, cbcRec)), secret)
		require.NotContains(t, notes(b.read(t, b.haem, cbcRec)), secret)
		require.NotContains(t, notes(b.read(t, b.bio, t1Rec)), secret)
		_, got, _, cs := b.search(t, b.haem, "based-on=ServiceRequest/"+strconv.FormatInt(o.ID, 10))
		require.Equal(t, []int64{cbcRec}, got)
		require.NotContains(t, notes(cs[0]), secret)

		// An attempt of T1 alone does not exist for Haematology, though
		// the order has their CBC.
		o4 := b.fx.Create(t, storetest.Order("ORD-4", 1, cbc))
		req = storetest.Attempt(o4.Reports[0].ID)
		req.Payload.Comment = secret
		res, err = b.fx.Svc.Callout(ctx, b.fx.Staff, o4.ID, req, nil)
		require.NoError(t, err)
		attempt := res.Callouts[0].ID
		b.refused(t, b.get(t, b.haem, "/fhir/r4/Communication/"+strconv.FormatInt(attempt, 10)), http.StatusNotFound, r4.IssueTypeNotFound)
		total, got, _, _ := b.search(t, b.haem, "based-on=ServiceRequest/"+strconv.FormatInt(o4.ID, 10))
		require.Empty(t, got)
		require.Zero(t, total)
		require.Contains(t, notes(b.read(t, b.bio, attempt)), secret, "all of it is Biochemistry's")
	})
}

// issueCode returns the first issue's code of an OperationOutcome body, or -1.
func issueCode(body []byte) r4.IssueType {
	var o r4.OperationOutcome
	if json.Unmarshal(body, &o) != nil || len(o.Issue) == 0 {
		return -1
	}
	return o.Issue[0].Code
}
