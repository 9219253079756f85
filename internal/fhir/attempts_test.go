package fhir_test

import (
	"context"
	"net/http"
	"strconv"
	"testing"

	r4 "github.com/samply/golang-fhir-models/fhir-models/fhir"
	"github.com/stretchr/testify/require"

	"callout/internal/callout"
	"callout/internal/storetest"
)

// TestFHIRAttemptLog: every row of the attempt log is a Communication
// (attempt-{id}) that outlives the draft a later submit replaces.
func TestFHIRAttemptLog(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, e storetest.Engine) {
		ctx := context.Background()
		b := setup(t, e)
		rows, err := b.fx.Svc.Attempts(ctx, b.fx.Staff, b.bill1)
		require.NoError(t, err)
		require.Len(t, rows, 3, "done on T1, then the attempt on T2 and CBC")
		attemptCBC := rows[2]
		require.Equal(t, b.cbc, attemptCBC.LabReportID)

		// A later submit replaces the draft: its record's Communication
		// goes, the attempt log's stays.
		b.fx.Svc.Now = at("2026-03-11T10:30:00Z")
		_, err = b.fx.Svc.Callout(ctx, b.fx.Staff, b.bill1, storetest.Done(b.t2), nil)
		require.NoError(t, err)
		b.refused(t, b.get(t, b.staff, "/fhir/r4/Communication/"+strconv.FormatInt(b.attempt1, 10)), http.StatusNotFound, r4.IssueTypeNotFound)

		path := "/fhir/r4/Communication/attempt-" + strconv.FormatInt(attemptCBC.ID, 10)
		a := b.get(t, b.staff, path)
		require.Equal(t, http.StatusOK, a.status, string(a.body))
		c, err := checkCommunication(a.body)
		require.NoError(t, err, string(a.body))
		require.Equal(t, r4.EventStatusNotDone, c.Status)
		require.Equal(t, "no_answer", *c.StatusReason.Coding[0].Code)
		require.Equal(t, "Callout attempt 1: no answer", *c.StatusReason.Text)
		require.Equal(t, "2026-03-11T10:00:00Z", *c.Sent)
		require.Equal(t, []string{"DiagnosticReport/" + strconv.FormatInt(b.cbc, 10)}, refs(c.About))
		require.Equal(t, "Blood Count: Hb 5.1 g/dL (LL)", c.Payload[0].ContentString)

		// The done row is completed; the haematology user reads the CBC row
		// without the comment (the attempt also covered T2), and not T2's.
		done := b.get(t, b.staff, "/fhir/r4/Communication/attempt-"+strconv.FormatInt(rows[0].ID, 10))
		require.Equal(t, http.StatusOK, done.status)
		cd, err := checkCommunication(done.body)
		require.NoError(t, err)
		require.Equal(t, r4.EventStatusCompleted, cd.Status)
		require.Nil(t, cd.StatusReason)

		h := b.get(t, b.haem, path)
		require.Equal(t, http.StatusOK, h.status)
		require.NotContains(t, string(h.body), "No answer")
		require.Contains(t, string(h.body), callout.WithheldComment)
		for _, p := range []string{"/fhir/r4/Communication/attempt-" + strconv.FormatInt(rows[1].ID, 10),
			"/fhir/r4/Communication/attempt-0", "/fhir/r4/Communication/attempt-x"} {
			b.refused(t, b.get(t, b.haem, p), http.StatusNotFound, r4.IssueTypeNotFound)
		}
		b.refused(t, b.get(t, b.other, path), http.StatusNotFound, r4.IssueTypeNotFound)
	})
}
