package bench

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"net"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"

	"callout/internal/callout"
	"callout/internal/hl7"
	"callout/internal/ingest"
)

// The hl7 set: ORU^R01 messages, each a new order with one OBR and five OBX
// (potassium critical), sent over MLLP to the real listener and ingester —
// each connection sends message after message, waiting for each ACK — and,
// as the floor, the same inserts sent straight to the database by the
// simplest loop, one transaction per message, with the same concurrency.

// benchFacility is the sending facility (MSH-4) the bench lab accepts.
const benchFacility = "BENCHLAB"

// oruMessage is a realistic ORU^R01 (v2.5.1) with control id ctrl (MSH-10)
// for a new order orderNo: patient with phone and email, ordering provider,
// one chemistry OBR and five numeric OBX, one of them critical (HH).
func oruMessage(ctrl, orderNo string, at time.Time) []byte {
	ts := at.UTC().Format("20060102150405")
	return []byte(strings.Join([]string{
		`MSH|^~\&|LABSYS|` + benchFacility + `|CALLOUT|CLINIC|` + ts + `||ORU^R01^ORU_R01|` + ctrl + `|P|2.5.1|||AL|NE`,
		`PID|1||MRN-` + orderNo + `^^^` + benchFacility + `^MR||Mueller^Maria^^^^^L||19851202|F|||22 Elm Rd^^Riverton^UT^84065||^PRN^PH^^1^801^5550199~^NET^Internet^maria@example.org`,
		`PV1|1|O|NORTH^^^` + benchFacility,
		`ORC|RE|` + orderNo + `|F-` + orderNo + `||CM||||` + ts + `|||5678^Rao^Anil^^^Dr.`,
		`OBR|1|` + orderNo + `|F-` + orderNo + `|24323-8^Comprehensive metabolic panel^LN|||` + ts +
			`|||||||||5678^Rao^Anil^^^Dr.||||||||CH|F`,
		`OBX|1|NM|2823-3^Potassium^LN||7.1|mmol/L|3.5-5.1|HH|||F`,
		`OBX|2|NM|2951-2^Sodium^LN||140|mmol/L|135-145|N|||F`,
		`OBX|3|NM|2345-7^Glucose^LN||92|mg/dL|70-99|N|||F`,
		`OBX|4|NM|2160-0^Creatinine^LN||0.9|mg/dL|0.6-1.2|N|||F`,
		`OBX|5|NM|17861-6^Calcium^LN||9.4|mg/dL|8.6-10.3|N|||F`,
	}, "\r") + "\r")
}

// runHL7Cell measures one engine and connection count on a fresh database:
// the MLLP listener with the real ingester, then the floor.
func runHL7Cell(ctx context.Context, cfg Config, engine string, conns int, log *slog.Logger) ([]Result, error) {
	dbURL, drop, err := freshDatabase(ctx, cfg, engine)
	if err != nil {
		return nil, err
	}
	defer drop()
	log.Info("bench: preparing", "engine", engine, "mode", ModeHL7, "connections", conns)
	srv, err := openServer(ctx, cfg, dbURL)
	if err != nil {
		return nil, err
	}
	srvClosed := false
	defer func() {
		if !srvClosed {
			srv.close()
		}
	}()
	lab, err := srv.svc.CreateLab(ctx, callout.Settings{Name: "Bench Lab"})
	if err != nil {
		return nil, err
	}
	if err := srv.st.SetHL7(ctx, lab, []string{benchFacility}, false); err != nil {
		return nil, err
	}
	if err := srv.start(ctx, dbURL, "", "", log); err != nil {
		return nil, err
	}

	labels := func(mode string) pprof.LabelSet {
		return pprof.Labels("engine", engine, "reports", "1", "connections", strconv.Itoa(conns), "mode", mode)
	}
	var results []Result
	var s stats
	pprof.Do(ctx, labels(ModeHL7), func(ctx context.Context) {
		s, err = runMLLP(ctx, cfg, conns, &ingest.Ingester{Store: srv.st})
	})
	if err != nil {
		return nil, err
	}
	results = append(results, s.result(engine, 1, conns, ModeHL7))
	logResult(log, results[len(results)-1], s.firstErr)
	srvClosed = true
	if err := srv.close(); err != nil {
		return results, err
	}

	fdb, err := openFloor(ctx, engine, dbURL)
	if err != nil {
		return results, err
	}
	defer fdb.close()
	fm, err := newFloorMessage()
	if err != nil {
		return results, err
	}
	seq := make([]int, conns)
	pprof.Do(ctx, labels(ModeHL7Floor), func(ctx context.Context) {
		s = load(ctx, conns, cfg.Duration, conns, func(ctx context.Context, i int) error {
			seq[i]++
			n := fmt.Sprintf("F%d-%07d", i, seq[i])
			return floorIngest(ctx, fdb, fm, lab, "CTRL-"+n, "ORD-"+n)
		})
	})
	results = append(results, s.result(engine, 1, conns, ModeHL7Floor))
	logResult(log, results[len(results)-1], s.firstErr)
	return results, ctx.Err()
}

// runMLLP serves MLLP with in on a loopback port and drives it over conns
// connections for cfg.Duration.
func runMLLP(ctx context.Context, cfg Config, conns int, in *ingest.Ingester) (stats, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return stats{}, err
	}
	serveCtx, stop := context.WithCancel(ctx)
	served := make(chan error, 1)
	go func() {
		served <- (&hl7.Server{Logger: slog.New(slog.DiscardHandler)}).Serve(serveCtx, ln, in.Handle)
	}()
	defer func() {
		stop()
		<-served
	}()

	addr := ln.Addr().String()
	clients := make([]*mllpConn, conns)
	defer func() {
		for _, c := range clients {
			if c != nil {
				c.close()
			}
		}
	}()
	seq := make([]int, conns)
	return load(ctx, conns, cfg.Duration, conns, func(ctx context.Context, i int) error {
		if clients[i] == nil { // first message, or the last exchange broke the connection
			c, err := dialMLLP(ctx, addr)
			if err != nil {
				return err
			}
			clients[i] = c
		}
		seq[i]++
		n := fmt.Sprintf("A%d-%07d", i, seq[i])
		ack, err := clients[i].exchange(ctx, oruMessage("CTRL-"+n, "ORD-"+n, time.Now()))
		if err != nil {
			clients[i].close()
			clients[i] = nil
			return err
		}
		return checkACK(ack)
	}), nil
}

type mllpConn struct {
	conn net.Conn
	br   *bufio.Reader
}

func dialMLLP(ctx context.Context, addr string) (*mllpConn, error) {
	conn, err := (&net.Dialer{Timeout: 5 * time.Second}).DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	return &mllpConn{conn: conn, br: bufio.NewReaderSize(conn, 16<<10)}, nil
}

func (c *mllpConn) close() { c.conn.Close() }

// exchange sends one message and reads its ACK, within 30 seconds or until
// ctx ends.
func (c *mllpConn) exchange(ctx context.Context, msg []byte) ([]byte, error) {
	if err := c.conn.SetDeadline(time.Now().Add(30 * time.Second)); err != nil {
		return nil, err
	}
	stop := context.AfterFunc(ctx, func() { _ = c.conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if err := hl7.WriteFrame(c.conn, msg); err != nil {
		return nil, err
	}
	return hl7.ReadFrame(c.br)
}

// checkACK accepts only "AA … stored": a duplicate would not be a new order.
func checkACK(raw []byte) error {
	m, err := hl7.Parse(raw)
	if err != nil {
		return fmt.Errorf("unreadable ACK: %w", err)
	}
	msa := m.First("MSA")
	if msa == nil {
		return fmt.Errorf("ACK without MSA: %q", raw)
	}
	if code, text := msa.Field(1), msa.Field(3); code != hl7.AckAccept || text != "stored" {
		return fmt.Errorf("ACK %s %s: %s", code, msa.Field(2), text)
	}
	return nil
}

// floorMessage is what the floor writes for every message: the values the
// ingester maps from oruMessage (parsed once here, as constants), and the
// statements.
type floorMessage struct {
	order  callout.IncomingOrder
	report callout.IncomingReport
	state  callout.State

	qDedupe, qBill, qReport, qParams, qMessage string
}

// The statements are the same on both engines.
func newFloorMessage() (*floorMessage, error) {
	m, err := hl7.Parse(oruMessage("CTRL-0", "ORD-0", time.Now()))
	if err != nil {
		return nil, err
	}
	oru, err := hl7.ParseORU(m)
	if err != nil {
		return nil, err
	}
	rm := ingest.Map(oru, hl7.NumberPlacer)
	if len(rm.Orders) != 1 || len(rm.Orders[0].Reports) != 1 {
		return nil, fmt.Errorf("the bench message maps to %d orders, want 1 with 1 report", len(rm.Orders))
	}
	fm := &floorMessage{order: rm.Orders[0], report: rm.Orders[0].Reports[0]}
	fm.state = callout.InitialState(fm.report.Parameters)

	const cols = 11
	rows := make([]string, len(fm.report.Parameters))
	for i := range rows {
		ph := make([]string, cols)
		for j := range ph {
			ph[j] = "$" + strconv.Itoa(i*cols+j+1)
		}
		rows[i] = "(" + strings.Join(ph, ", ") + ")"
	}
	fm.qDedupe = `SELECT 1 FROM hl7_messages WHERE facility = $1 AND control_id = $2`
	fm.qBill = `INSERT INTO bills (lab_id, lab_bill_id, accession_number, patient_name, patient_email, patient_phone,
		referral_name, referral_email, referral_fax, referral_phone, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING id`
	fm.qReport = `INSERT INTO lab_reports (lab_id, bill_id, test_id, test_name, department, dismissed,
		sample_collected, critical_values, resulted_at, last_updated)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id`
	fm.qParams = `INSERT INTO report_parameters (lab_report_id, bill_id, position, name, value, unit,
		normal_low, normal_high, critical_low, critical_high, flag)
		VALUES ` + strings.Join(rows, ", ")
	fm.qMessage = `INSERT INTO hl7_messages (facility, control_id, lab_id, received_at) VALUES ($1, $2, $3, $4)`
	return fm, nil
}

// floorIngest stores one message's order, report and results and records
// the message, in one transaction, after checking it is not a duplicate.
func floorIngest(ctx context.Context, db floorDB, fm *floorMessage, lab int64, ctrl, orderNo string) (err error) {
	tx, err := db.begin(ctx)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer func() {
		if err != nil {
			tx.rollback(ctx)
		}
	}()
	now := time.Now().UTC().Truncate(time.Microsecond)
	n, err := tx.rows(ctx, fm.qDedupe, benchFacility, ctrl)
	if err != nil {
		return fmt.Errorf("look up message %s: %w", ctrl, err)
	}
	if n != 0 {
		return fmt.Errorf("message %s: already stored", ctrl)
	}
	o, r := fm.order, fm.report
	billID, err := tx.id(ctx, fm.qBill, lab, orderNo, "F-"+orderNo, o.Patient.Name, o.Patient.Email, o.Patient.Phone,
		o.Referral.Name, o.Referral.Email, o.Referral.Fax, o.Referral.Phone, now)
	if err != nil {
		return fmt.Errorf("insert order %s: %w", orderNo, err)
	}
	resulted := r.ResultedAt
	if resulted.IsZero() || resulted.After(now) {
		resulted = now
	}
	reportID, err := tx.id(ctx, fm.qReport, lab, billID, r.TestID, r.TestName, r.Department, false, true,
		int(fm.state), resulted.UTC().Truncate(time.Microsecond), now)
	if err != nil {
		return fmt.Errorf("insert report of order %s: %w", orderNo, err)
	}
	args := make([]any, 0, 11*len(r.Parameters))
	for i, p := range r.Parameters {
		args = append(args, reportID, billID, i, p.Name, p.Value, p.Unit,
			p.NormalLow, p.NormalHigh, p.CriticalLow, p.CriticalHigh, p.Flag)
	}
	if err = tx.exec(ctx, fm.qParams, args...); err != nil {
		return fmt.Errorf("insert results of order %s: %w", orderNo, err)
	}
	if err = tx.exec(ctx, fm.qMessage, benchFacility, ctrl, lab, now); err != nil {
		return fmt.Errorf("record message %s: %w", ctrl, err)
	}
	if err = tx.commit(ctx); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}
