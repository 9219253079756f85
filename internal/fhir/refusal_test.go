package fhir_test

import (
	"net/http"
	"testing"

	r4 "github.com/samply/golang-fhir-models/fhir-models/fhir"

	"callout/internal/storetest"
)

// TestSearchRefusesBadCharacters: an Order ID searched by identifier goes
// to SQL, so it follows the text rules. A NUL in it was a 500 on
// PostgreSQL (invalid byte sequence).
func TestSearchRefusesBadCharacters(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, e storetest.Engine) {
		b := setup(t, e)
		for _, q := range []string{"based-on:identifier=ORD%001", "based-on:identifier=ORD%0D%0A1",
			"based-on:identifier=urn:callout:lab:1:order|ORD%E2%80%AE1", "based-on:identifier=ORD%FF1"} {
			b.refused(t, b.get(t, b.staff, "/fhir/r4/Communication?"+q), http.StatusBadRequest, r4.IssueTypeInvalid)
		}
	})
}
