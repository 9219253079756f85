package callout

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestCheckPassword(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		pw string
		ok bool
	}{
		{"correct horse", true},
		{"short", false},
		{"elevenchars", false},
		{"twelve chars", true},
		{"ääääääääääää", true}, // twelve characters, 24 bytes
		{strings.Repeat("x", 72), true},
		{strings.Repeat("x", 73), false},
		{strings.Repeat(" ", 20), false},
		{"\xff\xfe invalid utf8", false},
	} {
		err := CheckPassword(tc.pw)
		require.Equal(t, tc.ok, err == nil, "%q: %v", tc.pw, err)
		if err != nil {
			require.Equal(t, KindInvalid, ErrorKind(err))
		}
	}
}

func TestPasswordHash(t *testing.T) {
	t.Parallel()
	u, err := NewUser(7, "  asha ", "a long enough password", RoleStaff, []string{"Biochemistry"}, time.Now())
	require.NoError(t, err)
	require.Equal(t, "asha", u.Name)
	require.NotContains(t, u.PasswordHash, "password")
	require.True(t, strings.HasPrefix(u.PasswordHash, "$2a$"), "bcrypt")
	require.True(t, PasswordMatches(u.PasswordHash, "a long enough password"))
	require.False(t, PasswordMatches(u.PasswordHash, "a long enough passworD"))
	require.False(t, PasswordMatches("", "anything at all"), "no user never matches")
	require.Equal(t, Principal{LabID: 7, User: "asha", Role: RoleStaff, Departments: []string{"Biochemistry"}}, u.Principal())
}

func TestNewUserRefuses(t *testing.T) {
	t.Parallel()
	for name, args := range map[string]struct {
		name, pw string
		role     Role
	}{
		"empty name":    {"", "a long enough password", RoleStaff},
		"space in name": {"asha rao", "a long enough password", RoleStaff},
		"bad role":      {"asha", "a long enough password", "root"},
		"weak password": {"asha", "secret", RoleStaff},
	} {
		_, err := NewUser(1, args.name, args.pw, args.role, nil, time.Now())
		require.Error(t, err, name)
		require.Equal(t, KindInvalid, ErrorKind(err), name)
	}
}
