// Package ingest takes lab results in as HL7 v2 ORU^R01 messages: it maps a
// parsed message onto the domain's orders, reports and parameters, stores it
// through callout.Ingest and answers with the acknowledgement:
//
//	AA  stored (or already stored before: the same MSH-10 from the same facility)
//	AE  understood but not storable; MSA-3/ERR say why; the sender may fix and resend
//	AR  rejected: not ORU^R01, bad structure, a facility no lab accepts, or a
//	    facility bound to a client certificate the connection did not present
package ingest

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"time"

	"callout/internal/callout"
	"callout/internal/hl7"
)

// Store is what ingesting needs from storage.
type Store interface {
	callout.IngestStore
	// FacilityCertSubject returns the client certificate subject the
	// facility is bound to, "" for none.
	FacilityCertSubject(ctx context.Context, facility string) (string, error)
}

// Ingester turns raw messages into stored results and ACKs.
type Ingester struct {
	Store Store
	Log   *slog.Logger
	// Location is the senders' time zone for timestamps without an offset;
	// nil means UTC.
	Location *time.Location
	Now      func() time.Time

	// labs caches facility → lab and the lab's critical limits for a few
	// seconds: every message needs them, and they change rarely. A change
	// of limits applies to messages from at most labCacheTTL later.
	mu   sync.Mutex
	labs map[string]labEntry
}

type labEntry struct {
	labID       int64
	useFiller   bool
	limits      []callout.CriticalLimit
	certSubject string // the facility's sender, see senderAllowed
	expires     time.Time
}

// labCacheTTL bounds how stale a cached facility or limit may be.
const labCacheTTL = 5 * time.Second

// lab returns the lab accepting facility, from the cache when fresh.
func (in *Ingester) lab(ctx context.Context, facility string) (labEntry, error) {
	in.mu.Lock()
	e, ok := in.labs[facility]
	in.mu.Unlock()
	if ok && time.Now().Before(e.expires) {
		return e, nil
	}
	labID, useFiller, err := in.Store.LabForFacility(ctx, facility)
	if err != nil {
		return labEntry{}, err
	}
	limits, err := in.Store.CriticalLimits(ctx, labID)
	if err != nil {
		return labEntry{}, err
	}
	subject, err := in.Store.FacilityCertSubject(ctx, facility)
	if err != nil {
		return labEntry{}, err
	}
	e = labEntry{labID: labID, useFiller: useFiller, limits: limits, certSubject: subject, expires: time.Now().Add(labCacheTTL)}
	in.mu.Lock()
	if in.labs == nil || len(in.labs) > 1000 {
		in.labs = map[string]labEntry{}
	}
	in.labs[facility] = e
	in.mu.Unlock()
	return e, nil
}

// cachedLimits serves a lab's limits to callout.Ingest from the cache.
type cachedLimits struct {
	Store
	limits []callout.CriticalLimit
}

func (c cachedLimits) CriticalLimits(context.Context, int64) ([]callout.CriticalLimit, error) {
	return c.limits, nil
}

// Outcome is what handling one message did, for logs and tests.
type Outcome struct {
	Code      string // AA, AE or AR
	Reason    string
	LabID     int64
	Duplicate bool
	BillIDs   []int64
}

// Handle processes one raw message and returns its ACK.
func (in *Ingester) Handle(ctx context.Context, raw []byte) []byte {
	ack, out := in.Process(ctx, raw)
	in.log().Info("hl7 message", "code", out.Code, "reason", out.Reason, "lab", out.LabID, "duplicate", out.Duplicate, "orders", len(out.BillIDs))
	return ack
}

func (in *Ingester) log() *slog.Logger {
	if in.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return in.Log
}

func (in *Ingester) now() time.Time {
	if in.Now != nil {
		return in.Now()
	}
	return callout.Now()
}

// Process handles one raw message, returning the ACK and what happened.
func (in *Ingester) Process(ctx context.Context, raw []byte) ([]byte, Outcome) {
	now := in.now()
	msg, err := hl7.Parse(raw)
	if err != nil {
		reason := "the message could not be parsed: " + err.Error()
		return hl7.NewRejectACK(raw, reason, now), Outcome{Code: hl7.AckReject, Reason: reason}
	}
	reply := func(code, reason string, out Outcome) ([]byte, Outcome) {
		out.Code, out.Reason = code, reason
		text := reason
		if code == hl7.AckAccept && text == "" {
			text = "stored"
		}
		detail := ""
		if code != hl7.AckAccept {
			detail = reason
		}
		return hl7.NewACK(msg, code, text, detail, now), out
	}
	oru, err := hl7.ParseORUIn(msg, in.Location)
	if errors.Is(err, hl7.ErrNotORU) {
		return reply(hl7.AckReject, "only ORU^R01 messages are accepted: "+err.Error(), Outcome{})
	}
	if err != nil {
		return reply(hl7.AckReject, "bad message structure: "+err.Error(), Outcome{})
	}
	lab, err := in.lab(ctx, oru.SendingFacility)
	labID := lab.labID
	if callout.ErrorKind(err) == callout.KindNotFound {
		return reply(hl7.AckReject, "no lab accepts messages from sending facility (MSH-4) "+quote(oru.SendingFacility), Outcome{})
	}
	if err != nil {
		in.log().Error("hl7: look up facility", "err", err)
		return reply(hl7.AckError, "the message could not be stored now; send it again", Outcome{})
	}
	if !in.senderAllowed(ctx, oru.SendingFacility, lab.certSubject) {
		return reply(hl7.AckReject, "sending facility (MSH-4) "+quote(oru.SendingFacility)+
			" is bound to a TLS client certificate that this connection did not present", Outcome{LabID: labID})
	}
	res, err := callout.Ingest(ctx, cachedLimits{Store: in.Store, limits: lab.limits}, labID, Map(oru, lab.useFiller), now)
	out := Outcome{LabID: labID, Duplicate: res.Duplicate, BillIDs: res.BillIDs}
	switch {
	case err == nil && res.Duplicate:
		return reply(hl7.AckAccept, "already stored; ignored", out)
	case err == nil:
		return reply(hl7.AckAccept, "", out)
	case callout.ErrorKind(err) == callout.KindInternal:
		in.log().Error("hl7: store results", "err", err)
		return reply(hl7.AckError, "the message could not be stored now; send it again", out)
	}
	return reply(hl7.AckError, callout.ErrorMessage(err), out)
}

func quote(s string) string { return `"` + s + `"` }

// Map turns a parsed ORU^R01 into the domain's result message. The Order ID
// is the placer order number unless the lab numbers orders by the filler's.
func Map(oru *hl7.ORU, useFiller bool) callout.ResultMessage {
	m := callout.ResultMessage{Facility: oru.SendingFacility, ControlID: oru.ControlID}
	patient := callout.Contact{Name: oru.Patient.Name, Email: oru.Patient.Email, Phone: oru.Patient.Phone}
	index := map[string]int{} // several OBR of one order: one order, several reports
	for _, o := range oru.Orders {
		id := o.PlacerOrderNumber
		if useFiller {
			id = o.FillerOrderNumber
		}
		id = strings.TrimSpace(id)
		i, ok := index[id]
		if !ok {
			i = len(m.Orders)
			index[id] = i
			m.Orders = append(m.Orders, callout.IncomingOrder{
				LabBillID: id, AccessionNumber: strings.TrimSpace(o.FillerOrderNumber),
				Patient: patient, Referral: callout.Contact{Name: o.OrderingProvider.Name},
			})
			if useFiller {
				m.Orders[i].AccessionNumber = strings.TrimSpace(o.PlacerOrderNumber)
			}
		}
		r := callout.IncomingReport{TestID: o.TestID, TestName: o.TestName, Department: department(o.Section),
			ResultedAt: o.ObservedAt, ResultStatus: resultStatus(o)}
		for _, obx := range o.Observations {
			switch strings.ToUpper(obx.ResultStatus) {
			case "D", "X", "W":
				continue // deleted, not obtainable, or posted in error: no result to judge
			}
			r.Parameters = append(r.Parameters, callout.Parameter{
				Name: obx.Name, Value: obx.Value, Unit: obx.Unit,
				NormalLow: obx.NormalLow, NormalHigh: obx.NormalHigh,
				Flag: worstFlag(obx.Flags),
			})
		}
		m.Orders[i].Reports = append(m.Orders[i].Reports, r)
	}
	return m
}

// worstFlag picks the flag that matters most of OBX-8's repetitions: a
// critical flag (HH, LL, AA) over an abnormal one (H, L, A) over the rest.
func worstFlag(flags []string) string {
	best, rank := "", -1
	for _, f := range flags {
		f = strings.ToUpper(strings.TrimSpace(f))
		r := 0
		switch f {
		case "HH", "LL", "AA":
			r = 2
		case "H", "L", "A":
			r = 1
		case "":
			continue
		}
		if r > rank {
			best, rank = f, r
		}
	}
	return best
}

// sections names the common HL7 table 0074 diagnostic service sections the
// way lab departments are called; other codes are kept as sent.
var sections = map[string]string{
	"CH": "Biochemistry", "HM": "Haematology", "MB": "Microbiology", "SR": "Serology",
	"IMM": "Immunology", "BLB": "Blood Bank", "UR": "Urinalysis", "CG": "Cytogenetics",
	"CUS": "Cytology", "SP": "Pathology", "TX": "Toxicology", "HM1": "Haematology",
}

func department(code string) string {
	code = strings.TrimSpace(code)
	if d, ok := sections[strings.ToUpper(code)]; ok {
		return d
	}
	return code
}

// resultStatus is the status of an OBR's results: OBR-25 when it says P, F
// or C, else the most final of its OBX-11 (C over F over P).
func resultStatus(o hl7.ORUOrder) string {
	switch st := strings.ToUpper(strings.TrimSpace(o.ResultStatus)); st {
	case "P", "F", "C":
		return st
	}
	best := ""
	rank := map[string]int{"": 0, "P": 1, "F": 2, "C": 3}
	for _, obx := range o.Observations {
		st := strings.ToUpper(strings.TrimSpace(obx.ResultStatus))
		if r, ok := rank[st]; ok && r > rank[best] {
			best = st
		}
	}
	return best
}
