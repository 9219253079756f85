package web_test

import (
	"context"
	"fmt"
	"html"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"callout/internal/callout"
	"callout/internal/storetest"
)

// TestFormsRefuseBadCharacters sends the pages' forms and queries with
// characters the text rules refuse. Each is answered with the field and the
// character named, the form as it was typed, and no row changed. Before, on
// PostgreSQL, a NUL in any of them was a 500 page (invalid byte sequence),
// and on SQLite it was stored.
func TestFormsRefuseBadCharacters(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, e storetest.Engine) {
		b := setup(t, e)
		b.user(t, "asha", callout.RoleStaff)
		b.user(t, "ravi", callout.RoleAdmin)
		o := b.order(t, "ORD-7", 1)
		admin := b.signedIn(t, "ravi")
		staff := b.signedIn(t, "asha")
		settings := admin.get("/settings")
		require.Equal(t, 200, settings.status)
		csrf := field(t, csrfField, settings.body)
		path := fmt.Sprintf("/bills/%d", o.ID)
		calloutForm := func(f, v string) url.Values {
			form := staff.calloutForm(o.ID)
			form["report"] = ids(o.Reports[0].ID)
			form.Set("action", "done")
			form.Set("is_referral", "on")
			form.Set("comment", "Informed Dr. Rao")
			form.Set("notified_person", "Dr. Rao")
			form.Set(f, v)
			return form
		}
		type refusal struct {
			name string
			send func() response
			// status is the answer's; want is in the page (HTML-escaped).
			status int
			want   string
		}
		cases := []refusal{
			{"lab name NUL", func() response {
				return admin.post("/settings", url.Values{"csrf": {csrf}, "name": {"North\x00Lab"}, "target_minutes": {"30"}})
			}, 422, "Settings not saved: Name contains a control character (U+0000)."},
			{"lab name bidi", func() response {
				return admin.post("/settings", url.Values{"csrf": {csrf}, "name": {"North \u202ebaL"}, "target_minutes": {"30"}})
			}, 422, "Settings not saved: Name contains a bidirectional control character (U+202E)."},
			{"lab name CR LF", func() response {
				return admin.post("/settings", url.Values{"csrf": {csrf}, "name": {"North\r\nBcc: x"}, "target_minutes": {"30"}})
			}, 422, "Settings not saved: Name contains a control character (U+000D)."},
			{"instruction NUL", func() response {
				return admin.post("/settings", url.Values{"csrf": {csrf}, "name": {"North Lab"}, "target_minutes": {"30"},
					"additional_instruction": {"Ask\r\nfor a read-back\x00"}})
			}, 422, "Settings not saved: The standing instruction contains a control character (U+0000)."},
			{"template NUL", func() response {
				return admin.post("/settings/template", url.Values{"csrf": {csrf}, "action": {"save"}, "template": {"<p>{{ lab_name }}\x00</p>"}})
			}, 422, "Template not saved: Template contains a control character (U+0000)."},
			{"comment NUL", func() response {
				return staff.post(path+"/callouts", calloutForm("comment", "Told\r\nDr. Rao\x00"))
			}, 422, "Not saved: Comment contains a control character (U+0000)."},
			{"comment bidi", func() response {
				return staff.post(path+"/callouts", calloutForm("comment", "Told \u2066Dr. Rao"))
			}, 422, "Not saved: Comment contains a bidirectional control character (U+2066)."},
			{"person reached CR LF", func() response {
				return staff.post(path+"/callouts", calloutForm("notified_person", "Dr. Rao\r\nBcc: x"))
			}, 422, "Not saved: The person reached contains a control character (U+000D)."},
			{"search NUL", func() response { return staff.get("/?q=Maria%00") }, 422, "The search text contains a control character (U+0000)."},
			{"search bidi", func() response { return staff.get("/worklist/fragment?q=Maria%E2%80%AE") }, 422,
				"The search text contains a bidirectional control character (U+202E)."},
			{"export search NUL", func() response { return staff.get("/export.csv?q=Maria%00") }, 422, "The search text contains a control character (U+0000)."},
			// The preview answers inside its frame, where a status is not seen.
			{"preview Order ID NUL", func() response { return admin.get("/settings/preview?order=ORD%007") }, 200,
				"The Order ID to preview contains a control character (U+0000)."},
			{"sign-in name NUL", func() response { return b.browser(t).signIn("ravi\x00", password) }, 401, "The user name or password is wrong."},
		}
		before := storetest.Dump(t, b.f.Store.DB)
		for _, tc := range cases {
			res := tc.send()
			require.Equal(t, tc.status, res.status, "%s: %s", tc.name, res.body)
			page := html.UnescapeString(res.body)
			require.True(t, strings.Contains(page, tc.want), "%s: the page does not say %q; its message: %q", tc.name, tc.want, message(page))
			require.Equal(t, before, storetest.Dump(t, b.f.Store.DB), "%s changed rows", tc.name)
		}

		// What the forms keep: the CR LF a textarea sends becomes LF.
		res := staff.post(path+"/callouts", calloutForm("comment", "Told Dr. Rao:\r\n\tK 7.1 read back"))
		require.Equal(t, http.StatusSeeOther, res.status, res.body)
		recs, err := b.f.Store.Records(context.Background(), b.f.Lab, o.ID)
		require.NoError(t, err)
		require.Equal(t, "Told Dr. Rao:\n\tK 7.1 read back", recs[0].Comment)

		// A long search is cut at a character boundary, not inside one.
		res = staff.get("/?q=" + url.QueryEscape("Müller"+strings.Repeat("€", 70)))
		require.Equal(t, 200, res.status, res.body)
	})
}

// message is the error a page shows, for failure messages shorter than the page.
func message(page string) string {
	for _, start := range []string{`class="error" role="alert">`, "<p style="} {
		if i := strings.Index(page, start); i >= 0 {
			rest := page[i+len(start):]
			if j := strings.Index(rest, "<"); j >= 0 {
				return rest[:j]
			}
		}
	}
	return page[:min(len(page), 300)]
}
