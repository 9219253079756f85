package fhir

import (
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"callout/internal/callout"
)

// Paging limits of a search.
const (
	defaultCount = 50
	maxCount     = 500
)

// search is a parsed search of one resource type.
type search struct {
	typ string
	q   Query         // Communication: without Departments and Limit, which come from the caller
	rq  ResourceQuery // the other types: the same
	// count is the page size.
	count int
	// none says the parameters can match nothing (another resource type,
	// an id that is not ours, an empty date range): nothing is read.
	none bool
	// used are the parameters the search applied, for its links: an
	// ignored parameter is not in the self link (FHIR's way of telling
	// the client it was ignored).
	used url.Values
}

// problem is a request the FHIR endpoints refuse, answered as an
// OperationOutcome with an issue-type code.
type problem struct {
	status int
	code   string
	msg    string
}

func (p *problem) Error() string { return p.msg }

func invalid(format string, args ...any) *problem {
	return &problem{http.StatusBadRequest, "invalid", fmt.Sprintf(format, args...)}
}

func notSupported(format string, args ...any) *problem {
	return &problem{http.StatusBadRequest, "not-supported", fmt.Sprintf(format, args...)}
}

// eventStatuses is the R4 value set event-status, and the callout status
// each code stands for ("" for codes no callout record has).
var eventStatuses = map[string]string{
	"preparation": "", "in-progress": callout.StatusAttempted, "not-done": "", "on-hold": "",
	"stopped": "", "completed": callout.StatusDone, "entered-in-error": "", "unknown": "",
}

// searchParams are the search parameters of each served type, besides
// _count, _cursor and _format.
var searchParams = map[string][]string{
	"Communication":    {"based-on", "subject", "patient", "sent", "status"},
	"Patient":          {"_id", "identifier"},
	"ServiceRequest":   {"_id", "identifier", "subject", "patient"},
	"DiagnosticReport": {"_id", "based-on", "subject", "patient"},
	"Observation":      {"_id", "based-on", "subject", "patient"},
	"Practitioner":     {"_id"},
	"Organization":     {"_id"},
}

// kinds are the rows behind each type but Communication.
var kinds = map[string]Kind{
	"Patient": KindPatient, "ServiceRequest": KindOrder, "Practitioner": KindOrder, "Organization": KindOrder,
	"DiagnosticReport": KindReport, "Observation": KindParameter,
}

// parseSearch reads the parameters of a search of typ in lab labID.
// Values of one parameter separated by commas are alternatives (OR);
// repeated parameters must all hold (AND). A parameter the type does not
// support is ignored, as FHIR's lenient handling says, unless strict
// (Prefer: handling=strict) asks for a refusal.
func parseSearch(typ string, v url.Values, labID int64, strict bool) (search, error) {
	s := search{typ: typ, count: defaultCount, rq: ResourceQuery{Kind: kinds[typ]}, used: url.Values{}}
	names := make([]string, 0, len(v))
	for name := range v {
		names = append(names, name)
	}
	sort.Strings(names) // the same error for the same request
	for _, name := range names {
		param, modifier, _ := strings.Cut(name, ":")
		values := nonEmpty(v[name])
		if len(values) == 0 {
			continue // FHIR: a parameter without a value is ignored
		}
		if !slices.Contains(searchParams[typ], param) && param != "_count" && param != "_cursor" && param != "_format" {
			if strict {
				return search{}, notSupported("unknown search parameter %q; %s supports %s, _count (Prefer: handling=strict refuses the others)",
					name, typ, strings.Join(searchParams[typ], ", "))
			}
			continue
		}
		var err error
		switch param {
		case "based-on":
			err = s.reference(param, modifier, values, "ServiceRequest", labID)
		case "subject", "patient":
			err = s.patient(param, modifier, values)
		case "status":
			err = s.status(modifier, values)
		case "sent":
			err = s.sent(modifier, values)
		case "_id":
			if modifier != "" {
				err = notSupported("_id does not support the modifier :%s", modifier)
			}
			for _, value := range values {
				if err == nil && !s.ids(strings.Split(value, ",")) {
					s.none = true
				}
			}
		case "identifier":
			err = s.identifier(modifier, values, labID)
		case "_count", "_cursor", "_format":
			err = s.control(name, values)
		}
		if err != nil {
			return search{}, err
		}
		if name != "_cursor" {
			s.used[name] = v[name]
		}
	}
	if !s.q.SentFrom.IsZero() && !s.q.SentBefore.IsZero() && !s.q.SentFrom.Before(s.q.SentBefore) {
		s.none = true
	}
	for _, l := range [][]int64{s.q.BillIDs, s.rq.IDs, s.rq.BillIDs} {
		if l != nil && len(l) == 0 {
			s.none = true
		}
	}
	for _, l := range [][]string{s.q.LabBillIDs, s.q.Statuses, s.rq.LabBillIDs, s.rq.MRNs} {
		if l != nil && len(l) == 0 {
			s.none = true
		}
	}
	if s.q.PatientIDs != nil && len(s.q.PatientIDs)+len(s.q.OrderPatients) == 0 ||
		s.rq.PatientIDs != nil && len(s.rq.PatientIDs)+len(s.rq.OrderPatients) == 0 {
		s.none = true
	}
	s.q.AfterID = s.rq.AfterID
	return s, nil
}

// idPrefixes are the prefixes of ids of the types whose resources stand
// on an order: Practitioner/referral-{billID}, Organization/org-{billID},
// and Patient/order-{billID} for an order without an MRN.
var idPrefixes = map[string]string{"Practitioner": "referral-", "Organization": "org-", "Patient": "order-"}

// ids narrows the search to resources with one of these ids, and reports
// whether any of them can name one. A Patient id is a patient's
// ("123") or that of an order without an MRN ("order-45"); a search
// gives the former when it has both.
func (s *search) ids(values []string) bool {
	var ids, orders []int64
	prefix := idPrefixes[s.typ]
	for _, raw := range values {
		num, hasPrefix := strings.TrimSpace(raw), false
		if prefix != "" {
			num, hasPrefix = strings.CutPrefix(num, prefix)
		}
		n, err := strconv.ParseInt(num, 10, 64)
		if err != nil || n <= 0 || strconv.FormatInt(n, 10) != num {
			continue // not an id this server gives
		}
		switch {
		case s.typ == "Patient" && hasPrefix:
			orders = append(orders, n)
		case s.typ == "Patient" || prefix == "" || hasPrefix:
			ids = append(ids, n)
		}
	}
	if s.typ == "Patient" && len(ids) == 0 && len(orders) > 0 {
		// The patient of an order without an MRN: found through the order.
		s.rq.Kind = KindOrder
		s.rq.IDs = intersect(s.rq.IDs, orders)
		s.rq.OrderPatients = intersect(s.rq.OrderPatients, orders)
		return true
	}
	s.rq.IDs = intersect(s.rq.IDs, ids)
	return len(s.rq.IDs) > 0
}

// identifier reads identifier searches: a Patient's MRN or a
// ServiceRequest's Order ID, as [system|]value.
func (s *search) identifier(modifier string, values []string, labID int64) error {
	if modifier != "" {
		return notSupported("identifier does not support the modifier :%s", modifier)
	}
	system, what := orderSystem(labID), "an Order ID"
	if s.typ == "Patient" {
		system, what = mrnSystem(labID), "an MRN"
	}
	for _, value := range values {
		var ids []string
		for _, alt := range strings.Split(value, ",") {
			sys, id, hasSystem := strings.Cut(alt, "|")
			if !hasSystem {
				sys, id = "", alt
			}
			if id == "" {
				return invalid("identifier needs %s, as [system|]value, not %q", what, alt)
			}
			if err := callout.CheckLine("the value of identifier", id); err != nil {
				return invalid("%s", callout.ErrorMessage(err))
			}
			if !hasSystem || sys == system {
				ids = append(ids, id)
			}
		}
		if s.typ == "Patient" {
			s.rq.MRNs = intersect(s.rq.MRNs, ids)
		} else {
			s.rq.LabBillIDs = intersect(s.rq.LabBillIDs, ids)
		}
	}
	return nil
}

// patient reads a subject or patient parameter: Patient/{id}, {id}, or an
// absolute URL ending in Patient/{id}, where id is a patient's or
// order-{billID}.
func (s *search) patient(param, modifier string, values []string) error {
	if modifier != "" && modifier != "Patient" {
		return notSupported("search parameter %s does not support the modifier :%s", param, modifier)
	}
	for _, value := range values {
		ids, orders := []int64{}, []int64{}
		for _, alt := range strings.Split(value, ",") {
			rtype, id := "Patient", alt
			if i := strings.LastIndexByte(alt, '/'); i >= 0 {
				rtype, id = alt[:i], alt[i+1:]
				if j := strings.LastIndexByte(rtype, '/'); j >= 0 {
					rtype = rtype[j+1:]
				}
			}
			if id == "" || rtype == "" {
				return invalid("%s needs a reference such as Patient/123, not %q", param, alt)
			}
			if rtype != "Patient" {
				continue
			}
			num, isOrder := strings.CutPrefix(id, "order-")
			n, err := strconv.ParseInt(num, 10, 64)
			switch {
			case err != nil || n <= 0:
			case isOrder:
				orders = append(orders, n)
			default:
				ids = append(ids, n)
			}
		}
		if s.typ == "Communication" {
			s.q.PatientIDs = intersect(s.q.PatientIDs, ids)
			s.q.OrderPatients = intersect(s.q.OrderPatients, orders)
		} else {
			s.rq.PatientIDs = intersect(s.rq.PatientIDs, ids)
			s.rq.OrderPatients = intersect(s.rq.OrderPatients, orders)
		}
	}
	return nil
}

func nonEmpty(values []string) []string {
	var out []string
	for _, v := range values {
		if strings.TrimSpace(v) != "" {
			out = append(out, v)
		}
	}
	return out
}

// reference reads a reference parameter whose target in Callout is typ:
// "typ/{billID}", "{billID}", an absolute URL ending in typ/{billID}, or, with
// :identifier on based-on, an Order ID ("[system|]value").
func (s *search) reference(param, modifier string, values []string, typ string, labID int64) error {
	switch {
	case modifier == "identifier" && param == "based-on":
		for _, value := range values {
			var ids []string
			for _, alt := range strings.Split(value, ",") {
				system, id, hasSystem := strings.Cut(alt, "|")
				if !hasSystem {
					system, id = "", alt
				}
				if id == "" {
					return invalid("based-on:identifier needs an Order ID, as [system|]value, not %q", alt)
				}
				if err := callout.CheckLine("the Order ID of based-on:identifier", id); err != nil {
					return invalid("%s", callout.ErrorMessage(err))
				}
				if !hasSystem || system == orderSystem(labID) {
					ids = append(ids, id)
				}
			}
			if s.typ == "Communication" {
				s.q.LabBillIDs = intersect(s.q.LabBillIDs, ids)
			} else {
				s.rq.LabBillIDs = intersect(s.rq.LabBillIDs, ids)
			}
		}
		return nil
	case modifier != "" && modifier != typ:
		return notSupported("search parameter %s does not support the modifier :%s", param, modifier)
	}
	for _, value := range values {
		var ids []int64
		for _, alt := range strings.Split(value, ",") {
			rtype, id := typ, alt
			if i := strings.LastIndexByte(alt, '/'); i >= 0 {
				rtype, id = alt[:i], alt[i+1:]
				if j := strings.LastIndexByte(rtype, '/'); j >= 0 {
					rtype = rtype[j+1:]
				}
			}
			if id == "" || rtype == "" {
				return invalid("%s needs a reference such as %s/123, not %q", param, typ, alt)
			}
			n, err := strconv.ParseInt(id, 10, 64)
			if rtype == typ && err == nil && n > 0 {
				ids = append(ids, n)
			}
		}
		if s.typ == "Communication" {
			s.q.BillIDs = intersect(s.q.BillIDs, ids)
		} else {
			s.rq.BillIDs = intersect(s.rq.BillIDs, ids)
		}
	}
	return nil
}

func (s *search) status(modifier string, values []string) error {
	if modifier != "" {
		return notSupported("search parameter status does not support the modifier :%s", modifier)
	}
	for _, value := range values {
		statuses := []string{}
		for _, alt := range strings.Split(value, ",") {
			system, code, hasSystem := strings.Cut(alt, "|")
			if !hasSystem {
				code = alt
			}
			st, ok := eventStatuses[code]
			if !ok {
				return &problem{http.StatusBadRequest, "code-invalid",
					fmt.Sprintf("status %q is not an event-status code (completed, in-progress, …)", code)}
			}
			if st != "" && (!hasSystem || system == systemEventStatus) {
				statuses = append(statuses, st)
			}
		}
		s.q.Statuses = intersect(s.q.Statuses, statuses)
	}
	return nil
}

// sent reads date conditions. A date is the range its precision covers
// (2026-03 is the whole of March, UTC unless a zone is given), and a prefix
// compares the record's instant with that range.
func (s *search) sent(modifier string, values []string) error {
	if modifier != "" {
		return notSupported("search parameter sent does not support the modifier :%s", modifier)
	}
	for _, value := range values {
		if strings.Contains(value, ",") {
			return notSupported("sent does not support alternatives (a comma); repeat the parameter for a range")
		}
		// A '+' of a time zone arrives as a space when the client did not
		// escape it.
		value = strings.ReplaceAll(value, " ", "+")
		// A prefix is two letters before a digit (gt2026); "yesterday"
		// has none and is named whole in the error.
		got, prefix := value, "eq"
		if len(value) > 2 && isLower(value[0]) && isLower(value[1]) && value[2] >= '0' && value[2] <= '9' {
			prefix, value = value[:2], value[2:]
		}
		start, end, err := parseDate(value)
		if err != nil {
			return invalid("sent %q is not a date: use [prefix]YYYY, YYYY-MM, YYYY-MM-DD or YYYY-MM-DDThh:mm[:ss][Z|±hh:mm]", got)
		}
		switch prefix {
		case "eq":
			s.from(start)
			s.before(end)
		case "ge":
			s.from(start)
		case "gt", "sa":
			s.from(end)
		case "lt", "eb":
			s.before(start)
		case "le":
			s.before(end)
		default:
			return notSupported("sent does not support the prefix %q; use eq, gt, ge, lt, le, sa or eb", prefix)
		}
	}
	return nil
}

func isLower(c byte) bool { return c >= 'a' && c <= 'z' }

func (s *search) from(t time.Time) {
	if t.After(s.q.SentFrom) {
		s.q.SentFrom = t
	}
}

func (s *search) before(t time.Time) {
	if s.q.SentBefore.IsZero() || t.Before(s.q.SentBefore) {
		s.q.SentBefore = t
	}
}

var dateRE = regexp.MustCompile(`^(\d{4})(?:-(\d{2})(?:-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2})?)?)?)?$`)

// parseDate reads an R4 search date (a year, month, day, or a time to the
// minute, second or fraction) and returns the range [start, end) it covers.
func parseDate(s string) (start, end time.Time, err error) {
	m := dateRE.FindStringSubmatch(s)
	bad := invalid("sent %q is not a date: use YYYY, YYYY-MM, YYYY-MM-DD or YYYY-MM-DDThh:mm[:ss][Z|±hh:mm]", s)
	if m == nil {
		return start, end, bad
	}
	num := func(i, def int) int {
		if m[i] == "" {
			return def
		}
		n, _ := strconv.Atoi(m[i])
		return n
	}
	year, month, day, hour, minute, sec := num(1, 0), num(2, 1), num(3, 1), num(4, 0), num(5, 0), num(6, 0)
	var nanos int
	if f := m[7]; f != "" {
		nanos, _ = strconv.Atoi((f[1:] + "000000000")[:9])
	}
	loc := time.UTC
	if z := m[8]; z != "" && z != "Z" {
		h, _ := strconv.Atoi(z[1:3])
		mi, _ := strconv.Atoi(z[4:6])
		off := h*3600 + mi*60
		if z[0] == '-' {
			off = -off
		}
		if h > 14 || mi > 59 {
			return start, end, bad
		}
		loc = time.FixedZone(z, off)
	}
	start = time.Date(year, time.Month(month), day, hour, minute, sec, nanos, loc)
	if start.Year() != year || int(start.Month()) != month || start.Day() != day ||
		start.Hour() != hour || start.Minute() != minute || start.Second() != sec {
		return start, end, bad // 2026-02-30, 25:00 and the like
	}
	switch {
	case m[2] == "":
		end = start.AddDate(1, 0, 0)
	case m[3] == "":
		end = start.AddDate(0, 1, 0)
	case m[4] == "":
		end = start.AddDate(0, 0, 1)
	case m[6] == "":
		end = start.Add(time.Minute)
	case m[7] == "":
		end = start.Add(time.Second)
	default:
		unit := time.Duration(1)
		for range 9 - (len(m[7]) - 1) {
			unit *= 10
		}
		end = start.Add(unit)
	}
	return start.UTC(), end.UTC(), nil
}

// control reads the result parameters.
func (s *search) control(name string, values []string) error {
	if len(values) > 1 {
		return invalid("%s is given more than once", name)
	}
	v := values[0]
	switch name {
	case "_count":
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return invalid("_count must be a whole number of at least 0, not %q", v)
		}
		s.count = min(n, maxCount)
	case "_cursor":
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n <= 0 {
			return invalid("_cursor %q is not one this server gave; follow the Bundle's next link", v)
		}
		s.rq.AfterID = n
	case "_format":
		if !jsonFormat(v) {
			return notAcceptable("_format " + strconv.Quote(v))
		}
	}
	return nil
}

func jsonFormat(v string) bool {
	switch strings.TrimSpace(strings.SplitN(v, ";", 2)[0]) {
	case "json", "application/json", "application/fhir+json":
		return true
	}
	return false
}

// intersect narrows cur (nil: anything) to the values also in next; the
// result is never nil.
func intersect[T comparable](cur, next []T) []T {
	out := []T{}
	for _, x := range next {
		if (cur == nil || slices.Contains(cur, x)) && !slices.Contains(out, x) {
			out = append(out, x)
		}
	}
	return out
}
