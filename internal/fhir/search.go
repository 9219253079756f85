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

// search is a parsed Communication search.
type search struct {
	q     Query // without Departments and Limit: they come from the caller
	count int
	// none says the parameters can match no record (another resource type,
	// an id that is not ours, an empty date range): nothing is read.
	none bool
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

// parseSearch reads the parameters of a Communication search in lab labID.
// Values of one parameter separated by commas are alternatives (OR);
// repeated parameters must all hold (AND).
func parseSearch(v url.Values, labID int64) (search, error) {
	s := search{count: defaultCount}
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
		var err error
		switch param {
		case "based-on":
			err = s.reference(param, modifier, values, "ServiceRequest", labID)
		case "subject", "patient":
			err = s.reference(param, modifier, values, "Patient", labID)
		case "status":
			err = s.status(modifier, values)
		case "sent":
			err = s.sent(modifier, values)
		case "_count", "_cursor", "_format", "_total":
			err = s.control(name, values)
		default:
			err = notSupported("unknown search parameter %q; Communication supports based-on, subject, patient, sent, status, _count, _total", name)
		}
		if err != nil {
			return search{}, err
		}
	}
	if !s.q.SentFrom.IsZero() && !s.q.SentBefore.IsZero() && !s.q.SentFrom.Before(s.q.SentBefore) {
		s.none = true
	}
	if s.q.BillIDs != nil && len(s.q.BillIDs) == 0 || s.q.LabBillIDs != nil && len(s.q.LabBillIDs) == 0 ||
		s.q.Statuses != nil && len(s.q.Statuses) == 0 {
		s.none = true
	}
	return s, nil
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
			s.q.LabBillIDs = intersect(s.q.LabBillIDs, ids)
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
		s.q.BillIDs = intersect(s.q.BillIDs, ids)
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
		prefix := "eq"
		if len(value) > 2 && value[0] >= 'a' && value[0] <= 'z' {
			prefix, value = value[:2], value[2:]
		}
		start, end, err := parseDate(value)
		if err != nil {
			return err
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
		if n == 0 {
			s.q.Total = true // no entries asked for: the count is the answer
		}
	case "_total":
		// FHIR's values: none, estimate, accurate. Only accurate counts;
		// this server gives no estimates, and FHIR lets it leave them out.
		switch v {
		case "accurate":
			s.q.Total = true
		case "none", "estimate":
		default:
			return invalid("_total must be none, estimate or accurate, not %q", v)
		}
	case "_cursor":
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n <= 0 {
			return invalid("_cursor %q is not one this server gave; follow the Bundle's next link", v)
		}
		s.q.AfterID = n
	case "_format":
		if !jsonFormat(v) {
			return &problem{http.StatusNotAcceptable, "not-supported", fmt.Sprintf("_format %q is not served; this server speaks JSON only", v)}
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
