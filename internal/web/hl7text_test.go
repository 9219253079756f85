package web_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"callout/internal/callout"
	"callout/internal/storetest"
)

// TestOrderPageShowsLabText checks the order page shows what HL7 brings
// beside the values: the patient class, the collection time, the
// reference range as the lab wrote it (OBX-7) and a text result with its
// line breaks in a cell that keeps them.
func TestOrderPageShowsLabText(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, e storetest.Engine) {
		b := setup(t, e)
		b.user(t, "asha", callout.RoleStaff)
		collected := time.Date(2026, 11, 27, 7, 45, 0, 0, time.UTC)
		o := storetest.Order("ORD-TXT", 0, callout.NewReport{TestID: "BC", TestName: "Blood culture", Department: "Microbiology",
			CollectedAt: &collected, Parameters: []callout.Parameter{
				{Name: "Gram stain", Value: "GRAM STAIN\nGram-positive cocci in clusters.", Flag: "AA", ReferenceRangeText: "No growth"},
				{Name: "Lead", Value: "72", Unit: "ug/dL", Flag: "HH", ReferenceRangeText: "< 3.5 ug/dL", NormalHigh: ptr(3.5)},
			}})
		o.PatientClass = "E"
		c := b.f.Create(t, o)
		page := b.signedIn(t, "asha").get(fmt.Sprintf("/bills/%d", c.ID))
		require.Equal(t, 200, page.status)
		for _, want := range []string{
			`<span class="patient-class">Emergency (E)</span>`,
			"collected 27 Nov 2026 07:45 · resulted",
			"<td>No growth</td>", "<td>&lt; 3.5 ug/dL</td>",
			"<td class=\"value\">GRAM STAIN\nGram-positive cocci in clusters. ",
		} {
			require.Contains(t, page.body, want)
		}
		css := b.browser(t).get("/static/style.css")
		require.Contains(t, css.body, "table.params td.value { white-space: pre-line;", "the cell keeps the lines")
	})
}

func ptr[T any](v T) *T { return &v }
