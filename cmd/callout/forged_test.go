package main

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"callout/internal/notify/smtptest"
	"callout/internal/storetest"
)

// TestOrderIDCannotForgeEmailLines is issue 8's header-forging report end
// to end: an Order ID "EVIL-1\r\nBcc: x" used to be stored, and the
// plain-text copy of the callout email, received by a real SMTP server,
// showed a line "Bcc: x" that nobody at the lab wrote. The order must be
// refused, naming the field and the character.
func TestOrderIDCannotForgeEmailLines(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, e storetest.Engine) {
		smtp := smtptest.Start(t)
		db := e.URL(t)
		url, _ := serveEnv(t, deliveryEnv(smtp), db)
		c := newLab(t, db, url)
		evil := "EVIL-1\r\nBcc: x"
		body := strings.Replace(fmt.Sprintf(orderJSON, "EVIL-1", "EVIL-1"), `"lab_bill_id":"EVIL-1"`, `"lab_bill_id":`+mustJSON(t, evil), 1)
		status, m := c.do("POST", "/api/v1/orders", body)
		if status == 201 {
			// What the old code did with it: follow it to the mail.
			bill := int64(m["id"].(float64))
			var ids []int64
			for _, r := range m["reports"].([]any) {
				ids = append(ids, int64(r.(map[string]any)["id"].(float64)))
			}
			c.callout(bill, ids, false, `{"notified_person":"Dr. Rao","sendEmail":true,"is_referral":true}`)
			msgs := smtp.WaitFor(1, 10*time.Second)
			require.NotEmpty(t, msgs)
			_, text, _ := parts(t, msgs[0])
			forged := regexp.MustCompile(`(?m)^Bcc: x.*$`).FindString(strings.ReplaceAll(text, "\r\n", "\n"))
			t.Fatalf("the Order ID %q was stored; the plain-text email carries the forged line %q:\n%s", evil, forged, text)
		}
		require.Equal(t, 422, status, m)
		require.Equal(t, "lab_bill_id contains a control character (U+000D)", m["error"].(map[string]any)["message"])
		require.Empty(t, smtp.Messages())
	})
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return string(b)
}
