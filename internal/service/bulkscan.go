package service

import "unicode/utf8"

// A fast path for the import file's common lines. encoding/json with
// DisallowUnknownFields costs about 6 µs and a dozen allocations per line,
// more than storing the account; nearly every line of a real file is a flat
// object with the five keys spelled exactly, no escapes and no nulls.
// scanImportLine takes exactly those lines, with one allocation for the
// line's text (every field is a substring of it) and one for its tags, and
// declines everything else (an escape, a null, a key spelled in another
// case, a repeated key, an unknown key, a syntax error, invalid UTF-8), which
// then goes through encoding/json as before, so that what a line means and
// the error it gets never depend on the path. A test compares the two paths
// line by line.

// scannedLine is one decoded line before validation.
type scannedLine struct {
	userID, nick, faceURL string
	attrs                 [][2]string // name, value, in line order
	tags                  []string
}

// maxScannedAttrs is the most attributes scanImportLine takes on a line; a
// line with more goes through encoding/json.
const maxScannedAttrs = 16

// scanImportLine decodes line if it is a plain object of the import keys.
// ok false means: use encoding/json.
func scanImportLine(line []byte) (f scannedLine, ok bool) {
	sc := lineScanner{s: string(line)}
	if !sc.byte('{') {
		return f, false
	}
	var seen [5]bool
	first := true
	for {
		if sc.byte('}') {
			break
		}
		if !first && !sc.byte(',') {
			return f, false
		}
		first = false
		key, ok := sc.str()
		if !ok || !sc.byte(':') {
			return f, false
		}
		k := -1
		switch key {
		case "UserID":
			k = 0
			f.userID, ok = sc.str()
		case "Nick":
			k = 1
			f.nick, ok = sc.str()
		case "FaceUrl":
			k = 2
			f.faceURL, ok = sc.str()
		case "Attrs":
			k = 3
			f.attrs, ok = sc.attrs()
		case "Tags":
			k = 4
			f.tags, ok = sc.tags()
		}
		if k < 0 || !ok || seen[k] {
			return f, false
		}
		seen[k] = true
	}
	sc.space()
	return f, sc.i == len(sc.s)
}

// lineScanner reads JSON from s at i.
type lineScanner struct {
	s string
	i int
}

// space skips JSON whitespace.
func (sc *lineScanner) space() {
	for sc.i < len(sc.s) {
		switch sc.s[sc.i] {
		case ' ', '\t', '\n', '\r':
			sc.i++
		default:
			return
		}
	}
}

// byte skips whitespace and then c, if c is next.
func (sc *lineScanner) byte(c byte) bool {
	sc.space()
	if sc.i < len(sc.s) && sc.s[sc.i] == c {
		sc.i++
		return true
	}
	return false
}

// str reads a string without escapes or control characters, of valid
// UTF-8.
func (sc *lineScanner) str() (string, bool) {
	if !sc.byte('"') {
		return "", false
	}
	start := sc.i
	ascii := true
	for sc.i < len(sc.s) {
		c := sc.s[sc.i]
		switch {
		case c == '"':
			v := sc.s[start:sc.i]
			sc.i++
			return v, ascii || utf8.ValidString(v)
		case c == '\\' || c < 0x20:
			return "", false
		case c >= utf8.RuneSelf:
			ascii = false
		}
		sc.i++
	}
	return "", false
}

// attrs reads an object of string values.
func (sc *lineScanner) attrs() ([][2]string, bool) {
	if !sc.byte('{') {
		return nil, false
	}
	var out [][2]string
	for first := true; ; first = false {
		if sc.byte('}') {
			return out, true
		}
		if !first && !sc.byte(',') {
			return nil, false
		}
		name, ok := sc.str()
		if !ok || !sc.byte(':') {
			return nil, false
		}
		v, ok := sc.str()
		if !ok || len(out) == maxScannedAttrs {
			return nil, false
		}
		for _, kv := range out {
			if kv[0] == name {
				return nil, false // a repeated name: encoding/json's map keeps the last
			}
		}
		if out == nil {
			out = make([][2]string, 0, 4)
		}
		out = append(out, [2]string{name, v})
	}
}

// tags reads an array of strings.
func (sc *lineScanner) tags() ([]string, bool) {
	if !sc.byte('[') {
		return nil, false
	}
	out := []string{}
	for first := true; ; first = false {
		if sc.byte(']') {
			return out, true
		}
		if !first && !sc.byte(',') {
			return nil, false
		}
		t, ok := sc.str()
		if !ok {
			return nil, false
		}
		out = append(out, t)
	}
}
