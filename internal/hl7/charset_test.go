package hl7

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/text/encoding"
	"golang.org/x/text/encoding/charmap"
	"golang.org/x/text/encoding/japanese"
	"golang.org/x/text/encoding/korean"
	"golang.org/x/text/encoding/simplifiedchinese"
	"golang.org/x/text/encoding/traditionalchinese"
)

// charsetMessage is an ORU^R01 whose MSH-18 is charset, with name as the
// family name of the patient and the facility, encoded with enc (UTF-8
// when nil).
func charsetMessage(t *testing.T, enc encoding.Encoding, charset, name string) []byte {
	t.Helper()
	text := "MSH|^~\\&|LAB|ACME LAB|CALLOUT|Klinik " + name + "|20240301120000||ORU^R01|CS1|P|2.5.1|||||DEU|" + charset + "\r" +
		"PID|1||M1^^^H^MR||" + name + "^Anna\r" +
		"OBR|1|P1|F1|GLU^Glucose|||20240301080000\r" +
		"OBX|1|NM|GLU^Glucose||35|mg/dL|70-99|LL|||F\r"
	if enc == nil {
		return []byte(text)
	}
	b, err := enc.NewEncoder().Bytes([]byte(text))
	require.NoError(t, err)
	return b
}

func TestParseCharsets(t *testing.T) {
	tests := []struct {
		name     string
		enc      encoding.Encoding // how the test writes the bytes
		msh18    string
		family   string
		charset  string   // Message.Charset
		warnings []string // "<location> <code>"
	}{
		{"undeclared UTF-8", nil, "", "Müller", "UNICODE UTF-8", nil},
		{"UNICODE UTF-8", nil, "UNICODE UTF-8", "Müller", "UNICODE UTF-8", nil},
		{"ASCII declared, UTF-8 sent", nil, "ASCII", "Müller", "ASCII", nil},
		{"8859/1", charmap.ISO8859_1, "8859/1", "Müller", "8859/1", nil},
		{"8859/1 with Windows bytes", charmap.Windows1252, "8859/1", "Müller – €", "8859/1", nil},
		{"DICOM name for 8859/1", charmap.ISO8859_1, "ISO_IR 100", "Ñúñez", "ISO IR100", nil},
		{"8859/2", charmap.ISO8859_2, "8859/2", "Łódź", "8859/2", nil},
		{"8859/5", charmap.ISO8859_5, "8859/5", "Иванов", "8859/5", nil},
		{"8859/7", charmap.ISO8859_7, "8859/7", "Παπαδόπουλος", "8859/7", nil},
		{"8859/9", charmap.ISO8859_9, "8859/9", "Yıldız", "8859/9", nil},
		{"8859/15", charmap.ISO8859_15, "8859/15", "Œuvre €", "8859/15", nil},
		{"BIG-5 with a backslash trail byte", traditionalchinese.Big5, "BIG-5", "功能", "BIG-5", nil},
		{"GB 18030", simplifiedchinese.GB18030, "GB 18030-2000", "张伟", "GB 18030-2000", nil},
		{"KS X 1001", korean.EUCKR, "KS X 1001", "김민준", "KS X 1001", nil},
		{"ISO IR87 as alternate (JAHIS)", japanese.ISO2022JP, "~ISO IR87", "山田", "ISO IR87", nil},
		{"ISO IR87 first", japanese.ISO2022JP, "ISO IR87", "山田", "ISO IR87", nil},
		{"WHATWG label", charmap.Windows1250, "windows-1250", "Dvořák", "windows-1250", nil},
		{"undeclared Latin-1", charmap.ISO8859_1, "", "Müller", "8859/1", []string{"MSH-18 102"}},
		{"UTF-8 declared, Latin-1 sent", charmap.ISO8859_1, "UNICODE UTF-8", "Müller", "8859/1", []string{"MSH-18 102"}},
		{"unknown set", nil, "KLINGON", "Müller", "UNICODE UTF-8", []string{"MSH-18.1 103"}},
		{"unknown set, Latin-1 sent", charmap.ISO8859_1, "CNS 11643-1992", "Müller", "8859/1", []string{"MSH-18.1 103", "MSH-18 102"}},
		{"UTF-16 cannot be read with ASCII delimiters", nil, "UNICODE UTF-16", "Müller", "UNICODE UTF-8", []string{"MSH-18.1 103"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := Parse(charsetMessage(t, tt.enc, tt.msh18, tt.family))
			require.NoError(t, err)
			require.Equal(t, tt.family, m.First("PID").Sub(5, 1, 1))
			require.Equal(t, "Klinik "+tt.family, m.Get("MSH", 6))
			require.Equal(t, "Anna", m.First("PID").Component(5, 2), "the delimiters after the name were found")
			require.Equal(t, tt.charset, m.Charset)
			var got []string
			for _, w := range m.Warnings {
				got = append(got, fmt.Sprintf("%s %d", w.Location, w.Code))
			}
			require.Equal(t, tt.warnings, got)
			o, err := ParseORUIn(m, time.UTC)
			require.NoError(t, err)
			require.Equal(t, m.Warnings, o.Warnings, "the view passes the parser's warnings on")
		})
	}
}

func TestParseCharsetReplacedBytesWarn(t *testing.T) {
	// 0x81 is not a character in 8859/1, nor in Windows-1252.
	raw := []byte("MSH|^~\\&|L|F|C|C|20240301||ORU^R01|C1|P|2.5|||||DEU|8859/1\rPID|1||M1||A\x81B\r")
	m, err := Parse(raw)
	require.NoError(t, err)
	require.Equal(t, "A\uFFFDB", m.First("PID").Field(5))
	require.Len(t, m.Warnings, 1)
	require.Contains(t, m.Warnings[0].Message, "replaced by U+FFFD")
}

func TestHexEscapeInMessageCharset(t *testing.T) {
	m := mustParse(t, []byte("MSH|^~\\&|L|F|C|C|20240301||ORU^R01|C1|P|2.5|||||DEU|8859/5\rPID|1||M1||\\XB8B2\\\r"))
	require.Equal(t, "ИВ", m.First("PID").Field(5), "\\Xhh\\ bytes are in the message's character set")
	m = mustParse(t, []byte("MSH|^~\\&|L|F|C|C|20240301||ORU^R01|C1|P|2.5\rPID|1||M1||\\XC3A9\\\\XE9\\\r"))
	require.Equal(t, "éé", m.First("PID").Field(5), "UTF-8 bytes, else ISO 8859/1")
}

func TestEncodeKeepsTheCharset(t *testing.T) {
	for _, tt := range []struct {
		enc   encoding.Encoding
		msh18 string
		name  string
	}{
		{charmap.ISO8859_1, "8859/1", "Müller"},
		{traditionalchinese.Big5, "BIG-5", "功能"},
		{japanese.ISO2022JP, "~ISO IR87", "山田"},
		{nil, "", "Müller"},
	} {
		raw := charsetMessage(t, tt.enc, tt.msh18, tt.name)
		m := mustParse(t, raw)
		require.Equal(t, raw, m.Encode(), tt.msh18)
		require.Equal(t, m, mustParse(t, m.Encode()), tt.msh18)
	}
}

func TestACKInTheRequestCharset(t *testing.T) {
	req := mustParse(t, charsetMessage(t, charmap.ISO8859_1, "8859/1", "Müller"))
	raw := Ack{Code: AckAccept, Text: "stored"}.Build(req, ackTime)
	require.Contains(t, string(raw), "|Klinik M\xfcller|", "written in 8859/1")
	ack := mustParse(t, raw)
	require.Equal(t, "8859/1", ack.Get("MSH", 18))
	require.Equal(t, "Klinik Müller", ack.Get("MSH", 4))

	req = mustParse(t, charsetMessage(t, charmap.ISO8859_1, "", "Müller"))
	raw = Ack{Code: AckAccept, Text: "stored"}.Build(req, ackTime)
	ack = mustParse(t, raw)
	require.Empty(t, ack.Get("MSH", 18), "a guessed set is not declared")
	require.Equal(t, "Klinik Müller", ack.Get("MSH", 4))

	req = mustParse(t, charsetMessage(t, nil, "UNICODE UTF-8", "Müller"))
	raw = Ack{Code: AckAccept, Text: "stored"}.Build(req, ackTime)
	require.Contains(t, string(raw), "|Klinik Müller|")
	require.Equal(t, "UNICODE UTF-8", mustParse(t, raw).Get("MSH", 18))
}
