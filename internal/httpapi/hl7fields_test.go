package httpapi_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"callout/internal/storetest"
)

// TestOrderCarriesWhatHL7Sends checks the fields of issue 10 over the API:
// an order body with patient_class, a report's collected_at and a
// parameter's reference_range_text and a long multi-line text value (up to
// 64 KiB, where 500 bytes were refused before) is stored and read back as
// sent; values beyond the limits are refused and change nothing.
func TestOrderCarriesWhatHL7Sends(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, e storetest.Engine) {
		b := setup(t, e)
		narrative := "ARTERIAL BLOOD GAS INTERPRETATION\n" + strings.Repeat("Respiratory acidosis, no compensation yet.\n", 1600)
		narrative = narrative[:64<<10]
		o := validOrder("HL7-1")
		set(o, "patient_class", "e")
		set(o, "reports.0.collected_at", "2026-11-27T07:45:00Z")
		set(o, "reports.0.parameters.0.reference_range_text", "3.5 - 5.1")
		set(o, "reports.0.parameters.0.normal_low", 3.5)
		set(o, "reports.0.parameters.0.normal_high", 5.1)
		o["reports"] = append(o["reports"].([]any), map[string]any{"test_id": "ABG", "parameters": []any{
			map[string]any{"name": "Interpretation", "value": narrative, "reference_range_text": "text"}}})
		a := b.do(t, b.staff, "POST", "/api/v1/orders", mustJSON(o))
		require.Equal(t, 201, a.status, string(a.body))
		id := int64(a.json(t)["id"].(float64))

		a = b.do(t, b.staff, "GET", fmt.Sprintf("/api/v1/bills/%d", id), "")
		require.Equal(t, 200, a.status, string(a.body))
		bill := a.json(t)
		require.Equal(t, "E", bill["patient_class"])
		reports := bill["reports"].([]any)
		k := reports[0].(map[string]any)
		require.Equal(t, "2026-11-27T07:45:00Z", k["collected_at"])
		p := k["parameters"].([]any)[0].(map[string]any)
		require.Equal(t, "3.5 - 5.1", p["reference_range_text"])
		abg := reports[1].(map[string]any)
		require.Nil(t, abg["collected_at"], "unknown: null")
		require.Equal(t, narrative, abg["parameters"].([]any)[0].(map[string]any)["value"], "64 KiB with its line breaks")

		tooLong := validOrder("HL7-2")
		set(tooLong, "reports.0.parameters.0.value", narrative+"x")
		badClass := validOrder("HL7-3")
		set(badClass, "patient_class", "Z")
		future := validOrder("HL7-4")
		set(future, "reports.0.collected_at", "2999-01-01T00:00:00Z")
		multiRange := validOrder("HL7-5")
		set(multiRange, "reports.0.parameters.0.reference_range_text", "3.5\n5.1")
		b.refuseAll(t, []refusal{
			{name: "value over 64 KiB", token: b.staff, method: "POST", path: "/api/v1/orders", body: mustJSON(tooLong),
				want: "value is longer than 65536 bytes"},
			{name: "patient class not in table 0004", token: b.staff, method: "POST", path: "/api/v1/orders", body: mustJSON(badClass),
				want: `patient_class "Z"`},
			{name: "collected in the future", token: b.staff, method: "POST", path: "/api/v1/orders", body: mustJSON(future),
				want: "collected_at lies in the future"},
			{name: "reference range over two lines", token: b.staff, method: "POST", path: "/api/v1/orders", body: mustJSON(multiRange),
				want: "reference_range_text contains a control character (U+000A)"},
		})
	})
}
