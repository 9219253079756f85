package web

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"callout/internal/callout"
)

// ordersPerPage is how many orders one worklist page shows.
const ordersPerPage = 25

// worklistQuery is what the worklist shows: a tab, a search and a page. The
// export takes the same query, so it contains what the screen does.
type worklistQuery struct {
	Tab  string // "pending" (states 1 and 4) or "done" (state 2)
	Text string
	Page int
}

func parseWorklistQuery(r *http.Request) worklistQuery {
	q := r.URL.Query()
	wq := worklistQuery{Tab: "pending", Text: strings.TrimSpace(q.Get("q")), Page: 1}
	if q.Get("tab") == "done" {
		wq.Tab = "done"
	}
	if len(wq.Text) > 200 {
		// Cut at a character boundary: half a character is not UTF-8.
		cut := 200
		for cut > 0 && !utf8.RuneStart(wq.Text[cut]) {
			cut--
		}
		wq.Text = wq.Text[:cut]
	}
	if n, err := strconv.Atoi(q.Get("page")); err == nil && n > 1 && n < 100000 {
		wq.Page = n
	}
	return wq
}

// States are the report states of the query's tab. The Pending tab counts
// an attempt as still pending, as the seed system did.
func (q worklistQuery) States() []callout.State {
	if q.Tab == "done" {
		return []callout.State{callout.StateDone}
	}
	return []callout.State{callout.StatePending, callout.StateAttempted}
}

// URL is the address of path with the query, on page n (0 keeps the page out).
func (q worklistQuery) URL(path, tab string, n int) string {
	v := url.Values{}
	v.Set("tab", tab)
	if q.Text != "" {
		v.Set("q", q.Text)
	}
	if n > 1 {
		v.Set("page", strconv.Itoa(n))
	}
	return path + "?" + v.Encode()
}

// orderRow is one line of the worklist: an order with its critical tests.
type orderRow struct {
	BillID    int64
	LabBillID string
	Patient   string
	Referral  string
	Reports   []callout.WorklistItem
	Attempted bool
	// Age is the time since the oldest result of the row; on the Done tab
	// the row says when it was last called out instead.
	Age      time.Duration
	AgeClass string // "ok", "warn" or "late" against the lab's target
	DoneAt   time.Time
	// Due is the time left to the lab's target (negative once over it).
	Due time.Duration
	// Values are the row's critical values as the bench says them:
	// "K 7.1 HH", "Glu 35 LL".
	Values        []string
	Departments   []string
	ReferralPhone string
	// FailedCopies counts the order's failed email and fax copies.
	FailedCopies int
	// LastDone is the order's newest done callout (Done tab).
	LastDone *callout.Record
}

// DueText says how the row stands against the lab's target: "due in 4 min"
// or "overdue 12 min".
func (r orderRow) DueText() string {
	if r.Due < 0 {
		return "overdue " + durationText(-r.Due)
	}
	return "due in " + durationText(r.Due)
}

type worklistView struct {
	Query         worklistQuery
	Pending, Done int
	Orders        []orderRow
	Page, Pages   int
	Target        int
	Updated       time.Time
	RefreshMillis int64
}

// Count is a tab's count as shown: "10,000+" past the cap the store
// counts to.
func (v worklistView) Count(n int) string {
	if n > callout.WorklistCountCap {
		return "10,000+"
	}
	return strconv.Itoa(n)
}

// Fragment is the address the page reloads itself from.
func (v worklistView) Fragment() string {
	return v.Query.URL("/worklist/fragment", v.Query.Tab, v.Page)
}

func (h *Handler) worklistPage(w http.ResponseWriter, r *http.Request, s *callout.Session) {
	v, lab, err := h.loadWorklist(r, s)
	if err != nil {
		h.fail(w, r, s, err)
		return
	}
	h.render(w, r, http.StatusOK, "worklist", &page{Title: "Worklist", Nav: "worklist", Session: s, Lab: lab, Data: v})
}

func (h *Handler) worklistFragment(w http.ResponseWriter, r *http.Request, s *callout.Session) {
	v, lab, err := h.loadWorklist(r, s)
	if err != nil {
		h.fail(w, r, s, err)
		return
	}
	h.render(w, r, http.StatusOK, "worklist-body", &page{Session: s, Lab: lab, Data: v})
}

func (h *Handler) loadWorklist(r *http.Request, s *callout.Session) (worklistView, string, error) {
	ctx, p := r.Context(), s.User.Principal()
	q := parseWorklistQuery(r)
	set, err := h.svc.Settings(ctx, p)
	if err != nil {
		return worklistView{}, "", err
	}
	v := worklistView{Query: q, Page: q.Page, Target: set.TargetMinutes, Updated: h.svc.Now(),
		RefreshMillis: h.refresh.Milliseconds()}
	text, bills, err := h.search(ctx, p, q.Text)
	if err != nil {
		return v, "", err
	}
	f := callout.WorklistFilter{Text: text, States: q.States(), Departments: p.Departments, Limit: ordersPerPage}
	items, total, err := h.worklist.WorklistOrders(ctx, p.LabID, f, bills, (q.Page-1)*ordersPerPage, q.Tab == "done")
	if err != nil {
		return v, "", err
	}
	other := worklistQuery{Tab: "done"}
	if q.Tab == "done" {
		other.Tab = "pending"
	}
	f.States, f.Limit = other.States(), 0
	_, otherTotal, err := h.worklist.WorklistOrders(ctx, p.LabID, f, bills, 0, false)
	if err != nil {
		return v, "", err
	}
	if q.Tab == "done" {
		v.Done, v.Pending = total, otherTotal
	} else {
		v.Pending, v.Done = total, otherTotal
	}
	v.Pages = max(1, (total+ordersPerPage-1)/ordersPerPage)
	v.Orders = groupOrders(items, v.Updated, set.TargetMinutes)
	if err := h.decorateRows(ctx, p, v.Orders); err != nil {
		return v, "", err
	}
	return v, set.Name, nil
}

// decorateRows adds to the page's rows what a technologist acts on: the
// critical values, departments, the referral's phone, failed copies and,
// on the Done tab, the last callout. One bounded read for the page's ids,
// apart from the worklist query.
func (h *Handler) decorateRows(ctx context.Context, p callout.Principal, rows []orderRow) error {
	var bills, reports []int64
	for _, row := range rows {
		bills = append(bills, row.BillID)
		for _, it := range row.Reports {
			reports = append(reports, it.ID)
		}
	}
	if len(bills) == 0 {
		return nil
	}
	info, err := h.worklist.WorklistRows(ctx, p.LabID, bills, reports)
	if err != nil {
		return err
	}
	for i := range rows {
		row := &rows[i]
		row.ReferralPhone = info.ReferralPhone[row.BillID]
		row.FailedCopies = info.FailedDeliveries[row.BillID]
		if rec, ok := info.LastDone[row.BillID]; ok {
			row.LastDone = &rec
		}
		for _, it := range row.Reports {
			if it.Department != "" && !slices.Contains(row.Departments, it.Department) {
				row.Departments = append(row.Departments, it.Department)
			}
			for _, prm := range callout.CriticalParameters(info.Parameters[it.ID]) {
				row.Values = append(row.Values, valueText(prm))
			}
		}
	}
	// Failed copies are counted per order; a user limited to departments
	// sees an order's copies only as the service shows them.
	if len(p.Departments) > 0 {
		for i := range rows {
			if rows[i].FailedCopies == 0 {
				continue
			}
			ds, err := h.svc.Deliveries(ctx, p, rows[i].BillID)
			if err != nil {
				return err
			}
			rows[i].FailedCopies = 0
			for _, d := range ds {
				if d.Status == callout.DeliveryFailed {
					rows[i].FailedCopies++
				}
			}
		}
	}
	return nil
}

// valueText is a critical value as the bench says it: the parameter's
// short name, the value and the flag ("K 7.1 HH").
func valueText(p callout.Parameter) string {
	v := viewParam(p)
	return strings.Join(strings.Fields(shortName(p.Name)+" "+p.Value+" "+v.Flag), " ")
}

// shortNames are the abbreviations labs use for common analytes; other
// names are shown as they come.
var shortNames = map[string]string{
	"potassium": "K", "sodium": "Na", "glucose": "Glu", "calcium": "Ca", "chloride": "Cl",
	"magnesium": "Mg", "phosphate": "Phos", "haemoglobin": "Hb", "hemoglobin": "Hb",
	"platelets": "Plt", "platelet count": "Plt", "white cell count": "WBC", "troponin i": "TnI",
	"troponin t": "TnT", "creatinine": "Crea", "bilirubin": "Bili", "lactate": "Lac",
}

func shortName(name string) string {
	if s, ok := shortNames[strings.ToLower(strings.TrimSpace(name))]; ok {
		return s
	}
	return name
}

// maxSearchHits bounds how many reports one search reads from the index.
const maxSearchHits = 2000

// search finds the orders whose patient, Order ID or tests match text. With
// a search index (the service's), it returns the orders the index found and
// no text; without one, it returns the text for the store to match. Only
// which orders match comes from the index: states come from the database,
// so a callout shows at once even before the index has caught up.
func (h *Handler) search(ctx context.Context, p callout.Principal, text string) (string, []int64, error) {
	// Without an index the text goes to the store as it is, so the text
	// rules the service applies to searches apply here first.
	if err := callout.CheckLine("the search text", text); err != nil {
		return "", nil, err
	}
	if text == "" || h.svc.Search == nil {
		return text, nil, nil
	}
	bills, seen := []int64{}, map[int64]bool{}
	f := callout.WorklistFilter{Text: text, States: callout.WorklistStates, Limit: 500}
	for read := 0; read < maxSearchHits; {
		items, next, err := h.svc.Worklist(ctx, p, f)
		if err != nil {
			return "", nil, err
		}
		for _, it := range items {
			if !seen[it.BillID] {
				seen[it.BillID] = true
				bills = append(bills, it.BillID)
			}
		}
		if next == nil {
			break
		}
		read += len(items)
		f.After = next
	}
	return "", bills, nil
}

// groupOrders folds the page's reports, which come order by order, into rows.
func groupOrders(items []callout.WorklistItem, now time.Time, targetMinutes int) []orderRow {
	var rows []orderRow
	for _, it := range items {
		if len(rows) == 0 || rows[len(rows)-1].BillID != it.BillID {
			rows = append(rows, orderRow{BillID: it.BillID, LabBillID: it.LabBillID, Patient: it.PatientName, Referral: it.Referral})
		}
		row := &rows[len(rows)-1]
		row.Reports = append(row.Reports, it)
		if it.State == callout.StateAttempted {
			row.Attempted = true
		}
		if age := now.Sub(it.ResultedAt); age > row.Age {
			row.Age = age
		}
		if it.LastUpdated.After(row.DoneAt) {
			row.DoneAt = it.LastUpdated
		}
	}
	for i := range rows {
		rows[i].AgeClass = ageClass(rows[i].Age, targetMinutes)
		rows[i].Due = time.Duration(targetMinutes)*time.Minute - rows[i].Age
	}
	return rows
}

// ageClass colours the age of a pending result: green in the first half of
// the lab's target time, amber in the second, red once it has passed.
func ageClass(age time.Duration, targetMinutes int) string {
	target := time.Duration(targetMinutes) * time.Minute
	switch {
	case age >= target:
		return "late"
	case age >= target/2:
		return "warn"
	}
	return "ok"
}
