package callout

import (
	"fmt"
	"unicode/utf8"
)

// The text rules. Every text that reaches the database from outside — an
// order, a callout, the lab's settings, an HL7 message, a query, a header —
// is checked by one of these, so that a value is either stored as sent or
// refused with a message naming the field. PostgreSQL cannot store NUL
// (U+0000) at all; the other characters refused here forge or hide lines
// where the text is shown: CR LF in an Order ID becomes a line of its own in
// the plain-text email, and a bidi override makes a name read backwards.
//
//   - CheckLine, for single-line fields (names, Order ID, accession number,
//     test names and ids, departments, email addresses, phone and fax
//     numbers, the notified person, units, flags, ids and keys): refuses
//     every control character — C0 including TAB, CR and LF, DEL and C1 —
//     the bidi embedding, override and isolate controls (U+202A–U+202E,
//     U+2066–U+2069) and the line and paragraph separators U+2028/U+2029.
//   - CheckMultiline, for free text (comment, additional instruction, a
//     result's value, which HL7 TX/FT results spread over lines): the same,
//     except that LF and TAB are kept. CR is refused too: the web forms turn
//     the CR LF browsers send into LF before they call the service, and an
//     API client sends "\n".
//
// Both refuse text that is not valid UTF-8. Lengths stay with each field's
// own rule.

// CheckLine checks a single-line text field; field names it in the error.
func CheckLine(field, s string) error {
	return checkRunes(field, s, false)
}

// CheckMultiline checks a multi-line text field: as CheckLine, but LF and
// TAB are allowed.
func CheckMultiline(field, s string) error {
	return checkRunes(field, s, true)
}

// checkDocument checks a whole document a lab admin uploads (the email
// template): valid UTF-8 and no control character but TAB, LF and CR, which
// a template file saved on Windows has on every line.
func checkDocument(field, s string) error {
	if !utf8.ValidString(s) {
		return Errorf(KindUnprocessable, "%s is not valid UTF-8", field)
	}
	for _, r := range s {
		if isControl(r) && r != '\t' && r != '\n' && r != '\r' {
			return refuse(field, r)
		}
	}
	return nil
}

func checkRunes(field, s string, multiline bool) error {
	// Fast path: printable ASCII, what nearly every value is.
	ascii := true
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f {
			ascii = false
			break
		}
	}
	if ascii {
		return nil
	}
	if !utf8.ValidString(s) {
		return Errorf(KindUnprocessable, "%s is not valid UTF-8", field)
	}
	for _, r := range s {
		if multiline && (r == '\n' || r == '\t') {
			continue
		}
		if isControl(r) || isBidiControl(r) || (!multiline && isLineSeparator(r)) {
			return refuse(field, r)
		}
	}
	return nil
}

// refuse names the field and the character, by code point: the character
// itself would be invisible, or would do in the message what it was
// refused for.
func refuse(field string, r rune) error {
	what := "a control character"
	switch {
	case isBidiControl(r):
		what = "a bidirectional control character"
	case r == '\u2028':
		what = "a line separator"
	case r == '\u2029':
		what = "a paragraph separator"
	}
	return &Error{Kind: KindUnprocessable, Message: fmt.Sprintf("%s contains %s (U+%04X)", field, what, r)}
}

// isControl reports C0 controls, DEL and C1 controls (Unicode category Cc).
func isControl(r rune) bool {
	return r < 0x20 || (r >= 0x7f && r <= 0x9f)
}

// isBidiControl reports the explicit embedding, override and isolate
// controls, which reorder the text that follows them on screen. The
// implicit marks (LRM, RLM, ALM) change nothing but neutral characters and
// are allowed.
func isBidiControl(r rune) bool {
	return (r >= '\u202a' && r <= '\u202e') || (r >= '\u2066' && r <= '\u2069')
}

func isLineSeparator(r rune) bool { return r == '\u2028' || r == '\u2029' }
