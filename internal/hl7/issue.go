package hl7

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// ErrorCode is a message error condition code from HL7 table 0357, the
// code an acknowledgement carries in ERR-3.
type ErrorCode int

// The codes of HL7 table 0357 (v2.5.1).
const (
	CodeAccepted                 ErrorCode = 0   // message accepted
	CodeSegmentSequence          ErrorCode = 100 // segments out of order, or a required segment missing
	CodeRequiredFieldMissing     ErrorCode = 101 // a required field is missing
	CodeDataType                 ErrorCode = 102 // a field holds data of the wrong type or length
	CodeTableValueNotFound       ErrorCode = 103 // a coded field holds a value not in its table
	CodeUnsupportedMessageType   ErrorCode = 200
	CodeUnsupportedEvent         ErrorCode = 201
	CodeUnsupportedProcessingID  ErrorCode = 202
	CodeUnsupportedVersion       ErrorCode = 203
	CodeUnknownKey               ErrorCode = 204
	CodeDuplicateKey             ErrorCode = 205
	CodeApplicationRecordLocked  ErrorCode = 206
	CodeApplicationInternalError ErrorCode = 207 // only for real internal faults, never for bad data
)

var codeText = map[ErrorCode]string{
	CodeAccepted:                 "Message accepted",
	CodeSegmentSequence:          "Segment sequence error",
	CodeRequiredFieldMissing:     "Required field missing",
	CodeDataType:                 "Data type error",
	CodeTableValueNotFound:       "Table value not found",
	CodeUnsupportedMessageType:   "Unsupported message type",
	CodeUnsupportedEvent:         "Unsupported event code",
	CodeUnsupportedProcessingID:  "Unsupported processing id",
	CodeUnsupportedVersion:       "Unsupported version id",
	CodeUnknownKey:               "Unknown key identifier",
	CodeDuplicateKey:             "Duplicate key identifier",
	CodeApplicationRecordLocked:  "Application record locked",
	CodeApplicationInternalError: "Application internal error",
}

// Text returns the code's name in table 0357, e.g. "Data type error".
func (c ErrorCode) Text() string {
	if t, ok := codeText[c]; ok {
		return t
	}
	return "Error " + strconv.Itoa(int(c))
}

// Severity is an ERR-4 severity from HL7 table 0516.
type Severity string

// The severities of HL7 table 0516.
const (
	SeverityError       Severity = "E" // the message was not processed
	SeverityWarning     Severity = "W" // processed, but something was ignored
	SeverityInformation Severity = "I"
)

// Location points at what an Issue is about, the way ERR-2 (HL7 data type
// ERL) does. Zero values mean "not narrower than that": a Location with
// only Segment and Sequence is about a whole segment.
type Location struct {
	Segment      string // segment id, e.g. "OBX"; "" when the issue is about the message as a whole
	Sequence     int    // which occurrence of Segment in the message, 1 for the first
	Field        int    // field position, 1-based
	Repetition   int    // field repetition, 1-based; 0 means 1 when Field is set
	Component    int    // component number, 1-based
	Subcomponent int    // subcomponent number, 1-based
	// Position is the segment's place in the whole message (MSH is 1). ERR-2
	// does not carry it; it makes log lines and messages easier to follow.
	Position int
}

// At returns l narrowed to field n and, optionally, a component.
func (l Location) At(field int, component ...int) Location {
	l.Field, l.Repetition, l.Component, l.Subcomponent = field, 0, 0, 0
	if len(component) > 0 {
		l.Component = component[0]
	}
	return l
}

// String renders l as people write it: "PID-7", "OBX[3]-5.2" (the third
// OBX), "MSH-9.1", or just "OBR[2]" for a whole segment.
func (l Location) String() string {
	if l.Segment == "" {
		return "message"
	}
	var b strings.Builder
	b.WriteString(l.Segment)
	if l.Sequence > 1 {
		fmt.Fprintf(&b, "[%d]", l.Sequence)
	}
	if l.Field > 0 {
		fmt.Fprintf(&b, "-%d", l.Field)
		if l.Repetition > 1 {
			fmt.Fprintf(&b, "(%d)", l.Repetition)
		}
		if l.Component > 0 {
			fmt.Fprintf(&b, ".%d", l.Component)
			if l.Subcomponent > 0 {
				fmt.Fprintf(&b, ".%d", l.Subcomponent)
			}
		}
	}
	return b.String()
}

// Issue is one problem found in a message: where it is, its HL7 table 0357
// code, how severe it is and a sentence for the people at the sending
// system. Warnings (severity W) describe fields that were ignored; an error
// (severity E) is why a message was refused. Each becomes one ERR segment
// of the acknowledgement (see Ack).
type Issue struct {
	Location Location
	Code     ErrorCode
	Severity Severity
	Message  string
}

// String renders the issue for logs: "W 102 PID-7: birth date ...".
func (i Issue) String() string {
	return fmt.Sprintf("%s %d %s: %s", i.Severity, i.Code, i.Location, i.Message)
}

// ParseError is the error Parse and ParseORU return when they refuse a
// message. Its Issue (severity E) says where and why, for the ERR segment
// of the AR acknowledgement.
type ParseError struct {
	Issue
	err error // a sentinel such as ErrNotORU or ErrEmpty, for errors.Is
}

func (e *ParseError) Error() string {
	switch {
	case e.Location.Position > 0 && e.Location.Segment == "":
		return fmt.Sprintf("hl7: segment %d: %s", e.Location.Position, e.Message)
	case e.Location.Position > 0:
		return fmt.Sprintf("hl7: segment %d (%s): %s", e.Location.Position, e.Location, e.Message)
	case e.Location.Segment != "":
		return fmt.Sprintf("hl7: %s: %s", e.Location, e.Message)
	}
	return "hl7: " + e.Message
}

func (e *ParseError) Unwrap() error { return e.err }

// refuse builds a ParseError with severity E.
func refuse(loc Location, code ErrorCode, format string, args ...any) *ParseError {
	return &ParseError{Issue: Issue{Location: loc, Code: code, Severity: SeverityError, Message: fmt.Sprintf(format, args...)}}
}

// IssueOf returns the Issue an error from Parse or ParseORU carries, and
// false for any other error.
func IssueOf(err error) (Issue, bool) {
	var pe *ParseError
	if errors.As(err, &pe) {
		return pe.Issue, true
	}
	return Issue{}, false
}

// maxWarnings bounds the warnings kept for one message: a hostile message
// with thousands of bad timestamps must not produce a huge ACK.
const maxWarnings = 100

// warnings collects Issues of severity W, keeping the first maxWarnings.
type warnings []Issue

func (w *warnings) add(loc Location, code ErrorCode, format string, args ...any) {
	if len(*w) < maxWarnings {
		*w = append(*w, Issue{Location: loc, Code: code, Severity: SeverityWarning, Message: fmt.Sprintf(format, args...)})
	}
}
