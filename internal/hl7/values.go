package hl7

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// ParseTS parses an HL7 TS/DTM value of any precision,
// YYYY[MM[DD[HH[MM[SS[.S[S[S[S]]]]]]]]][+/-ZZZZ]. Omitted parts take their
// lowest value. Without an offset the time is in loc (time.UTC when loc is
// nil). An empty or blank value gives the zero time and no error. Up to nine
// fractional digits are accepted, more than HL7's four, because some
// senders write nanoseconds.
func ParseTS(s string, loc *time.Location) (time.Time, error) {
	orig := s
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, nil
	}
	if loc == nil {
		loc = time.UTC
	}
	t, err := parseTS(s, loc)
	if err != nil {
		return time.Time{}, fmt.Errorf("invalid HL7 timestamp %q: %w", clip(orig, 40), err)
	}
	return t, nil
}

func parseTS(s string, loc *time.Location) (time.Time, error) {
	if i := strings.LastIndexAny(s, "+-"); i >= 0 {
		zone, err := parseOffset(s[i:])
		if err != nil {
			return time.Time{}, err
		}
		s, loc = s[:i], zone
	}
	digits, frac, hasFrac := strings.Cut(s, ".")
	if !allDigits(digits) {
		return time.Time{}, errors.New("want digits YYYY[MM[DD[HH[MM[SS]]]]]")
	}
	switch len(digits) {
	case 4, 6, 8, 10, 12, 14:
	default:
		return time.Time{}, fmt.Errorf("%d digits before the fraction/offset, want 4, 6, 8, 10, 12 or 14", len(digits))
	}
	nanos := 0
	if hasFrac {
		if len(digits) != 14 || frac == "" || len(frac) > 9 || !allDigits(frac) {
			return time.Time{}, errors.New("a fraction needs seconds and 1 to 9 digits")
		}
		nanos, _ = strconv.Atoi(frac + strings.Repeat("0", 9-len(frac)))
	}
	// Parts not given default to the start of the period: month 1, day 1, 00:00:00.
	p := [6]int{0, 1, 1, 0, 0, 0}
	for i := 0; 4+2*i <= len(digits) && i < 6; i++ {
		if i == 0 {
			p[0], _ = strconv.Atoi(digits[:4])
			continue
		}
		p[i], _ = strconv.Atoi(digits[2+2*i : 4+2*i])
	}
	year, month, day, hour, minute, sec := p[0], p[1], p[2], p[3], p[4], p[5]
	if month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || minute > 59 || sec > 59 {
		return time.Time{}, errors.New("date or time part out of range")
	}
	t := time.Date(year, time.Month(month), day, hour, minute, sec, nanos, loc)
	if t.Day() != day {
		return time.Time{}, fmt.Errorf("day %d does not exist in %04d-%02d", day, year, month)
	}
	return t, nil
}

// parseOffset parses "+HHMM" or "-HHMM".
func parseOffset(s string) (*time.Location, error) {
	if len(s) != 5 || !allDigits(s[1:]) {
		return nil, fmt.Errorf("UTC offset %q: want +HHMM or -HHMM", s)
	}
	hh, _ := strconv.Atoi(s[1:3])
	mm, _ := strconv.Atoi(s[3:5])
	if hh > 14 || mm > 59 {
		return nil, fmt.Errorf("UTC offset %q out of range", s)
	}
	secs := (hh*60 + mm) * 60
	if s[0] == '-' {
		secs = -secs
	}
	return time.FixedZone("", secs), nil
}

func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// ParseRange reads the bounds of a reference range such as "3.5-5.1",
// "3.5 - 5.1", "-1.0-2.0", "<5", "<=5", ">10" or ">=10". A bound that is
// absent or not understood is nil; text like "negative" gives nil, nil.
// Strict and non-strict comparisons are not distinguished.
func ParseRange(s string) (low, high *float64) {
	s = strings.TrimSpace(s)
	for _, p := range []string{"<=", "≤", "<"} {
		if rest, ok := strings.CutPrefix(s, p); ok {
			return nil, parseWholeNumber(rest)
		}
	}
	for _, p := range []string{">=", "≥", ">"} {
		if rest, ok := strings.CutPrefix(s, p); ok {
			return parseWholeNumber(rest), nil
		}
	}
	a, rest, ok := scanNumber(s)
	if !ok {
		return nil, nil
	}
	rest, ok = strings.CutPrefix(strings.TrimLeft(rest, " "), "-")
	if !ok {
		return nil, nil
	}
	b := parseWholeNumber(rest)
	if b == nil {
		return nil, nil
	}
	return &a, b
}

// parseWholeNumber parses s, trimmed, when it is exactly one number.
func parseWholeNumber(s string) *float64 {
	v, rest, ok := scanNumber(strings.TrimSpace(s))
	if !ok || rest != "" {
		return nil
	}
	return &v
}

// scanNumber reads a leading [+-]digits[.digits] from s. It avoids
// strconv.ParseFloat's wider syntax (hex, exponents, "Inf", "NaN"), which
// would misread text ranges.
func scanNumber(s string) (float64, string, bool) {
	i := 0
	if i < len(s) && (s[i] == '-' || s[i] == '+') {
		i++
	}
	digits := 0
	for ; i < len(s) && s[i] >= '0' && s[i] <= '9'; i++ {
		digits++
	}
	if i < len(s) && s[i] == '.' {
		i++
		for ; i < len(s) && s[i] >= '0' && s[i] <= '9'; i++ {
			digits++
		}
	}
	if digits == 0 {
		return 0, s, false
	}
	v, err := strconv.ParseFloat(s[:i], 64)
	if err != nil {
		return 0, s, false
	}
	return v, s[i:], true
}
