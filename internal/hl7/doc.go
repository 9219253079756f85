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
// becomes the raw bytes, and \.br\ and \.sp\ become a newline. Other
// formatting commands (\H\, \N\, \.xx\, \Z...\, \C...\, \M...\) are dropped
// because they carry presentation or character-set hints, not data. Anything
// else that looks like an escape but is not one (an unknown code, invalid
// hex, a missing closing escape character) is kept verbatim, so no data is
// lost. [Delims.EscapeText] is the inverse used when writing values.
//
// # Acknowledgements and MLLP
//
// [NewACK] and [NewRejectACK] build original-mode ACK messages. [ReadFrame]
// and [WriteFrame] implement the MLLP block format (0x0B message 0x1C 0x0D),
// [Server] accepts MLLP connections and answers each message with the ACK
// returned by a [Handler], [Client] sends messages and collects their ACKs,
// and [SplitFile] turns a text file holding several messages into
// individual messages.
//
// # ORU^R01
//
// [ParseORU] turns a parsed message into an [ORU]: message header, one
// patient and the orders (ORC/OBR) with their observations (OBX). It does
// not validate against a conformance profile; it checks the segment order
// it relies on and reports which segment is wrong.
//
// # Not supported
//
//   - Batch and file envelopes (FHS/BHS/BTS/FTS): [Parse] handles exactly one
//     message; [SplitFile] drops envelope segments and returns the messages.
//   - Character sets: MSH-18 is not interpreted. Input is taken as UTF-8 or
//     ASCII bytes; no conversion from ISO 8859-x, UNICODE UTF-16 or other
//     encodings is done, and \C...\ / \M...\ escapes are dropped.
//   - XML encoding, enhanced-mode (accept/application) acknowledgement
//     negotiation, sequence-number protocol, and MLLP release 2 (commit ACKs).
//   - ORU^R01 messages with more than one patient (PATIENT_RESULT group):
//     [ParseORU] rejects them instead of mixing results of different people.
//   - Observations attached to a specimen (OBX after SPM) are skipped.
package hl7
