package search

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"

	"github.com/blevesearch/bleve/v2/analysis/char/asciifolding"
)

// IndexName is the name of the index (as in the legacy Elasticsearch).
const IndexName = "patient_reports"

// Callout states stored in Doc.CriticalValues.
const (
	StateNormal    = 0
	StatePending   = 1
	StateDone      = 2
	StateAbnormal  = 3
	StateAttempted = 4
)

// Paging limits applied to Query.Limit.
const (
	DefaultLimit = 50
	MaxLimit     = 1000
)

// maxWords caps the number of words of Query.Text that are used.
const maxWords = 12

// ErrLabRequired is returned by Search when Query.LabID is not set.
var ErrLabRequired = errors.New("search: query needs a LabID")

// Doc is one lab report (one test of an order) as stored in the index.
type Doc struct {
	ReportID, LabID, BillID int64

	LabBillID, AccessionNumber, PatientName, Referral, Organization string
	TestID, TestName, Department                                    string

	CriticalValues             int
	Dismissed, SampleCollected bool
	ResultedAt, LastUpdated    time.Time

	// Version is supplied by the caller and must increase with every
	// change of the report; a Doc with a lower Version than the stored
	// one is ignored, an equal Version overwrites.
	Version int64
}

// Query selects reports of one lab.
type Query struct {
	// LabID is required: docs of other labs are never returned.
	LabID int64
	// Text is free text over patient name, order id (lab_bill_id,
	// accession number) and test name; see the package doc. Empty
	// matches all.
	Text string
	// States filters on CriticalValues; empty means any.
	States []int
	// Departments filters on Department (exact match); empty means any.
	Departments []string
	// ExcludeUnactionable drops dismissed reports and reports whose
	// sample is not collected.
	ExcludeUnactionable bool
	// Limit is the page size: <= 0 means DefaultLimit, capped at
	// MaxLimit.
	Limit int
	// After continues after the given position (Page.Next).
	After *Cursor
}

// Cursor is a position in the (ResultedAt, ReportID) order.
type Cursor struct {
	ResultedAt time.Time
	ReportID   int64
}

// Page is one page of results.
type Page struct {
	Docs []Doc
	// Next is non-nil when more hits follow this page.
	Next *Cursor
	// Total is the number of hits of the query ignoring paging.
	Total int
}

// Index documents what both implementations (*Bleve, *Elastic) offer.
// Consumers should declare their own, smaller interfaces.
type Index interface {
	// Upsert stores docs, keeping for each report the highest Version.
	Upsert(ctx context.Context, docs []Doc) error
	// Search returns one page of the reports matching q.
	Search(ctx context.Context, q Query) (Page, error)
	Close() error
}

var (
	_ Index = (*Bleve)(nil)
	_ Index = (*Elastic)(nil)
)

// CursorOf returns the cursor positioned at d.
func CursorOf(d Doc) Cursor {
	return Cursor{ResultedAt: d.ResultedAt, ReportID: d.ReportID}
}

func validateDocs(docs []Doc) error {
	for i := range docs {
		d := &docs[i]
		switch {
		case d.ReportID <= 0:
			return fmt.Errorf("search: doc %d: ReportID %d must be positive", i, d.ReportID)
		case d.LabID <= 0:
			return fmt.Errorf("search: report %d: LabID %d must be positive", d.ReportID, d.LabID)
		case d.Version < 0:
			return fmt.Errorf("search: report %d: Version %d must not be negative", d.ReportID, d.Version)
		}
	}
	return nil
}

func normLimit(n int) int {
	switch {
	case n <= 0:
		return DefaultLimit
	case n > MaxLimit:
		return MaxLimit
	}
	return n
}

var epoch = time.Unix(0, 0).UTC()

// sortTime is the time used for ordering: zero (or pre-1970) times sort
// as the Unix epoch so that both engines can represent them.
func sortTime(t time.Time) time.Time {
	if t.IsZero() || t.Before(epoch) {
		return epoch
	}
	return t.UTC()
}

// queryWords splits free text into at most maxWords words.
func queryWords(text string) []string {
	w := strings.Fields(text)
	if len(w) > maxWords {
		w = w[:maxWords]
	}
	return w
}

var asciiFolder = asciifolding.New()

// foldKeyword case- and accent-folds a whole value (order ids).
func foldKeyword(s string) string {
	return strings.ToLower(stripMarks(string(asciiFolder.Filter([]byte(s)))))
}

// stripMarks removes non-spacing combining marks (decomposed accents).
func stripMarks(s string) string {
	for _, r := range s {
		if unicode.Is(unicode.Mn, r) {
			out := make([]rune, 0, len(s))
			for _, r := range s {
				if !unicode.Is(unicode.Mn, r) {
					out = append(out, r)
				}
			}
			return string(out)
		}
	}
	return s
}

// germanTranslit spells German umlauts and ß the ASCII way.
var germanTranslit = strings.NewReplacer(
	"ä", "ae", "ö", "oe", "ü", "ue",
	"Ä", "Ae", "Ö", "Oe", "Ü", "Ue",
	"ß", "ss", "ẞ", "SS",
	// combining diaeresis (decomposed input)
	"a\u0308", "ae", "o\u0308", "oe", "u\u0308", "ue",
	"A\u0308", "Ae", "O\u0308", "Oe", "U\u0308", "Ue",
)
