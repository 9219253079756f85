package search

// These tests exercise Elastic at the HTTP wire level only: fakeES is an
// httptest.Server that plays Elasticsearch (we do not own Elasticsearch
// and none can be run here). Passing them does not prove the queries
// behave as intended on a real cluster.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

type fakeES struct {
	t          *testing.T
	mu         sync.Mutex
	noProduct  bool // omit X-Elastic-Product (OpenSearch)
	exists     bool
	created    []byte
	bulks      [][]byte
	bulkQuery  []string
	searches   []map[string]any
	bulkStatus func(id string) int // per item status (default 201)
	httpStatus int                 // if set, every request fails with it
	hits       []esDoc
	total      int
}

func newFakeES(t *testing.T) (*fakeES, *httptest.Server) {
	f := &fakeES{t: t}
	srv := httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(srv.Close)
	return f, srv
}

func (f *fakeES) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	body, err := io.ReadAll(r.Body)
	require.NoError(f.t, err)
	if !f.noProduct {
		w.Header().Set("X-Elastic-Product", "Elasticsearch")
	}
	w.Header().Set("Content-Type", "application/json")
	if f.httpStatus != 0 {
		w.WriteHeader(f.httpStatus)
		_, _ = io.WriteString(w, `{"error":{"type":"internal","reason":"boom"},"status":500}`)
		return
	}
	switch {
	case r.Method == http.MethodHead && r.URL.Path == "/"+IndexName:
		if f.exists {
			w.WriteHeader(http.StatusOK)
		} else {
			w.WriteHeader(http.StatusNotFound)
		}
	case r.Method == http.MethodPut && r.URL.Path == "/"+IndexName:
		f.created = body
		f.exists = true
		_, _ = io.WriteString(w, `{"acknowledged":true,"shards_acknowledged":true,"index":"patient_reports"}`)
	case r.URL.Path == "/_bulk":
		f.bulks = append(f.bulks, body)
		f.bulkQuery = append(f.bulkQuery, r.URL.RawQuery)
		f.answerBulk(w, body)
	case r.URL.Path == "/"+IndexName+"/_search":
		var m map[string]any
		require.NoError(f.t, json.Unmarshal(body, &m))
		f.searches = append(f.searches, m)
		f.answerSearch(w)
	default:
		f.t.Errorf("unexpected request %s %s", r.Method, r.URL)
		w.WriteHeader(http.StatusBadRequest)
	}
}

// answerBulk checks the NDJSON shape and answers per item.
func (f *fakeES) answerBulk(w http.ResponseWriter, body []byte) {
	require.True(f.t, bytes.HasSuffix(body, []byte("\n")), "bulk body must end with a newline")
	lines := strings.Split(strings.TrimSuffix(string(body), "\n"), "\n")
	require.Equal(f.t, 0, len(lines)%2, "action/source pairs")
	var items []any
	anyErr := false
	for i := 0; i < len(lines); i += 2 {
		var action map[string]map[string]any
		require.NoError(f.t, json.Unmarshal([]byte(lines[i]), &action))
		meta, ok := action["index"]
		require.True(f.t, ok, "action must be index: %s", lines[i])
		require.Equal(f.t, "external_gte", meta["version_type"])
		require.Contains(f.t, meta, "version")
		id := meta["_id"].(string)
		status := 201
		if f.bulkStatus != nil {
			status = f.bulkStatus(id)
		}
		item := map[string]any{"_index": IndexName, "_id": id, "status": status}
		if status >= 300 {
			anyErr = true
			item["error"] = map[string]any{"type": map[int]string{
				409: "version_conflict_engine_exception", 400: "mapper_parsing_exception",
			}[status], "reason": "x"}
		}
		items = append(items, map[string]any{"index": item})
	}
	_ = json.NewEncoder(w).Encode(map[string]any{"took": 1, "errors": anyErr, "items": items})
}

func (f *fakeES) answerSearch(w http.ResponseWriter) {
	hits := make([]any, 0, len(f.hits))
	for _, h := range f.hits {
		hits = append(hits, map[string]any{
			"_index": IndexName, "_id": docID(h.ReportID), "_score": nil,
			"_source": h, "sort": []any{h.ResultedAt.UnixMilli(), h.ReportID},
		})
	}
	_ = json.NewEncoder(w).Encode(map[string]any{
		"took": 1, "timed_out": false,
		"hits": map[string]any{
			"total": map[string]any{"value": f.total, "relation": "eq"},
			"hits":  hits,
		},
	})
}

func newTestElastic(t *testing.T, url string, opts ...ElasticOption) *Elastic {
	e, err := NewElastic(url, opts...)
	require.NoError(t, err)
	t.Cleanup(func() { _ = e.Close() })
	return e
}

func TestElasticEnsureIndex(t *testing.T) {
	f, srv := newFakeES(t)
	e := newTestElastic(t, srv.URL)
	require.NoError(t, e.EnsureIndex(context.Background()))
	require.NotNil(t, f.created)
	var body map[string]any
	require.NoError(t, json.Unmarshal(f.created, &body), "index body must be valid JSON")
	s := string(f.created)
	for _, want := range []string{`"asciifolding"`, `"callout_folded_de"`, `"normalizer"`, `"dynamic"`} {
		require.Contains(t, s, want)
	}
	props := body["mappings"].(map[string]any)["properties"].(map[string]any)
	require.Equal(t, "keyword", props["critical_values"].(map[string]any)["type"])
	require.Equal(t, "keyword", props["department"].(map[string]any)["type"])
	require.Equal(t, "date", props["resulted_at"].(map[string]any)["type"])
	require.Equal(t, "long", props["report_id"].(map[string]any)["type"])

	// Existing index: not created again.
	f.created = nil
	require.NoError(t, e.EnsureIndex(context.Background()))
	require.Nil(t, f.created)
}

func TestElasticBulkBody(t *testing.T) {
	f, srv := newFakeES(t)
	e := newTestElastic(t, srv.URL)
	docs := fixture()[:3]
	docs[0].Version = 1700000000123456
	docs[1].Version = 0
	docs[2].ResultedAt = time.Time{}
	require.NoError(t, e.Upsert(context.Background(), docs))
	require.Len(t, f.bulks, 1)
	require.Equal(t, "", f.bulkQuery[0], "no refresh by default")

	sc := bufio.NewScanner(bytes.NewReader(f.bulks[0]))
	var lines []string
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	require.Len(t, lines, 6)
	for i, d := range docs {
		var action struct {
			Index struct {
				Index       string `json:"_index"`
				ID          string `json:"_id"`
				Version     int64  `json:"version"`
				VersionType string `json:"version_type"`
			} `json:"index"`
		}
		require.NoError(t, json.Unmarshal([]byte(lines[2*i]), &action))
		require.Equal(t, IndexName, action.Index.Index)
		require.Equal(t, docID(d.ReportID), action.Index.ID)
		require.Equal(t, d.Version, action.Index.Version)
		require.Equal(t, "external_gte", action.Index.VersionType)

		var src map[string]any
		require.NoError(t, json.Unmarshal([]byte(lines[2*i+1]), &src))
		require.Equal(t, d.PatientName, src["patient_name"])
		require.Equal(t, d.LabBillID, src["lab_bill_id"])
		require.EqualValues(t, d.LabID, src["lab_id"])
		require.EqualValues(t, d.CriticalValues, src["critical_values"])
		require.Equal(t, d.Dismissed, src["dismissed"])
		require.Equal(t, d.SampleCollected, src["sample_collected"])
		require.Equal(t, sortTime(d.ResultedAt).Format(time.RFC3339Nano), src["resulted_at"])
	}
	require.Equal(t, "1970-01-01T00:00:00Z", mustField(t, lines[5], "resulted_at"))
}

func mustField(t *testing.T, line, field string) any {
	var m map[string]any
	require.NoError(t, json.Unmarshal([]byte(line), &m))
	return m[field]
}

func TestElasticBulkOptions(t *testing.T) {
	f, srv := newFakeES(t)
	e := newTestElastic(t, srv.URL, WithBulkSize(2), WithRefresh("wait_for"))
	require.NoError(t, e.Upsert(context.Background(), fixture()[:5]))
	require.Len(t, f.bulks, 3)
	for _, q := range f.bulkQuery {
		require.Equal(t, "refresh=wait_for", q)
	}
	require.Error(t, e.Upsert(context.Background(), []Doc{{ReportID: 1, LabID: 1, Version: -1}}))
	require.Len(t, f.bulks, 3, "invalid docs are not sent")
}

func TestElasticBulkErrors(t *testing.T) {
	tests := []struct {
		name       string
		httpStatus int
		itemStatus map[string]int
		wantErr    string
	}{
		{"all created", 0, nil, ""},
		{"409 conflicts ignored", 0, map[string]int{"1": 409, "3": 409}, ""},
		{"updated 200", 0, map[string]int{"2": 200}, ""},
		{"item failure", 0, map[string]int{"1": 409, "2": 400}, "1 of 3 docs failed"},
		{"server error", 500, nil, "HTTP 500"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f, srv := newFakeES(t)
			f.httpStatus = tc.httpStatus
			f.bulkStatus = func(id string) int {
				if s, ok := tc.itemStatus[id]; ok {
					return s
				}
				return 201
			}
			e := newTestElastic(t, srv.URL)
			err := e.Upsert(context.Background(), fixture()[:3])
			if tc.wantErr == "" {
				require.NoError(t, err)
			} else {
				require.ErrorContains(t, err, tc.wantErr)
			}
		})
	}
}

func TestElasticSearchRequest(t *testing.T) {
	f, srv := newFakeES(t)
	e := newTestElastic(t, srv.URL)
	docs := fixture()[:4]
	docs[0].ResultedAt = time.Time{}
	for _, d := range docs {
		f.hits = append(f.hits, toES(d))
	}
	f.total = 9

	q := Query{LabID: 1, Text: "maria pot", States: []int{1, 3}, Departments: []string{"Chemistry"},
		ExcludeUnactionable: true, Limit: 3}
	p, err := e.Search(context.Background(), q)
	require.NoError(t, err)
	require.Equal(t, 9, p.Total)
	require.Equal(t, []int64{1, 2, 3}, ids(p.Docs))
	require.NotNil(t, p.Next)
	require.Equal(t, CursorOf(p.Docs[2]), *p.Next)
	require.True(t, p.Docs[0].ResultedAt.IsZero())
	require.True(t, p.Docs[1].ResultedAt.Equal(docs[1].ResultedAt))
	require.Equal(t, docs[1].PatientName, p.Docs[1].PatientName)
	require.Equal(t, docs[1].Version, p.Docs[1].Version)

	require.Len(t, f.searches, 1)
	body := f.searches[0]
	require.NotContains(t, body, "search_after")
	require.EqualValues(t, 4, body["size"], "limit+1 to detect a next page")
	require.Equal(t, true, body["track_total_hits"])
	require.Equal(t, []any{
		map[string]any{"resulted_at": map[string]any{"order": "asc"}},
		map[string]any{"report_id": map[string]any{"order": "asc"}},
	}, body["sort"])
	boolQ := body["query"].(map[string]any)["bool"].(map[string]any)
	filter := boolQ["filter"].([]any)
	require.Contains(t, filter, map[string]any{"term": map[string]any{"lab_id": float64(1)}})
	require.Contains(t, filter, map[string]any{"terms": map[string]any{"critical_values": []any{float64(1), float64(3)}}})
	require.Contains(t, filter, map[string]any{"terms": map[string]any{"department": []any{"Chemistry"}}})
	require.Contains(t, filter, map[string]any{"term": map[string]any{"dismissed": false}})
	require.Contains(t, filter, map[string]any{"term": map[string]any{"sample_collected": true}})
	must := boolQ["must"].([]any)
	require.Len(t, must, 2, "one clause per word")
	for i, word := range []string{"maria", "pot"} {
		should := must[i].(map[string]any)["bool"].(map[string]any)["should"].([]any)
		mm := should[0].(map[string]any)["multi_match"].(map[string]any)
		require.Equal(t, word, mm["query"])
		require.Equal(t, "bool_prefix", mm["type"])
		require.Equal(t, "and", mm["operator"])
		require.Contains(t, mm["fields"], "patient_name")
		require.Contains(t, mm["fields"], "test_name")
		require.Contains(t, mm["fields"], "lab_bill_id.text")
	}

	// Second page: search_after carries the cursor.
	f.hits = f.hits[3:]
	q.After = p.Next
	p2, err := e.Search(context.Background(), q)
	require.NoError(t, err)
	require.Equal(t, []int64{4}, ids(p2.Docs))
	require.Nil(t, p2.Next)
	require.Len(t, f.searches, 2)
	require.Equal(t, []any{float64(docs[2].ResultedAt.UnixMilli()), float64(3)}, f.searches[1]["search_after"])
	require.Contains(t, f.searches[1]["query"].(map[string]any)["bool"].(map[string]any)["filter"],
		map[string]any{"term": map[string]any{"lab_id": float64(1)}})

	// Empty text: no must clause.
	_, err = e.Search(context.Background(), Query{LabID: 2})
	require.NoError(t, err)
	require.NotContains(t, f.searches[2]["query"].(map[string]any)["bool"], "must")
}

func TestElasticSearchErrors(t *testing.T) {
	f, srv := newFakeES(t)
	e := newTestElastic(t, srv.URL)
	_, err := e.Search(context.Background(), Query{Text: "x"})
	require.ErrorIs(t, err, ErrLabRequired)
	require.Empty(t, f.searches)

	f.httpStatus = 500
	_, err = e.Search(context.Background(), Query{LabID: 1})
	require.ErrorContains(t, err, "HTTP 500")
}

func TestElasticProductCheck(t *testing.T) {
	f, srv := newFakeES(t)
	f.noProduct = true
	e := newTestElastic(t, srv.URL)
	_, err := e.Search(context.Background(), Query{LabID: 1})
	require.ErrorContains(t, err, "not Elasticsearch")

	os := newTestElastic(t, srv.URL, WithOpenSearch())
	_, err = os.Search(context.Background(), Query{LabID: 1})
	require.NoError(t, err)

	_, err = NewElastic(" , ")
	require.Error(t, err)
}
