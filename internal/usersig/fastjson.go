package usersig

import (
	"encoding/base64"
	"strconv"
	"sync/atomic"
)

// slowDecodes counts the sigs whose JSON took encoding/json (tests).
var slowDecodes atomic.Int64

// parseFast fills w from js when js is in the plain form every official
// generator writes: one object of the known fields, each at most once
// and spelled exactly, strings of printable ASCII without escapes, and
// numbers of plain digits; whitespace between tokens. It reports false,
// leaving w partly filled, for anything else (a userbuf, null, an escape,
// a sign, an unknown or repeated key, ...), which then goes through
// encoding/json: the fast path only ever yields what encoding/json
// yields (FuzzParseFastMatchesEncodingJSON).
func (w *wireSig) parseFast(js []byte) bool {
	p := fastParser{b: js}
	p.space()
	if !p.byte('{') {
		return false
	}
	var seen uint8
	for {
		p.space()
		key, ok := p.str()
		p.space()
		if !ok || !p.byte(':') {
			return false
		}
		p.space()
		var bit uint8
		switch key {
		case "TLS.ver":
			bit = 1
			v, ok := p.str()
			if !ok {
				return false
			}
			w.Ver = &v
		case "TLS.identifier":
			bit = 2
			v, ok := p.str()
			if !ok {
				return false
			}
			w.Identifier = &v
		case "TLS.sdkappid":
			bit = 4
			d, ok := p.digits()
			if !ok {
				return false
			}
			v, err := strconv.ParseUint(d, 10, 64)
			if err != nil {
				return false
			}
			w.SDKAppID = &v
		case "TLS.expire", "TLS.time":
			d, ok := p.digits()
			if !ok {
				return false
			}
			v, err := strconv.ParseInt(d, 10, 64)
			if err != nil {
				return false
			}
			if key == "TLS.expire" {
				bit, w.Expire = 8, &v
			} else {
				bit, w.Time = 16, &v
			}
		case "TLS.sig":
			bit = 32
			v, ok := p.str()
			if !ok {
				return false
			}
			b := make([]byte, base64.StdEncoding.DecodedLen(len(v)))
			n, err := base64.StdEncoding.Decode(b, []byte(v))
			if err != nil {
				return false
			}
			w.Sig = b[:n]
		default: // TLS.userbuf, or a key encoding/json may match differently
			return false
		}
		if seen&bit != 0 {
			return false
		}
		seen |= bit
		p.space()
		if p.byte(',') {
			continue
		}
		if !p.byte('}') {
			return false
		}
		p.space()
		return p.i == len(js)
	}
}

type fastParser struct {
	b []byte
	i int
}

func (p *fastParser) space() {
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

func (p *fastParser) peek(c byte) bool { return p.i < len(p.b) && p.b[p.i] == c }

func (p *fastParser) byte(c byte) bool {
	if p.peek(c) {
		p.i++
		return true
	}
	return false
}

// str reads a string of printable ASCII without '\\'.
func (p *fastParser) str() (string, bool) {
	if !p.byte('"') {
		return "", false
	}
	start := p.i
	for ; p.i < len(p.b); p.i++ {
		switch c := p.b[p.i]; {
		case c == '"':
			s := string(p.b[start:p.i])
			p.i++
			return s, true
		case c < 0x20 || c >= 0x7f || c == '\\':
			return "", false
		}
	}
	return "", false
}

// digits reads a number of plain digits without a leading zero (or 0).
func (p *fastParser) digits() (string, bool) {
	start := p.i
	for p.i < len(p.b) && p.b[p.i] >= '0' && p.b[p.i] <= '9' {
		p.i++
	}
	d := string(p.b[start:p.i])
	if d == "" || (len(d) > 1 && d[0] == '0') {
		return "", false
	}
	if p.i < len(p.b) {
		switch p.b[p.i] {
		case '.', 'e', 'E': // a fraction or an exponent
			return "", false
		}
	}
	return d, true
}
