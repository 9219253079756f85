package storetest

import (
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"callout/internal/callout"
	"callout/internal/sqlstore"
)

// Fixture is a migrated store with one lab and a service over it.
type Fixture struct {
	Store *sqlstore.Store
	Svc   *callout.Service
	Lab   int64
	Staff callout.Principal
	Admin callout.Principal
}

// NewFixture opens a store of engine e with a lab configured by set.
func NewFixture(t testing.TB, e Engine, set callout.Settings) *Fixture {
	t.Helper()
	st := e.Open(t)
	f := &Fixture{Store: st, Svc: callout.NewService(st, nil)}
	f.Lab = f.AddLab(t, set)
	f.Staff = callout.Principal{LabID: f.Lab, User: "Asha", Role: callout.RoleStaff}
	f.Admin = callout.Principal{LabID: f.Lab, User: "Ravi", Role: callout.RoleAdmin}
	return f
}

// AddLab creates another lab in the same database.
func (f *Fixture) AddLab(t testing.TB, set callout.Settings) int64 {
	t.Helper()
	if set.Name == "" {
		set.Name = "City Lab"
	}
	id, err := f.Store.CreateLab(context.Background(), set)
	require.NoError(t, err)
	return id
}

func ptr[T any](v T) *T { return &v }

// Potassium returns a potassium result of value v with the usual limits
// (normal 3.5–5.1, critical 2.5–6.5 mmol/L).
func Potassium(v string) callout.Parameter {
	return callout.Parameter{Name: "Potassium", Value: v, Unit: "mmol/L",
		NormalLow: ptr(3.5), NormalHigh: ptr(5.1), CriticalLow: ptr(2.5), CriticalHigh: ptr(6.5)}
}

// Order returns an order with critical reports T1…Tn (potassium 7.1), plus
// the reports in extra, with every contact reachable by email and fax.
func Order(billID string, n int, extra ...callout.NewReport) callout.NewOrder {
	o := callout.NewOrder{
		LabBillID:       billID,
		AccessionNumber: "ACC-" + billID,
		Patient:         callout.Contact{Name: "Maria Müller", Email: "maria@example.org", Phone: "+1 555 0100"},
		Referral:        callout.Contact{Name: "Dr. Rao", Email: "rao@clinic.example", Fax: "+1 555 0199", Phone: "+1 555 0101"},
		Organization:    callout.Contact{Name: "St. Mary Clinic", Email: "lab@stmary.example", Fax: "+1 555 0198", Phone: "+1 555 0102"},
	}
	for i := 1; i <= n; i++ {
		o.Reports = append(o.Reports, callout.NewReport{
			TestID: fmt.Sprintf("T%d", i), TestName: fmt.Sprintf("Electrolytes %d", i), Department: "Biochemistry",
			Parameters: []callout.Parameter{Potassium("7.1"), {Name: "Sodium", Value: "140", Unit: "mmol/L", NormalLow: ptr(135.0), NormalHigh: ptr(145.0)}},
		})
	}
	o.Reports = append(o.Reports, extra...)
	return o
}

// MaxOrder returns an order of the largest size allowed:
// MaxReportsPerOrder reports sharing MaxParametersPerOrder results, the
// first of each flagged critical.
func MaxOrder(billID string) callout.NewOrder {
	o := callout.NewOrder{LabBillID: billID, Patient: callout.Contact{Name: "Maria Müller"}}
	per := callout.MaxParametersPerOrder / callout.MaxReportsPerOrder
	for i := range callout.MaxReportsPerOrder {
		r := callout.NewReport{TestID: fmt.Sprintf("T%d", i+1), TestName: fmt.Sprintf("Panel %d", i+1)}
		for j := range per {
			p := callout.Parameter{Name: fmt.Sprintf("A%d", j+1), Value: fmt.Sprint(100 + j)}
			if j%3 == 0 {
				p.Unit = "mg/dL"
			}
			if j == 0 {
				p.Flag = "HH"
			}
			r.Parameters = append(r.Parameters, p)
		}
		o.Reports = append(o.Reports, r)
	}
	return o
}

// Create stores o in the fixture's lab and returns the answer.
func (f *Fixture) Create(t testing.TB, o callout.NewOrder) callout.OrderCreated {
	t.Helper()
	c, err := f.Svc.CreateOrder(context.Background(), f.Staff, o, nil)
	require.NoError(t, err)
	return c
}

// ReportIDs returns the ids of the created reports, in order.
func ReportIDs(c callout.OrderCreated) []int64 {
	ids := make([]int64, len(c.Reports))
	for i, r := range c.Reports {
		ids[i] = r.ID
	}
	return ids
}

// States returns the current state of every report of the bill, by id.
func (f *Fixture) States(t testing.TB, billID int64) map[int64]callout.State {
	t.Helper()
	b, err := f.Store.Bill(context.Background(), f.Lab, billID)
	require.NoError(t, err)
	out := map[int64]callout.State{}
	for _, r := range b.Reports {
		out[r.ID] = r.State
	}
	return out
}

// Done is a done callout of ids to the referral by email.
func Done(ids ...int64) callout.Request {
	return callout.Request{LabReportIDs: ids, Payload: callout.Payload{
		SendEmail: true, IsReferral: true, Comment: "Informed Dr. Rao", NotifiedPerson: "Dr. Rao", ReadBack: true}}
}

// Attempt is an attempt (draft) on ids.
func Attempt(ids ...int64) callout.Request {
	return callout.Request{LabReportIDs: ids, IsDraft: true, Payload: callout.Payload{
		IsReferral: true, Comment: "No answer"}}
}
