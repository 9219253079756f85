package jobs

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/riverqueue/river"

	"callout/internal/callout"
	"callout/internal/notify"
)

// DeliveryStore is what sending a delivery needs from storage.
type DeliveryStore interface {
	DeliveryWork(ctx context.Context, id int64) (callout.DeliveryWork, error)
	SaveMessage(ctx context.Context, id int64, m callout.Message) (callout.Message, error)
	MarkDeliverySent(ctx context.Context, id int64, attempts int, at time.Time) error
	MarkDeliveryFailed(ctx context.Context, id int64, attempts int, reason string, final bool, at time.Time) error
}

// Sender hands one email to a mail server; *notify.Mailer is one.
type Sender interface {
	Send(ctx context.Context, e notify.Email) error
}

// Deliverer is the worker that renders and sends deliveries.
type Deliverer struct {
	river.WorkerDefaults[DeliverArgs]
	Store  DeliveryStore
	Mailer Sender // nil when no SMTP server is configured
	// FaxGateway is the email-to-fax gateway domain: a fax to +1 555 0199
	// is mailed to 15550199@FaxGateway with the results sheet as a PDF.
	FaxGateway string
	// BaseURL is the web UI's address, for the link to the order.
	BaseURL string
	// Domain is the right-hand side of every Message-ID.
	Domain string
	Log    *slog.Logger
}

// Work sends one delivery. The message is rendered on the first attempt and
// stored; every later attempt sends the stored message, under the same
// Message-ID, so a retry after a crash can repeat a message but never send a
// different one.
func (d *Deliverer) Work(ctx context.Context, job *river.Job[DeliverArgs]) error {
	w, err := d.Store.DeliveryWork(ctx, job.Args.DeliveryID)
	if callout.ErrorKind(err) == callout.KindNotFound {
		return river.JobCancel(err)
	}
	if err != nil {
		return err
	}
	if w.Delivery.Status == callout.DeliverySent {
		return nil
	}
	attempts := w.Delivery.Attempts + 1
	fail := func(err error, permanent bool) error {
		final := permanent || job.Attempt >= job.MaxAttempts
		if merr := d.Store.MarkDeliveryFailed(ctx, w.Delivery.ID, attempts, err.Error(), final, callout.Now()); merr != nil {
			return fmt.Errorf("%v; and recording it failed: %w", err, merr)
		}
		d.log().Warn("delivery failed", "delivery", w.Delivery.ID, "channel", w.Delivery.Channel,
			"attempt", attempts, "final", final, "err", err)
		if permanent {
			return river.JobCancel(err)
		}
		return err
	}

	msg := w.Message
	if msg == nil {
		m, err := d.render(w)
		if err != nil {
			return fail(err, true)
		}
		kept, err := d.Store.SaveMessage(ctx, w.Delivery.ID, m)
		if err != nil {
			return err
		}
		msg = &kept
	}
	to := w.Delivery.Address
	if w.Delivery.Channel == callout.ChannelFax {
		if d.FaxGateway == "" {
			return fail(fmt.Errorf("no fax gateway is configured (CALLOUT_FAX_GATEWAY)"), true)
		}
		if to, err = notify.FaxAddress(w.Delivery.Address, d.FaxGateway); err != nil {
			return fail(err, true)
		}
	}
	if d.Mailer == nil {
		return fail(fmt.Errorf("no mail server is configured (CALLOUT_SMTP_URL)"), true)
	}
	e := notify.Email{MessageID: msg.MessageID, To: to, Subject: msg.Subject, HTML: msg.HTML, Text: msg.Text}
	if len(msg.Attachment) > 0 {
		e.Attachments = []notify.Attachment{{Name: msg.AttachmentName, ContentType: "application/pdf", Data: msg.Attachment}}
	}
	if err := d.Mailer.Send(ctx, e); err != nil {
		return fail(err, notify.IsPermanent(err))
	}
	// A crash here, after the server accepted the message and before this
	// is recorded, makes the job run again: the same message is sent again
	// under the same Message-ID, which mail systems recognise as a repeat.
	return d.Store.MarkDeliverySent(ctx, w.Delivery.ID, attempts, callout.Now())
}

func (d *Deliverer) log() *slog.Logger {
	if d.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return d.Log
}

// MessageID is a delivery's Message-ID: derived from the callout and the
// recipient, so the same delivery always carries the same one.
func MessageID(dl callout.Delivery, domain string) string {
	first := int64(0)
	if len(dl.CalloutIDs) > 0 {
		first = dl.CalloutIDs[0]
	}
	if domain == "" {
		domain = "callout.invalid"
	}
	return fmt.Sprintf("callout-%d.%s.%s.%d@%s", first, strings.ToLower(dl.Recipient), dl.Channel, dl.ID, domain)
}

// render builds the message of a delivery from the callout records'
// snapshots: what was communicated, not the results as they are now.
func (d *Deliverer) render(w callout.DeliveryWork) (callout.Message, error) {
	c := Content(w, d.BaseURL)
	r, err := notify.NewRenderer(w.EmailTemplate)
	if err != nil {
		return callout.Message{}, fmt.Errorf("the lab's email template: %w", err)
	}
	out, err := r.Render(c)
	if err != nil {
		return callout.Message{}, fmt.Errorf("render the message: %w", err)
	}
	m := callout.Message{MessageID: MessageID(w.Delivery, d.Domain), Subject: out.Subject, HTML: out.HTML, Text: out.Text}
	if w.Delivery.Channel == callout.ChannelFax {
		pdf, err := notify.FaxSheet(c)
		if err != nil {
			return callout.Message{}, fmt.Errorf("render the fax sheet: %w", err)
		}
		m.Attachment = pdf
		m.AttachmentName = "critical-results-" + safeName(w.Bill.LabBillID) + ".pdf"
	}
	return m, nil
}

func safeName(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' {
			return r
		}
		return '-'
	}, s)
}

// Content assembles what a message shows from a delivery's records. The
// first record supplies the sender context (who called, when, the comment).
func Content(w callout.DeliveryWork, baseURL string) notify.Content {
	b := w.Bill
	c := notify.Content{
		LabName: w.Settings.Name, LabBillID: b.LabBillID, AccessionNumber: b.AccessionNumber,
		PatientName: b.Patient.Name, HidePatientName: w.Settings.HidePatientName,
		Organization: b.Organization.Name, Referral: b.Referral.Name,
		RecipientName: w.Delivery.RecipientName, RecipientType: w.Delivery.Recipient,
	}
	if baseURL != "" {
		c.OrderURL = strings.TrimRight(baseURL, "/") + "/bills/" + strconv.FormatInt(b.ID, 10)
	}
	if len(w.Records) > 0 {
		first := w.Records[0]
		c.CalledBy, c.NotifiedPerson, c.CalledAt = first.CreatedBy, first.NotifiedPerson, first.CreatedAt
		if w.Settings.ShareComment {
			c.Comment = first.Comment
		}
	}
	dept := map[int64]string{}
	for _, r := range b.Reports {
		dept[r.ID] = r.Department
	}
	index := map[int64]int{}
	for _, rec := range w.Records {
		for _, s := range rec.Snapshot {
			i, ok := index[s.LabReportID]
			if !ok {
				i = len(c.Reports)
				index[s.LabReportID] = i
				c.Reports = append(c.Reports, notify.Report{TestID: s.TestID, TestName: s.TestName, Department: dept[s.LabReportID]})
			}
			c.Reports[i].Parameters = append(c.Reports[i].Parameters, notify.Parameter{
				Name: s.Name, Value: s.Value, Unit: s.Unit,
				NormalRange: rangeText(s.NormalLow, s.NormalHigh), CriticalRange: rangeText(s.CriticalLow, s.CriticalHigh),
				Flag: flagOf(s),
			})
		}
	}
	return c
}

func num(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }

func rangeText(lo, hi *float64) string {
	switch {
	case lo != nil && hi != nil:
		return num(*lo) + "–" + num(*hi)
	case lo != nil:
		return "≥ " + num(*lo)
	case hi != nil:
		return "≤ " + num(*hi)
	}
	return ""
}

// flagOf is the flag shown for a snapshot value: the sender's own, or HH/LL
// when the value is critical by the limits alone.
func flagOf(s callout.SnapshotItem) string {
	if s.Flag != "" {
		return s.Flag
	}
	p := callout.Parameter{Value: s.Value, CriticalLow: s.CriticalLow, CriticalHigh: s.CriticalHigh}
	if v, ok := p.Numeric(); ok {
		if s.CriticalHigh != nil && v > *s.CriticalHigh {
			return "HH"
		}
		if s.CriticalLow != nil && v < *s.CriticalLow {
			return "LL"
		}
	}
	return ""
}
