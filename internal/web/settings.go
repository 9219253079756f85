package web

import (
	"context"
	"html/template"
	"net/http"
	"strconv"
	"strings"
	"time"

	"callout/internal/callout"
	"callout/internal/jobs"
	"callout/internal/notify"
)

type settingsView struct {
	Settings callout.Settings
	// Template is the lab's email template; the built-in one when the lab
	// has none (Builtin), as a starting point for editing.
	Template     string
	Builtin      bool
	PreviewOrder string // the Order ID the preview renders
	Focus        string // the form an error belongs to: "settings" or "template"
}

func (h *Handler) settingsPage(w http.ResponseWriter, r *http.Request, s *callout.Session) {
	v, err := h.loadSettings(r.Context(), s)
	if err != nil {
		h.fail(w, r, s, err)
		return
	}
	h.renderSettings(w, r, s, http.StatusOK, v, flashes[r.URL.Query().Get("saved")], "")
}

func (h *Handler) renderSettings(w http.ResponseWriter, r *http.Request, s *callout.Session, status int, v settingsView, flash, errMsg string) {
	h.render(w, r, status, "settings", &page{Title: "Settings", Nav: "settings", Session: s, Flash: flash, Error: errMsg, Data: v})
}

func (h *Handler) loadSettings(ctx context.Context, s *callout.Session) (settingsView, error) {
	p := s.User.Principal()
	set, err := h.svc.Settings(ctx, p)
	if err != nil {
		return settingsView{}, err
	}
	src, err := h.svc.EmailTemplate(ctx, p)
	if err != nil {
		return settingsView{}, err
	}
	v := settingsView{Settings: set, Template: src}
	if src == "" {
		v.Template, v.Builtin = notify.DefaultHTMLTemplate(), true
	}
	if id, err := h.previewBill(ctx, p, ""); err == nil {
		if b, err := h.svc.Bill(ctx, p, id); err == nil {
			v.PreviewOrder = b.LabBillID
		}
	}
	return v, nil
}

func (h *Handler) saveSettings(w http.ResponseWriter, r *http.Request, s *callout.Session) {
	f := r.PostForm
	name, instr := strings.TrimSpace(f.Get("name")), strings.TrimSpace(normalizeNewlines(f.Get("additional_instruction")))
	share, mandatory, hide := f.Has("share_comment"), f.Has("mandatory_comments"), f.Has("hide_patient_name")
	patch := callout.SettingsPatch{Name: &name, AdditionalInstruction: &instr,
		ShareComment: &share, MandatoryComments: &mandatory, HidePatientName: &hide}
	target, convErr := strconv.Atoi(strings.TrimSpace(f.Get("target_minutes")))
	var err error
	if convErr != nil {
		err = callout.Errorf(callout.KindUnprocessable, "the target time must be a whole number of minutes between 1 and 1440")
	} else {
		patch.TargetMinutes = &target
		_, err = h.svc.UpdateSettings(r.Context(), s.User.Principal(), patch)
	}
	if err != nil {
		v, lerr := h.loadSettings(r.Context(), s)
		if lerr != nil || errorStatus(err) >= 500 {
			h.fail(w, r, s, err)
			return
		}
		v.Settings = callout.Settings{Name: name, AdditionalInstruction: instr, ShareComment: share,
			MandatoryComments: mandatory, HidePatientName: hide, TargetMinutes: target}
		v.Focus = "settings"
		h.renderSettings(w, r, s, errorStatus(err), v, "", "Settings not saved: "+sentence(callout.ErrorMessage(err)))
		return
	}
	http.Redirect(w, r, "/settings?saved=settings", http.StatusSeeOther)
}

func normalizeNewlines(s string) string { return strings.ReplaceAll(s, "\r\n", "\n") }

func (h *Handler) saveTemplate(w http.ResponseWriter, r *http.Request, s *callout.Session) {
	src := normalizeNewlines(r.PostForm.Get("template"))
	builtin := r.PostForm.Get("action") == "builtin" ||
		strings.TrimSpace(src) == strings.TrimSpace(notify.DefaultHTMLTemplate()) || strings.TrimSpace(src) == ""
	if builtin {
		src = ""
	}
	if err := h.svc.SetEmailTemplate(r.Context(), s.User.Principal(), src, notify.ValidateTemplate); err != nil {
		v, lerr := h.loadSettings(r.Context(), s)
		if lerr != nil || errorStatus(err) >= 500 {
			h.fail(w, r, s, err)
			return
		}
		v.Template, v.Builtin, v.Focus = src, false, "template"
		h.renderSettings(w, r, s, errorStatus(err), v, "", "Template not saved: "+sentence(callout.ErrorMessage(err)))
		return
	}
	if builtin {
		http.Redirect(w, r, "/settings?saved=builtin#template", http.StatusSeeOther)
		return
	}
	http.Redirect(w, r, "/settings?saved=template#template", http.StatusSeeOther)
}

// previewBill returns the order a preview renders: the one with the given
// Order ID, or else the oldest on the Pending tab, or else the latest done.
func (h *Handler) previewBill(ctx context.Context, p callout.Principal, orderID string) (int64, error) {
	if orderID = strings.TrimSpace(orderID); orderID != "" {
		if err := callout.CheckLine("the Order ID to preview", orderID); err != nil {
			return 0, err
		}
		return h.worklist.FindBill(ctx, p.LabID, orderID)
	}
	for _, tab := range []worklistQuery{{Tab: "pending"}, {Tab: "done"}} {
		items, _, err := h.worklist.WorklistOrders(ctx, p.LabID,
			callout.WorklistFilter{States: tab.States(), Departments: p.Departments, Limit: 1}, nil, 0, tab.Tab == "done")
		if err != nil {
			return 0, err
		}
		if len(items) > 0 {
			return items[0].BillID, nil
		}
	}
	return 0, callout.Errorf(callout.KindNotFound, "the lab has no order with a critical result yet; the preview needs one")
}

func (h *Handler) previewSaved(w http.ResponseWriter, r *http.Request, s *callout.Session) {
	src, err := h.svc.EmailTemplate(r.Context(), s.User.Principal())
	if err != nil {
		h.previewError(w, err)
		return
	}
	h.preview(w, r, s, src, r.URL.Query().Get("order"))
}

func (h *Handler) previewDraft(w http.ResponseWriter, r *http.Request, s *callout.Session) {
	src := normalizeNewlines(r.PostForm.Get("template"))
	if strings.TrimSpace(src) == strings.TrimSpace(notify.DefaultHTMLTemplate()) {
		src = ""
	}
	h.preview(w, r, s, src, r.PostForm.Get("preview_order"))
}

// preview renders template src as the email the referral of a real order
// would get if its critical results were called out now. It runs in a
// sandboxed frame of the settings page: no script, nothing from elsewhere.
func (h *Handler) preview(w http.ResponseWriter, r *http.Request, s *callout.Session, src, orderID string) {
	ctx, p := r.Context(), s.User.Principal()
	id, err := h.previewBill(ctx, p, orderID)
	if err != nil {
		h.previewError(w, err)
		return
	}
	b, err := h.svc.Bill(ctx, p, id)
	if err != nil {
		h.previewError(w, err)
		return
	}
	set, err := h.svc.Settings(ctx, p)
	if err != nil {
		h.previewError(w, err)
		return
	}
	rnd, err := notify.NewRenderer(ctx, src)
	if err != nil {
		h.previewError(w, callout.Errorf(callout.KindUnprocessable, "the template does not parse: %s", strings.TrimPrefix(err.Error(), "html template: ")))
		return
	}
	out, err := rnd.Render(ctx, jobs.Content(previewWork(b, set, src, p.User, h.svc.Now()), h.baseURL))
	if err != nil {
		h.previewError(w, callout.Errorf(callout.KindUnprocessable, "the template cannot be rendered: %s", err.Error()))
		return
	}
	previewHeaders(w)
	_, _ = w.Write([]byte(out.HTML))
}

// previewWork is the delivery a done callout of every critical report of b
// to its referral would make now, built from the current results.
func previewWork(b callout.BillView, set callout.Settings, src, user string, now time.Time) callout.DeliveryWork {
	rec := callout.Record{BillID: b.ID, Status: callout.StatusDone, Methods: []string{"Email"},
		Recipients: []string{callout.RecipientReferral}, NotifiedPerson: b.Referral.Name, ReadBack: true,
		Comment:   "Preview: the comment of the callout appears here when the lab shares comments.",
		CreatedBy: user, CreatedAt: now}
	for _, rep := range b.Reports {
		if !rep.State.Critical() {
			continue
		}
		for _, prm := range callout.CriticalParameters(rep.Parameters) {
			rec.Snapshot = append(rec.Snapshot, callout.SnapshotItem{LabReportID: rep.ID, TestID: rep.TestID, TestName: rep.TestName,
				Name: prm.Name, Value: prm.Value, Unit: prm.Unit, Flag: prm.Flag,
				NormalLow: prm.NormalLow, NormalHigh: prm.NormalHigh, CriticalLow: prm.CriticalLow, CriticalHigh: prm.CriticalHigh})
		}
	}
	return callout.DeliveryWork{LabID: b.LabID, Settings: set, EmailTemplate: src, Bill: b.Bill, Records: []callout.Record{rec},
		Delivery: callout.Delivery{BillID: b.ID, Channel: callout.ChannelEmail, Recipient: callout.RecipientReferral,
			RecipientName: b.Referral.Name, Address: b.Referral.Email, Status: callout.DeliveryQueued}}
}

func previewHeaders(w http.ResponseWriter) {
	hd := w.Header()
	hd.Set("Content-Type", "text/html; charset=utf-8")
	// The lab's own HTML: inline styles as emails use them, never script.
	hd.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; img-src data:; sandbox; frame-ancestors 'self'")
	hd.Set("X-Frame-Options", "SAMEORIGIN")
}

var previewErrorPage = template.Must(template.New("e").Parse(
	`<!doctype html><meta charset="utf-8"><title>Preview</title><p style="font:16px sans-serif;color:#8a1c1c">{{.}}</p>`))

func (h *Handler) previewError(w http.ResponseWriter, err error) {
	msg := sentence(callout.ErrorMessage(err))
	if callout.ErrorKind(err) == callout.KindInternal {
		h.log.Error("email preview failed", "err", err)
		msg = "The preview could not be made. Please try again."
	}
	previewHeaders(w)
	w.WriteHeader(http.StatusOK) // shown inside the frame, where a status is not seen
	_ = previewErrorPage.Execute(w, msg)
}
