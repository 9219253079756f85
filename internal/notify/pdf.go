package notify

import (
	"bytes"
	"fmt"
	"strings"
	"time"

	"github.com/go-pdf/fpdf"
)

// Page geometry of the fax sheet, in millimetres (A4 portrait).
const (
	pdfMargin     = 15.0
	pdfBottom     = 18.0 // room for the footer
	pdfLineHeight = 5.0
)

// beyondCP1252 maps characters lab systems commonly send that the PDF core
// fonts (cp1252) cannot show; fpdf would print them as '.', which could turn
// "≥ 6.5" into ". 6.5" on a critical result.
var beyondCP1252 = strings.NewReplacer(
	"≤", "<=", "≥", ">=", "−", "-", "‐", "-", "‑", "-",
	"→", "->", "←", "<-", "↑", "^", "↓", "v", "✓", "v", "\u00a0", " ",
)

// FaxSheet renders the "Critical results" sheet sent through the
// email-to-fax gateway. It is deliberately black and white with bold and
// grey shading only, since colour is lost on fax. Reports that do not fit
// continue on further pages, repeating the table header.
func FaxSheet(c Content) ([]byte, error) {
	v := prepare(c)
	pdf := fpdf.New("P", "mm", "A4", "")
	pdf.SetMargins(pdfMargin, pdfMargin, pdfMargin)
	pdf.SetAutoPageBreak(true, pdfBottom)
	pdf.AliasNbPages("")
	// Fixed dates keep the document identical when a send is retried.
	stamp := c.CalledAt
	if stamp.IsZero() {
		stamp = time.Unix(0, 0).UTC()
	}
	pdf.SetCreationDate(stamp)
	pdf.SetModificationDate(stamp)
	// The title is visible in fax gateways' logs: keep the patient out of it.
	pdf.SetTitle("Critical results - Order "+c.LabBillID, true)
	pdf.SetCreator("Callout", true)

	cp := pdf.UnicodeTranslatorFromDescriptor("")
	s := &sheet{pdf: pdf, tr: func(s string) string { return cp(beyondCP1252.Replace(s)) }}

	pdf.SetFooterFunc(func() {
		pdf.SetY(-12)
		pdf.SetFont("Helvetica", "", 8)
		pdf.CellFormat(0, 4, s.tr(fmt.Sprintf("Critical results - Order ID %s - page %d of {nb} - Confidential medical information",
			c.LabBillID, pdf.PageNo())), "", 0, "C", false, 0, "")
	})
	pdf.AddPage()

	s.header(v)
	for i, r := range v.Reports {
		s.report(r, i, len(v.Reports))
	}
	if strings.TrimSpace(v.Comment) != "" {
		s.comment(v.Comment)
	}
	s.closing(v)

	if err := pdf.Error(); err != nil {
		return nil, fmt.Errorf("render fax sheet for order %s: %w", c.LabBillID, err)
	}
	var buf bytes.Buffer
	if err := pdf.Output(&buf); err != nil {
		return nil, fmt.Errorf("write fax sheet for order %s: %w", c.LabBillID, err)
	}
	return buf.Bytes(), nil
}

// sheet holds the document being drawn and the text translator every string
// must go through before reaching a core font.
type sheet struct {
	pdf *fpdf.Fpdf
	tr  func(string) string
}

func (s *sheet) header(v view) {
	p := s.pdf
	p.SetFont("Helvetica", "B", 16)
	p.MultiCell(0, 8, s.tr(v.LabName), "", "L", false)
	p.SetFont("Helvetica", "B", 14)
	p.CellFormat(0, 8, "CRITICAL RESULTS", "", 1, "L", false, 0, "")
	y := p.GetY() + 1
	p.SetLineWidth(0.6)
	p.Line(pdfMargin, y, 210-pdfMargin, y)
	p.SetLineWidth(0.2)
	p.Ln(4)

	to := v.RecipientName
	if to == "" {
		to = "Attending clinician"
	}
	if v.RecipientType != "" {
		to += " (" + v.RecipientType + ")"
	}
	rows := [][2]string{
		{"To", to},
		{"Order ID", v.LabBillID},
		{"Accession No.", v.AccessionNumber},
		{"Patient", v.PatientDisplay},
		{"Organization", v.Organization},
		{"Referral", v.Referral},
	}
	for _, r := range rows {
		if strings.TrimSpace(r[1]) == "" {
			continue
		}
		s.field(r[0], r[1])
	}
	p.Ln(3)
}

// field prints a "Label: value" line whose value may wrap.
func (s *sheet) field(label, value string) {
	p := s.pdf
	p.SetFont("Helvetica", "B", 10)
	p.CellFormat(32, 6, s.tr(label+":"), "", 0, "L", false, 0, "")
	p.SetFont("Helvetica", "", 10)
	p.MultiCell(0, 6, s.tr(value), "", "L", false)
}

// column is one table column of the parameter table.
type column struct {
	title string
	width float64
	text  func(Parameter) string
}

func (s *sheet) report(r Report, i, n int) {
	p := s.pdf
	title := r.TestName
	if n > 1 {
		title = fmt.Sprintf("Report %d of %d: %s", i+1, n, r.TestName)
	}
	var sub []string
	if r.Department != "" {
		sub = append(sub, r.Department)
	}
	if r.TestID != "" {
		sub = append(sub, "Test ID "+r.TestID)
	}
	// Keep the heading with the table header and first row.
	s.ensureSpace(7 + 6 + 2*pdfLineHeight + 2)
	p.SetFont("Helvetica", "B", 12)
	p.MultiCell(0, 7, s.tr(title), "", "L", false)
	if len(sub) > 0 {
		p.SetFont("Helvetica", "", 9)
		p.MultiCell(0, 5, s.tr(strings.Join(sub, " - ")), "", "L", false)
	}
	p.Ln(1)

	cols := []column{
		{"Parameter", 56, func(p Parameter) string { return p.Name }},
		{"Result", 30, func(p Parameter) string { return p.Value }},
		{"Unit", 28, func(p Parameter) string { return p.Unit }},
		{"Normal range", 42, func(p Parameter) string { return p.NormalRange }},
		{"Flag", 24, func(p Parameter) string { return p.Flag }},
	}
	for _, prm := range r.Parameters {
		if prm.CriticalRange != "" {
			cols = []column{
				{"Parameter", 46, cols[0].text},
				{"Result", 26, cols[1].text},
				{"Unit", 24, cols[2].text},
				{"Normal range", 32, cols[3].text},
				{"Critical limits", 30, func(p Parameter) string { return p.CriticalRange }},
				{"Flag", 22, cols[4].text},
			}
			break
		}
	}

	s.tableHeader(cols)
	for _, prm := range r.Parameters {
		cells := make([]string, len(cols))
		for j, col := range cols {
			cells[j] = col.text(prm)
		}
		if IsCriticalFlag(prm.Flag) {
			// Fax is monochrome: mark critical rows in a way that
			// survives it (shading, bold, and "!!" before the flag).
			cells[len(cells)-1] = "!! " + cells[len(cells)-1]
		}
		if s.row(cols, cells, IsCriticalFlag(prm.Flag)) {
			s.tableHeader(cols)
			s.row(cols, cells, IsCriticalFlag(prm.Flag))
		}
	}
	p.Ln(5)
}

func (s *sheet) tableHeader(cols []column) {
	p := s.pdf
	p.SetFont("Helvetica", "B", 10)
	p.SetFillColor(210, 210, 210)
	for _, c := range cols {
		p.CellFormat(c.width, 6, s.tr(c.title), "1", 0, "L", true, 0, "")
	}
	p.Ln(-1)
}

// row draws one table row whose cells wrap to the widest cell's height. It
// returns true without drawing when the row had to move to a new page, so
// the caller can repeat the table header first.
func (s *sheet) row(cols []column, cells []string, critical bool) (newPage bool) {
	p := s.pdf
	style := ""
	if critical {
		style = "B"
	}
	p.SetFont("Helvetica", style, 10)
	lines := make([][][]byte, len(cols))
	maxLines := 1
	for i, c := range cols {
		lines[i] = p.SplitLines([]byte(s.tr(cells[i])), c.width)
		maxLines = max(maxLines, len(lines[i]))
	}
	h := float64(maxLines)*pdfLineHeight + 1
	if s.ensureSpace(h) {
		return true
	}
	x, y := p.GetXY()
	p.SetFillColor(235, 235, 235)
	for i, c := range cols {
		rectStyle := "D"
		if critical {
			rectStyle = "FD"
		}
		p.Rect(x, y, c.width, h, rectStyle)
		for j, l := range lines[i] {
			p.SetXY(x, y+0.5+float64(j)*pdfLineHeight)
			p.CellFormat(c.width, pdfLineHeight, string(l), "", 0, "L", false, 0, "")
		}
		x += c.width
	}
	p.SetXY(pdfMargin, y+h)
	return false
}

// ensureSpace starts a new page when less than h mm are left above the
// bottom margin, and reports whether it did. On a fresh page it never breaks
// again, so a block taller than a page is drawn (and clipped) rather than
// looping.
func (s *sheet) ensureSpace(h float64) bool {
	_, pageH := s.pdf.GetPageSize()
	y := s.pdf.GetY()
	if y+h <= pageH-pdfBottom || y <= pdfMargin+0.01 {
		return false
	}
	s.pdf.AddPage()
	return true
}

func (s *sheet) comment(text string) {
	p := s.pdf
	s.ensureSpace(18)
	p.SetFont("Helvetica", "B", 10)
	p.CellFormat(0, 6, "Comment from the lab:", "", 1, "L", false, 0, "")
	p.SetFont("Helvetica", "", 10)
	p.MultiCell(0, pdfLineHeight, s.tr(text), "1", "L", false)
	p.Ln(4)
}

func (s *sheet) closing(v view) {
	p := s.pdf
	s.ensureSpace(30)
	if v.CalledBy != "" {
		line := "Called by: " + v.CalledBy
		if v.CalledAtText != "" {
			line += " at " + v.CalledAtText
		}
		p.SetFont("Helvetica", "", 10)
		p.MultiCell(0, 6, s.tr(line), "", "L", false)
	} else if v.CalledAtText != "" {
		p.SetFont("Helvetica", "", 10)
		p.MultiCell(0, 6, s.tr("Called at: "+v.CalledAtText), "", "L", false)
	}
	if v.NotifiedPerson != "" {
		p.SetFont("Helvetica", "", 10)
		p.MultiCell(0, 6, s.tr("Notified person: "+v.NotifiedPerson), "", "L", false)
	}
	if v.OrderURL != "" {
		p.SetFont("Helvetica", "", 9)
		p.MultiCell(0, 5, s.tr("Order: "+v.OrderURL), "", "L", false)
	}
	if v.ReadBack {
		return
	}
	p.Ln(3)
	p.SetFont("Helvetica", "B", 12)
	p.SetLineWidth(0.6)
	p.MultiCell(0, 9, s.tr("Read back required: please call the lab ("+v.LabName+") to confirm these results."), "1", "C", false)
	p.SetLineWidth(0.2)
}
