package callout_test

import (
	"context"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/bcrypt"

	"callout/internal/callout"
	"callout/internal/storetest"
)

func TestMain(m *testing.M) {
	callout.PasswordCost = bcrypt.MinCost
	os.Exit(m.Run())
}

func TestSignInWait(t *testing.T) {
	t.Parallel()
	for failures, want := range map[int]time.Duration{
		0: 0, 1: 0, 4: 0,
		5: time.Second, 6: 2 * time.Second, 7: 4 * time.Second, 12: 128 * time.Second, 13: 256 * time.Second,
		14: 5 * time.Minute, 15: 5 * time.Minute, 40: 5 * time.Minute, 1 << 30: 5 * time.Minute,
	} {
		require.Equal(t, want, callout.SignInWait(failures), "%d failures", failures)
	}
	for wait, want := range map[time.Duration]int{time.Nanosecond: 1, time.Second: 1, time.Second + 1: 2, 299500 * time.Millisecond: 300} {
		require.Equal(t, want, callout.RetryAfterSeconds(wait), "%s", wait)
	}
}

// TestSignInBoundsPasswordChecks: an attempt waits for a free password-check
// slot, gives up when its request ends (counting nothing), and a throttled
// attempt is refused at once, without waiting for a slot.
func TestSignInBoundsPasswordChecks(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, e storetest.Engine) {
		f := storetest.NewFixture(t, e, callout.Settings{Name: "North Lab"})
		const pw = "correct horse battery"
		u, err := callout.NewUser(f.Lab, "asha", pw, callout.RoleStaff, nil, callout.Now())
		require.NoError(t, err)
		_, err = f.Store.CreateUser(context.Background(), u)
		require.NoError(t, err)
		now := callout.Now()
		s := callout.NewSignIn(f.Store, func() time.Time { return now }, nil, 1)
		addr := netip.MustParseAddr("203.0.113.9")

		release := s.HoldPasswordChecks()
		before := storetest.Dump(t, f.Store.DB)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error)
		go func() {
			_, err := s.Attempt(ctx, callout.Attempt{Name: "asha", Password: "wrong", Address: addr})
			done <- err
		}()
		cancel()
		require.ErrorIs(t, <-done, context.Canceled)
		require.Equal(t, before, storetest.Dump(t, f.Store.DB), "an attempt given up counts nothing")

		// The slot freed, checks run again.
		release()
		for range callout.SignInFreeFailures {
			_, err := s.Attempt(context.Background(), callout.Attempt{Name: "asha", Password: "wrong", Address: addr})
			require.ErrorIs(t, err, callout.ErrWrongCredentials)
		}

		// Every slot busy: a throttled attempt still answers at once.
		release = s.HoldPasswordChecks()
		_, err = s.Attempt(context.Background(), callout.Attempt{Name: "asha", Password: pw, Address: addr})
		require.Equal(t, callout.KindThrottled, callout.ErrorKind(err))
		wait, ok := callout.RetryAfter(err)
		require.True(t, ok)
		require.Equal(t, time.Second, wait)
		release()

		now = now.Add(time.Second)
		got, err := s.Attempt(context.Background(), callout.Attempt{Name: "asha", Password: pw, Address: addr})
		require.NoError(t, err)
		require.Equal(t, "asha", got.Name)
	})
}
