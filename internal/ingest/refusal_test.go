package ingest_test

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"callout/internal/callout"
	"callout/internal/hl7"
	"callout/internal/ingest"
	"callout/internal/sqlstore"
	"callout/internal/storetest"
)

// mllp is the real listener with the ingester behind it, on a loopback port.
type mllp struct {
	addr string
}

// listen serves handler over MLLP until the test ends.
func listen(t *testing.T, handler hl7.Handler) *mllp {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	srv := &hl7.Server{Logger: slog.New(slog.DiscardHandler)}
	go func() { done <- srv.Serve(ctx, ln, handler) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
	})
	return &mllp{addr: ln.Addr().String()}
}

// send sends one message over a new connection and returns the ACK's code
// (MSA-1) and the reason: the message of its error (ERR-8, whole), else
// MSA-3 (which is cut at 80 characters).
func (m *mllp) send(t *testing.T, raw []byte) (code, text string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	acks, err := hl7.Send(ctx, m.addr, [][]byte{raw})
	require.NoError(t, err)
	ack, err := hl7.Parse(acks[0])
	require.NoError(t, err, "the ACK parses")
	msa := ack.First("MSA")
	require.NotNil(t, msa)
	for _, e := range ack.All("ERR") {
		if e.Field(4) == "E" {
			return msa.Field(1), e.Field(8)
		}
	}
	return msa.Field(1), msa.Field(3)
}

// TestDeterministicRefusalsAreAR sends, over the real MLLP listener, each
// kind of message that can never be stored. Each must be answered AR —
// "do not send it again" — and change nothing. Before, a NUL in PID-5
// (\X00\) was answered AE "send it again" on PostgreSQL, so a sender would
// resend forever a message that can never be stored; rule breaks such as a
// missing order number were AE too.
func TestDeterministicRefusalsAreAR(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, e storetest.Engine) {
		b := setup(t, e)
		srv := listen(t, b.in.Handle)
		adt := "MSH|^~\\&|ADT|ACME LAB|CALLOUT|CLINIC|20260101||ADT^A01|A1|P|2.5\rPID|1||1||A^B\r"
		nullName := strings.Replace(string(oru("N1", "P-N1", "K^Potassium", "K^Potassium||7.1|mmol/L|3.5-5.1|HH|||F")),
			"MÜLLER^MARIA", `MÜL\X00\LER^MARIA`, 1)
		tabName := strings.Replace(string(oru("N2", "P-N2", "K^Potassium", "K^Potassium||7.1|mmol/L|3.5-5.1|HH|||F")),
			"MÜLLER^MARIA", "MÜLLER\tEVIL^MARIA", 1)
		cases := []struct {
			name, raw, why string
		}{
			{"NUL in PID-5 (\\X00\\)", nullName, "patient.name (PID-5) contains a control character (U+0000)"},
			{"TAB in PID-5", tabName, "patient.name (PID-5) contains a control character (U+0009)"},
			{"CR LF in the order number (\\X0D0A\\)", string(oru("N3", `EVIL-1\X0D0A\Bcc: x`, "K^Potassium", "K^Potassium||7.1|mmol/L|3.5-5.1|HH|||F")),
				"the order number (ORC-2/OBR-2, or ORC-3/OBR-3) contains a control character (U+000D)"},
			{"bidi override in OBR-4", string(oru("N4", "P-N4", "K^Pot\u202eassium", "K^Potassium||7.1|mmol/L|3.5-5.1|HH|||F")),
				"the test name (OBR-4) contains a bidirectional control character (U+202E)"},
			{"NUL in OBX-3", string(oru("N5", "P-N5", "K^Potassium", `K^Pot\X00\assium||7.1|mmol/L|3.5-5.1|HH|||F`)),
				"result 1 name contains a control character (U+0000)"},
			{"NUL in OBX-5", strings.Replace(string(oru("N6", "P-N6", "K^Potassium", `K^Potassium||see\X00\note|mmol/L|3.5-5.1|HH|||F`)), "OBX|1|NM|", "OBX|1|ST|", 1),
				"result 1 value contains a control character (U+0000)"},
			{"ESC in OBX-6", string(oru("N7", "P-N7", "K^Potassium", "K^Potassium||7.1|mmol\x1b/L|3.5-5.1|HH|||F")),
				"result 1 unit contains a control character (U+001B)"},
			{"NUL in MSH-10", string(oru(`N\X00\8`, "P-N8", "K^Potassium", "K^Potassium||7.1|mmol/L|3.5-5.1|HH|||F")),
				"the control id (MSH-10) contains a control character (U+0000)"},
			{"NUL in MSH-4", strings.Replace(string(oru("N9", "P-N9", "K^Potassium", "K^Potassium||7.1|mmol/L|3.5-5.1|HH|||F")), "ACME LAB", `ACME\X00\LAB`, 1),
				"the sending facility (MSH-4) contains a control character (U+0000)"},
			{"value too long", strings.Replace(string(oru("N10", "P-N10", "K^Potassium", "K^Potassium||"+strings.Repeat("x", 64<<10+1)+"|mmol/L|3.5-5.1|HH|||F")), "OBX|1|NM|", "OBX|1|ST|", 1),
				"longer than 65536 bytes"},
			{"no order number", string(oru("N11", "", "K^Potassium", "K^Potassium||7.1|mmol/L|3.5-5.1|HH|||F")), "no placer order number"},
			{"unknown facility", strings.Replace(string(oru("N12", "P-N12", "K^Potassium", "K^Potassium||7.1|mmol/L|3.5-5.1|HH|||F")), "ACME LAB", "NOBODY", 1), "NOBODY"},
			{"not ORU^R01", adt, "ORU^R01"},
			{"not HL7", "hello world", "parsed"},
		}
		before := storetest.Dump(t, b.fx.Store.DB)
		for _, tc := range cases {
			code, text := srv.send(t, []byte(tc.raw))
			require.Equal(t, "AR", code, "%s: %s", tc.name, text)
			require.Contains(t, text, tc.why, tc.name)
			require.Equal(t, before, storetest.Dump(t, b.fx.Store.DB), "%s changed rows", tc.name)
		}
		// A textual result keeps its lines (TX repetitions, \.br\).
		code, text := srv.send(t, []byte(strings.Replace(string(oru("T1", "P-T1", "NOTE^Note", `NOTE^Note||line 1~line 2\.br\line 3|||||||F`)),
			"OBX|1|NM|", "OBX|1|TX|", 1)))
		require.Equal(t, "AA", code, text)
		require.Equal(t, "line 1\nline 2\nline 3", b.bill(t, "P-T1").Reports[0].Parameters[0].Value)
	})
}

// TestTransientFaultsAreAE makes the store really unavailable — its
// database closed, a row locked by another transaction until the lock
// timeout or the deadline — and checks the message is answered AE ("send it
// again"), changes nothing, and is stored when sent again.
func TestTransientFaultsAreAE(t *testing.T) {
	msg := oru("L2", "P-LOCK", "K^Potassium", "K^Potassium||7.4|mmol/L|3.5-5.1|HH|||F")
	storetest.ForEach(t, func(t *testing.T, e storetest.Engine) {
		t.Run("DatabaseClosed", func(t *testing.T) {
			t.Parallel()
			dbURL := e.URL(t)
			st := storetest.OpenURL(t, dbURL)
			lab := hl7Lab(t, st)
			srv := listen(t, (&ingest.Ingester{Store: st}).Handle)
			code, text := srv.send(t, oru("C1", "P-C1", "K^Potassium", "K^Potassium||7.1|mmol/L|3.5-5.1|HH|||F"))
			require.Equal(t, "AA", code, text)
			before := storetest.Dump(t, st.DB)

			require.NoError(t, st.Close())
			code, text = srv.send(t, msg)
			require.Equal(t, "AE", code, text)
			require.Contains(t, text, "send it again")

			again := storetest.OpenURL(t, dbURL)
			require.Equal(t, before, storetest.Dump(t, again.DB), "nothing was stored")
			srv = listen(t, (&ingest.Ingester{Store: again}).Handle)
			code, text = srv.send(t, msg)
			require.Equal(t, "AA", code, "sent again once the database is back: %s", text)
			bs, err := again.FindBills(context.Background(), lab, "P-LOCK")
			require.NoError(t, err)
			require.Len(t, bs, 1)
		})

		t.Run("RowLockedByAnotherTransaction", func(t *testing.T) {
			t.Parallel()
			dbURL := e.URL(t)
			// Lock waits end on PostgreSQL by lock_timeout, a setting a
			// deployment would make; on SQLite by the deadline of the
			// handler (its busy timeout is 10 s).
			lockURL, deadline := dbURL, time.Duration(0)
			if e.Name == "postgres" {
				u, err := url.Parse(dbURL)
				require.NoError(t, err)
				q := u.Query()
				q.Set("lock_timeout", "300")
				u.RawQuery = q.Encode()
				lockURL = u.String()
			} else {
				deadline = 300 * time.Millisecond
			}
			st := storetest.OpenURL(t, lockURL)
			lab := hl7Lab(t, st)
			in := &ingest.Ingester{Store: st}
			srv := listen(t, func(ctx context.Context, raw []byte) []byte {
				if deadline > 0 {
					var cancel context.CancelFunc
					ctx, cancel = context.WithTimeout(ctx, deadline)
					defer cancel()
				}
				return in.Handle(ctx, raw)
			})
			code, text := srv.send(t, oru("L1", "P-LOCK", "K^Potassium", "K^Potassium||7.1|mmol/L|3.5-5.1|HH|||F"))
			require.Equal(t, "AA", code, text)
			before := storetest.Dump(t, st.DB)

			// Another transaction holds the order (PostgreSQL: its row;
			// SQLite: the database's write lock).
			other := storetest.OpenURL(t, dbURL)
			tx, err := other.DB.BeginTx(context.Background(), nil)
			require.NoError(t, err)
			t.Cleanup(func() { _ = tx.Rollback() }) // also when the test fails: closing waits for it
			if e.Name == "postgres" {
				var id int64
				require.NoError(t, tx.QueryRow(`SELECT id FROM bills WHERE lab_bill_id = 'P-LOCK' FOR UPDATE`).Scan(&id))
			} else {
				_, err = tx.Exec(`UPDATE labs SET name = name WHERE id = $1`, lab)
				require.NoError(t, err)
			}
			code, text = srv.send(t, msg)
			require.Equal(t, "AE", code, text)
			require.Contains(t, text, "send it again")
			require.NoError(t, tx.Rollback())
			require.Equal(t, before, storetest.Dump(t, st.DB))

			code, text = srv.send(t, msg)
			require.Equal(t, "AA", code, "sent again once the lock is gone: %s", text)
			require.Equal(t, "7.4", reportValue(t, st, lab, "P-LOCK"))
		})
	})
}

// TestTransientClassification checks the store's verdict on the errors the
// drivers really return, not only on those the tests above provoke.
func TestTransientClassification(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, e storetest.Engine) {
		st := e.Open(t)
		ctx := context.Background()
		_, err := st.DB.ExecContext(ctx, "SELECT * FROM no_such_table")
		require.Error(t, err)
		require.False(t, st.Transient(err), "a broken statement is deterministic: %v", err)
		require.False(t, st.Transient(callout.Errorf(callout.KindUnprocessable, "bad")))
		require.False(t, st.Transient(errors.New("a bug")), "the database answers, so not its unavailability")
		lab := hl7Lab(t, st)
		insert := func() error {
			_, err := st.DB.ExecContext(ctx, `INSERT INTO hl7_messages (facility, control_id, lab_id, received_at) VALUES ('ACME LAB', 'X1', $1, $2)`, lab, callout.Now())
			return err
		}
		require.NoError(t, insert())
		err = insert()
		require.Error(t, err)
		require.True(t, st.Transient(err), "a unique violation the store did not turn into a conflict is a race: %v", err)
		require.True(t, st.Transient(context.DeadlineExceeded))
		require.True(t, st.Transient(&net.OpError{Op: "dial", Err: errors.New("connection refused")}))
		if e.Name == "postgres" {
			_, err = st.DB.ExecContext(ctx, "SELECT $1::text", "a\x00b")
			require.Error(t, err)
			require.False(t, st.Transient(err), "invalid byte sequence is deterministic: %v", err)
			_, err = st.DB.ExecContext(ctx, "SELECT 'a\x00b'::text")
			require.Error(t, err)
			require.False(t, st.Transient(err), "a protocol violation is deterministic: %v", err)
		}
		require.NoError(t, st.Close())
		_, err = st.DB.ExecContext(ctx, "SELECT 1")
		require.Error(t, err)
		require.True(t, st.Transient(err), "a closed database is unavailable: %v", err)
	})
}

// hl7Lab creates a lab that accepts ACME LAB's messages in st.
func hl7Lab(t *testing.T, st *sqlstore.Store) int64 {
	t.Helper()
	ctx := context.Background()
	lab, err := st.CreateLab(ctx, callout.Settings{Name: "City Lab", TargetMinutes: 30})
	require.NoError(t, err)
	require.NoError(t, st.SetHL7(ctx, lab, []string{"ACME LAB"}, false))
	return lab
}

func reportValue(t *testing.T, st *sqlstore.Store, lab int64, labBillID string) string {
	t.Helper()
	ctx := context.Background()
	bs, err := st.FindBills(ctx, lab, labBillID)
	require.NoError(t, err)
	require.Len(t, bs, 1)
	b, err := st.Bill(ctx, lab, bs[0].ID)
	require.NoError(t, err)
	return b.Reports[0].Parameters[0].Value
}
