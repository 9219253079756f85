// Package hl7 parses HL7 v2.x messages in ER7 ("pipe and hat") encoding,
// frames them for MLLP transport, and extracts a typed view of ORU^R01
// laboratory results.
//
// # Parsing
//
// [Parse] reads one message. Segments may be terminated by "\r" (the HL7
// standard), "\n" or "\r\n"; blank lines are ignored, as are a leading
// UTF-8 byte order mark and leading white space. The first segment must be
// MSH; the delimiters are taken from MSH-1 and MSH-2, so messages using a
// non-default delimiter set are read correctly. Following the HL7 numbering,
// MSH-1 is the field separator itself and MSH-2 the encoding characters,
// hence msg.Get("MSH", 10) is the message control id.
//
// A message is split into segments, fields, repetitions, components and
// subcomponents first, and only then are the leaf values unescaped, so an
// escaped delimiter (for example \F\) never splits a value. The accessors
// on [Segment] use 1-based indexes like the HL7 documentation and return ""
// (or 0) for anything that is not present; they never panic.
//
// Escape sequences \F\ \S\ \T\ \R\ \E\ (and \P\ when MSH-2 declares a
// truncation character) become the corresponding delimiter, \Xhh...\
// becomes the raw bytes (read in the message's character set), and the
// formatted-text commands become plain text: \.br\, \.ce\ and \.sp n\ line
// breaks, \.sk n\ and \.ti n\ spaces (n at most 20); \.in\, \.fi\, \.nf\,
// \H\ and \N\ are dropped, as are \Z...\, \C...\ and \M...\, which carry
// local or character-set hints, not data. Anything
// else that looks like an escape but is not one (an unknown code, invalid
// hex, a missing closing escape character) is kept verbatim, so no data is
// lost. [Delims.EscapeText] is the inverse used when writing values.
//
// # Character sets
//
// MSH-18 is read from the raw bytes (HL7 requires MSH itself to be ASCII)
// and the whole message is decoded to UTF-8 before it is split, so
// multi-byte sets whose bytes can look like delimiters (Big5, ISO-2022-JP)
// are read correctly. The names of HL7 table 0211 that golang.org/x/text
// supports are understood: ASCII, 8859/1 to 8859/9 and 8859/15, UNICODE
// and UNICODE UTF-8, BIG-5, GB 18030-2000, KS X 1001, ISO IR87/IR159/IR14
// (ISO-2022-JP, also when listed after an empty first repetition), the
// DICOM-style "ISO IR100" names, and any label of the WHATWG encoding
// standard. 8859/1 is read as Windows-1252, which agrees on every printable
// character. An unknown set is read as UTF-8 with a warning; text read as
// UTF-8 that is not valid UTF-8 is read as 8859/1 with a warning. The
// warnings are in [Message].Warnings; nothing is refused for its bytes.
//
// # Acknowledgements and MLLP
//
// [Ack] builds original-mode ACK messages: MSA-1 and MSA-3 (at most 80
// bytes, for v2.3 receivers) and one ERR segment per [Issue], with the
// location (ERR-2, and ERR-1 for v2.3/v2.4), the HL7 table 0357 code
// (ERR-3), the severity (ERR-4) and the message (ERR-8). [NewACK] and
// [NewRejectACK] remain for callers without details. [ReadFrame]
// and [WriteFrame] implement the MLLP block format (0x0B message 0x1C 0x0D),
// [Server] accepts MLLP connections and answers each message with the ACK
// returned by a [Handler], [Client] sends messages and collects their ACKs,
// and [SplitFile] turns a text file holding several messages into
// individual messages.
//
// # ORU^R01
//
// [ParseORU] turns a parsed message into an [ORU]: message header, patients
// (PID, PV1), and the orders (ORC/OBR) with every observation (OBX) that
// carries a value, wherever the v2.5.1 ORU_R01 structure puts it (after
// NTE, TQ1, CTD, FT1, CTI or SPM). Consecutive TX/FT/ST segments of one
// observation are joined into one text. It refuses only what Callout
// cannot work without, with a [ParseError] naming the field and its table
// 0357 code; fields it can do without but cannot read are ignored with a
// warning ([ORU].Warnings). [Numbering] chooses the Order ID (placer,
// filler or auto).
//
// # Not supported
//
//   - Batch and file envelopes (FHS/BHS/BTS/FTS): [Parse] handles exactly one
//     message; [SplitFile] drops envelope segments and returns the messages.
//   - Character sets that are not ASCII-compatible (UNICODE UTF-16 and
//     UTF-32) and CNS 11643-1992 (golang.org/x/text has no decoder): read as
//     UTF-8 with a warning. \C...\ / \M...\ escapes are dropped.
//   - XML encoding, enhanced-mode (accept/application) acknowledgement
//     negotiation, sequence-number protocol, and MLLP release 2 (commit ACKs).
package hl7
