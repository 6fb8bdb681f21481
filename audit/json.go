package audit

import (
	"encoding/base64"
	"math"
	"strconv"
	"time"
	"unicode/utf8"
)

// maxStringBytes caps each string value in a record. Arguments and names
// are already bounded by the proxy's MaxLineBytes (4 KiB by default), but an
// error text from a partner is not; the cap keeps every record well below
// the verifier's line limit (maxLineBytes) even when every byte needs a
// six-byte \u00XX escape: a record has fewer than 20 strings, 20 × 6 × 8 KiB
// is under 1 MiB. A capped value ends in truncatedMark.
const maxStringBytes = 8 << 10

// truncatedMark ends a string value that was cut at maxStringBytes.
const truncatedMark = "…[truncated]"

// timeLayout is the layout of the "time" field: RFC 3339 in UTC with
// microseconds, fixed width so that records sort as text. It is also a valid
// RFC 5424 TIMESTAMP (at most six fractional digits).
const timeLayout = "2006-01-02T15:04:05.000000Z07:00"

const hexDigits = "0123456789abcdef"

// enc appends one JSON object to b. It writes no opening or closing brace of
// its own accord: the Emitter writes the envelope, each field method appends
// `,"key":value`. It is owned by an Emitter and used under its mutex.
type enc struct {
	b []byte
}

func (e *enc) key(k string) {
	e.b = append(e.b, ',', '"')
	e.b = append(e.b, k...)
	e.b = append(e.b, '"', ':')
}

func (e *enc) str(k, v string) {
	e.key(k)
	e.b = appendString(e.b, v)
}

// strOmit writes k only when v is not empty.
func (e *enc) strOmit(k, v string) {
	if v != "" {
		e.str(k, v)
	}
}

// clientStr writes a value chosen by the client (a user name, an argument, a
// file name). JSON strings must be UTF-8, so invalid bytes become U+FFFD in
// k; when that happened, k+"_b64" carries the exact bytes in standard base64,
// so two names that differ only in invalid bytes stay distinguishable.
func (e *enc) clientStr(k, v string) {
	e.str(k, v)
	if utf8.ValidString(v) {
		return
	}
	if len(v) > maxStringBytes {
		v = v[:maxStringBytes]
	}
	e.b = append(e.b, ',', '"')
	e.b = append(e.b, k...)
	e.b = append(e.b, `_b64":"`...)
	e.b = base64.StdEncoding.AppendEncode(e.b, []byte(v))
	e.b = append(e.b, '"')
}

func (e *enc) int(k string, v int64) {
	e.key(k)
	e.b = strconv.AppendInt(e.b, v, 10)
}

func (e *enc) bool(k string, v bool) {
	e.key(k)
	e.b = strconv.AppendBool(e.b, v)
}

func (e *enc) uint(k string, v uint64) {
	e.key(k)
	e.b = strconv.AppendUint(e.b, v, 10)
}

func (e *enc) float(k string, v float64) {
	e.key(k)
	e.b = appendFloat(e.b, v)
}

// seconds writes a duration as fractional seconds, the unit of every *_s
// field.
func (e *enc) seconds(k string, d time.Duration) {
	e.float(k, d.Seconds())
}

func (e *enc) time(k string, t time.Time) {
	e.key(k)
	e.b = append(e.b, '"')
	e.b = t.UTC().AppendFormat(e.b, timeLayout)
	e.b = append(e.b, '"')
}

// appendFloat writes f in the shortest decimal form without an exponent.
// JSON has no NaN or infinity; they are written as 0 (a rate computed from a
// zero duration, never a measured value).
func appendFloat(b []byte, f float64) []byte {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		f = 0
	}
	return strconv.AppendFloat(b, f, 'f', -1, 64)
}

// appendString appends s as a JSON string. Quotes, backslashes and all
// control characters are escaped (so a record stays on one line whatever a
// client sends), invalid UTF-8 bytes become \ufffd as encoding/json does,
// and U+2028 and U+2029 are escaped for consumers that treat them as line
// ends. Values longer than maxStringBytes are cut at a rune boundary and end
// in truncatedMark.
func appendString(b []byte, s string) []byte {
	truncated := false
	if len(s) > maxStringBytes {
		cut := maxStringBytes
		for cut > maxStringBytes-utf8.UTFMax && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s, truncated = s[:cut], true
	}
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i++
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	if truncated {
		b = append(b, truncatedMark...)
	}
	return append(b, '"')
}
