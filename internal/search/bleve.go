package search

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/blevesearch/bleve/v2"
	"github.com/blevesearch/bleve/v2/analysis"
	"github.com/blevesearch/bleve/v2/analysis/analyzer/custom"
	"github.com/blevesearch/bleve/v2/analysis/analyzer/keyword"
	"github.com/blevesearch/bleve/v2/analysis/char/asciifolding"
	"github.com/blevesearch/bleve/v2/analysis/token/lowercase"
	"github.com/blevesearch/bleve/v2/analysis/tokenizer/single"
	unicodetok "github.com/blevesearch/bleve/v2/analysis/tokenizer/unicode"
	"github.com/blevesearch/bleve/v2/index/scorch"
	"github.com/blevesearch/bleve/v2/mapping"
	"github.com/blevesearch/bleve/v2/registry"
	bsearch "github.com/blevesearch/bleve/v2/search"
	"github.com/blevesearch/bleve/v2/search/query"
)

// schemaVersion is stored inside a Bleve index; OpenBleve refuses an
// index built with another schema (delete the directory and reindex).
const schemaVersion = "callout-patient-reports-v1"

var schemaKey = []byte("callout_schema")

// ErrSchemaMismatch is returned by OpenBleve for an index directory that
// was built by an incompatible version of this package. Remove the
// directory and rebuild it (callout reindex).
var ErrSchemaMismatch = errors.New("search: bleve index has an incompatible schema")

// Names of the analysis components registered by this package.
const (
	charDETranslit  = "callout_de_translit"
	charStripMarks  = "callout_strip_marks"
	analyzerFolded  = "callout_folded"
	analyzerFoldDE  = "callout_folded_de"
	analyzerKeyword = "callout_keyword_folded"
)

// Bleve field names.
const (
	fSrc         = "src" // stored JSON of the Doc, not indexed
	fReportID    = "report_id"
	fLabID       = "lab_id"
	fState       = "critical_values"
	fDepartment  = "department"
	fDismissed   = "dismissed"
	fCollected   = "sample_collected"
	fResultedAt  = "resulted_at"
	fLastUpdated = "last_updated"
	fPatient     = "patient_name"
	fPatientDE   = "patient_name_de"
	fTest        = "test_name"
	fTestDE      = "test_name_de"
	fOrderText   = "lab_bill_id_text"
	fAccText     = "accession_number_text"
	fOrderKW     = "lab_bill_id_kw"
	fAccKW       = "accession_number_kw"
)

var (
	foldedFields  = []string{fPatient, fTest, fOrderText, fAccText}
	foldedDEField = []string{fPatientDE, fTestDE}
	keywordFields = []string{fOrderKW, fAccKW}
)

// funcCharFilter adapts a string function to a bleve char filter.
type funcCharFilter func(string) string

func (f funcCharFilter) Filter(in []byte) []byte { return []byte(f(string(in))) }

func init() {
	must := func(err error) {
		if err != nil {
			panic(err)
		}
	}
	must(registry.RegisterCharFilter(charDETranslit,
		func(map[string]interface{}, *registry.Cache) (analysis.CharFilter, error) {
			return funcCharFilter(germanTranslit.Replace), nil
		}))
	must(registry.RegisterCharFilter(charStripMarks,
		func(map[string]interface{}, *registry.Cache) (analysis.CharFilter, error) {
			return funcCharFilter(stripMarks), nil
		}))
}

// Bleve is an embedded on-disk (or in-memory) index. It is safe for
// concurrent use. Only one process may open a directory at a time.
type Bleve struct {
	idx bleve.Index
	mu  sync.Mutex // serialises Upsert (read versions, then write)
}

// BleveOption configures OpenBleve.
type BleveOption func(*bleveConfig)

type bleveConfig struct {
	lockTimeout time.Duration
}

// WithLockTimeout sets how long OpenBleve waits for the directory lock
// held by another process (default 2s).
func WithLockTimeout(d time.Duration) BleveOption {
	return func(c *bleveConfig) { c.lockTimeout = d }
}

// OpenBleve opens the index in dir, creating it (and dir) if it does not
// exist yet.
func OpenBleve(dir string, opts ...BleveOption) (*Bleve, error) {
	cfg := bleveConfig{lockTimeout: 2 * time.Second}
	for _, o := range opts {
		o(&cfg)
	}
	runtime := map[string]interface{}{
		"bolt_timeout": cfg.lockTimeout.String(),
		// Every sync is a small batch. Letting the persister nap merges those
		// in memory before they reach the disk, instead of writing tiny
		// segments that background merging then rewrites over and over —
		// which, measured, cost a third of the service's CPU under load.
		// A crash can lose the last second of index updates; the next sync
		// of those orders, or `callout reindex`, restores them.
		"scorchPersisterOptions": map[string]interface{}{"PersisterNapTimeMSec": 1000, "PersisterNapUnderNumFiles": 1000},
	}

	_, err := os.Stat(filepath.Join(dir, "index_meta.json"))
	switch {
	case err == nil:
		idx, err := bleve.OpenUsing(dir, runtime)
		if err != nil {
			return nil, fmt.Errorf("search: open bleve index %s: %w", dir, err)
		}
		v, err := idx.GetInternal(schemaKey)
		if err != nil || string(v) != schemaVersion {
			_ = idx.Close()
			if err != nil {
				return nil, fmt.Errorf("search: read schema of %s: %w", dir, err)
			}
			return nil, fmt.Errorf("%w: %s has %q, want %q", ErrSchemaMismatch, dir, v, schemaVersion)
		}
		return &Bleve{idx: idx}, nil
	case errors.Is(err, os.ErrNotExist):
		m, err := newMapping()
		if err != nil {
			return nil, err
		}
		idx, err := bleve.NewUsing(dir, m, scorch.Name, scorch.Name, runtime)
		if err != nil {
			return nil, fmt.Errorf("search: create bleve index %s: %w", dir, err)
		}
		return initBleve(idx)
	default:
		return nil, fmt.Errorf("search: bleve index %s: %w", dir, err)
	}
}

// OpenBleveMem returns an in-memory index (for tests).
func OpenBleveMem() (*Bleve, error) {
	m, err := newMapping()
	if err != nil {
		return nil, err
	}
	idx, err := bleve.NewUsing("", m, scorch.Name, scorch.Name, nil)
	if err != nil {
		return nil, fmt.Errorf("search: create in-memory bleve index: %w", err)
	}
	return initBleve(idx)
}

func initBleve(idx bleve.Index) (*Bleve, error) {
	if err := idx.SetInternal(schemaKey, []byte(schemaVersion)); err != nil {
		_ = idx.Close()
		return nil, fmt.Errorf("search: write schema: %w", err)
	}
	return &Bleve{idx: idx}, nil
}

// Close closes the index (and releases the directory lock).
func (b *Bleve) Close() error { return b.idx.Close() }

func newMapping() (*mapping.IndexMappingImpl, error) {
	im := bleve.NewIndexMapping()
	analyzers := map[string]map[string]interface{}{
		// Unicode word segmentation, accents folded to ASCII, lower case.
		analyzerFolded: {
			"type":          custom.Name,
			"char_filters":  []string{asciifolding.Name, charStripMarks},
			"tokenizer":     unicodetok.Name,
			"token_filters": []string{lowercase.Name},
		},
		// Same, but German umlauts/ß transliterated first (ü -> ue).
		analyzerFoldDE: {
			"type":          custom.Name,
			"char_filters":  []string{charDETranslit, asciifolding.Name, charStripMarks},
			"tokenizer":     unicodetok.Name,
			"token_filters": []string{lowercase.Name},
		},
		// Whole value as one folded token (order ids).
		analyzerKeyword: {
			"type":          custom.Name,
			"char_filters":  []string{asciifolding.Name, charStripMarks},
			"tokenizer":     single.Name,
			"token_filters": []string{lowercase.Name},
		},
	}
	for name, cfg := range analyzers {
		if err := im.AddCustomAnalyzer(name, cfg); err != nil {
			return nil, fmt.Errorf("search: analyzer %s: %w", name, err)
		}
	}

	text := func(analyzer string) *mapping.FieldMapping {
		f := bleve.NewTextFieldMapping()
		f.Analyzer = analyzer
		f.Store = false
		f.IncludeInAll = false
		f.IncludeTermVectors = false
		f.DocValues = false
		return f
	}
	kw := func() *mapping.FieldMapping {
		f := bleve.NewKeywordFieldMapping()
		f.Store = false
		f.IncludeInAll = false
		f.IncludeTermVectors = false
		f.DocValues = false
		return f
	}
	num := func() *mapping.FieldMapping {
		f := bleve.NewNumericFieldMapping()
		f.Store = false
		f.IncludeInAll = false
		f.DocValues = true
		return f
	}
	date := func() *mapping.FieldMapping {
		f := bleve.NewDateTimeFieldMapping()
		f.Store = false
		f.IncludeInAll = false
		f.DocValues = true
		return f
	}
	boolean := func() *mapping.FieldMapping {
		f := bleve.NewBooleanFieldMapping()
		f.Store = false
		f.IncludeInAll = false
		f.DocValues = false
		return f
	}
	src := bleve.NewTextFieldMapping()
	src.Analyzer = keyword.Name
	src.Index = false
	src.Store = true
	src.IncludeInAll = false
	src.IncludeTermVectors = false
	src.DocValues = false

	dm := bleve.NewDocumentStaticMapping()
	dm.AddFieldMappingsAt(fSrc, src)
	dm.AddFieldMappingsAt(fReportID, num())
	dm.AddFieldMappingsAt(fLabID, kw())
	dm.AddFieldMappingsAt(fState, kw())
	dm.AddFieldMappingsAt(fDepartment, kw())
	dm.AddFieldMappingsAt(fDismissed, boolean())
	dm.AddFieldMappingsAt(fCollected, boolean())
	dm.AddFieldMappingsAt(fResultedAt, date())
	dm.AddFieldMappingsAt(fLastUpdated, date())
	for _, f := range foldedFields {
		dm.AddFieldMappingsAt(f, text(analyzerFolded))
	}
	for _, f := range foldedDEField {
		dm.AddFieldMappingsAt(f, text(analyzerFoldDE))
	}
	for _, f := range keywordFields {
		dm.AddFieldMappingsAt(f, text(analyzerKeyword))
	}

	im.DefaultMapping = dm
	im.DefaultAnalyzer = analyzerFolded
	im.IndexDynamic = false
	im.StoreDynamic = false
	im.DocValuesDynamic = false
	if err := im.Validate(); err != nil {
		return nil, fmt.Errorf("search: bleve mapping: %w", err)
	}
	return im, nil
}

func docID(reportID int64) string { return strconv.FormatInt(reportID, 10) }

func bleveFields(d Doc) (map[string]interface{}, error) {
	src, err := json.Marshal(d)
	if err != nil {
		return nil, err
	}
	m := map[string]interface{}{
		fSrc:        string(src),
		fReportID:   float64(d.ReportID),
		fLabID:      strconv.FormatInt(d.LabID, 10),
		fState:      strconv.Itoa(d.CriticalValues),
		fDismissed:  d.Dismissed,
		fCollected:  d.SampleCollected,
		fResultedAt: sortTime(d.ResultedAt),
		fPatient:    d.PatientName,
		fPatientDE:  d.PatientName,
		fTest:       d.TestName,
		fTestDE:     d.TestName,
		fOrderText:  d.LabBillID,
		fAccText:    d.AccessionNumber,
		fOrderKW:    d.LabBillID,
		fAccKW:      d.AccessionNumber,
	}
	if d.Department != "" {
		m[fDepartment] = d.Department
	}
	if !d.LastUpdated.IsZero() {
		m[fLastUpdated] = sortTime(d.LastUpdated)
	}
	return m, nil
}

// Upsert stores docs in one batch. For every report the highest Version
// wins: a doc whose Version is lower than the stored one is skipped, an
// equal or higher Version replaces it. Safe for concurrent use.
func (b *Bleve) Upsert(ctx context.Context, docs []Doc) error {
	if len(docs) == 0 {
		return nil
	}
	if err := validateDocs(docs); err != nil {
		return err
	}
	// Within the call, keep the highest version per report (later wins
	// on ties).
	latest := make(map[int64]Doc, len(docs))
	order := make([]int64, 0, len(docs))
	for _, d := range docs {
		cur, ok := latest[d.ReportID]
		if !ok {
			order = append(order, d.ReportID)
		}
		if !ok || d.Version >= cur.Version {
			latest[d.ReportID] = d
		}
	}

	b.mu.Lock()
	defer b.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return err
	}
	stored, err := b.storedVersions(ctx, order)
	if err != nil {
		return err
	}
	batch := b.idx.NewBatch()
	for _, id := range order {
		d := latest[id]
		if v, ok := stored[id]; ok && d.Version < v {
			continue // a newer version is already indexed
		}
		fields, err := bleveFields(d)
		if err != nil {
			return fmt.Errorf("search: report %d: %w", id, err)
		}
		if err := batch.Index(docID(id), fields); err != nil {
			return fmt.Errorf("search: report %d: %w", id, err)
		}
	}
	if batch.Size() == 0 {
		return nil
	}
	if err := b.idx.Batch(batch); err != nil {
		return fmt.Errorf("search: bleve batch: %w", err)
	}
	return nil
}

// storedVersions returns the Version of those reports that are indexed.
func (b *Bleve) storedVersions(ctx context.Context, ids []int64) (map[int64]int64, error) {
	sids := make([]string, len(ids))
	for i, id := range ids {
		sids[i] = docID(id)
	}
	req := bleve.NewSearchRequestOptions(query.NewDocIDQuery(sids), len(sids), 0, false)
	req.Fields = []string{fSrc}
	req.Score = "none"
	res, err := b.idx.SearchInContext(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("search: read stored versions: %w", err)
	}
	out := make(map[int64]int64, len(res.Hits))
	for _, h := range res.Hits {
		d, err := hitDoc(h)
		if err != nil {
			return nil, err
		}
		out[d.ReportID] = d.Version
	}
	return out, nil
}

func hitDoc(h *bsearch.DocumentMatch) (Doc, error) {
	var d Doc
	s, ok := h.Fields[fSrc].(string)
	if !ok {
		return d, fmt.Errorf("search: hit %s has no stored source", h.ID)
	}
	if err := json.Unmarshal([]byte(s), &d); err != nil {
		return d, fmt.Errorf("search: hit %s: %w", h.ID, err)
	}
	return d, nil
}

// Search returns one page of q's hits ordered by ResultedAt, ReportID.
func (b *Bleve) Search(ctx context.Context, q Query) (Page, error) {
	if q.LabID <= 0 {
		return Page{}, ErrLabRequired
	}
	bq, err := b.buildQuery(q)
	if err != nil {
		return Page{}, err
	}
	limit := normLimit(q.Limit)
	req := bleve.NewSearchRequestOptions(bq, limit+1, 0, false)
	req.Fields = []string{fSrc}
	req.Score = "none"
	req.SortByCustom(bsearch.SortOrder{
		&bsearch.SortField{Field: fResultedAt, Type: bsearch.SortFieldAsDate},
		&bsearch.SortField{Field: fReportID, Type: bsearch.SortFieldAsNumber},
	})
	if q.After != nil {
		req.SetSearchAfter([]string{
			sortTime(q.After.ResultedAt).Format(time.RFC3339Nano),
			strconv.FormatInt(q.After.ReportID, 10),
		})
	}
	res, err := b.idx.SearchInContext(ctx, req)
	if err != nil {
		return Page{}, fmt.Errorf("search: bleve search: %w", err)
	}
	page := Page{Total: int(res.Total), Docs: make([]Doc, 0, min(len(res.Hits), limit))}
	for i, h := range res.Hits {
		if i == limit {
			c := CursorOf(page.Docs[limit-1])
			page.Next = &c
			break
		}
		d, err := hitDoc(h)
		if err != nil {
			return Page{}, err
		}
		page.Docs = append(page.Docs, d)
	}
	return page, nil
}

func term(field, value string) query.Query {
	t := query.NewTermQuery(value)
	t.SetField(field)
	return t
}

func prefix(field, value string) query.Query {
	p := query.NewPrefixQuery(value)
	p.SetField(field)
	return p
}

func boolField(field string, v bool) query.Query {
	q := query.NewBoolFieldQuery(v)
	q.SetField(field)
	return q
}

func (b *Bleve) buildQuery(q Query) (query.Query, error) {
	conj := []query.Query{term(fLabID, strconv.FormatInt(q.LabID, 10))}
	if len(q.States) > 0 {
		var or []query.Query
		for _, s := range q.States {
			or = append(or, term(fState, strconv.Itoa(s)))
		}
		conj = append(conj, query.NewDisjunctionQuery(or))
	}
	if len(q.Departments) > 0 {
		var or []query.Query
		for _, d := range q.Departments {
			or = append(or, term(fDepartment, d))
		}
		conj = append(conj, query.NewDisjunctionQuery(or))
	}
	if q.ExcludeUnactionable {
		conj = append(conj, boolField(fDismissed, false), boolField(fCollected, true))
	}
	m := b.idx.Mapping()
	folded, foldDE := m.AnalyzerNamed(analyzerFolded), m.AnalyzerNamed(analyzerFoldDE)
	if folded == nil || foldDE == nil {
		return nil, errors.New("search: bleve analyzers missing from index mapping")
	}
	for _, w := range queryWords(q.Text) {
		ft := tokens(folded, w)
		if len(ft) == 0 {
			continue // punctuation only
		}
		var alts []query.Query
		alts = append(alts, fieldAlternatives(ft, foldedFields)...)
		alts = append(alts, fieldAlternatives(tokens(foldDE, w), foldedDEField)...)
		if kw := foldKeyword(w); kw != "" {
			for _, f := range keywordFields {
				alts = append(alts, prefix(f, kw))
			}
		}
		conj = append(conj, query.NewDisjunctionQuery(alts))
	}
	return query.NewConjunctionQuery(conj), nil
}

func tokens(a analysis.Analyzer, s string) []string {
	ts := a.Analyze([]byte(s))
	out := make([]string, 0, len(ts))
	for _, t := range ts {
		out = append(out, string(t.Term))
	}
	return out
}

// fieldAlternatives returns, per field, the query "all toks occur in
// this field, the last one as a prefix" (bool_prefix semantics).
func fieldAlternatives(toks []string, fields []string) []query.Query {
	if len(toks) == 0 {
		return nil
	}
	out := make([]query.Query, 0, len(fields))
	for _, f := range fields {
		parts := make([]query.Query, 0, len(toks))
		for i, t := range toks {
			if i == len(toks)-1 {
				parts = append(parts, prefix(f, t))
			} else {
				parts = append(parts, term(f, t))
			}
		}
		if len(parts) == 1 {
			out = append(out, parts[0])
		} else {
			out = append(out, query.NewConjunctionQuery(parts))
		}
	}
	return out
}
