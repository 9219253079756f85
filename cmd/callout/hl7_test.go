package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"callout/internal/storetest"
)

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// TestHL7OverMLLP sends messages to a running service with `callout hl7
// send`, the way an integrator tests an interface, and finds the order
// through the API.
func TestHL7OverMLLP(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, e storetest.Engine) {
		db := e.URL(t)
		mllp := freeAddr(t)
		env := func(k string) string { return map[string]string{"CALLOUT_MLLP_ADDR": mllp}[k] }
		url, _ := serveEnv(t, env, db)
		code, out, stderr := runCmd(t, "lab", "create", "--db", db, "--name", "North Lab", "--hl7-facility", "ACME LAB", "--hl7-facility", "GENERAL HOSPITAL")
		require.Equal(t, 0, code, stderr)
		lab := strings.TrimSpace(out)
		code, tok, stderr := runCmd(t, "token", "create", "--db", db, "--lab", lab, "--user", "Iris", "--role", "admin")
		require.Equal(t, 0, code, stderr)
		c := client{t: t, url: url, token: strings.TrimSpace(tok)}

		// The lab's own limit makes an unflagged low glucose critical.
		status, m := c.do("PUT", "/api/v1/lab/critical-limits", `{"limits":[{"name":"Glucose","unit":"mg/dL","critical_low":40,"critical_high":450}]}`)
		require.Equal(t, 200, status, m)
		require.Len(t, m["limits"], 1)
		status, m = c.do("PUT", "/api/v1/lab/critical-limits", `{"limits":[{"name":"K","critical_low":7,"critical_high":2}]}`)
		require.Equal(t, 422, status, m)

		v251, err := os.ReadFile("../../internal/hl7/testdata/oru_v251_multi.hl7")
		require.NoError(t, err)
		v23, err := os.ReadFile("../../internal/hl7/testdata/oru_v23_basic.hl7")
		require.NoError(t, err)
		adt, err := os.ReadFile("../../internal/hl7/testdata/adt_a01.hl7")
		require.NoError(t, err)
		extra := "MSH|^~\\&|LABSYS|ACME LAB|CALLOUT|CLINIC|20261127083000||ORU^R01|GLU-1|P|2.5.1\r" +
			"PID|1||MRN9||TANAKA^AIKO\rOBR|1|ORD-GLU|FIL-GLU|GLU^Glucose|||20261127080000\r" +
			"OBX|1|NM|GLU^Glucose||35|mg/dL|70-99||||F\r"
		file := filepath.Join(t.TempDir(), "messages.hl7")
		content := strings.Join([]string{string(v251), string(v23), string(adt), extra, string(v251)}, "\n")
		require.NoError(t, os.WriteFile(file, []byte(content), 0o600))

		code, out, stderr = runCmd(t, "hl7", "send", file, "--addr", mllp)
		require.Equal(t, 0, code, stderr)
		lines := strings.Split(strings.TrimSpace(out), "\n")
		require.Len(t, lines, 5, out)
		require.Regexp(t, `^message 1: AA CTRL-20240315-0042`, lines[0])
		require.Regexp(t, `^message 2: AA MSG00001`, lines[1])
		require.Regexp(t, `^message 3: AR `, lines[2], "ADT is rejected")
		require.Regexp(t, `^message 4: AA GLU-1`, lines[3])
		require.Regexp(t, `^message 5: AA CTRL-20240315-0042 already stored`, lines[4])

		status, m = c.do("GET", "/api/v1/bills?lab_bill_id=ORD-GLU", "")
		require.Equal(t, 200, status, m)
		bills := m["bills"].([]any)
		require.Len(t, bills, 1)
		id := int64(bills[0].(map[string]any)["id"].(float64))
		status, m = c.do("GET", fmt.Sprintf("/api/v1/bills/%d", id), "")
		require.Equal(t, 200, status)
		rep := m["reports"].([]any)[0].(map[string]any)
		require.EqualValues(t, 1, rep["critical_values"], "glucose 35 below the lab's limit of 40")
		status, m = c.do("GET", "/api/v1/bills?lab_bill_id=NOPE", "")
		require.Equal(t, 200, status)
		require.Empty(t, m["bills"])
		status, _ = c.do("GET", "/api/v1/bills", "")
		require.Equal(t, 400, status)

		code, _, stderr = runCmd(t, "hl7", "send", file)
		require.Equal(t, 2, code, "no --addr")
		require.Contains(t, stderr, "--addr")
		_ = context.Background
	})
}

func TestLabUpdateChangesOnlyWhatIsGiven(t *testing.T) {
	t.Parallel()
	db := storetest.SQLite.URL(t)
	code, out, stderr := runCmd(t, "lab", "create", "--db", db, "--name", "L", "--hl7-facility", "A", "--hl7-order-number", "filler")
	require.Equal(t, 0, code, stderr)
	lab := strings.TrimSpace(out)
	code, out, stderr = runCmd(t, "lab", "update", "--db", db, "--lab", lab, "--hl7-facility", "B", "--hl7-facility", "C")
	require.Equal(t, 0, code, stderr)
	require.Contains(t, out, "B, C (Order ID: filler number)", "the numbering stays")
	code, out, stderr = runCmd(t, "lab", "update", "--db", db, "--lab", lab, "--hl7-order-number", "placer")
	require.Equal(t, 0, code, stderr)
	require.Contains(t, out, "B, C (Order ID: placer number)", "the facilities stay")
	code, _, stderr = runCmd(t, "lab", "update", "--db", db, "--lab", lab)
	require.Equal(t, 2, code)
	require.Contains(t, stderr, "nothing to change")
	code, _, stderr = runCmd(t, "lab", "update", "--db", db, "--lab", "99", "--hl7-facility", "Z")
	require.Equal(t, 1, code)
	require.Contains(t, stderr, "lab 99 does not exist")
}
