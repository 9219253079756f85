package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"callout/internal/callout"
	"callout/internal/hl7"
	"callout/internal/ingest"
)

// facilityFlags are the repeatable --hl7-facility NAME flag and
// --hl7-cert-subject DN, which binds the facility named just before it to
// the subject of a TLS client certificate:
//
//	--hl7-facility "ACME LAB" --hl7-cert-subject "CN=lis.acme.example" --hl7-facility OTHER
type facilityFlags []callout.HL7Facility

func (f *facilityFlags) register(fs *flag.FlagSet, usage string) {
	fs.Func("hl7-facility", usage, func(v string) error {
		v = strings.TrimSpace(v)
		if v == "" {
			return errors.New("empty value")
		}
		*f = append(*f, callout.HL7Facility{Name: v})
		return nil
	})
	fs.Func("hl7-cert-subject", "accept the --hl7-facility before it only over MLLP with TLS from a client certificate with this subject, e.g. 'CN=lis.acme.example,O=Acme' (see README, TLS)", func(v string) error {
		if len(*f) == 0 {
			return errors.New("give it after the --hl7-facility it binds")
		}
		last := &(*f)[len(*f)-1]
		if last.CertSubject != "" {
			return fmt.Errorf("facility %q already has a certificate subject", last.Name)
		}
		subject, err := hl7.ParseSubject(v)
		if err != nil {
			return err
		}
		last.CertSubject = subject
		return nil
	})
}

// describeFacilities lists facilities as `ACME LAB [cert CN=lis], OTHER`.
func describeFacilities(fs []callout.HL7Facility) string {
	names := make([]string, len(fs))
	for i, f := range fs {
		names[i] = f.Name
		if f.CertSubject != "" {
			names[i] += " [cert " + f.CertSubject + "]"
		}
	}
	return strings.Join(names, ", ")
}

// hl7SendCmd sends a file of HL7 v2 messages over MLLP and prints each ACK,
// for people testing their interface.
func hl7SendCmd(ctx context.Context, e *env, args []string) error {
	fs, _ := flags(e, "hl7 send", "hl7 send FILE --addr HOST:PORT [--tls] [--tls-ca FILE] [--tls-cert FILE --tls-key FILE]")
	addr := fs.String("addr", e.getenv("CALLOUT_MLLP_ADDR"), "the MLLP listener (env CALLOUT_MLLP_ADDR)")
	timeout := fs.Duration("timeout", 30*time.Second, "how long to wait for each ACK")
	var tf tlsFlags
	tf.register(fs)
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
	if err := tf.check(); err != nil {
		return err
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
	if c.TLSConfig, err = tf.config(); err != nil {
		return err
	}
	acks, err := c.Send(ctx, *addr, msgs)
	for i, ack := range acks {
		fmt.Fprintf(e.stdout, "message %d: %s\n", i+1, describeACK(ack))
	}
	if err != nil {
		return fmt.Errorf("after %d of %d messages: %w", len(acks), len(msgs), err)
	}
	return nil
}

// describeACK renders an ACK as "AA CTRL-1 stored" (MSA-1, MSA-2, and the
// reason). MSA-3 is cut at 80 characters for v2.3 senders, so the reason is
// the first error's whole text (ERR-7, else ERR-8) when the ACK has one.
func describeACK(raw []byte) string {
	m, err := hl7.Parse(raw)
	if err != nil {
		return "unreadable ACK: " + err.Error()
	}
	msa := m.First("MSA")
	if msa == nil {
		return "ACK without MSA"
	}
	reason := msa.Field(3)
	for _, e := range m.All("ERR") {
		if e.Field(4) != "E" {
			continue
		}
		if t := e.Field(7); t != "" {
			reason = t
		} else if t := e.Field(8); t != "" {
			reason = t
		}
		break
	}
	return strings.TrimSpace(msa.Field(1) + " " + msa.Field(2) + " " + reason)
}

// tlsFlags are hl7 send's TLS flags; any of them turns TLS on.
type tlsFlags struct {
	on                        bool
	ca, cert, key, serverName string
}

func (f *tlsFlags) register(fs *flag.FlagSet) {
	fs.BoolVar(&f.on, "tls", false, "speak MLLP over TLS, trusting the system's CAs (implied by the other --tls-* flags)")
	fs.StringVar(&f.ca, "tls-ca", "", "PEM file of the CA that issued the listener's certificate (instead of the system's CAs)")
	fs.StringVar(&f.cert, "tls-cert", "", "PEM file of the client certificate to present (with --tls-key)")
	fs.StringVar(&f.key, "tls-key", "", "PEM file of the client certificate's private key")
	fs.StringVar(&f.serverName, "tls-server-name", "", "the name the listener's certificate must carry (default the host of --addr)")
}

func (f *tlsFlags) check() error {
	if (f.cert == "") != (f.key == "") {
		return fmt.Errorf("--tls-cert and --tls-key go together: %w", errUsage)
	}
	return nil
}

// config returns the client TLS configuration, or nil for plain TCP.
func (f *tlsFlags) config() (*tls.Config, error) {
	if !f.on && f.ca == "" && f.cert == "" && f.serverName == "" {
		return nil, nil
	}
	cfg := &tls.Config{ServerName: f.serverName, MinVersion: tls.VersionTLS12}
	if f.ca != "" {
		pool, err := certPool("--tls-ca", f.ca)
		if err != nil {
			return nil, err
		}
		cfg.RootCAs = pool
	}
	if f.cert != "" {
		pair, err := tls.LoadX509KeyPair(f.cert, f.key)
		if err != nil {
			return nil, fmt.Errorf("--tls-cert/--tls-key: %w", err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	return cfg, nil
}

// serveMLLP serves srv on CALLOUT_MLLP_ADDR until ctx ends, registers its
// metrics in reg and returns the address it listens on.
func serveMLLP(ctx context.Context, e *env, rt *runtime, srv *hl7.Server, reg prometheus.Registerer) (string, error) {
	addr := e.getenv("CALLOUT_MLLP_ADDR")
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", fmt.Errorf("listen for MLLP on %s: %w", addr, err)
	}
	registerMLLPMetrics(reg, srv)
	in := &ingest.Ingester{Store: rt.store, Log: e.log}
	go func() {
		if err := srv.Serve(ctx, ln, in.Handle); err != nil && ctx.Err() == nil {
			e.log.Error("MLLP listener stopped", "err", err)
		}
	}()
	return ln.Addr().String(), nil
}

// mllpServer configures the MLLP listener from the environment, before
// anything starts, so a bad setting stops serve at once: nil without
// CALLOUT_MLLP_ADDR; limits from CALLOUT_MLLP_MAX_CONNS,
// CALLOUT_MLLP_MAX_CONNS_PER_IP, CALLOUT_MLLP_FRAME_TIMEOUT and
// CALLOUT_MLLP_IDLE_TIMEOUT; TLS as mllpTLS says.
func mllpServer(e *env) (*hl7.Server, error) {
	if e.getenv("CALLOUT_MLLP_ADDR") == "" {
		return nil, nil
	}
	srv := &hl7.Server{Logger: e.log}
	var err error
	if srv.MaxConns, err = positiveEnv(e, "CALLOUT_MLLP_MAX_CONNS", hl7.DefaultMaxConns); err != nil {
		return nil, err
	}
	if srv.MaxConnsPerIP, err = positiveEnv(e, "CALLOUT_MLLP_MAX_CONNS_PER_IP", hl7.DefaultMaxConnsPerIP); err != nil {
		return nil, err
	}
	if srv.FrameTimeout, err = durationEnv(e, "CALLOUT_MLLP_FRAME_TIMEOUT"); err != nil {
		return nil, err
	}
	if srv.IdleTimeout, err = durationEnv(e, "CALLOUT_MLLP_IDLE_TIMEOUT"); err != nil {
		return nil, err
	}
	if srv.TLSConfig, err = mllpTLS(e); err != nil {
		return nil, err
	}
	return srv, nil
}

func registerMLLPMetrics(reg prometheus.Registerer, srv *hl7.Server) {
	reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "callout_mllp_connections",
			Help: "MLLP connections open now.",
		}, func() float64 { return float64(srv.Stats().Open) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "callout_mllp_connections_refused_total",
			Help: "MLLP connections closed as soon as accepted: CALLOUT_MLLP_MAX_CONNS or CALLOUT_MLLP_MAX_CONNS_PER_IP was reached.",
		}, func() float64 { return float64(srv.Stats().Refused) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "callout_mllp_frame_bytes",
			Help: "Memory holding MLLP messages that are still arriving.",
		}, func() float64 { return float64(srv.Stats().FrameBytes) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "callout_mllp_received_bytes_total",
			Help: "Bytes received on MLLP connections.",
		}, func() float64 { return float64(srv.Stats().BytesReceived) }),
	)
}
