package search

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/elastic/go-elasticsearch/v8"
	"github.com/elastic/go-elasticsearch/v8/esapi"
)

// Elastic is the Elasticsearch 8 / OpenSearch 2 implementation. It is
// safe for concurrent use.
//
// It is tested only against a fake server at the HTTP wire level (see
// the package doc), not against a real cluster.
type Elastic struct {
	es       *elasticsearch.Client
	index    string
	refresh  string
	bulkSize int
}

// ElasticOption configures NewElastic.
type ElasticOption func(*elasticConfig)

type elasticConfig struct {
	cfg        elasticsearch.Config
	index      string
	refresh    string
	bulkSize   int
	openSearch bool
}

// WithBasicAuth sets HTTP basic authentication.
func WithBasicAuth(user, password string) ElasticOption {
	return func(c *elasticConfig) { c.cfg.Username, c.cfg.Password = user, password }
}

// WithAPIKey sets a base64-encoded Elasticsearch API key.
func WithAPIKey(key string) ElasticOption {
	return func(c *elasticConfig) { c.cfg.APIKey = key }
}

// WithTransport sets the HTTP transport (TLS settings, proxies, tests).
func WithTransport(rt http.RoundTripper) ElasticOption {
	return func(c *elasticConfig) { c.cfg.Transport = rt }
}

// WithIndexName overrides the index name (default IndexName).
func WithIndexName(name string) ElasticOption {
	return func(c *elasticConfig) { c.index = name }
}

// WithRefresh sets the bulk refresh parameter: "" (default, documents
// become searchable within the index refresh interval, ~1s), "wait_for"
// (Upsert returns once they are searchable) or "true".
func WithRefresh(mode string) ElasticOption {
	return func(c *elasticConfig) { c.refresh = mode }
}

// WithBulkSize sets how many docs are sent per _bulk request (default
// 500).
func WithBulkSize(n int) ElasticOption {
	return func(c *elasticConfig) { c.bulkSize = n }
}

// WithOpenSearch makes the client usable against OpenSearch 2: the
// official v8 client refuses servers that do not send the header
// "X-Elastic-Product: Elasticsearch", which OpenSearch does not send;
// this option adds it to responses.
func WithOpenSearch() ElasticOption {
	return func(c *elasticConfig) { c.openSearch = true }
}

// NewElastic returns a client for the cluster at url (several nodes may
// be given comma-separated). It does not contact the server; call
// EnsureIndex at start-up.
func NewElastic(url string, opts ...ElasticOption) (*Elastic, error) {
	c := elasticConfig{index: IndexName, bulkSize: 500}
	for _, a := range strings.Split(url, ",") {
		if a = strings.TrimSpace(a); a != "" {
			c.cfg.Addresses = append(c.cfg.Addresses, a)
		}
	}
	if len(c.cfg.Addresses) == 0 {
		return nil, errors.New("search: elasticsearch url is empty")
	}
	for _, o := range opts {
		o(&c)
	}
	if c.bulkSize <= 0 {
		c.bulkSize = 500
	}
	if c.openSearch {
		base := c.cfg.Transport
		if base == nil {
			base = http.DefaultTransport
		}
		c.cfg.Transport = productHeaderTransport{base}
	}
	es, err := elasticsearch.NewClient(c.cfg)
	if err != nil {
		return nil, fmt.Errorf("search: elasticsearch client: %w", err)
	}
	return &Elastic{es: es, index: c.index, refresh: c.refresh, bulkSize: c.bulkSize}, nil
}

type productHeaderTransport struct{ base http.RoundTripper }

func (t productHeaderTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	res, err := t.base.RoundTrip(r)
	if err == nil && res.Header.Get("X-Elastic-Product") == "" {
		res.Header.Set("X-Elastic-Product", "Elasticsearch")
	}
	return res, err
}

// Close releases the client.
func (e *Elastic) Close() error { return e.es.Close(context.Background()) }

// Index mapping and analysis of patient_reports. Text fields fold case
// and accents (asciifolding), the ".de" sub-fields also transliterate
// German umlauts; ids are keywords with a folding normalizer.
const esIndexBody = `{
  "settings": {
    "analysis": {
      "char_filter": {
        "callout_de_translit": {
          "type": "mapping",
          "mappings": ["ä => ae", "ö => oe", "ü => ue", "Ä => Ae", "Ö => Oe", "Ü => Ue", "ß => ss", "ẞ => SS"]
        },
        "callout_strip_marks": {"type": "pattern_replace", "pattern": "\\p{Mn}", "replacement": ""}
      },
      "analyzer": {
        "callout_folded": {
          "type": "custom", "char_filter": ["callout_strip_marks"],
          "tokenizer": "standard", "filter": ["lowercase", "asciifolding"]
        },
        "callout_folded_de": {
          "type": "custom", "char_filter": ["callout_de_translit", "callout_strip_marks"],
          "tokenizer": "standard", "filter": ["lowercase", "asciifolding"]
        }
      },
      "normalizer": {
        "callout_folded_kw": {"type": "custom", "filter": ["lowercase", "asciifolding"]}
      }
    }
  },
  "mappings": {
    "dynamic": false,
    "properties": {
      "report_id":        {"type": "long"},
      "lab_id":           {"type": "keyword"},
      "bill_id":          {"type": "keyword"},
      "lab_bill_id":      {"type": "keyword", "normalizer": "callout_folded_kw",
                           "fields": {"text": {"type": "text", "analyzer": "callout_folded"}}},
      "accession_number": {"type": "keyword", "normalizer": "callout_folded_kw",
                           "fields": {"text": {"type": "text", "analyzer": "callout_folded"}}},
      "patient_name":     {"type": "text", "analyzer": "callout_folded",
                           "fields": {"de": {"type": "text", "analyzer": "callout_folded_de"}}},
      "test_name":        {"type": "text", "analyzer": "callout_folded",
                           "fields": {"de": {"type": "text", "analyzer": "callout_folded_de"}}},
      "referral":         {"type": "keyword"},
      "organization":     {"type": "keyword"},
      "test_id":          {"type": "keyword"},
      "department":       {"type": "keyword"},
      "critical_values":  {"type": "keyword"},
      "dismissed":        {"type": "boolean"},
      "sample_collected": {"type": "boolean"},
      "resulted_at":      {"type": "date"},
      "last_updated":     {"type": "date"},
      "version":          {"type": "long"}
    }
  }
}`

// esTextFields are searched by multi_match bool_prefix.
var esTextFields = []string{
	"patient_name", "patient_name.de", "test_name", "test_name.de",
	"lab_bill_id.text", "accession_number.text",
}

// EnsureIndex creates the index with its mapping if it does not exist.
// An existing index is left untouched (its mapping is not checked).
func (e *Elastic) EnsureIndex(ctx context.Context) error {
	res, err := e.es.Indices.Exists([]string{e.index}, e.es.Indices.Exists.WithContext(ctx))
	if err != nil {
		return fmt.Errorf("search: index exists %s: %w", e.index, err)
	}
	drain(res)
	switch res.StatusCode {
	case http.StatusOK:
		return nil
	case http.StatusNotFound:
	default:
		return fmt.Errorf("search: index exists %s: HTTP %d", e.index, res.StatusCode)
	}
	res, err = e.es.Indices.Create(e.index,
		e.es.Indices.Create.WithContext(ctx),
		e.es.Indices.Create.WithBody(strings.NewReader(esIndexBody)))
	if err != nil {
		return fmt.Errorf("search: create index %s: %w", e.index, err)
	}
	defer drain(res)
	if res.IsError() {
		body, _ := io.ReadAll(io.LimitReader(res.Body, 4096))
		if res.StatusCode == http.StatusBadRequest &&
			bytes.Contains(body, []byte("resource_already_exists_exception")) {
			return nil // created concurrently
		}
		return fmt.Errorf("search: create index %s: HTTP %d: %s", e.index, res.StatusCode, body)
	}
	return nil
}

func drain(res *esapi.Response) {
	if res != nil && res.Body != nil {
		_, _ = io.Copy(io.Discard, io.LimitReader(res.Body, 1<<20))
		_ = res.Body.Close()
	}
}

// esDoc is the _source of a document.
type esDoc struct {
	ReportID        int64      `json:"report_id"`
	LabID           int64      `json:"lab_id"`
	BillID          int64      `json:"bill_id"`
	LabBillID       string     `json:"lab_bill_id"`
	AccessionNumber string     `json:"accession_number"`
	PatientName     string     `json:"patient_name"`
	Referral        string     `json:"referral"`
	Organization    string     `json:"organization"`
	TestID          string     `json:"test_id"`
	TestName        string     `json:"test_name"`
	Department      string     `json:"department"`
	CriticalValues  int        `json:"critical_values"`
	Dismissed       bool       `json:"dismissed"`
	SampleCollected bool       `json:"sample_collected"`
	ResultedAt      time.Time  `json:"resulted_at"`
	LastUpdated     *time.Time `json:"last_updated,omitempty"`
	Version         int64      `json:"version"`
}

func toES(d Doc) esDoc {
	out := esDoc{
		ReportID: d.ReportID, LabID: d.LabID, BillID: d.BillID,
		LabBillID: d.LabBillID, AccessionNumber: d.AccessionNumber,
		PatientName: d.PatientName, Referral: d.Referral, Organization: d.Organization,
		TestID: d.TestID, TestName: d.TestName, Department: d.Department,
		CriticalValues: d.CriticalValues, Dismissed: d.Dismissed, SampleCollected: d.SampleCollected,
		ResultedAt: sortTime(d.ResultedAt), Version: d.Version,
	}
	if !d.LastUpdated.IsZero() {
		t := d.LastUpdated.UTC()
		out.LastUpdated = &t
	}
	return out
}

func (s esDoc) doc() Doc {
	d := Doc{
		ReportID: s.ReportID, LabID: s.LabID, BillID: s.BillID,
		LabBillID: s.LabBillID, AccessionNumber: s.AccessionNumber,
		PatientName: s.PatientName, Referral: s.Referral, Organization: s.Organization,
		TestID: s.TestID, TestName: s.TestName, Department: s.Department,
		CriticalValues: s.CriticalValues, Dismissed: s.Dismissed, SampleCollected: s.SampleCollected,
		Version: s.Version,
	}
	if !s.ResultedAt.Equal(epoch) {
		d.ResultedAt = s.ResultedAt.UTC()
	}
	if s.LastUpdated != nil {
		d.LastUpdated = s.LastUpdated.UTC()
	}
	return d
}

type bulkAction struct {
	Index bulkMeta `json:"index"`
}

type bulkMeta struct {
	Index       string `json:"_index"`
	ID          string `json:"_id"`
	Version     int64  `json:"version"`
	VersionType string `json:"version_type"`
}

type bulkResponse struct {
	Errors bool                         `json:"errors"`
	Items  []map[string]bulkItemOutcome `json:"items"`
}

type bulkItemOutcome struct {
	ID     string          `json:"_id"`
	Status int             `json:"status"`
	Error  json.RawMessage `json:"error"`
}

// Upsert indexes docs with the bulk API (version_type=external_gte,
// version=Doc.Version), in requests of at most the bulk size. Items
// rejected with 409 (a newer version is stored) are not errors; any
// other failed item or HTTP error is.
func (e *Elastic) Upsert(ctx context.Context, docs []Doc) error {
	if err := validateDocs(docs); err != nil {
		return err
	}
	for start := 0; start < len(docs); start += e.bulkSize {
		end := min(start+e.bulkSize, len(docs))
		if err := e.bulk(ctx, docs[start:end]); err != nil {
			return err
		}
	}
	return nil
}

func (e *Elastic) bulk(ctx context.Context, docs []Doc) error {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf) // Encode appends the '\n' NDJSON needs
	for _, d := range docs {
		meta := bulkAction{Index: bulkMeta{
			Index: e.index, ID: docID(d.ReportID),
			Version: d.Version, VersionType: "external_gte",
		}}
		if err := enc.Encode(meta); err != nil {
			return err
		}
		if err := enc.Encode(toES(d)); err != nil {
			return err
		}
	}
	opts := []func(*esapi.BulkRequest){e.es.Bulk.WithContext(ctx)}
	if e.refresh != "" {
		opts = append(opts, e.es.Bulk.WithRefresh(e.refresh))
	}
	res, err := e.es.Bulk(&buf, opts...)
	if err != nil {
		return fmt.Errorf("search: bulk: %w", err)
	}
	defer drain(res)
	if res.IsError() {
		body, _ := io.ReadAll(io.LimitReader(res.Body, 4096))
		return fmt.Errorf("search: bulk: HTTP %d: %s", res.StatusCode, body)
	}
	var br bulkResponse
	if err := json.NewDecoder(res.Body).Decode(&br); err != nil {
		return fmt.Errorf("search: bulk: decode response: %w", err)
	}
	if !br.Errors {
		return nil
	}
	var failed []string
	for _, item := range br.Items {
		for _, o := range item {
			if o.Status == http.StatusConflict || o.Status < 300 {
				continue // 409: a newer (or equal) version is stored
			}
			failed = append(failed, fmt.Sprintf("%s: HTTP %d %s", o.ID, o.Status, o.Error))
		}
	}
	if len(failed) == 0 {
		return nil
	}
	return fmt.Errorf("search: bulk: %d of %d docs failed, first: %s", len(failed), len(docs), failed[0])
}

// searchBody builds the request body of q (limit+1 hits are asked for
// to detect a next page).
func (e *Elastic) searchBody(q Query, limit int) map[string]any {
	filter := []any{
		map[string]any{"term": map[string]any{"lab_id": q.LabID}},
	}
	if len(q.States) > 0 {
		filter = append(filter, map[string]any{"terms": map[string]any{"critical_values": q.States}})
	}
	if len(q.Departments) > 0 {
		filter = append(filter, map[string]any{"terms": map[string]any{"department": q.Departments}})
	}
	if q.ExcludeUnactionable {
		filter = append(filter,
			map[string]any{"term": map[string]any{"dismissed": false}},
			map[string]any{"term": map[string]any{"sample_collected": true}})
	}
	boolQ := map[string]any{"filter": filter}
	var must []any
	for _, w := range queryWords(q.Text) {
		if !hasWordChar(w) {
			continue // punctuation only
		}
		kw := foldKeyword(w)
		must = append(must, map[string]any{"bool": map[string]any{
			"should": []any{
				map[string]any{"multi_match": map[string]any{
					"query": w, "type": "bool_prefix", "operator": "and", "fields": esTextFields,
				}},
				map[string]any{"prefix": map[string]any{"lab_bill_id": map[string]any{"value": kw}}},
				map[string]any{"prefix": map[string]any{"accession_number": map[string]any{"value": kw}}},
			},
			"minimum_should_match": 1,
		}})
	}
	if len(must) > 0 {
		boolQ["must"] = must
	}
	body := map[string]any{
		"size":             limit + 1,
		"track_total_hits": true,
		"query":            map[string]any{"bool": boolQ},
		"sort": []any{
			map[string]any{"resulted_at": map[string]any{"order": "asc"}},
			map[string]any{"report_id": map[string]any{"order": "asc"}},
		},
	}
	if q.After != nil {
		body["search_after"] = []any{sortTime(q.After.ResultedAt).UnixMilli(), q.After.ReportID}
	}
	return body
}

func hasWordChar(w string) bool {
	for _, t := range strings.FieldsFunc(foldKeyword(w), func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r > 127)
	}) {
		if t != "" {
			return true
		}
	}
	return false
}

type searchResponse struct {
	Hits struct {
		Total struct {
			Value int `json:"value"`
		} `json:"total"`
		Hits []struct {
			Source esDoc `json:"_source"`
		} `json:"hits"`
	} `json:"hits"`
}

// Search returns one page of q's hits ordered by ResultedAt (ms), ReportID.
func (e *Elastic) Search(ctx context.Context, q Query) (Page, error) {
	if q.LabID <= 0 {
		return Page{}, ErrLabRequired
	}
	limit := normLimit(q.Limit)
	body, err := json.Marshal(e.searchBody(q, limit))
	if err != nil {
		return Page{}, err
	}
	res, err := e.es.Search(
		e.es.Search.WithContext(ctx),
		e.es.Search.WithIndex(e.index),
		e.es.Search.WithBody(bytes.NewReader(body)),
	)
	if err != nil {
		return Page{}, fmt.Errorf("search: elasticsearch search: %w", err)
	}
	defer drain(res)
	if res.IsError() {
		msg, _ := io.ReadAll(io.LimitReader(res.Body, 4096))
		return Page{}, fmt.Errorf("search: elasticsearch search: HTTP %d: %s", res.StatusCode, msg)
	}
	var sr searchResponse
	if err := json.NewDecoder(res.Body).Decode(&sr); err != nil {
		return Page{}, fmt.Errorf("search: elasticsearch search: decode: %w", err)
	}
	page := Page{Total: sr.Hits.Total.Value, Docs: make([]Doc, 0, min(len(sr.Hits.Hits), limit))}
	for i, h := range sr.Hits.Hits {
		if i == limit {
			c := CursorOf(page.Docs[limit-1])
			page.Next = &c
			break
		}
		page.Docs = append(page.Docs, h.Source.doc())
	}
	return page, nil
}
