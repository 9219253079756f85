// Package search maintains the "patient_reports" worklist index that
// technicians search when calling out critical results.
//
// One Doc is indexed per lab report (one test of an order). Two
// implementations offer the same methods (see Index):
//
//   - Bleve (OpenBleve / OpenBleveMem): an embedded index on local disk,
//     built with github.com/blevesearch/bleve/v2. Only ONE process may
//     have a given directory open at a time (bbolt file lock); a second
//     OpenBleve on the same directory fails after a lock timeout
//     (default 2s) instead of hanging.
//   - Elastic (NewElastic): Elasticsearch 8 (or OpenSearch 2 with
//     WithOpenSearch) through the official go-elasticsearch v8 client,
//     index "patient_reports". No Elasticsearch server is available in
//     this repository's test environment, so Elastic is tested ONLY at
//     the HTTP wire level against an httptest.Server that plays
//     Elasticsearch (product-check header, _bulk NDJSON, canned search
//     responses). It has not been run against a real cluster here.
//
// # Versions
//
// Every Doc carries a caller-supplied, monotonically increasing Version
// (e.g. last_updated in microseconds, or a sync sequence number). A
// stored document is replaced only by a Doc whose Version is greater or
// EQUAL to the stored one; a lower Version is silently dropped (an old
// sync arriving late loses, a resync of the same state is idempotent).
// Bleve enforces this by reading stored versions under a mutex; Elastic
// uses the bulk API with version_type=external_gte (a 409 conflict for
// an item means a newer version is stored and is not an error).
// Negative versions are rejected.
//
// # Text matching
//
// Query.Text is split on white space into words; EVERY word must match
// (AND). A word matches a report when either
//
//   - the tokens of the word (the word cut at punctuation such as "-",
//     "/", "." by Unicode word segmentation) all occur in ONE of the
//     fields patient name, test name, order id (lab_bill_id) or
//     accession number, the last token as a PREFIX of a field token and
//     earlier tokens as whole tokens (the semantics of Elasticsearch's
//     bool_prefix), after case folding and accent folding on both sides:
//     "mar" finds "Maria"; "MÜLLER", "muller" and "Müller" all find
//     "Müller"; "pot" finds "Potassium"; "ORD-10" finds "ORD-1001"; or
//   - German transliteration is applied on both sides (ä→ae, ö→oe, ü→ue,
//     ß→ss), so "mueller" also finds "Müller" and "müller" finds
//     "Mueller"; or
//   - the whole word, case/accent folded, is a prefix of the complete
//     order id or accession number (for ids with odd punctuation).
//
// Examples: "maria potassium" finds patient Maria with test Potassium
// and nothing else; "ORD-1001" finds that order's reports. Matching is
// prefix only: "aria" does not find "Maria" (no infix/fuzzy matching),
// and an apostrophe keeps a name together ("o'br" finds "O'Brien",
// "brien" does not). Referral, organization and department are not
// searched as text (department is a filter). Departments are matched
// exactly (case-sensitive) as stored.
//
// Partial words are implemented with prefix queries rather than edge
// n-grams: the term dictionaries of both engines answer prefix lookups
// directly, the index stays small and any prefix length works, and the
// lab filter bounds the work. Elastic uses multi_match type bool_prefix
// per word (operator and), whose last token is a prefix query.
//
// # Ordering and paging
//
// Results are ordered by ResultedAt ascending, then ReportID ascending.
// Reports without ResultedAt sort as 1970-01-01 (first). Page.Next is
// set when more hits follow; pass it back as Query.After. Page.Total is
// the number of hits of the query ignoring paging. Elastic orders
// ResultedAt at millisecond precision (ES "date"), Bleve at nanosecond
// precision. Returned times are in UTC; compare them with time.Equal.
package search
