package httpapi_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"callout/internal/callout"
	"callout/internal/httpapi"
	"callout/internal/storetest"
)

// TestBigOrders is issue 8 §3 over the API: an order of the largest size
// allowed is stored (201) with every result; one over a limit of one order
// is 422 naming the limit, a body over 1 MiB is 413, and neither changes a
// row.
func TestBigOrders(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, e storetest.Engine) {
		b := setup(t, e)
		body := compactJSON(storetest.MaxOrder("BIG"))
		require.Less(t, len(body), httpapi.MaxBody)
		a := b.do(t, b.staff, "POST", "/api/v1/orders", body)
		require.Equal(t, 201, a.status, string(a.body))
		require.Len(t, a.json(t)["reports"], callout.MaxReportsPerOrder)

		reports := storetest.MaxOrder("R")
		reports.Reports = append(reports.Reports, callout.NewReport{TestID: "EXTRA"})
		results := storetest.MaxOrder("P")
		results.Reports[0].Parameters = append(results.Reports[0].Parameters, callout.Parameter{Name: "EXTRA"})
		inOne := storetest.Order("Q", 0, callout.NewReport{TestID: "Q"})
		for range callout.MaxParametersPerReport + 1 {
			inOne.Reports[0].Parameters = append(inOne.Reports[0].Parameters, callout.Parameter{Name: "P", Value: "1"})
		}
		b.refuseAll(t, []refusal{
			{name: "501 reports", token: b.staff, method: "POST", path: "/api/v1/orders", body: compactJSON(reports),
				want: "the order has 501 reports; an order may hold at most 500"},
			{name: "22,501 results", token: b.staff, method: "POST", path: "/api/v1/orders", body: compactJSON(results),
				want: "the order has 22501 results (parameters); an order may hold at most 22500"},
			{name: "201 results in a report", token: b.staff, method: "POST", path: "/api/v1/orders", body: compactJSON(inOne),
				want: "reports[0] has 201 parameters; a report may hold at most 200"},
		})

		before := storetest.Dump(t, b.fx.Store.DB)
		huge := storetest.Order("HUGE", 1)
		huge.Reports[0].Parameters[0].Value = strings.Repeat("x", httpapi.MaxBody)
		a = b.do(t, b.staff, "POST", "/api/v1/orders", mustJSON(huge))
		require.Equal(t, 413, a.status, string(a.body))
		require.Equal(t, "too_large", a.json(t)["error"].(map[string]any)["code"])
		require.Equal(t, before, storetest.Dump(t, b.fx.Store.DB))
	})
}

// compactJSON is v as JSON without the null limits of results, as a lab
// system sends an order of 500 × 45 results in under 1 MiB.
func compactJSON(v any) string {
	s := mustJSON(v)
	for _, f := range []string{"normal_low", "normal_high", "critical_low", "critical_high"} {
		s = strings.ReplaceAll(s, `,"`+f+`":null`, "")
	}
	for _, f := range []string{"unit", "flag", "reference_range_text"} {
		s = strings.ReplaceAll(s, `,"`+f+`":""`, "")
	}
	return s
}
