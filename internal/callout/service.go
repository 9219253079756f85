package callout

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"time"
)

// Store loads and saves the domain. Each method is one transaction; the
// rules stay here, in the callers, and the store only reads and writes.
// It is implemented once per SQL engine and checked by one behavioural suite.
type Store interface {
	CreateLab(ctx context.Context, s Settings) (int64, error)
	// FindLab returns the id of the lab with the given name, or an error of
	// kind not found.
	FindLab(ctx context.Context, name string) (int64, error)
	CreateToken(ctx context.Context, t Token) error
	// Principal returns who holds the token with the given SHA-256 hash, or
	// an error of kind unauthorized.
	Principal(ctx context.Context, tokenHash string) (Principal, error)
	Settings(ctx context.Context, labID int64) (Settings, error)
	// UpdateSettings loads the lab's settings, applies change and saves the
	// result, in one transaction.
	UpdateSettings(ctx context.Context, labID int64, change func(*Settings) error) (Settings, error)

	// CreateBill stores a new order with its reports and parameters. A
	// lab_bill_id already used in the lab is a conflict.
	CreateBill(ctx context.Context, labID int64, b Bill, idem *Idempotency) (OrderCreated, error)
	// Callout locks the order, loads it with its lab's settings in a constant
	// number of queries, asks decide for the plan and writes it: report
	// states, records, replacement of the draft, the activity entry, all in
	// one transaction.
	Callout(ctx context.Context, labID, billID int64, decide func(Settings, Bill) (Plan, error), idem *Idempotency) (CalloutResult, error)

	Bill(ctx context.Context, labID, billID int64) (Bill, error)
	// Draft returns the order's current attempt, or nil when there is none.
	Draft(ctx context.Context, labID, billID int64) (*Record, error)
	Records(ctx context.Context, labID, billID int64) ([]Record, error)
	// Attempts returns the order's attempt log, oldest first.
	Attempts(ctx context.Context, labID, billID int64) ([]AttemptEntry, error)
	Activity(ctx context.Context, labID int64, f ActivityFilter) ([]Activity, error)
	Worklist(ctx context.Context, labID int64, f WorklistFilter) ([]WorklistItem, error)

	// Replay returns the answer stored under an idempotency key, or nil.
	Replay(ctx context.Context, labID int64, key string) (*StoredResponse, error)

	// Deliveries lists email and fax copies; see DeliveryFilter.
	Deliveries(ctx context.Context, labID int64, f DeliveryFilter) ([]Delivery, error)
	// RetryDelivery puts a failed delivery back in the queue, in one
	// transaction with its job.
	RetryDelivery(ctx context.Context, labID, deliveryID int64, user string, at time.Time) (Delivery, error)
	// EmailTemplate returns the lab's own email template, or "" for the built-in one.
	EmailTemplate(ctx context.Context, labID int64) (string, error)
	SetEmailTemplate(ctx context.Context, labID int64, src string) error

	// FindBills returns the lab's orders with an Order ID.
	FindBills(ctx context.Context, labID int64, labBillID string) ([]Bill, error)
	CriticalLimits(ctx context.Context, labID int64) ([]CriticalLimit, error)
	SetCriticalLimits(ctx context.Context, labID int64, ls []CriticalLimit) error
}

// DeliveryFilter selects deliveries of a lab: of one order, or in one status.
type DeliveryFilter struct {
	ID     *int64
	BillID *int64
	Status string
	Limit  int
}

// Token is an API token as stored: only its hash is kept.
type Token struct {
	LabID       int64
	User        string
	Role        Role
	Departments []string
	Hash        string // hex SHA-256 of the token
}

// Idempotency is a client's Idempotency-Key with a hash of its request: the
// store saves the answer under it in the same transaction as the writes.
type Idempotency struct {
	Key  string
	Hash string
}

// StoredResponse is an answer kept for an idempotency key.
type StoredResponse struct {
	Hash   string
	Status int
	Body   []byte
}

// ErrIdempotencyRace is returned by a store when another request with the
// same idempotency key committed first; the caller replays that answer.
var ErrIdempotencyRace = errors.New("idempotency key used concurrently")

// OrderCreated is the answer to a new order.
type OrderCreated struct {
	ID        int64           `json:"id"`
	LabBillID string          `json:"lab_bill_id"`
	Reports   []CreatedReport `json:"reports"`
}

// CreatedReport is one report of a new order as stored.
type CreatedReport struct {
	ID       int64  `json:"id"`
	TestID   string `json:"test_id"`
	TestName string `json:"test_name"`
	State    State  `json:"critical_values"`
}

// CalloutResult is the answer to a callout.
type CalloutResult struct {
	Status   string          `json:"status"`
	Callouts []CreatedRecord `json:"callouts"`
	Reports  []ChangedReport `json:"reports"`
}

// CreatedRecord identifies a record a callout wrote.
type CreatedRecord struct {
	ID          int64  `json:"id"`
	LabReportID *int64 `json:"lab_report_id"`
}

// ChangedReport is a report whose state a callout wrote.
type ChangedReport struct {
	ID          int64     `json:"id"`
	State       State     `json:"critical_values"`
	LastUpdated time.Time `json:"last_updated"`
}

// ActivityFilter narrows the activity log.
type ActivityFilter struct {
	BillID *int64
	Limit  int
}

// WorklistFilter selects worklist reports. After, when set, continues a page.
type WorklistFilter struct {
	// Text searches patient name, Order ID and test name through the
	// search index; empty lists from the database.
	Text        string
	States      []State
	Departments []string // empty: all
	Limit       int
	After       *WorklistCursor
}

// WorklistCursor is the position after the last item of a page.
type WorklistCursor struct {
	ResultedAt time.Time
	ID         int64
}

// WorklistItem is one report on the worklist.
type WorklistItem struct {
	ID          int64     `json:"id"`
	BillID      int64     `json:"bill_id"`
	LabBillID   string    `json:"lab_bill_id"`
	PatientName string    `json:"patient_name"`
	Referral    string    `json:"referral"`
	TestID      string    `json:"test_id"`
	TestName    string    `json:"test_name"`
	Department  string    `json:"department"`
	State       State     `json:"critical_values"`
	ResultedAt  time.Time `json:"resulted_at"`
	LastUpdated time.Time `json:"last_updated"`
	AgeSeconds  int64     `json:"age_seconds"`
}

// Service runs the use cases. Each method checks its input, applies the
// rules and calls the store once.
type Service struct {
	Store Store
	// Search answers worklist queries with text; nil when no index is configured.
	Search Searcher
	Now    func() time.Time
	Log    *slog.Logger
}

// Searcher finds worklist reports by text in the search index.
type Searcher interface {
	SearchWorklist(ctx context.Context, labID int64, f WorklistFilter) ([]WorklistItem, error)
}

// NewService returns a Service over st with the real clock.
func NewService(st Store, log *slog.Logger) *Service {
	return &Service{Store: st, Now: Now, Log: log}
}

// Now is the clock the service runs on, truncated to microseconds because
// that is what PostgreSQL keeps: a time read back equals the time written.
func Now() time.Time { return time.Now().UTC().Truncate(time.Microsecond) }

// CreateOrder validates and stores a new order.
func (s *Service) CreateOrder(ctx context.Context, p Principal, o NewOrder, idem *Idempotency) (OrderCreated, error) {
	b, err := BuildBill(o, s.Now())
	if err != nil {
		return OrderCreated{}, err
	}
	return s.Store.CreateBill(ctx, p.LabID, b, idem)
}

// Callout is the seed's process_callout: it calls out the selected reports
// of an order, done or attempted, in one transaction.
func (s *Service) Callout(ctx context.Context, p Principal, billID int64, req Request, idem *Idempotency) (CalloutResult, error) {
	if len(req.LabReportIDs) == 0 {
		return CalloutResult{}, Errorf(KindUnprocessable, "select at least one report to call out")
	}
	if err := checkPayloadText(req.Payload); err != nil {
		return CalloutResult{}, err
	}
	now := s.Now()
	return s.Store.Callout(ctx, p.LabID, billID, func(set Settings, b Bill) (Plan, error) {
		// A user limited to departments may select only reports they see.
		// The rest of the rule applies to the whole order as in the seed:
		// the submit replaces the order's draft, so every attempted report
		// the draft held goes back to pending, where its own department
		// sees it again — the safe direction.
		vis, ok := p.Visible(b)
		if !ok {
			return Plan{}, Errorf(KindNotFound, "order %d not found", billID)
		}
		for _, id := range req.LabReportIDs {
			if _, seen := vis.Report(id); !seen {
				return Plan{}, Errorf(KindUnprocessable, "report %d is not part of order %s", id, b.LabBillID)
			}
		}
		return Decide(p, set, b, req, now)
	}, idem)
}

// checkPayloadText checks the texts of a callout's payload: the comment may
// span lines, the rest are single-line.
func checkPayloadText(pl Payload) error {
	if err := CheckMultiline("comment", pl.Comment); err != nil {
		return err
	}
	if len(pl.Comment) > maxComment {
		return Errorf(KindUnprocessable, "comment is longer than %d bytes", maxComment)
	}
	fields := []struct{ name, v string }{{"notified_person", pl.NotifiedPerson}}
	if o := pl.NotifyToOthers; o != nil {
		fields = append(fields, []struct{ name, v string }{{"notify_to_others.name", o.Name}, {"notify_to_others.email", o.Email},
			{"notify_to_others.fax", o.Fax}, {"notify_to_others.contactNumber", o.ContactNumber}}...)
	}
	for _, f := range fields {
		if err := checkText(f.name, f.v); err != nil {
			return err
		}
	}
	if o := pl.NotifyToOthers; o != nil {
		if e := strings.TrimSpace(o.Email); e != "" && !plausibleEmail(e) {
			return Errorf(KindUnprocessable, "notify_to_others.email %q is not an email address", e)
		}
	}
	return nil
}

// BillView is an order as the callout screen shows it.
type BillView struct {
	Bill
	AdditionalInstruction string     `json:"additional_instruction"`
	Draft                 *DraftView `json:"draft"`
}

// DraftView is the current attempt's selection, to restore the screen.
type DraftView struct {
	CalloutFor     []string  `json:"callout_for"`
	LabReportIDs   []int64   `json:"lab_report_ids"`
	Recipients     []string  `json:"recipients"`
	Methods        []string  `json:"methods"`
	Comment        string    `json:"comment"`
	NotifiedPerson string    `json:"notified_person"`
	ReadBack       bool      `json:"read_back"`
	CreatedBy      string    `json:"created_by"`
	CreatedAt      time.Time `json:"created_at"`
	// Restricted: the attempt also covered reports of departments the
	// caller does not see, and its comment is withheld.
	Restricted bool `json:"restricted,omitempty"`
}

// Bill returns an order with its lab's standing instruction and its draft.
func (s *Service) Bill(ctx context.Context, p Principal, billID int64) (BillView, error) {
	b, d, err := s.visibleDraft(ctx, p, billID)
	if err != nil {
		return BillView{}, err
	}
	set, err := s.Store.Settings(ctx, p.LabID)
	if err != nil {
		return BillView{}, err
	}
	rows, err := s.Store.Attempts(ctx, p.LabID, billID)
	if err != nil {
		return BillView{}, err
	}
	target, now := TargetMinutes(set, b.PatientClass), s.Now()
	for i := range b.Reports {
		b.Reports[i].CanCallout = b.Reports[i].Actionable()
		if b.Reports[i].State.Critical() {
			c := ReportClock(b.Reports[i], target, rows, now)
			b.Reports[i].Clock = &c
		}
	}
	v := BillView{Bill: b, AdditionalInstruction: set.AdditionalInstruction}
	if d != nil {
		dv := &DraftView{
			Recipients: d.Recipients, Methods: d.Methods, Comment: d.Comment,
			NotifiedPerson: d.NotifiedPerson, ReadBack: d.ReadBack,
			CreatedBy: d.CreatedBy, CreatedAt: d.CreatedAt, Restricted: d.Restricted,
			CalloutFor: []string{}, LabReportIDs: []int64{},
		}
		if d.Meta != nil {
			dv.CalloutFor = d.Meta.CalloutFor
		}
		// Test ids are unique within an order, so the selection maps back
		// to report ids; a test removed since (or of a department the user
		// does not see) is not restored.
		visible := []string{}
		for _, tid := range dv.CalloutFor {
			for _, r := range b.Reports {
				if r.TestID == tid {
					visible = append(visible, tid)
					dv.LabReportIDs = append(dv.LabReportIDs, r.ID)
				}
			}
		}
		if len(p.Departments) > 0 {
			dv.CalloutFor = visible
		}
		v.Draft = dv
	}
	return v, nil
}

// visibleBill loads an order as p may see it.
func (s *Service) visibleBill(ctx context.Context, p Principal, billID int64) (Bill, error) {
	b, err := s.Store.Bill(ctx, p.LabID, billID)
	if err != nil {
		return Bill{}, err
	}
	b, ok := p.Visible(b)
	if !ok {
		return Bill{}, Errorf(KindNotFound, "order %d not found", billID)
	}
	return b, nil
}

// Records returns the order's callout records, oldest first. A user
// limited to departments gets those of reports they see, and the order's
// attempt cut down to those reports.
func (s *Service) Records(ctx context.Context, p Principal, billID int64) ([]Record, error) {
	v, err := s.view(ctx, p, billID)
	return v.records, err
}

// Attempts returns the order's attempt log, oldest first: every report's
// attempts and done callouts, numbered per report. A user limited to
// departments sees the rows of their reports only (VisibleAttempts).
func (s *Service) Attempts(ctx context.Context, p Principal, billID int64) ([]AttemptEntry, error) {
	full, _, err := s.bills(ctx, p, billID)
	if err != nil {
		return nil, err
	}
	rows, err := s.Store.Attempts(ctx, p.LabID, billID)
	if err != nil {
		return nil, err
	}
	return VisibleAttempts(p, full, rows), nil
}

// Activity returns activity entries, newest first; for a user limited to
// departments only entries about orders and reports they see.
func (s *Service) Activity(ctx context.Context, p Principal, f ActivityFilter) ([]Activity, error) {
	if f.Limit <= 0 || f.Limit > 1000 {
		f.Limit = 1000
	}
	if f.BillID != nil {
		if _, err := s.visibleBill(ctx, p, *f.BillID); err != nil {
			return nil, err
		}
	}
	acts, err := s.Store.Activity(ctx, p.LabID, f)
	if err != nil || len(p.Departments) == 0 {
		return acts, err
	}
	views := map[int64]*orderView{}
	out := []Activity{}
	for _, a := range acts {
		if a.BillID == nil {
			continue
		}
		v, ok := views[*a.BillID]
		if !ok {
			vv, err := s.view(ctx, p, *a.BillID)
			switch {
			case ErrorKind(err) == KindNotFound:
				v = nil
			case err != nil:
				return nil, err
			default:
				v = &vv
			}
			views[*a.BillID] = v
		}
		if v == nil {
			continue
		}
		if a, ok := v.activity(a); ok {
			out = append(out, a)
		}
	}
	return out, nil
}

// Settings returns the caller's lab settings.
func (s *Service) Settings(ctx context.Context, p Principal) (Settings, error) {
	return s.Store.Settings(ctx, p.LabID)
}

// SettingsPatch is a partial change of settings; nil fields stay as they are.
type SettingsPatch struct {
	Name                  *string `json:"name"`
	ShareComment          *bool   `json:"share_comment"`
	MandatoryComments     *bool   `json:"mandatory_comments"`
	HidePatientName       *bool   `json:"hide_patient_name"`
	AdditionalInstruction *string `json:"additional_instruction"`
	TargetMinutes         *int    `json:"target_minutes"`
	RequireNotifiedPerson *bool   `json:"require_notified_person"`
	// Targets replaces the per patient class targets as a whole.
	Targets           *map[string]int `json:"targets"`
	CompliancePercent *float64        `json:"compliance_target_percent"`
	ActionPercent     *float64        `json:"compliance_action_percent"`
	Timezone          *string         `json:"timezone"`
}

// UpdateSettings changes the caller's lab settings; admins only.
func (s *Service) UpdateSettings(ctx context.Context, p Principal, patch SettingsPatch) (Settings, error) {
	if p.Role != RoleAdmin {
		return Settings{}, Errorf(KindForbidden, "only a lab admin may change settings")
	}
	return s.Store.UpdateSettings(ctx, p.LabID, func(set *Settings) error {
		if patch.Name != nil {
			set.Name = strings.TrimSpace(*patch.Name)
		}
		if patch.ShareComment != nil {
			set.ShareComment = *patch.ShareComment
		}
		if patch.MandatoryComments != nil {
			set.MandatoryComments = *patch.MandatoryComments
		}
		if patch.HidePatientName != nil {
			set.HidePatientName = *patch.HidePatientName
		}
		if patch.AdditionalInstruction != nil {
			set.AdditionalInstruction = strings.TrimSpace(*patch.AdditionalInstruction)
		}
		if patch.TargetMinutes != nil {
			set.TargetMinutes = *patch.TargetMinutes
		}
		if patch.RequireNotifiedPerson != nil {
			set.RequireNotifiedPerson = *patch.RequireNotifiedPerson
		}
		if patch.Targets != nil {
			set.Targets = *patch.Targets
		}
		if patch.CompliancePercent != nil {
			set.CompliancePercent = *patch.CompliancePercent
		}
		if patch.ActionPercent != nil {
			set.ActionPercent = *patch.ActionPercent
		}
		if patch.Timezone != nil {
			set.Timezone = strings.TrimSpace(*patch.Timezone)
		}
		return ValidateSettings(*set)
	})
}

// ValidateSettings checks a lab's settings.
func ValidateSettings(s Settings) error {
	if err := CheckLine("name", s.Name); err != nil {
		return err
	}
	if err := CheckMultiline("additional_instruction", s.AdditionalInstruction); err != nil {
		return err
	}
	switch {
	case strings.TrimSpace(s.Name) == "":
		return Errorf(KindUnprocessable, "the lab needs a name")
	case len(s.Name) > 200:
		return Errorf(KindUnprocessable, "the lab name is longer than 200 bytes")
	case len(s.AdditionalInstruction) > maxComment:
		return Errorf(KindUnprocessable, "additional_instruction is longer than %d bytes", maxComment)
	case s.TargetMinutes < 1 || s.TargetMinutes > 24*60:
		return Errorf(KindUnprocessable, "target_minutes must be between 1 and 1440")
	case s.CompliancePercent < 0 || s.CompliancePercent > 100 || s.ActionPercent < 0 || s.ActionPercent > 100:
		return Errorf(KindUnprocessable, "compliance_target_percent and compliance_action_percent must be between 0 and 100")
	case s.ActionPercent > s.CompliancePercent:
		return Errorf(KindUnprocessable, "compliance_action_percent (%g) may not be above compliance_target_percent (%g)", s.ActionPercent, s.CompliancePercent)
	}
	for class, m := range s.Targets {
		if !slices.Contains(TargetClasses, class) {
			return Errorf(KindUnprocessable, "targets may name only emergency, inpatient and outpatient, not %q", class)
		}
		if m < 1 || m > 24*60 {
			return Errorf(KindUnprocessable, "the %s target must be between 1 and 1440 minutes", class)
		}
	}
	if _, err := s.Location(); err != nil {
		return err
	}
	return nil
}

// WithDefaults fills in the settings a new lab gets when none are given.
func WithDefaults(s Settings) Settings {
	if s.TargetMinutes == 0 {
		s.TargetMinutes = DefaultTargetMinutes
	}
	if s.CompliancePercent == 0 && s.ActionPercent == 0 {
		s.CompliancePercent, s.ActionPercent = DefaultCompliancePercent, DefaultActionPercent
	}
	if s.Timezone == "" {
		s.Timezone = "UTC"
	}
	if s.Targets == nil {
		s.Targets = map[string]int{}
	}
	s.RequireNotifiedPerson = true
	return s
}

// Location returns the lab's time zone.
func (s Settings) Location() (*time.Location, error) {
	if s.Timezone == "" {
		return time.UTC, nil
	}
	if len(s.Timezone) > 64 {
		return nil, Errorf(KindUnprocessable, "timezone is not a time zone name")
	}
	loc, err := time.LoadLocation(s.Timezone)
	if err != nil {
		return nil, Errorf(KindUnprocessable, "timezone %q is not an IANA time zone name (such as Europe/Berlin or UTC)", s.Timezone)
	}
	return loc, nil
}

// Worklist returns a page of worklist reports and the cursor of the next
// page, or nil at the end.
func (s *Service) Worklist(ctx context.Context, p Principal, f WorklistFilter) ([]WorklistItem, *WorklistCursor, error) {
	if len(f.States) == 0 {
		f.States = WorklistStates
	}
	for _, st := range f.States {
		if !st.Critical() {
			return nil, nil, Errorf(KindUnprocessable, "critical_values may list only 1, 2 and 4, not %d", st)
		}
	}
	if f.Limit <= 0 {
		f.Limit = 50
	}
	if f.Limit > 500 {
		return nil, nil, Errorf(KindUnprocessable, "limit may be at most 500")
	}
	want := f.Limit
	f.Limit++ // one more tells whether another page exists
	f.Departments = p.Departments
	var items []WorklistItem
	var err error
	f.Text = strings.TrimSpace(f.Text)
	if err := CheckLine("q (the search text)", f.Text); err != nil {
		return nil, nil, err
	}
	switch {
	case f.Text != "" && s.Search == nil:
		return nil, nil, Errorf(KindUnprocessable, "text search needs the search index, which this server does not have")
	case f.Text != "":
		if len(f.Text) > 200 {
			return nil, nil, Errorf(KindUnprocessable, "the search text is longer than 200 characters")
		}
		items, err = s.Search.SearchWorklist(ctx, p.LabID, f)
	default:
		items, err = s.Store.Worklist(ctx, p.LabID, f)
	}
	if err != nil {
		return nil, nil, err
	}
	now := s.Now()
	for i := range items {
		items[i].AgeSeconds = int64(now.Sub(items[i].ResultedAt).Seconds())
	}
	if len(items) <= want {
		return items, nil, nil
	}
	items = items[:want]
	last := items[len(items)-1]
	return items, &WorklistCursor{ResultedAt: last.ResultedAt, ID: last.ID}, nil
}
