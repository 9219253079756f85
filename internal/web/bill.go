package web

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"callout/internal/callout"
)

// billView is the order page: the order, the callout form and the history.
type billView struct {
	Bill        callout.BillView
	Contacts    []contactView
	Critical    []reportView // reports with a critical result: the ones a callout is about
	Others      []reportView // the rest of the order, for context
	Form        calloutForm
	Key         string // the form's one-time idempotency key
	Mandatory   bool   // the lab requires a comment
	Instruction string
	History     historyView
}

// Open counts the critical reports a callout is still due for (pending or
// attempted and offered): with none, the page says so instead of showing
// an empty form.
func (v billView) Open() int {
	n := 0
	for _, r := range v.Critical {
		if r.CanCallout && r.State != callout.StateDone {
			n++
		}
	}
	return n
}

type contactView struct {
	Role string
	callout.Contact
}

type reportView struct {
	callout.Report
	Selected bool
	Params   []paramView
	// DoneAt is when the report's callout was marked done (zero when it is
	// not done): the reopen question names it.
	DoneAt time.Time
	// Reopen is the user's confirmation, as sent, that a done report in the
	// selection is to be reopened.
	Reopen bool
}

// Done reports whether the report's callout is done: including it again
// reopens it, which the page asks the user to confirm.
func (r reportView) Done() bool { return r.State == callout.StateDone }

type paramView struct {
	callout.Parameter
	Class    string // "critical", "abnormal" or ""
	Flag     string // the flag shown: the result's own, or HH/LL when only the limits make it critical
	Normal   string
	Critical string
}

// calloutForm is the form's state: as last saved (the draft), as the user
// sent it (after an error), or the defaults.
type calloutForm struct {
	Patient, Referral, Organization bool
	Email, Fax, ReadBack            bool
	NotifiedPerson, Comment         string
	// Reopen holds the done reports whose reopening the user confirmed.
	Reopen map[int64]bool
	// Outcome is the attempt's outcome; a done callout's follows read-back.
	Outcome string
}

// OutcomeOption is one choice of the attempt outcome list.
type OutcomeOption struct{ Value, Label string }

// AttemptOutcomes are the choices for "Save attempt".
func (calloutForm) AttemptOutcomes() []OutcomeOption {
	out := make([]OutcomeOption, 0, len(callout.AttemptOutcomes))
	for _, o := range callout.AttemptOutcomes {
		out = append(out, OutcomeOption{o, callout.OutcomeText(o)})
	}
	return out
}

type historyView struct {
	BillID  int64
	Records []recordView
	// Attempts is the attempt log, newest first, numbered per report.
	Attempts   []callout.AttemptLine
	Activity   []callout.Activity
	Deliveries []callout.Delivery
	// Waiting is true while a delivery is queued: the history then
	// reloads itself quickly to show it turn sent or failed.
	Waiting       bool
	RefreshMillis int64
}

type recordView struct {
	callout.Record
	Tests []string
}

// Done reports whether the record is a done callout (else an attempt).
func (r recordView) Done() bool { return r.Status == callout.StatusDone }

// Withheld says why the record shows no comment, when the service withheld
// it from this user (callout.VisibleRecord); "" otherwise.
func (r recordView) Withheld() string {
	if r.Restricted {
		return callout.WithheldComment
	}
	return ""
}

// orderNotFound words a missing order for the page: people know orders by
// their Order ID, not the number in the address.
func orderNotFound(err error) error {
	if callout.ErrorKind(err) == callout.KindNotFound {
		return callout.Errorf(callout.KindNotFound, "there is no such order, or none of its results belong to your departments")
	}
	return err
}

func pathID(r *http.Request, what string) (int64, error) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		return 0, callout.Errorf(callout.KindNotFound, "%s %q not found", what, r.PathValue("id"))
	}
	return id, nil
}

// flashes are the confirmations a redirect after a POST asks for; only
// these fixed texts can appear, never text from the address.
var flashes = map[string]string{
	"done":     "Callout marked done.",
	"attempt":  "Attempt saved. The order stays on the Pending tab until a callout is done.",
	"retry":    "The delivery was queued again.",
	"settings": "Settings saved.",
	"template": "Email template saved.",
	"builtin":  "The built-in email template is in use again.",
}

func (h *Handler) billPage(w http.ResponseWriter, r *http.Request, s *callout.Session) {
	id, err := pathID(r, "order")
	if err != nil {
		h.fail(w, r, s, orderNotFound(err))
		return
	}
	v, err := h.loadBill(r, s, id)
	if err != nil {
		h.fail(w, r, s, orderNotFound(err))
		return
	}
	v.Form = formFromDraft(v.Bill)
	h.renderBill(w, r, s, http.StatusOK, v, flashes[r.URL.Query().Get("saved")], "")
}

func (h *Handler) renderBill(w http.ResponseWriter, r *http.Request, s *callout.Session, status int, v billView, flash, errMsg string) {
	v.Key = randomToken()
	h.render(w, r, status, "bill", &page{Title: "Order " + v.Bill.LabBillID, Nav: "worklist", Session: s,
		Flash: flash, Error: errMsg, Data: v})
}

// loadBill reads the order as the user may see it, with its history.
func (h *Handler) loadBill(r *http.Request, s *callout.Session, id int64) (billView, error) {
	ctx, p := r.Context(), s.User.Principal()
	b, err := h.svc.Bill(ctx, p, id)
	if err != nil {
		return billView{}, err
	}
	set, err := h.svc.Settings(ctx, p)
	if err != nil {
		return billView{}, err
	}
	v := billView{Bill: b, Mandatory: set.MandatoryComments, Instruction: b.AdditionalInstruction}
	for _, c := range []contactView{{"Patient", b.Patient}, {"Referral", b.Referral}, {"Organization", b.Organization}} {
		if !c.Empty() {
			v.Contacts = append(v.Contacts, c)
		}
	}
	selected := map[int64]bool{}
	if b.Draft != nil {
		for _, rid := range b.Draft.LabReportIDs {
			selected[rid] = true
		}
	}
	for _, rep := range b.Reports {
		rv := reportView{Report: rep}
		for _, prm := range rep.Parameters {
			rv.Params = append(rv.Params, viewParam(prm))
		}
		if !rep.State.Critical() {
			v.Others = append(v.Others, rv)
			continue
		}
		// A done report is never selected by default, not even when an
		// attempt included it before it was done: sending the form as
		// shown must not reopen anything.
		open := rep.CanCallout && (rep.State == callout.StatePending || rep.State == callout.StateAttempted)
		rv.Selected = open && (b.Draft == nil || selected[rep.ID])
		v.Critical = append(v.Critical, rv)
	}
	v.History, err = h.loadHistory(r, p, b.Bill)
	if err != nil {
		return v, err
	}
	for _, rec := range v.History.Records { // newest first
		if !rec.Done() || rec.LabReportID == nil {
			continue
		}
		for i := range v.Critical {
			if c := &v.Critical[i]; c.ID == *rec.LabReportID && c.Done() && c.DoneAt.IsZero() {
				c.DoneAt = rec.CreatedAt
			}
		}
	}
	return v, nil
}

// viewParam is a result as the order page shows it. The normal range is the
// lab's own text (HL7 OBX-7) when it sent one: "< 9 mcg/dL" or "negative"
// say more than the bounds read from them.
func viewParam(p callout.Parameter) paramView {
	v := paramView{Parameter: p, Flag: p.Flag, Normal: callout.RangeText(p.NormalLow, p.NormalHigh), Critical: callout.CriticalLimitsText(p.CriticalLow, p.CriticalHigh)}
	if p.ReferenceRangeText != "" {
		v.Normal = p.ReferenceRangeText
	}
	switch p.Class() {
	case callout.ClassCritical:
		v.Class = "critical"
		if x, ok := p.Numeric(); ok && v.Flag == "" {
			switch {
			case p.CriticalHigh != nil && x > *p.CriticalHigh:
				v.Flag = "HH"
			case p.CriticalLow != nil && x < *p.CriticalLow:
				v.Flag = "LL"
			}
		}
	case callout.ClassAbnormal:
		v.Class = "abnormal"
	}
	return v
}

// formFromDraft restores the form as the last attempt left it. Without an
// attempt the referral is preselected: the person who ordered the test is
// whom the law says to alert.
func formFromDraft(b callout.BillView) calloutForm {
	d := b.Draft
	if d == nil {
		return calloutForm{Referral: b.Referral.Name != "" || b.Referral.Phone != ""}
	}
	f := calloutForm{NotifiedPerson: d.NotifiedPerson, Comment: d.Comment, ReadBack: d.ReadBack}
	for _, rc := range d.Recipients {
		switch rc {
		case callout.RecipientPatient:
			f.Patient = true
		case callout.RecipientReferral:
			f.Referral = true
		case callout.RecipientOrganization:
			f.Organization = true
		}
	}
	f.Email = slices.Contains(d.Methods, "Email")
	f.Fax = slices.Contains(d.Methods, "Fax")
	return f
}

// loadHistory reads the order's callout records, activity and deliveries as
// the service lets p see them.
func (h *Handler) loadHistory(r *http.Request, p callout.Principal, b callout.Bill) (historyView, error) {
	ctx := r.Context()
	hv := historyView{BillID: b.ID, RefreshMillis: 15000}
	recs, err := h.svc.Records(ctx, p, b.ID)
	if err != nil {
		return hv, err
	}
	names := map[string]string{}
	for _, rep := range b.Reports {
		names[rep.TestID] = rep.TestName
	}
	for i := len(recs) - 1; i >= 0; i-- { // newest first
		rec := recs[i]
		rv := recordView{Record: rec}
		seen := map[string]bool{}
		for _, sn := range rec.Snapshot {
			if _, ok := b.Report(sn.LabReportID); ok && !seen[sn.TestName] {
				seen[sn.TestName] = true
				rv.Tests = append(rv.Tests, sn.TestName)
			}
		}
		if len(rv.Tests) == 0 && rec.Meta != nil {
			for _, tid := range rec.Meta.CalloutFor {
				if n, ok := names[tid]; ok {
					rv.Tests = append(rv.Tests, n)
				}
			}
		}
		hv.Records = append(hv.Records, rv)
	}
	log, err := h.svc.Attempts(ctx, p, b.ID)
	if err != nil {
		return hv, err
	}
	hv.Attempts = callout.AttemptLines(b, log)
	ds, err := h.svc.Deliveries(ctx, p, b.ID)
	if err != nil {
		return hv, err
	}
	for i := len(ds) - 1; i >= 0; i-- { // newest first
		d := ds[i]
		hv.Deliveries = append(hv.Deliveries, d)
		if d.Status == callout.DeliveryQueued {
			hv.Waiting = true
		}
	}
	if hv.Waiting {
		hv.RefreshMillis = 2000
	}
	acts, err := h.svc.Activity(ctx, p, callout.ActivityFilter{BillID: &b.ID, Limit: 200})
	if err != nil {
		return hv, err
	}
	// The service has already cut records, deliveries and activity down to
	// what a user limited to departments may see.
	hv.Activity = append(hv.Activity, acts...)
	return hv, nil
}

func (h *Handler) historyFragment(w http.ResponseWriter, r *http.Request, s *callout.Session) {
	id, err := pathID(r, "order")
	if err != nil {
		h.fail(w, r, s, err)
		return
	}
	b, err := h.svc.Bill(r.Context(), s.User.Principal(), id)
	if err != nil {
		h.fail(w, r, s, orderNotFound(err))
		return
	}
	hv, err := h.loadHistory(r, s.User.Principal(), b.Bill)
	if err != nil {
		h.fail(w, r, s, err)
		return
	}
	h.render(w, r, http.StatusOK, "history", &page{Session: s, Data: hv})
}

// keyPattern is the shape of the idempotency keys the order page renders.
var keyPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{16,100}$`)

// parseCalloutForm reads the callout form into the service's request.
func parseCalloutForm(r *http.Request) (callout.Request, calloutForm, error) {
	f := r.PostForm
	form := calloutForm{
		Patient: f.Has("is_patient"), Referral: f.Has("is_referral"), Organization: f.Has("is_organization"),
		Email: f.Has("send_email"), Fax: f.Has("send_fax"), ReadBack: f.Has("read_back"),
		NotifiedPerson: strings.TrimSpace(f.Get("notified_person")),
		// A textarea is sent with CR LF line breaks (HTML forms always
		// send them); the service keeps LF only.
		Comment: strings.TrimSpace(normalizeNewlines(f.Get("comment"))),
		Outcome: strings.TrimSpace(f.Get("outcome")),
	}
	req := callout.Request{IsDraft: f.Get("action") == "attempt", Payload: callout.Payload{
		SendEmail: form.Email, SendFax: form.Fax,
		IsPatient: form.Patient, IsReferral: form.Referral, IsOrganization: form.Organization,
		Comment: form.Comment, NotifiedPerson: form.NotifiedPerson, ReadBack: form.ReadBack,
	}}
	if req.IsDraft {
		// Only "Save attempt" uses the outcome list; a done callout's
		// outcome follows the read-back box.
		req.Payload.Outcome = form.Outcome
	}
	switch f.Get("action") {
	case "done", "attempt":
	default:
		return req, form, callout.Errorf(callout.KindInvalid, `press "Mark callout done" or "Save attempt"`)
	}
	for _, v := range f["report"] {
		id, err := strconv.ParseInt(v, 10, 64)
		if err != nil || id <= 0 {
			return req, form, callout.Errorf(callout.KindInvalid, "the form named a report that does not exist")
		}
		req.LabReportIDs = append(req.LabReportIDs, id)
	}
	for _, v := range f["reopen"] {
		if id, err := strconv.ParseInt(v, 10, 64); err == nil && id > 0 && len(form.Reopen) < len(f["report"]) {
			if form.Reopen == nil {
				form.Reopen = map[int64]bool{}
			}
			form.Reopen[id] = true
		}
	}
	return req, form, nil
}

// unconfirmedReopen returns the first done report in the selection whose
// reopening the form did not confirm. The API keeps the seed's rule (a done
// report in a callout is reopened); the page asks first, because a done
// report ticked by mistake would send the order back to Pending.
func unconfirmedReopen(b callout.BillView, req callout.Request, form calloutForm) (callout.Report, bool) {
	for _, id := range req.LabReportIDs {
		if rep, ok := b.Report(id); ok && rep.State == callout.StateDone && !form.Reopen[id] {
			return rep, true
		}
	}
	return callout.Report{}, false
}

// postCallout calls out the order. The form carries a one-time key, stored
// with the callout in its transaction (as the API's Idempotency-Key): a
// second submit of the same form — a double click, a reload that re-posts —
// finds the key and changes nothing.
func (h *Handler) postCallout(w http.ResponseWriter, r *http.Request, s *callout.Session) {
	ctx, p := r.Context(), s.User.Principal()
	id, err := pathID(r, "order")
	if err != nil {
		h.fail(w, r, s, err)
		return
	}
	req, form, err := parseCalloutForm(r)
	key := r.PostForm.Get("idem")
	if err == nil && !keyPattern.MatchString(key) {
		err = callout.Errorf(callout.KindInvalid, "the form is incomplete; reload the page and try again")
	}
	if err != nil {
		h.billError(w, r, s, id, form, selection(req), err)
		return
	}
	body, _ := json.Marshal(req)
	sum := sha256.Sum256(append([]byte(fmt.Sprintf("POST /bills/%d/callouts\n", id)), body...))
	idem := &callout.Idempotency{Key: "web:" + key, Hash: hex.EncodeToString(sum[:])}

	if h.replayed(w, r, s, id, idem, form, req) {
		return
	}
	// A double click on "Mark callout done" may find its reports done by
	// the first click, committed since the replay check: it is answered
	// as that one, not asked to reopen them.
	if err := h.confirmReopen(r, s, id, req, form); err != nil {
		if !h.replayed(w, r, s, id, idem, form, req) {
			h.billError(w, r, s, id, form, selection(req), err)
		}
		return
	}
	res, err := h.svc.Callout(ctx, p, id, req, idem)
	if errors.Is(err, callout.ErrIdempotencyRace) && h.replayed(w, r, s, id, idem, form, req) {
		return
	}
	if err != nil {
		h.billError(w, r, s, id, form, selection(req), err)
		return
	}
	h.log.Info("callout", "user", p.User, "bill", id, "status", res.Status, "reports", len(req.LabReportIDs))
	h.savedRedirect(w, r, id, res.Status)
}

// replayed answers a form already submitted: like the first answer when it
// is the same form, with an error when the key came with other choices.
func (h *Handler) replayed(w http.ResponseWriter, r *http.Request, s *callout.Session, id int64, idem *callout.Idempotency, form calloutForm, req callout.Request) bool {
	stored, err := h.svc.Replay(r.Context(), s.User.Principal(), idem.Key)
	if err != nil {
		h.fail(w, r, s, err)
		return true
	}
	if stored == nil {
		return false
	}
	if stored.Hash != idem.Hash {
		h.billError(w, r, s, id, form, selection(req), callout.Errorf(callout.KindConflict,
			"this form was already sent with other choices, so it was not sent again; the page now shows the order as it is"))
		return true
	}
	var res callout.CalloutResult
	_ = json.Unmarshal(stored.Body, &res)
	h.log.Info("callout form sent again: answered from the first submit", "user", s.User.Name, "bill", id)
	h.savedRedirect(w, r, id, res.Status)
	return true
}

// confirmReopen refuses a form that includes a done report without the
// user's confirmation to reopen it; the page then asks the question.
func (h *Handler) confirmReopen(r *http.Request, s *callout.Session, id int64, req callout.Request, form calloutForm) error {
	b, err := h.svc.Bill(r.Context(), s.User.Principal(), id)
	if err != nil {
		return err
	}
	if rep, ok := unconfirmedReopen(b, req, form); ok {
		return callout.Errorf(callout.KindConflict, "%s was already called out as done; tick \"Reopen %s\" to include it again, or untick it", rep.TestName, rep.TestName)
	}
	return nil
}

func (h *Handler) savedRedirect(w http.ResponseWriter, r *http.Request, id int64, status string) {
	flash := "done"
	if status == callout.StatusAttempted {
		flash = "attempt"
	}
	http.Redirect(w, r, fmt.Sprintf("/bills/%d?saved=%s", id, flash), http.StatusSeeOther)
}

func selection(req callout.Request) map[int64]bool {
	m := map[int64]bool{}
	for _, id := range req.LabReportIDs {
		m[id] = true
	}
	return m
}

// billError shows the order page again with the error in plain words and
// the form as the user filled it, so nothing typed is lost.
func (h *Handler) billError(w http.ResponseWriter, r *http.Request, s *callout.Session, id int64, form calloutForm, sel map[int64]bool, cause error) {
	status := errorStatus(cause)
	if status == http.StatusNotFound || status == http.StatusForbidden {
		h.fail(w, r, s, orderNotFound(cause))
		return
	}
	v, err := h.loadBill(r, s, id)
	if err != nil {
		h.fail(w, r, s, err)
		return
	}
	v.Form = form
	for i := range v.Critical {
		v.Critical[i].Selected = sel[v.Critical[i].ID]
		v.Critical[i].Reopen = form.Reopen[v.Critical[i].ID]
	}
	msg := sentence(callout.ErrorMessage(cause))
	if status == http.StatusInternalServerError {
		h.log.Error("callout failed", "bill", id, "err", cause)
		msg = "Something went wrong on our side and the callout was not saved. Please try again."
	}
	h.renderBill(w, r, s, status, v, "", "Not saved: "+msg)
}

// retryDelivery queues a failed email or fax again.
func (h *Handler) retryDelivery(w http.ResponseWriter, r *http.Request, s *callout.Session) {
	ctx, p := r.Context(), s.User.Principal()
	id, err := pathID(r, "delivery")
	if err != nil {
		h.fail(w, r, s, err)
		return
	}
	billID, err := strconv.ParseInt(r.PostForm.Get("bill"), 10, 64)
	if err != nil || billID <= 0 {
		h.fail(w, r, s, callout.Errorf(callout.KindNotFound, "delivery %d not found", id))
		return
	}
	// The delivery must be one the user sees on that order's page.
	b, err := h.svc.Bill(ctx, p, billID)
	if err == nil {
		var hv historyView
		hv, err = h.loadHistory(r, p, b.Bill)
		if err == nil && !slices.ContainsFunc(hv.Deliveries, func(d callout.Delivery) bool { return d.ID == id }) {
			err = callout.Errorf(callout.KindNotFound, "delivery %d not found", id)
		}
	}
	if err == nil {
		_, err = h.svc.RetryDelivery(ctx, p, id)
	}
	if err != nil {
		if k := callout.ErrorKind(err); k == callout.KindConflict || k == callout.KindUnprocessable {
			v, lerr := h.loadBill(r, s, billID)
			if lerr == nil {
				v.Form = formFromDraft(v.Bill)
				h.renderBill(w, r, s, errorStatus(err), v, "", sentence(callout.ErrorMessage(err)))
				return
			}
		}
		h.fail(w, r, s, err)
		return
	}
	h.log.Info("delivery retried", "user", p.User, "delivery", id)
	http.Redirect(w, r, fmt.Sprintf("/bills/%d?saved=retry#history", billID), http.StatusSeeOther)
}
