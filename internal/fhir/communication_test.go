package fhir_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"callout/internal/callout"
	"callout/internal/fhir"
)

func ptr[T any](v T) *T { return &v }

// mappingBill is an order of lab 3 with a biochemistry and a haematology report.
func mappingBill() callout.Bill {
	return callout.Bill{ID: 42, LabID: 3, LabBillID: "ORD-7",
		Patient:      callout.Contact{Name: "Maria Müller"},
		Referral:     callout.Contact{Name: "Dr. Rao"},
		Organization: callout.Contact{Name: "St. Mary Clinic"},
		Reports: []callout.Report{
			{ID: 7, TestID: "SE", TestName: "Serum Electrolytes", Department: "Biochemistry"},
			{ID: 8, TestID: "CBC", TestName: "Blood Count", Department: "Haematology"},
		}}
}

var (
	sent      = time.Date(2026, 3, 10, 9, 0, 0, 123456000, time.UTC)
	potassium = callout.SnapshotItem{LabReportID: 7, TestID: "SE", TestName: "Serum Electrolytes",
		Name: "Potassium", Value: "7.1", Unit: "mmol/L", Flag: "HH", CriticalLow: ptr(2.5), CriticalHigh: ptr(6.5)}
	haemoglobin = callout.SnapshotItem{LabReportID: 8, TestID: "CBC", TestName: "Blood Count",
		Name: "Hb", Value: "5.1", Unit: "g/dL", CriticalLow: ptr(7.0)}
)

// TestDoneCallout pins the whole mapping of a done callout, element by element.
func TestDoneCallout(t *testing.T) {
	t.Parallel()
	e := fhir.Entry{Bill: mappingBill(), Record: callout.Record{ID: 501, BillID: 42, LabReportID: ptr(int64(7)),
		Status: callout.StatusDone, Methods: []string{"Email", "Fax"}, Recipients: []string{"Referral"},
		Comment: "Informed Dr. Rao", NotifiedPerson: "Dr. Rao", ReadBack: true, CreatedBy: "Asha", CreatedAt: sent,
		Snapshot: []callout.SnapshotItem{potassium}}}
	got, err := json.Marshal(fhir.NewCommunication(e, callout.Principal{LabID: 3}))
	require.NoError(t, err)
	require.JSONEq(t, `{
	  "resourceType": "Communication",
	  "id": "501",
	  "meta": {"versionId": "1", "lastUpdated": "2026-03-10T09:00:00.123456Z"},
	  "identifier": [{"system": "urn:callout:record", "value": "501"}],
	  "basedOn": [{"reference": "ServiceRequest/42", "type": "ServiceRequest",
	    "identifier": {"system": "urn:callout:lab:3:order", "value": "ORD-7"}, "display": "Order ORD-7"}],
	  "status": "completed",
	  "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/communication-category", "code": "alert", "display": "Alert"}]}],
	  "priority": "stat",
	  "medium": [
	    {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationMode", "code": "PHONE", "display": "telephone"}]},
	    {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationMode", "code": "EMAILWRIT", "display": "email"}]},
	    {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationMode", "code": "FAXWRIT", "display": "telefax"}]}
	  ],
	  "subject": {"reference": "Patient/order-42", "type": "Patient", "display": "Maria Müller"},
	  "about": [{"reference": "DiagnosticReport/7", "type": "DiagnosticReport", "display": "Serum Electrolytes"}],
	  "sent": "2026-03-10T09:00:00.123456Z",
	  "recipient": [{"reference": "Practitioner/referral-42", "type": "Practitioner", "display": "Dr. Rao"}],
	  "sender": {"type": "Practitioner", "display": "Asha"},
	  "payload": [{"contentString": "Serum Electrolytes: Potassium 7.1 mmol/L (HH)"}],
	  "note": [{"text": "Read back by Dr. Rao: yes"}, {"text": "Informed Dr. Rao"}]
	}`, string(got))
	_, err = checkCommunication(got)
	require.NoError(t, err)
}

// mapped is what a test case expects of the elements that vary.
type mapped struct {
	status, reason string
	medium         []string
	recipients     []string // reference|display
	about          []string
	payload        []string
	notes          []string
}

func TestCommunicationMapping(t *testing.T) {
	t.Parallel()
	attempt := callout.Record{ID: 600, BillID: 42, Status: callout.StatusAttempted,
		Methods: []string{"Email"}, Recipients: []string{"Referral"}, Comment: "No answer",
		CreatedBy: "Asha", CreatedAt: sent, Meta: &callout.Meta{CalloutFor: []string{"SE", "CBC"}},
		Snapshot: []callout.SnapshotItem{potassium, haemoglobin}}
	// A done callout of both reports: one record each.
	doneSE := callout.Record{ID: 700, BillID: 42, LabReportID: ptr(int64(7)), Status: callout.StatusDone,
		Recipients: []string{"Referral"}, Comment: "Told Dr. Rao, HIV screen pending", CreatedBy: "Asha", CreatedAt: sent,
		Snapshot: []callout.SnapshotItem{potassium}}
	doneCBC := doneSE
	doneCBC.ID, doneCBC.LabReportID, doneCBC.Snapshot = 701, ptr(int64(8)), []callout.SnapshotItem{haemoglobin}
	for _, tc := range []struct {
		name string
		rec  callout.Record
		recs []callout.Record // the order's records, for Entry.Records
		p    callout.Principal
		want mapped
	}{{
		name: "done to everyone, no copies",
		rec: callout.Record{ID: 502, BillID: 42, LabReportID: ptr(int64(8)), Status: callout.StatusDone,
			Recipients: []string{"Patient", "Referral", "Organization"}, NotifiedPerson: "Nurse Joy",
			NotifyToOthers: &callout.OtherContact{Name: "Dr. Covering", Email: "cover@example.org"},
			CreatedBy:      "Ravi", CreatedAt: sent, Snapshot: []callout.SnapshotItem{haemoglobin}},
		want: mapped{status: "completed", medium: []string{"PHONE"},
			recipients: []string{"Patient/order-42|Maria Müller", "Practitioner/referral-42|Dr. Rao",
				"Organization/org-42|St. Mary Clinic", "|Dr. Covering"},
			about: []string{"DiagnosticReport/8"},
			// No flag: the crossed critical limit is named instead.
			payload: []string{"Blood Count: Hb 5.1 g/dL (critical < 7)"},
			notes:   []string{"Read back by Nurse Joy: no"}},
	}, {
		name: "attempt: in progress with a reason, no copies sent",
		rec:  attempt,
		want: mapped{status: "in-progress", reason: "Callout attempted: No answer", medium: []string{"PHONE"},
			recipients: []string{"Practitioner/referral-42|Dr. Rao"},
			about:      []string{"DiagnosticReport/7", "DiagnosticReport/8"},
			payload:    []string{"Serum Electrolytes: Potassium 7.1 mmol/L (HH)", "Blood Count: Hb 5.1 g/dL (critical < 7)"},
			notes:      []string{"Read back: no", "No answer"}},
	}, {
		name: "attempt without a comment",
		rec: callout.Record{ID: 601, BillID: 42, Status: callout.StatusAttempted, Recipients: []string{"Patient"},
			CreatedBy: "Asha", CreatedAt: sent, Meta: &callout.Meta{CalloutFor: []string{"SE"}},
			Snapshot: []callout.SnapshotItem{potassium}},
		want: mapped{status: "in-progress", reason: "Callout attempted: recipient not reached", medium: []string{"PHONE"},
			recipients: []string{"Patient/order-42|Maria Müller"}, about: []string{"DiagnosticReport/7"},
			payload: []string{"Serum Electrolytes: Potassium 7.1 mmol/L (HH)"}, notes: []string{"Read back: no"}},
	}, {
		name: "attempt seen by haematology only: the other department's report and the comment are left out",
		rec:  attempt,
		p:    callout.Principal{LabID: 3, Departments: []string{"Haematology"}},
		want: mapped{status: "in-progress", reason: "Callout attempted", medium: []string{"PHONE"},
			recipients: []string{"Practitioner/referral-42|Dr. Rao"}, about: []string{"DiagnosticReport/8"},
			payload: []string{"Blood Count: Hb 5.1 g/dL (critical < 7)"}, notes: []string{"Read back: no", callout.WithheldComment}},
	}, {
		name: "done record seen by haematology, of a callout that also covered biochemistry: no comment",
		rec:  doneCBC,
		recs: []callout.Record{doneSE, doneCBC},
		p:    callout.Principal{LabID: 3, Departments: []string{"Haematology"}},
		want: mapped{status: "completed", medium: []string{"PHONE"},
			recipients: []string{"Practitioner/referral-42|Dr. Rao"}, about: []string{"DiagnosticReport/8"},
			payload: []string{"Blood Count: Hb 5.1 g/dL (critical < 7)"}, notes: []string{"Read back: no", callout.WithheldComment}},
	}, {
		name: "the same record, unlimited",
		rec:  doneCBC,
		recs: []callout.Record{doneSE, doneCBC},
		want: mapped{status: "completed", medium: []string{"PHONE"},
			recipients: []string{"Practitioner/referral-42|Dr. Rao"}, about: []string{"DiagnosticReport/8"},
			payload: []string{"Blood Count: Hb 5.1 g/dL (critical < 7)"}, notes: []string{"Read back: no", "Told Dr. Rao, HIV screen pending"}},
	}, {
		name: "done without a snapshot still says what it was about",
		rec: callout.Record{ID: 503, BillID: 42, LabReportID: ptr(int64(7)), Status: callout.StatusDone,
			Methods: []string{"Fax"}, Recipients: []string{"Organization"}, ReadBack: true, NotifiedPerson: "Desk",
			CreatedBy: "Asha", CreatedAt: sent},
		want: mapped{status: "completed", medium: []string{"PHONE", "FAXWRIT"},
			recipients: []string{"Organization/org-42|St. Mary Clinic"}, about: []string{"DiagnosticReport/7"},
			payload: []string{"Critical result: Serum Electrolytes"}, notes: []string{"Read back by Desk: yes"}},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if tc.p.LabID == 0 {
				tc.p = callout.Principal{LabID: 3}
			}
			c := fhir.NewCommunication(fhir.Entry{Bill: mappingBill(), Record: tc.rec, Records: tc.recs}, tc.p)
			got := mapped{status: string(c.Status)}
			if c.StatusReason != nil {
				got.reason = c.StatusReason.Text
			}
			for _, m := range c.Medium {
				got.medium = append(got.medium, m.Coding[0].Code)
			}
			for _, r := range c.Recipient {
				got.recipients = append(got.recipients, r.Reference+"|"+r.Display)
			}
			for _, r := range c.About {
				got.about = append(got.about, r.Reference)
			}
			for _, p := range c.Payload {
				got.payload = append(got.payload, p.ContentString)
			}
			for _, n := range c.Note {
				got.notes = append(got.notes, n.Text)
			}
			require.Equal(t, tc.want, got)
			raw, err := json.Marshal(c)
			require.NoError(t, err)
			_, err = checkCommunication(raw)
			require.NoError(t, err)
		})
	}
}
