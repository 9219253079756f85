package web

import (
	"bytes"
	"encoding/csv"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/xuri/excelize/v2"

	"callout/internal/callout"
)

// maxExportRows bounds one export; a month of a busy lab's critical results
// fits many times over.
const maxExportRows = 10000

// exportHeader names the export's columns.
var exportHeader = []string{"Order ID", "Patient", "Test", "Department", "Critical values", "Resulted at",
	"Callout status", "Called by", "Called at", "To whom", "How", "Read back", "Delay from result to callout (minutes)"}

// exportRow is one report of the export.
type exportRow struct {
	OrderID, Patient, Test, Department, Critical string
	ResultedAt                                   time.Time
	Status                                       string // Pending, Attempted or Done
	By                                           string
	At                                           time.Time // zero when pending
	To, How, ReadBack                            string
	// Delay is the minutes from the result to the done callout; -1 when
	// the report is not done.
	Delay int
}

// exportRows pairs each report with the record that explains its state:
// its latest done record, or the order's attempt that holds it.
func exportRows(bills []callout.Bill, recs []callout.Record) []exportRow {
	done := map[int64]callout.Record{}    // by report
	attempt := map[int64]callout.Record{} // by bill: the draft
	for _, rec := range recs {            // oldest first: later ones win
		switch {
		case rec.LabReportID != nil && rec.Status == callout.StatusDone:
			done[*rec.LabReportID] = rec
		case rec.LabReportID == nil:
			attempt[rec.BillID] = rec
		}
	}
	var out []exportRow
	for _, b := range bills {
		for _, rep := range b.Reports {
			row := exportRow{OrderID: b.LabBillID, Patient: b.Patient.Name, Test: rep.TestName, Department: rep.Department,
				Critical: criticalText(rep.Parameters), ResultedAt: rep.ResultedAt, Status: stateLabel(rep.State), Delay: -1}
			rec, ok := callout.Record{}, false
			switch rep.State {
			case callout.StateDone:
				rec, ok = done[rep.ID]
			case callout.StateAttempted:
				rec, ok = attempt[b.ID]
				ok = ok && rec.Meta != nil && slices.Contains(rec.Meta.CalloutFor, rep.TestID)
			}
			if ok {
				row.By, row.At = rec.CreatedBy, rec.CreatedAt
				row.To = strings.Join(rec.Recipients, ", ")
				if rec.NotifiedPerson != "" {
					row.To = strings.TrimPrefix(row.To+" — reached "+rec.NotifiedPerson, ", ")
				}
				row.How = strings.Join(append([]string{"Phone"}, rec.Methods...), ", ")
				row.ReadBack = "No"
				if rec.ReadBack {
					row.ReadBack = "Yes"
				}
				if rep.State == callout.StateDone {
					row.Delay = int(math.Round(rec.CreatedAt.Sub(rep.ResultedAt).Minutes()))
				}
			}
			out = append(out, row)
		}
	}
	return out
}

// criticalText lists a report's critical parameters as "name value unit
// flag (critical <2.5 or >6.5)", the limits when the result has them.
func criticalText(params []callout.Parameter) string {
	var parts []string
	for _, p := range callout.CriticalParameters(params) {
		v := viewParam(p)
		part := strings.Join(strings.Fields(strings.Join([]string{p.Name, p.Value, p.Unit, v.Flag}, " ")), " ")
		if v.Critical != "" {
			part += " (critical " + v.Critical + ")"
		}
		parts = append(parts, part)
	}
	return strings.Join(parts, "; ")
}

func (h *Handler) loadExport(r *http.Request, s *callout.Session) ([]exportRow, worklistQuery, error) {
	p := s.User.Principal()
	q := parseWorklistQuery(r)
	text, only, err := h.search(r.Context(), p, q.Text)
	if err != nil {
		return nil, q, err
	}
	f := callout.WorklistFilter{Text: text, States: q.States(), Departments: p.Departments, Limit: maxExportRows}
	bills, recs, err := h.worklist.WorklistExport(r.Context(), p.LabID, f, only)
	if err != nil {
		return nil, q, err
	}
	// The records go through the rule every reader of records follows. The
	// export shows no comment, but what it shows of a record is then what
	// the order page shows. Its orders hold only the listed reports: any
	// other counts as one the user does not see, which errs on the side of
	// showing less.
	byBill := map[int64][]callout.Record{}
	for _, rec := range recs {
		byBill[rec.BillID] = append(byBill[rec.BillID], rec)
	}
	var seen []callout.Record
	for _, b := range bills {
		seen = append(seen, callout.VisibleRecords(p, b, byBill[b.ID])...)
	}
	return exportRows(bills, seen), q, nil
}

func (h *Handler) exportName(q worklistQuery, ext string) string {
	return fmt.Sprintf("callout-%s-%s.%s", q.Tab, h.svc.Now().In(h.loc).Format("2006-01-02-1504"), ext)
}

// cells returns the row as text, times in the pages' time zone.
func (h *Handler) cells(row exportRow) []string {
	t := func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.In(h.loc).Format("2006-01-02 15:04")
	}
	delay := ""
	if row.Delay >= 0 {
		delay = fmt.Sprint(row.Delay)
	}
	return []string{row.OrderID, row.Patient, row.Test, row.Department, row.Critical, t(row.ResultedAt),
		row.Status, row.By, t(row.At), row.To, row.How, row.ReadBack, delay}
}

// csvSafe keeps a spreadsheet from reading text that came from outside (a
// patient's name from the LIS) as a formula.
func csvSafe(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}

func (h *Handler) exportCSV(w http.ResponseWriter, r *http.Request, s *callout.Session) {
	rows, q, err := h.loadExport(r, s)
	if err != nil {
		h.fail(w, r, s, err)
		return
	}
	var buf bytes.Buffer
	buf.WriteString("\ufeff") // a BOM, so spreadsheet programs read UTF-8
	cw := csv.NewWriter(&buf)
	_ = cw.Write(exportHeader)
	for _, row := range rows {
		cells := h.cells(row)
		for i := range cells {
			if i != len(cells)-1 {
				cells[i] = csvSafe(cells[i])
			}
		}
		_ = cw.Write(cells)
	}
	cw.Flush()
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="`+h.exportName(q, "csv")+`"`)
	_, _ = w.Write(buf.Bytes())
}

func (h *Handler) exportXLSX(w http.ResponseWriter, r *http.Request, s *callout.Session) {
	rows, q, err := h.loadExport(r, s)
	if err != nil {
		h.fail(w, r, s, err)
		return
	}
	buf, err := h.workbook(rows)
	if err != nil {
		h.fail(w, r, s, fmt.Errorf("build the Excel file: %w", err))
		return
	}
	w.Header().Set("Content-Type", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
	w.Header().Set("Content-Disposition", `attachment; filename="`+h.exportName(q, "xlsx")+`"`)
	_, _ = w.Write(buf.Bytes())
}

// workbook writes the rows as one sheet: a bold, frozen header with filters,
// times as real dates and the delay as a number, so the lab can sort and sum.
func (h *Handler) workbook(rows []exportRow) (*bytes.Buffer, error) {
	f := excelize.NewFile()
	defer f.Close()
	const sheet = "Callouts"
	if err := f.SetSheetName("Sheet1", sheet); err != nil {
		return nil, err
	}
	bold, err := f.NewStyle(&excelize.Style{Font: &excelize.Font{Bold: true},
		Fill: excelize.Fill{Type: "pattern", Pattern: 1, Color: []string{"E8EEF4"}}})
	if err != nil {
		return nil, err
	}
	date, err := f.NewStyle(&excelize.Style{CustomNumFmt: ptr("yyyy-mm-dd hh:mm")})
	if err != nil {
		return nil, err
	}
	widths := []float64{14, 24, 26, 16, 40, 17, 12, 14, 17, 30, 18, 10, 14}
	for i, wd := range widths {
		col, _ := excelize.ColumnNumberToName(i + 1)
		if err := f.SetColWidth(sheet, col, col, wd); err != nil {
			return nil, err
		}
	}
	header := make([]any, len(exportHeader))
	for i, v := range exportHeader {
		header[i] = v
	}
	if err := f.SetSheetRow(sheet, "A1", &header); err != nil {
		return nil, err
	}
	last, _ := excelize.CoordinatesToCellName(len(exportHeader), 1)
	if err := f.SetCellStyle(sheet, "A1", last, bold); err != nil {
		return nil, err
	}
	local := func(t time.Time) any {
		if t.IsZero() {
			return nil
		}
		// Spreadsheets have no time zones: write the wall time of the pages.
		l := t.In(h.loc)
		return time.Date(l.Year(), l.Month(), l.Day(), l.Hour(), l.Minute(), l.Second(), 0, time.UTC)
	}
	for i, row := range rows {
		var delay any
		if row.Delay >= 0 {
			delay = row.Delay
		}
		values := []any{row.OrderID, row.Patient, row.Test, row.Department, row.Critical, local(row.ResultedAt),
			row.Status, row.By, local(row.At), row.To, row.How, row.ReadBack, delay}
		cell, _ := excelize.CoordinatesToCellName(1, i+2)
		if err := f.SetSheetRow(sheet, cell, &values); err != nil {
			return nil, err
		}
	}
	if len(rows) > 0 {
		for _, col := range []string{"F", "I"} {
			if err := f.SetCellStyle(sheet, col+"2", fmt.Sprintf("%s%d", col, len(rows)+1), date); err != nil {
				return nil, err
			}
		}
	}
	last, _ = excelize.CoordinatesToCellName(len(exportHeader), len(rows)+1)
	if err := f.AutoFilter(sheet, "A1:"+last, nil); err != nil {
		return nil, err
	}
	if err := f.SetPanes(sheet, &excelize.Panes{Freeze: true, YSplit: 1, TopLeftCell: "A2", ActivePane: "bottomLeft"}); err != nil {
		return nil, err
	}
	return f.WriteToBuffer()
}

func ptr[T any](v T) *T { return &v }
