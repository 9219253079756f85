package jobs

import (
	"testing"
	"time"

	"github.com/riverqueue/river/rivertype"
	"github.com/stretchr/testify/require"

	"callout/internal/callout"
)

func f(v float64) *float64 { return &v }

func TestContentFromSnapshots(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 11, 27, 8, 0, 0, 0, time.UTC)
	w := callout.DeliveryWork{
		Settings: callout.Settings{Name: "North Lab", ShareComment: true},
		Delivery: callout.Delivery{ID: 9, Channel: callout.ChannelEmail, Recipient: "Referral", RecipientName: "Dr. Rao", CalloutIDs: []int64{4, 5}},
		Bill: callout.Bill{ID: 3, LabBillID: "ORD-1", Patient: callout.Contact{Name: "Maria"},
			Reports: []callout.Report{{ID: 10, Department: "Biochemistry"}, {ID: 11, Department: "Haematology"}}},
		Records: []callout.Record{
			{ID: 4, CreatedBy: "Asha", CreatedAt: at, Comment: "told", NotifiedPerson: "Dr. Rao", Snapshot: []callout.SnapshotItem{
				{LabReportID: 10, TestID: "K", TestName: "Potassium", Name: "Potassium", Value: "7.1", Unit: "mmol/L",
					NormalLow: f(3.5), NormalHigh: f(5.1), CriticalLow: f(2.5), CriticalHigh: f(6.5)}}},
			{ID: 5, CreatedBy: "Asha", CreatedAt: at, Comment: "told", Snapshot: []callout.SnapshotItem{
				{LabReportID: 11, TestID: "PLT", TestName: "Platelets", Name: "Platelets", Value: "12", Flag: "LL", CriticalLow: f(20)}}},
		},
	}
	c := Content(w, "https://callout.example/")
	require.Equal(t, "https://callout.example/bills/3", c.OrderURL)
	require.Equal(t, "told", c.Comment)
	require.Equal(t, "Asha", c.CalledBy)
	require.Len(t, c.Reports, 2)
	require.Equal(t, "Biochemistry", c.Reports[0].Department)
	p := c.Reports[0].Parameters[0]
	require.Equal(t, "3.5–5.1", p.NormalRange)
	require.Equal(t, "<2.5 or >6.5", p.CriticalRange)
	require.Equal(t, "HH", p.Flag, "critical by the limits alone")
	require.Equal(t, "LL", c.Reports[1].Parameters[0].Flag, "the sender's flag")
	require.Equal(t, "<20", c.Reports[1].Parameters[0].CriticalRange, "a low limit alone")

	w.Settings.ShareComment = false
	require.Empty(t, Content(w, "").Comment, "the comment goes out only when the lab shares it")

	id := MessageID(w.Delivery, "lab.example")
	require.Equal(t, "callout-4.referral.email.9@lab.example", id)
	require.Equal(t, id, MessageID(w.Delivery, "lab.example"), "stable")
}

func TestBackoff(t *testing.T) {
	t.Parallel()
	b := &backoff{base: time.Second, limit: 10 * time.Second}
	prev := time.Duration(0)
	for attempt := 1; attempt <= 8; attempt++ {
		d := time.Until(b.NextRetry(jobRow(attempt)))
		require.LessOrEqual(t, d, 11*time.Second, "attempt %d", attempt)
		require.GreaterOrEqual(t, d, prev/2, "attempt %d grows", attempt)
		prev = d
	}
}

func jobRow(attempt int) *rivertype.JobRow { return &rivertype.JobRow{Attempt: attempt} }
