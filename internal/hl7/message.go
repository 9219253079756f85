package hl7

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
)

// ErrEmpty is returned (wrapped in a ParseError) by Parse when the input
// holds no segment at all.
var ErrEmpty = errors.New("hl7: empty message")

// Delims is the delimiter set of a message as declared in MSH-1 and MSH-2.
type Delims struct {
	Field        byte // MSH-1, usually '|'
	Component    byte // MSH-2 character 1, usually '^'
	Repetition   byte // MSH-2 character 2, usually '~'
	Escape       byte // MSH-2 character 3, usually '\'
	Subcomponent byte // MSH-2 character 4, usually '&'
	Truncation   byte // MSH-2 character 5 (HL7 v2.7+), usually '#'; 0 when not declared
}

// DefaultDelims is the delimiter set recommended by HL7 and used for every
// message this package writes.
var DefaultDelims = Delims{Field: '|', Component: '^', Repetition: '~', Escape: '\\', Subcomponent: '&'}

// EncodingChars returns the MSH-2 value for d, e.g. `^~\&`.
func (d Delims) EncodingChars() string {
	b := []byte{d.Component, d.Repetition, d.Escape, d.Subcomponent}
	if d.Truncation != 0 {
		b = append(b, d.Truncation)
	}
	return string(b)
}

// validate checks that every delimiter is printable ASCII punctuation and
// that no character is used twice, because either would make splitting
// ambiguous.
func (d Delims) validate() error {
	chars := []byte{d.Field, d.Component, d.Repetition, d.Escape, d.Subcomponent}
	names := []string{"field separator", "component separator", "repetition separator", "escape character", "subcomponent separator"}
	if d.Truncation != 0 {
		chars = append(chars, d.Truncation)
		names = append(names, "truncation character")
	}
	for i, c := range chars {
		if !isDelimChar(c) {
			return fmt.Errorf("%s %q is not printable ASCII punctuation", names[i], c)
		}
		for j := range i {
			if chars[j] == c {
				return fmt.Errorf("%s and %s are both %q", names[j], names[i], c)
			}
		}
	}
	return nil
}

func isDelimChar(c byte) bool {
	return c > ' ' && c < 0x7f && !isAlnum(c)
}

func isAlnum(c byte) bool {
	return c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9'
}

// Message is one parsed HL7 v2 message. Its text is UTF-8 whatever the
// character set it was sent in.
type Message struct {
	Segments []Segment
	Delims   Delims
	// Charset names the character set the message was read with: a name of
	// HL7 table 0211 such as "UNICODE UTF-8" or "8859/1", or the label the
	// sender wrote in MSH-18 when only the WHATWG encoding standard knows
	// it. Empty for a message built by hand, which is UTF-8.
	Charset string
	// Warnings lists what Parse had to guess, such as a character set it
	// does not know; ParseORU passes them on.
	Warnings []Issue

	cs charset
}

// Segment is one segment. Fields[n-1] holds field n, so for MSH Fields[0] is
// the field separator (MSH-1) and Fields[1] the encoding characters (MSH-2),
// each stored as a single unsplit value.
type Segment struct {
	Name   string
	Fields []Field

	// delims lets the accessors re-join subcomponents and components with
	// the separators the sender used.
	delims Delims
}

// Field is one field: its repetitions, each split into components, each
// split into subcomponents. The leaf strings are unescaped.
type Field []Repetition

// Repetition is one repetition of a field, split into components.
type Repetition []Component

// Component is one component, split into unescaped subcomponents.
type Component []string

// Parse parses one ER7-encoded HL7 v2 message. See the package documentation
// for the accepted line endings, character sets and escape handling. Its
// errors are *ParseError values.
func Parse(data []byte) (*Message, error) {
	text, cs, warns := decodeMessage(trimLeading(data))
	lines := splitLines(text)
	if len(lines) == 0 {
		return nil, &ParseError{Issue: Issue{Code: CodeSegmentSequence, Severity: SeverityError, Message: "empty message"}, err: ErrEmpty}
	}
	msh, d, err := parseMSH(lines[0], cs)
	if err != nil {
		return nil, err
	}
	m := &Message{Delims: d, Segments: make([]Segment, 0, len(lines)), Charset: cs.name, Warnings: warns, cs: cs}
	m.Segments = append(m.Segments, msh)
	for i, line := range lines[1:] {
		seg, err := parseSegment(line, i+2, d, cs)
		if err != nil {
			return nil, err
		}
		m.Segments = append(m.Segments, seg)
	}
	return m, nil
}

// trimLeading drops a UTF-8 byte order mark and white space that editors
// and some senders put before MSH.
func trimLeading(data []byte) []byte {
	data = bytes.TrimPrefix(data, []byte("\xEF\xBB\xBF"))
	return bytes.TrimLeft(data, " \t\r\n")
}

// splitLines splits on "\r", "\n" and "\r\n" and drops lines that are empty
// or white space only, so all three line-ending styles parse alike.
func splitLines(s string) []string {
	var lines []string
	for len(s) > 0 {
		i := strings.IndexAny(s, "\r\n")
		line := s
		if i >= 0 {
			line, s = s[:i], s[i+1:]
		} else {
			s = ""
		}
		if strings.TrimSpace(line) != "" {
			lines = append(lines, line)
		}
	}
	return lines
}

// mshLoc is the location of the header segment.
var mshLoc = Location{Segment: "MSH", Sequence: 1, Position: 1}

// parseMSH reads the delimiters from MSH-1 and MSH-2 and splits the rest of
// the header with them.
func parseMSH(line string, cs charset) (Segment, Delims, error) {
	if !strings.HasPrefix(line, "MSH") {
		return Segment{}, Delims{}, refuse(Location{Position: 1}, CodeSegmentSequence, "first segment must be MSH, got %q", line[:min(3, len(line))])
	}
	if len(line) < 4 {
		return Segment{}, Delims{}, refuse(mshLoc.At(1), CodeRequiredFieldMissing, "MSH too short to hold delimiters (MSH-1 and MSH-2 missing)")
	}
	sep := line[3]
	rest := line[4:]
	enc, fields, hasFields := strings.Cut(rest, string(sep))
	if len(enc) < 4 {
		return Segment{}, Delims{}, refuse(mshLoc.At(2), CodeRequiredFieldMissing, "MSH too short to hold delimiters: MSH-2 %q has %d encoding characters, need 4", enc, len(enc))
	}
	if len(enc) > 5 {
		return Segment{}, Delims{}, refuse(mshLoc.At(2), CodeDataType, "bad delimiter set: MSH-2 %q has %d encoding characters, want 4 or 5", clip(enc, 10), len(enc))
	}
	d, err := delimsFrom(sep, enc)
	if err != nil {
		return Segment{}, Delims{}, refuse(mshLoc.At(2), CodeDataType, "bad delimiter set in MSH-1/MSH-2 %q: %v", line[3:4+len(enc)], err)
	}
	seg := Segment{Name: "MSH", delims: d}
	seg.Fields = []Field{leafField(string(sep)), leafField(enc)}
	if hasFields {
		for _, f := range strings.Split(fields, string(sep)) {
			seg.Fields = append(seg.Fields, parseField(f, d, cs))
		}
	}
	return seg, d, nil
}

// delimsFrom builds and validates the delimiters from MSH-1 and a 4 or 5
// character MSH-2.
func delimsFrom(sep byte, enc string) (Delims, error) {
	d := Delims{Field: sep, Component: enc[0], Repetition: enc[1], Escape: enc[2], Subcomponent: enc[3]}
	if len(enc) == 5 {
		if enc[4] == 0 { // Truncation 0 would read as "not declared"
			return Delims{}, errors.New("truncation character '\\x00' is not printable ASCII punctuation")
		}
		d.Truncation = enc[4]
	}
	return d, d.validate()
}

func leafField(s string) Field {
	return Field{Repetition{Component{s}}}
}

// parseSegment parses any segment after MSH; pos is its place in the
// message.
func parseSegment(line string, pos int, d Delims, cs charset) (Segment, error) {
	name, rest, hasFields := strings.Cut(line, string(d.Field))
	if !validSegmentName(name) {
		return Segment{}, refuse(Location{Position: pos}, CodeSegmentSequence, "invalid segment name %q: want 3 characters A-Z or 0-9, starting with a letter", clip(name, 10))
	}
	if name == "MSH" {
		return Segment{}, refuse(Location{Segment: "MSH", Sequence: 2, Position: pos}, CodeSegmentSequence,
			"unexpected second MSH segment: Parse reads one message (use SplitFile for files holding several)")
	}
	seg := Segment{Name: name, delims: d}
	if hasFields {
		parts := strings.Split(rest, string(d.Field))
		seg.Fields = make([]Field, len(parts))
		for i, f := range parts {
			seg.Fields[i] = parseField(f, d, cs)
		}
	}
	return seg, nil
}

func validSegmentName(s string) bool {
	if len(s) != 3 || s[0] < 'A' || s[0] > 'Z' {
		return false
	}
	for i := 1; i < 3; i++ {
		if !(s[i] >= 'A' && s[i] <= 'Z' || s[i] >= '0' && s[i] <= '9') {
			return false
		}
	}
	return true
}

// parseField splits a raw field down to subcomponents and unescapes each
// leaf last, so escaped delimiters never split anything.
func parseField(raw string, d Delims, cs charset) Field {
	reps := strings.Split(raw, string(d.Repetition))
	f := make(Field, len(reps))
	for i, r := range reps {
		comps := strings.Split(r, string(d.Component))
		rep := make(Repetition, len(comps))
		for j, c := range comps {
			subs := strings.Split(c, string(d.Subcomponent))
			for k, s := range subs {
				subs[k] = d.unescape(s, cs)
			}
			rep[j] = subs
		}
		f[i] = rep
	}
	return f
}

// clip shortens s for error messages so hostile input cannot blow them up.
func clip(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}

// First returns the first segment named name, or nil. The accessors of
// Segment accept a nil receiver, so m.First("PID").Field(3) is safe.
func (m *Message) First(name string) *Segment {
	if m == nil {
		return nil
	}
	for i := range m.Segments {
		if m.Segments[i].Name == name {
			return &m.Segments[i]
		}
	}
	return nil
}

// All returns every segment named name, in message order.
func (m *Message) All(name string) []*Segment {
	if m == nil {
		return nil
	}
	var out []*Segment
	for i := range m.Segments {
		if m.Segments[i].Name == name {
			out = append(out, &m.Segments[i])
		}
	}
	return out
}

// Get returns field n of the first segment named name, as Segment.Field
// does, or "" when there is no such segment or field.
func (m *Message) Get(name string, n int) string {
	return m.First(name).Field(n)
}

// Encode writes m in ER7 form with m.Delims, escaping every value and ending
// each segment with "\r", in the character set m was read with. When Parse
// had no warning about the character set, Parse(m.Encode()) reproduces m.
func (m *Message) Encode() []byte {
	if m == nil {
		return nil
	}
	var b strings.Builder
	for i := range m.Segments {
		m.Segments[i].encode(&b, m.Delims)
		b.WriteByte('\r')
	}
	return m.cs.encode(b.String())
}

func (s *Segment) encode(b *strings.Builder, d Delims) {
	b.WriteString(s.Name)
	fields := s.Fields
	if s.Name == "MSH" {
		// MSH-1 and MSH-2 are the delimiters themselves and are never escaped.
		b.WriteByte(d.Field)
		b.WriteString(d.EncodingChars())
		fields = fields[min(2, len(fields)):]
	}
	for _, f := range fields {
		b.WriteByte(d.Field)
		b.WriteString(encodeField(f, d))
	}
}

// encodeField writes one field with delimiters d, escaping each leaf.
func encodeField(f Field, d Delims) string {
	var b strings.Builder
	for i, rep := range f {
		if i > 0 {
			b.WriteByte(d.Repetition)
		}
		for j, comp := range rep {
			if j > 0 {
				b.WriteByte(d.Component)
			}
			for k, sub := range comp {
				if k > 0 {
					b.WriteByte(d.Subcomponent)
				}
				b.WriteString(d.EscapeText(sub))
			}
		}
	}
	return b.String()
}

// FieldCount returns the number of fields in s, counting MSH-1 and MSH-2
// for MSH. Trailing empty fields the sender wrote are counted.
func (s *Segment) FieldCount() int {
	if s == nil {
		return 0
	}
	return len(s.Fields)
}

// Field returns component 1 of the first repetition of field n. Its
// subcomponents, if any, are joined with the subcomponent separator; use Sub
// to read them one by one. Field(1) and Field(2) of MSH return the
// delimiters.
func (s *Segment) Field(n int) string {
	return s.ComponentAt(n, 1, 1)
}

// Component returns component c of the first repetition of field n.
func (s *Segment) Component(n, c int) string {
	return s.ComponentAt(n, 1, c)
}

// ComponentAt returns component c of repetition r of field n, with its
// subcomponents joined by the subcomponent separator.
func (s *Segment) ComponentAt(n, r, c int) string {
	return strings.Join(s.field(n).rep(r).comp(c), string(s.sep().Subcomponent))
}

// Sub returns subcomponent sub of component c of the first repetition of
// field n.
func (s *Segment) Sub(n, c, sub int) string {
	return s.SubAt(n, 1, c, sub)
}

// SubAt returns subcomponent sub of component c of repetition r of field n.
func (s *Segment) SubAt(n, r, c, sub int) string {
	return s.field(n).rep(r).comp(c).sub(sub)
}

// Repetitions returns how many repetitions field n has; 0 when the field is
// absent or empty, so `for r := 1; r <= s.Repetitions(n); r++` visits only
// real values.
func (s *Segment) Repetitions(n int) int {
	f := s.field(n)
	if len(f) == 1 && isEmptyRep(f[0]) {
		return 0
	}
	return len(f)
}

func isEmptyRep(r Repetition) bool {
	for _, c := range r {
		for _, sub := range c {
			if sub != "" {
				return false
			}
		}
	}
	return true
}

// Values returns component 1 of every repetition of field n, including
// empty repetitions, or nil when the field is absent or empty.
func (s *Segment) Values(n int) []string {
	count := s.Repetitions(n)
	if count == 0 {
		return nil
	}
	out := make([]string, count)
	for r := range count {
		out[r] = s.ComponentAt(n, r+1, 1)
	}
	return out
}

// Text returns repetition r of field n as one string: components joined by
// the component separator and subcomponents by the subcomponent separator,
// each unescaped. It suits free-text fields whose senders do not always
// escape ^ or &.
func (s *Segment) Text(n, r int) string {
	rep := s.field(n).rep(r)
	d := s.sep()
	parts := make([]string, len(rep))
	for i, c := range rep {
		parts[i] = strings.Join(c, string(d.Subcomponent))
	}
	return strings.Join(parts, string(d.Component))
}

// sep returns the delimiters the segment was parsed with, falling back to
// the defaults for segments built by hand.
func (s *Segment) sep() Delims {
	if s == nil || s.delims == (Delims{}) {
		return DefaultDelims
	}
	return s.delims
}

func (s *Segment) field(n int) Field {
	if s == nil || n < 1 || n > len(s.Fields) {
		return nil
	}
	return s.Fields[n-1]
}

func (f Field) rep(r int) Repetition {
	if r < 1 || r > len(f) {
		return nil
	}
	return f[r-1]
}

func (r Repetition) comp(c int) Component {
	if c < 1 || c > len(r) {
		return nil
	}
	return r[c-1]
}

func (c Component) sub(i int) string {
	if i < 1 || i > len(c) {
		return ""
	}
	return c[i-1]
}
