package fhir

import (
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestParseDate(t *testing.T) {
	t.Parallel()
	utc := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339Nano, s)
		require.NoError(t, err)
		return v.UTC()
	}
	for _, tc := range []struct {
		in         string
		start, end string // "" for an error
	}{
		{"2026", "2026-01-01T00:00:00Z", "2027-01-01T00:00:00Z"},
		{"2026-12", "2026-12-01T00:00:00Z", "2027-01-01T00:00:00Z"},
		{"2026-02-28", "2026-02-28T00:00:00Z", "2026-03-01T00:00:00Z"},
		{"2026-03-10T09:30", "2026-03-10T09:30:00Z", "2026-03-10T09:31:00Z"},
		{"2026-03-10T09:30:15Z", "2026-03-10T09:30:15Z", "2026-03-10T09:30:16Z"},
		{"2026-03-10T09:30:15.25Z", "2026-03-10T09:30:15.25Z", "2026-03-10T09:30:15.26Z"},
		{"2026-03-10T04:00:00-05:00", "2026-03-10T09:00:00Z", "2026-03-10T09:00:01Z"},
		{"2026-03-10T10:00:00+01:00", "2026-03-10T09:00:00Z", "2026-03-10T09:00:01Z"},
		{"2026-13-01", "", ""},
		{"2026-02-30", "", ""},
		{"2026-03-10T24:00:00Z", "", ""},
		{"2026-03-10T09:00:00+15:00", "", ""},
		{"26-03-10", "", ""},
		{"2026-03-10Z", "", ""},
		{"yesterday", "", ""},
		{"", "", ""},
	} {
		start, end, err := parseDate(tc.in)
		if tc.start == "" {
			require.Error(t, err, tc.in)
			continue
		}
		require.NoError(t, err, tc.in)
		require.Equal(t, utc(tc.start), start, tc.in)
		require.Equal(t, utc(tc.end), end, tc.in)
	}
}

func TestParseSearch(t *testing.T) {
	t.Parallel()
	day := func(s string) time.Time {
		v, err := time.Parse("2006-01-02", s)
		require.NoError(t, err)
		return v
	}
	for _, tc := range []struct {
		query string
		want  Query
		none  bool
		count int
		// status and issue code of a refusal
		status int
		code   string
	}{
		{query: "", want: Query{}},
		{query: "based-on=ServiceRequest/42", want: Query{BillIDs: []int64{42}}},
		{query: "based-on=42", want: Query{BillIDs: []int64{42}}},
		{query: "based-on=https://x.example/fhir/r4/ServiceRequest/42", want: Query{BillIDs: []int64{42}}},
		{query: "based-on:ServiceRequest=42", want: Query{BillIDs: []int64{42}}},
		{query: "based-on=CarePlan/42", want: Query{BillIDs: []int64{}}, none: true},
		{query: "based-on=ServiceRequest/abc", want: Query{BillIDs: []int64{}}, none: true},
		{query: "based-on=ServiceRequest/", status: 400, code: "invalid"},
		{query: "based-on:identifier=ORD-1", want: Query{LabBillIDs: []string{"ORD-1"}}},
		{query: "based-on:identifier=urn:callout:lab:3:order|ORD-1,ORD-2", want: Query{LabBillIDs: []string{"ORD-1", "ORD-2"}}},
		{query: "based-on:identifier=urn:callout:lab:4:order|ORD-1", want: Query{LabBillIDs: []string{}}, none: true},
		{query: "based-on:missing=true", status: 400, code: "not-supported"},
		{query: "subject=Patient/42&based-on=ServiceRequest/42", want: Query{BillIDs: []int64{42}}},
		{query: "subject=Patient/42&based-on=ServiceRequest/43", want: Query{BillIDs: []int64{}}, none: true},
		{query: "subject=Patient/42,Patient/43&patient=43", want: Query{BillIDs: []int64{43}}},
		{query: "subject=Group/42", want: Query{BillIDs: []int64{}}, none: true},
		{query: "subject:Patient=42", want: Query{BillIDs: []int64{42}}},
		{query: "status=completed", want: Query{Statuses: []string{"done"}}},
		{query: "status=in-progress,completed", want: Query{Statuses: []string{"attempted", "done"}}},
		{query: "status=http://hl7.org/fhir/event-status|completed", want: Query{Statuses: []string{"done"}}},
		{query: "status=http://example.org|completed", want: Query{Statuses: []string{}}, none: true},
		{query: "status=not-done", want: Query{Statuses: []string{}}, none: true},
		{query: "status=completed&status=in-progress", want: Query{Statuses: []string{}}, none: true},
		{query: "status=done", status: 400, code: "code-invalid"},
		{query: "status:not=completed", status: 400, code: "not-supported"},
		{query: "sent=2026-03", want: Query{SentFrom: day("2026-03-01"), SentBefore: day("2026-04-01")}},
		{query: "sent=ge2026-01-01&sent=lt2026-12-01", want: Query{SentFrom: day("2026-01-01"), SentBefore: day("2026-12-01")}},
		{query: "sent=gt2026-03-10&sent=le2026-03-11", want: Query{SentFrom: day("2026-03-11"), SentBefore: day("2026-03-12")}},
		{query: "sent=sa2026-03-10&sent=eb2026-03-12", want: Query{SentFrom: day("2026-03-11"), SentBefore: day("2026-03-12")}},
		{query: "sent=ge2026-03-01&sent=ge2026-02-01&sent=lt2026-05-01&sent=lt2026-04-01", want: Query{SentFrom: day("2026-03-01"), SentBefore: day("2026-04-01")}},
		{query: "sent=ge2026-03-02&sent=lt2026-03-02", want: Query{SentFrom: day("2026-03-02"), SentBefore: day("2026-03-02")}, none: true},
		{query: "sent=ge2026-03-10T10:00:00 01:00", want: Query{SentFrom: day("2026-03-10").Add(9 * time.Hour)}},
		{query: "sent=ne2026-03-10", status: 400, code: "not-supported"},
		{query: "sent=ap2026-03-10", status: 400, code: "not-supported"},
		{query: "sent=2026-03-10,2026-03-11", status: 400, code: "not-supported"},
		{query: "sent=2026-13-01", status: 400, code: "invalid"},
		{query: "sent=ge", status: 400, code: "invalid"},
		{query: "_count=10", want: Query{}, count: 10},
		{query: "_count=0", want: Query{Total: true}, count: 0},
		{query: "_total=accurate", want: Query{Total: true}},
		{query: "_total=none", want: Query{}},
		{query: "_total=sometimes", status: 400, code: "invalid"},
		{query: "_count=100000", want: Query{}, count: maxCount},
		{query: "_count=-1", status: 400, code: "invalid"},
		{query: "_count=ten", status: 400, code: "invalid"},
		{query: "_count=1&_count=2", status: 400, code: "invalid"},
		{query: "_cursor=17", want: Query{AfterID: 17}},
		{query: "_cursor=x", status: 400, code: "invalid"},
		{query: "_format=application/fhir%2Bjson", want: Query{}},
		{query: "_format=xml", status: 406, code: "not-supported"},
		{query: "status=", want: Query{}},
		{query: "recipient=Patient/1", status: 400, code: "not-supported"},
		{query: "_sort=-sent", status: 400, code: "not-supported"},
		{query: "stauts=completed", status: 400, code: "not-supported"},
	} {
		v, err := url.ParseQuery(tc.query)
		require.NoError(t, err, tc.query)
		s, err := parseSearch(v, 3)
		if tc.status != 0 {
			var p *problem
			require.ErrorAs(t, err, &p, tc.query)
			require.Equal(t, tc.status, p.status, tc.query)
			require.Equal(t, tc.code, p.code, tc.query)
			continue
		}
		require.NoError(t, err, tc.query)
		require.Equal(t, tc.want, s.q, tc.query)
		require.Equal(t, tc.none, s.none, tc.query)
		if tc.count == 0 && tc.query != "_count=0" {
			tc.count = defaultCount
		}
		require.Equal(t, tc.count, s.count, tc.query)
	}
}
