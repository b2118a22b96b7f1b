package httpapi

import (
	"bytes"
	"unicode/utf8"
)

// decodeIDs is decode for the body of the reads (get_attr, get_tag):
// a body that is exactly {"To_Account":[…]} with plain strings (no
// escapes, no control characters, valid UTF-8), the shape every client
// sends, is read in one pass without reflection; any other body goes
// through decode, whose checks and error codes stay the rule. Both give
// the same request for every body scanIDs accepts (FuzzDecodeIDs).
func decodeIDs(body []byte, req *accountsReq) error {
	if ids, ok := scanIDs(body); ok {
		req.ToAccount = ids
		return nil
	}
	return decode(body, req)
}

// scanIDs reads {"To_Account":["id",…]}, reporting false for anything
// else. The ids share one string copy of body.
func scanIDs(b []byte) ([]string, bool) {
	const key = `"To_Account"`
	i := skipWS(b, 0)
	if !at(b, i, '{') {
		return nil, false
	}
	i = skipWS(b, i+1)
	if !bytes.HasPrefix(b[i:], []byte(key)) {
		return nil, false
	}
	i = skipWS(b, i+len(key))
	if !at(b, i, ':') {
		return nil, false
	}
	i = skipWS(b, i+1)
	if !at(b, i, '[') {
		return nil, false
	}
	i = skipWS(b, i+1)
	s := string(b)
	ids := make([]string, 0, bytes.Count(b[i:], []byte{','})+1)
	if at(b, i, ']') {
		i++
	} else {
		for {
			if !at(b, i, '"') {
				return nil, false
			}
			j := i + 1
			ascii := true
			for ; j < len(b) && b[j] != '"'; j++ {
				if c := b[j]; c < 0x20 || c == '\\' {
					return nil, false
				} else if c >= utf8.RuneSelf {
					ascii = false
				}
			}
			if j == len(b) || !ascii && !utf8.ValidString(s[i+1:j]) {
				return nil, false
			}
			ids = append(ids, s[i+1:j])
			i = skipWS(b, j+1)
			if at(b, i, ']') {
				i++
				break
			}
			if !at(b, i, ',') {
				return nil, false
			}
			i = skipWS(b, i+1)
		}
	}
	i = skipWS(b, i)
	if !at(b, i, '}') {
		return nil, false
	}
	return ids, skipWS(b, i+1) == len(b)
}

// at reports whether b[i] is c.
func at(b []byte, i int, c byte) bool { return i < len(b) && b[i] == c }

// skipWS returns the index of the first byte at or after i that is not
// JSON whitespace.
func skipWS(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}
