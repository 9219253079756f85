package jobs_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"callout/internal/callout"
	"callout/internal/storetest"
)

// TestEmailShowsLabText sends a real email copy, through the queue and an
// SMTP server run by the test, of a callout on results as HL7 brings them:
// the reference range as the lab wrote it (OBX-7) and a text result over
// several lines (TX with \.br\). Both parts of the email show the range
// text, and the lines of the text result stay lines.
func TestEmailShowsLabText(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, e storetest.Engine) {
		b := rescueSetup(t, e, time.Minute)
		ctx := context.Background()
		o := storetest.Order("TXT-1", 0, callout.NewReport{TestID: "BC", TestName: "Blood culture", Department: "Microbiology",
			Parameters: []callout.Parameter{
				{Name: "Gram stain", Value: "GRAM STAIN\nGram-positive cocci in clusters.\nSeen in 2 of 2 bottles.", Flag: "AA",
					ReferenceRangeText: "No growth"},
			}}, callout.NewReport{TestID: "PB", TestName: "Lead", Department: "Biochemistry",
			Parameters: []callout.Parameter{
				{Name: "Lead", Value: "72", Unit: "ug/dL", Flag: "HH", ReferenceRangeText: "< 3.5 ug/dL", NormalHigh: ptr(3.5)},
			}})
		c := b.fx.Create(t, o)
		_, err := b.fx.Svc.Callout(ctx, b.fx.Staff, c.ID, storetest.Done(c.Reports[0].ID, c.Reports[1].ID), nil)
		require.NoError(t, err)
		require.NoError(t, b.q.Start(ctx))
		msgs := b.smtp.WaitFor(1, 30*time.Second)
		parts, err := msgs[0].Parts()
		require.NoError(t, err)
		var text, html string
		for _, p := range parts {
			switch p.ContentType {
			case "text/plain":
				text = strings.ReplaceAll(string(p.Body), "\r\n", "\n")
			case "text/html":
				html = strings.ReplaceAll(string(p.Body), "\r\n", "\n")
			}
		}
		require.Contains(t, text, "Normal range: < 3.5 ug/dL", "OBX-7 as sent, not the bound read from it")
		require.Contains(t, text, "Normal range: No growth")
		require.Contains(t, text, "GRAM STAIN\nGram-positive cocci in clusters.\nSeen in 2 of 2 bottles.")
		require.Contains(t, html, "&lt; 3.5 ug/dL")
		require.Contains(t, html, `white-space:pre-line;">GRAM STAIN
Gram-positive cocci in clusters.
Seen in 2 of 2 bottles.</td>`, "the HTML part keeps the lines")
	})
}

func ptr[T any](v T) *T { return &v }
