package jobs

import (
	"context"
	"crypto/sha256"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
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

// Fax is one fax to send: the results sheet as a PDF, with a cover text.
type Fax struct {
	MessageID string // stable across retries, like an email's
	Number    string // as the lab recorded it, e.g. "+1 (555) 0199"
	Subject   string
	Text      string
	PDFName   string
	PDF       []byte
}

// FaxSender sends faxes. The default is an email-to-fax gateway; an HTTP
// fax provider would be another implementation.
type FaxSender interface {
	SendFax(ctx context.Context, f Fax) error
}

// GatewayFax sends a fax as an email to <digits>@Gateway with the sheet
// attached, the way most email-to-fax services take them.
type GatewayFax struct {
	Mailer  Sender
	Gateway string
}

// SendFax mails the fax to the gateway.
func (g *GatewayFax) SendFax(ctx context.Context, f Fax) error {
	to, err := notify.FaxAddress(f.Number, g.Gateway)
	if err != nil {
		return &notify.SendError{Permanent: true, Err: err}
	}
	return g.Mailer.Send(ctx, notify.Email{MessageID: f.MessageID, To: to, Subject: f.Subject, Text: f.Text,
		Attachments: []notify.Attachment{{Name: f.PDFName, ContentType: "application/pdf", Data: f.PDF}}})
}

// Deliverer is the worker that renders and sends deliveries.
type Deliverer struct {
	river.WorkerDefaults[DeliverArgs]
	Store  DeliveryStore
	Mailer Sender // nil when no SMTP server is configured
	// Fax sends faxes; nil when no fax transport is configured.
	Fax FaxSender
	// BaseURL is the web UI's address, for the link to the order.
	BaseURL string
	// Domain is the right-hand side of every Message-ID.
	Domain string
	Log    *slog.Logger

	// renderers caches a compiled renderer per template text: compiling
	// a Jinja template costs more than rendering it.
	renderers sync.Map // sha256 of the template → *notify.Renderer
}

func (d *Deliverer) renderer(ctx context.Context, src string) (*notify.Renderer, error) {
	key := sha256.Sum256([]byte(src))
	if r, ok := d.renderers.Load(key); ok {
		return r.(*notify.Renderer), nil
	}
	r, err := notify.NewRenderer(ctx, src)
	if err != nil {
		return nil, err
	}
	d.renderers.Store(key, r)
	return r, nil
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
		m, err := d.render(ctx, w)
		if err != nil {
			// A template past a render bound or refused by the rules
			// fails the same way on every attempt: the delivery fails
			// for good, with the reason, until it is retried after the
			// template is fixed. Only a cancelled job (shutdown) retries.
			if ctx.Err() != nil {
				return err
			}
			return fail(err, true)
		}
		kept, err := d.Store.SaveMessage(ctx, w.Delivery.ID, m)
		if err != nil {
			return err
		}
		msg = &kept
	}
	var sendErr error
	switch {
	case w.Delivery.Channel == callout.ChannelFax && d.Fax == nil:
		return fail(fmt.Errorf("no fax transport is configured (CALLOUT_FAX_GATEWAY)"), true)
	case w.Delivery.Channel == callout.ChannelFax:
		sendErr = d.Fax.SendFax(ctx, Fax{MessageID: msg.MessageID, Number: w.Delivery.Address, Subject: msg.Subject,
			Text: msg.Text, PDFName: msg.AttachmentName, PDF: msg.Attachment})
	case d.Mailer == nil:
		return fail(fmt.Errorf("no mail server is configured (CALLOUT_SMTP_URL)"), true)
	default:
		sendErr = d.Mailer.Send(ctx, notify.Email{MessageID: msg.MessageID, To: w.Delivery.Address,
			Subject: msg.Subject, HTML: msg.HTML, Text: msg.Text})
	}
	if sendErr != nil {
		return fail(sendErr, notify.IsPermanent(sendErr))
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
func (d *Deliverer) render(ctx context.Context, w callout.DeliveryWork) (callout.Message, error) {
	c := Content(w, d.BaseURL)
	r, err := d.renderer(ctx, w.EmailTemplate)
	if err != nil {
		return callout.Message{}, fmt.Errorf("the lab's email template: %w", err)
	}
	out, err := r.Render(ctx, c)
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
		c.ReadBack = first.ReadBack
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
			normal := callout.RangeText(s.NormalLow, s.NormalHigh)
			if s.ReferenceRangeText != "" {
				normal = s.ReferenceRangeText // the lab's own words (OBX-7), as the order page shows
			}
			c.Reports[i].Parameters = append(c.Reports[i].Parameters, notify.Parameter{
				Name: s.Name, Value: s.Value, Unit: s.Unit,
				NormalRange: normal, CriticalRange: callout.CriticalLimitsText(s.CriticalLow, s.CriticalHigh),
				Flag: flagOf(s),
			})
		}
	}
	return c
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
