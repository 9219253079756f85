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

// ParseRange reads the numeric bounds of a reference range (OBX-7) in the
// forms real systems send:
//
//	3.5-5.1   3.5 - 5.1   -3-3   .4-1.5   -2.5 - -0.5   low-high
//	4.3 to 6.2   70_105   3.5–5.1 (en dash)                 other separators
//	<1.0   <=5   ≤5   >60   >=60   ≥60                    one bound
//	(<1.0)   [3.5-5.1]                                     in brackets
//	< 9 mcg/dL   3.5-5.1 mmol/L                            followed by a unit
//
// A bound that is absent or not understood is nil: text ranges such as
// "negative" or "M 13-17 F 12-16" give nil, nil, and so does a range whose
// low bound is above its high bound. Strict and non-strict comparisons are
// not distinguished. Keep the raw text too: it is what people read.
func ParseRange(s string) (low, high *float64) {
	s = strings.TrimSpace(s)
	if len(s) >= 2 && (s[0] == '(' && s[len(s)-1] == ')' || s[0] == '[' && s[len(s)-1] == ']') {
		s = strings.TrimSpace(s[1 : len(s)-1])
	}
	for _, p := range []string{"<=", "=<", "≤", "<"} {
		if rest, ok := strings.CutPrefix(s, p); ok {
			return nil, numberWithUnit(rest)
		}
	}
	for _, p := range []string{">=", "=>", "≥", ">"} {
		if rest, ok := strings.CutPrefix(s, p); ok {
			return numberWithUnit(rest), nil
		}
	}
	a, rest, ok := scanNumber(s)
	if !ok {
		return nil, nil
	}
	rest, ok = cutRangeSeparator(strings.TrimLeft(rest, " "))
	if !ok {
		return nil, nil
	}
	b := numberWithUnit(rest)
	if b == nil || a > *b {
		return nil, nil
	}
	return &a, b
}

// cutRangeSeparator removes the separator between the bounds of a range.
func cutRangeSeparator(s string) (string, bool) {
	for _, sep := range []string{"-", "–", "—", "_"} {
		if rest, ok := strings.CutPrefix(s, sep); ok {
			return rest, true
		}
	}
	if len(s) > 2 && strings.EqualFold(s[:2], "to") && (s[2] == ' ' || s[2] == '-' || s[2] == '.' || s[2] >= '0' && s[2] <= '9') {
		return s[2:], true
	}
	return s, false
}

// numberWithUnit parses s, trimmed, when it is one number, optionally
// followed by white space and a unit ("9 mcg/dL", "4.0 10*9/L"). Anything
// else after the number (a second number, an exponent, "1:10") makes it nil.
func numberWithUnit(s string) *float64 {
	v, rest, ok := scanNumber(strings.TrimSpace(s))
	if !ok || !isUnitText(rest) {
		return nil
	}
	return &v
}

// isUnitText reports whether s, the text after a number, is empty or a unit:
// it starts with white space or "%", its first word starts with a letter or
// is a power-of-ten unit such as 10*9/L, and no later word holds a digit
// (which would be a second range: "13-17 or 12-16").
func isUnitText(s string) bool {
	if s == "" {
		return true
	}
	if s[0] != ' ' && s[0] != '\t' && s[0] != '%' {
		return false
	}
	words := strings.Fields(s)
	if len(words) == 0 {
		return true
	}
	if first := words[0]; first[0] >= '0' && first[0] <= '9' || first[0] == '-' || first[0] == '+' || first[0] == '.' {
		if !strings.ContainsAny(first, "*^/") {
			return false
		}
	}
	for _, w := range words[1:] {
		if strings.ContainsAny(w, "0123456789") {
			return false
		}
	}
	return true
}

// isNumber reports whether s, trimmed, is exactly one number.
func isNumber(s string) bool {
	_, rest, ok := scanNumber(strings.TrimSpace(s))
	return ok && rest == ""
}

// comparators are the SN comparators of HL7 (SN.1), also accepted in front
// of an NM value because analysers report results beyond their measuring
// range that way ("<0.01", ">500").
var comparators = []string{"<=", ">=", "<>", "<", ">", "=", "≤", "≥"}

// ValidNumeric reports whether s is a usable numeric result (OBX-2 NM): a
// number, optionally after a comparator ("<0.5", ">= 500"), or a ratio
// ("1:128", "1/128"), with white space around it allowed.
func ValidNumeric(s string) bool {
	s = strings.TrimSpace(s)
	for _, c := range comparators {
		if rest, ok := strings.CutPrefix(s, c); ok {
			return isNumber(rest)
		}
	}
	if a, b, ok := strings.Cut(s, ":"); ok {
		return isNumber(a) && isNumber(b)
	}
	if a, b, ok := strings.Cut(s, "/"); ok {
		return isNumber(a) && isNumber(b)
	}
	return isNumber(s)
}

// validSN reports whether the components of an SN value (comparator,
// number, separator or suffix, number) make a structured numeric result:
// ">^100", "^1^:^128", "^10^-^20", "^2^+". A sender that put the whole
// value in the first component ("<5") is accepted too.
func validSN(comp, num1, sep, num2 string) bool {
	comp, num1, sep, num2 = strings.TrimSpace(comp), strings.TrimSpace(num1), strings.TrimSpace(sep), strings.TrimSpace(num2)
	if num1 == "" && sep == "" && num2 == "" {
		return ValidNumeric(comp)
	}
	switch comp {
	case "", "<", ">", "<=", ">=", "=", "<>":
	default:
		return false
	}
	switch sep {
	case "", "-", "+", "/", ".", ":":
	default:
		return false
	}
	switch {
	case num1 == "" && num2 == "":
		return false
	case num1 != "" && !isNumber(num1), num2 != "" && !isNumber(num2):
		return false
	case num2 != "" && sep == "":
		return false
	}
	return true
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
