package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"callout/internal/hl7"
	"callout/internal/ingest"
)

// listFlag is a repeatable string flag: --hl7-facility A --hl7-facility B.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }

func (l *listFlag) Set(v string) error {
	v = strings.TrimSpace(v)
	if v == "" {
		return fmt.Errorf("empty value")
	}
	*l = append(*l, v)
	return nil
}

// hl7SendCmd sends a file of HL7 v2 messages over MLLP and prints each ACK,
// for people testing their interface.
func hl7SendCmd(ctx context.Context, e *env, args []string) error {
	fs, _ := flags(e, "hl7 send", "hl7 send FILE --addr HOST:PORT")
	addr := fs.String("addr", e.getenv("CALLOUT_MLLP_ADDR"), "the MLLP listener (env CALLOUT_MLLP_ADDR)")
	timeout := fs.Duration("timeout", 30*time.Second, "how long to wait for each ACK")
	// The file comes first (callout hl7 send FILE --addr …), flags after.
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		if err := parse(fs, args); err != nil {
			return err
		}
		return fmt.Errorf("name the file of messages to send: %w", errUsage)
	}
	file := args[0]
	if err := parse(fs, args[1:]); err != nil {
		return err
	}
	if *addr == "" {
		return fmt.Errorf("--addr is required: %w", errUsage)
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	msgs := hl7.SplitFile(data)
	if len(msgs) == 0 {
		return fmt.Errorf("%s holds no HL7 message (each starts with MSH)", file)
	}
	c := &hl7.Client{AckTimeout: *timeout}
	acks, err := c.Send(ctx, *addr, msgs)
	for i, ack := range acks {
		fmt.Fprintf(e.stdout, "message %d: %s\n", i+1, describeACK(ack))
	}
	if err != nil {
		return fmt.Errorf("after %d of %d messages: %w", len(acks), len(msgs), err)
	}
	return nil
}

// describeACK renders an ACK as "AA CTRL-1 stored" (MSA-1, MSA-2, MSA-3).
func describeACK(raw []byte) string {
	m, err := hl7.Parse(raw)
	if err != nil {
		return "unreadable ACK: " + err.Error()
	}
	msa := m.First("MSA")
	if msa == nil {
		return "ACK without MSA"
	}
	return strings.TrimSpace(msa.Field(1) + " " + msa.Field(2) + " " + msa.Field(3))
}

// serveMLLP listens for HL7 v2 over MLLP on addr until ctx ends.
func serveMLLP(ctx context.Context, e *env, rt *runtime, addr string) (string, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", fmt.Errorf("listen for MLLP on %s: %w", addr, err)
	}
	in := &ingest.Ingester{Store: rt.store, Log: e.log}
	srv := &hl7.Server{Logger: e.log}
	go func() {
		if err := srv.Serve(ctx, ln, in.Handle); err != nil && ctx.Err() == nil {
			e.log.Error("MLLP listener stopped", "err", err)
		}
	}()
	return ln.Addr().String(), nil
}
