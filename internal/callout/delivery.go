package callout

import (
	"context"
	"strings"
	"time"
)

// Delivery channels.
const (
	ChannelEmail = "email"
	ChannelFax   = "fax"
)

// Delivery statuses. A delivery is queued until its copy was handed to the
// mail server (sent) or every attempt failed (failed). "Sent" is not
// "notified": the callout itself is what tells a clinician.
const (
	DeliveryQueued = "queued"
	DeliverySent   = "sent"
	DeliveryFailed = "failed"
)

// RecipientOther is the recipient type of notify_to_others, a person not on
// the order such as a covering doctor.
const RecipientOther = "Other"

// Delivery is one email or fax copy of a done callout to one recipient.
type Delivery struct {
	ID            int64      `json:"id"`
	BillID        int64      `json:"bill_id"`
	CalloutIDs    []int64    `json:"callout_ids"`
	Channel       string     `json:"channel"`
	Recipient     string     `json:"recipient"`
	RecipientName string     `json:"recipient_name"`
	Address       string     `json:"address"` // the exact email address or fax number, fixed when the callout was made
	MessageID     string     `json:"message_id"`
	Status        string     `json:"status"`
	Attempts      int        `json:"attempts"`
	LastError     string     `json:"last_error"`
	CreatedAt     time.Time  `json:"created_at"`
	SentAt        *time.Time `json:"sent_at"`
}

// plannedDeliveries lists the copies a done callout sends: for each chosen
// recipient, one email when sendEmail and it has an address, one fax when
// sendFax and it has a number. Recipients never share a message, so none
// sees another's address.
func plannedDeliveries(bill Bill, pl Payload) []Delivery {
	type target struct {
		on         bool
		kind, name string
		email, fax string
	}
	targets := []target{
		{pl.IsPatient, RecipientPatient, bill.Patient.Name, bill.Patient.Email, ""},
		{pl.IsReferral, RecipientReferral, bill.Referral.Name, bill.Referral.Email, bill.Referral.Fax},
		{pl.IsOrganization, RecipientOrganization, bill.Organization.Name, bill.Organization.Email, bill.Organization.Fax},
	}
	if o := pl.NotifyToOthers; o != nil {
		targets = append(targets, target{true, RecipientOther, o.Name, o.Email, o.Fax})
	}
	var out []Delivery
	for _, t := range targets {
		if !t.on {
			continue
		}
		if e := strings.TrimSpace(t.email); pl.SendEmail && e != "" {
			out = append(out, Delivery{Channel: ChannelEmail, Recipient: t.kind, RecipientName: t.name, Address: e, Status: DeliveryQueued})
		}
		if f := strings.TrimSpace(t.fax); pl.SendFax && f != "" {
			out = append(out, Delivery{Channel: ChannelFax, Recipient: t.kind, RecipientName: t.name, Address: f, Status: DeliveryQueued})
		}
	}
	return out
}

// Deliveries lists the email and fax copies of an order (for a user limited
// to departments, those of callouts they see).
func (s *Service) Deliveries(ctx context.Context, p Principal, billID int64) ([]Delivery, error) {
	if len(p.Departments) > 0 {
		v, err := s.view(ctx, p, billID) // it loads and filters the deliveries
		return v.visible, err
	}
	if _, err := s.visibleBill(ctx, p, billID); err != nil {
		return nil, err
	}
	return s.Store.Deliveries(ctx, p.LabID, DeliveryFilter{BillID: &billID, Limit: 1000})
}

// filterDeliveries keeps the deliveries of records the view shows.
func (v *orderView) filterDeliveries(ds []Delivery) {
	v.visible = []Delivery{}
	v.deliveries = map[int64]bool{}
	for _, d := range ds {
		if v.visibleDelivery(d) {
			v.visible = append(v.visible, d)
			v.deliveries[d.ID] = true
		}
	}
}

// DeliveriesByStatus lists a lab's deliveries in one status, newest first.
func (s *Service) DeliveriesByStatus(ctx context.Context, p Principal, status string, limit int) ([]Delivery, error) {
	switch status {
	case DeliveryQueued, DeliverySent, DeliveryFailed:
	default:
		return nil, Errorf(KindInvalid, "status must be queued, sent or failed, not %q", status)
	}
	if limit <= 0 || limit > 1000 {
		limit = 1000
	}
	ds, err := s.Store.Deliveries(ctx, p.LabID, DeliveryFilter{Status: status, Limit: limit})
	if err != nil || len(p.Departments) == 0 {
		return ds, err
	}
	return s.visibleDeliveries(ctx, p, ds)
}

// visibleDeliveries keeps the deliveries a limited user may see.
func (s *Service) visibleDeliveries(ctx context.Context, p Principal, ds []Delivery) ([]Delivery, error) {
	views := map[int64]*orderView{}
	out := []Delivery{}
	for _, d := range ds {
		v, ok := views[d.BillID]
		if !ok {
			vv, err := s.view(ctx, p, d.BillID)
			switch {
			case ErrorKind(err) == KindNotFound:
			case err != nil:
				return nil, err
			default:
				v = &vv
			}
			views[d.BillID] = v
		}
		if v != nil && v.visibleDelivery(d) {
			out = append(out, d)
		}
	}
	return out, nil
}

// RetryDelivery re-queues a failed delivery.
func (s *Service) RetryDelivery(ctx context.Context, p Principal, id int64) (Delivery, error) {
	if len(p.Departments) > 0 {
		ds, err := s.Store.Deliveries(ctx, p.LabID, DeliveryFilter{ID: &id, Limit: 1})
		if err != nil {
			return Delivery{}, err
		}
		if ds, err = s.visibleDeliveries(ctx, p, ds); err != nil {
			return Delivery{}, err
		}
		if len(ds) == 0 {
			return Delivery{}, Errorf(KindNotFound, "delivery %d not found", id)
		}
	}
	return s.Store.RetryDelivery(ctx, p.LabID, id, p.User, s.Now())
}

// TemplateValidator checks an email template; the notify package provides
// it. It must stop when ctx is cancelled.
type TemplateValidator func(ctx context.Context, src string) error

// EmailTemplate returns the lab's email template and whether it is the built-in one.
func (s *Service) EmailTemplate(ctx context.Context, p Principal) (string, error) {
	return s.Store.EmailTemplate(ctx, p.LabID)
}

// SetEmailTemplate replaces the lab's email template after validate accepts
// it; an empty src restores the built-in template. Admins only.
func (s *Service) SetEmailTemplate(ctx context.Context, p Principal, src string, validate TemplateValidator) error {
	if p.Role != RoleAdmin {
		return Errorf(KindForbidden, "only a lab admin may change the email template")
	}
	if len(src) > 256<<10 {
		return Errorf(KindUnprocessable, "the template is larger than 256 KiB")
	}
	if err := checkDocument("template", src); err != nil {
		return err
	}
	if strings.TrimSpace(src) != "" {
		if err := validate(ctx, src); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return Errorf(KindUnprocessable, "the template does not parse: %s", err.Error())
		}
	}
	return s.Store.SetEmailTemplate(ctx, p.LabID, src)
}

// Message is a delivery's message as rendered on its first attempt and kept,
// so that every retry sends the very same message under the same Message-ID.
type Message struct {
	MessageID      string
	Subject        string
	HTML           string
	Text           string
	AttachmentName string
	Attachment     []byte
}

// DeliveryWork is everything needed to send one delivery.
type DeliveryWork struct {
	LabID         int64
	Delivery      Delivery
	Settings      Settings
	EmailTemplate string
	Bill          Bill     // with reports, for departments and names
	Records       []Record // the callout records the delivery belongs to, with their snapshots
	Message       *Message // nil until rendered
}
