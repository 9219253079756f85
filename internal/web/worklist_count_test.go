package web

import "testing"

// TestTabCount checks that a tab past the store's cap says so rather than
// showing the capped number as if it were exact.
func TestTabCount(t *testing.T) {
	for _, tc := range []struct {
		n    int
		want string
	}{{0, "0"}, {25, "25"}, {10000, "10000"}, {10001, "10,000+"}} {
		if got := (worklistView{}).Count(tc.n); got != tc.want {
			t.Errorf("Count(%d) = %q, want %q", tc.n, got, tc.want)
		}
	}
}
