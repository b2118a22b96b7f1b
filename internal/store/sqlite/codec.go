package sqlite

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"

	"timd/internal/im"
)

// Attribute values and tags are stored as JSON arrays of strings, which
// SQLite's json functions can read. Encoding and decoding them is on the
// hot path of ApplyEdits, so both are hand-written; decoding falls back to
// encoding/json for escapes.

// encodeStrings returns ss as a JSON array, or NULL when ss is empty.
func encodeStrings(ss []string) sql.NullString {
	if len(ss) == 0 {
		return sql.NullString{}
	}
	n := 2
	for _, s := range ss {
		n += len(s) + 3
	}
	b := make([]byte, 0, n)
	b = append(b, '[')
	for i, s := range ss {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, s)
	}
	b = append(b, ']')
	return sql.NullString{String: string(b), Valid: true}
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends s as a JSON string. Bytes other than '"', '\\'
// and control characters are copied as they are.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		b = append(b, s[start:i]...)
		switch c {
		case '"', '\\':
			b = append(b, '\\', c)
		default:
			b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		}
		start = i + 1
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// decodeStrings parses a JSON array of strings written by encodeStrings.
// The strings it returns share s's memory when they hold no escapes.
func decodeStrings(s sql.NullString) ([]string, error) {
	if !s.Valid || s.String == "" {
		return nil, nil
	}
	v := s.String
	if len(v) < 2 || v[0] != '[' || v[len(v)-1] != ']' {
		return nil, fmt.Errorf("sqlite: bad string array %.40q", v)
	}
	if strings.IndexByte(v, '\\') >= 0 {
		var out []string
		if err := json.Unmarshal([]byte(v), &out); err != nil {
			return nil, fmt.Errorf("sqlite: bad string array: %v", err)
		}
		return out, nil
	}
	body := v[1 : len(v)-1]
	if body == "" {
		return nil, nil
	}
	out := make([]string, 0, strings.Count(body, `","`)+1)
	for body != "" {
		if body[0] != '"' {
			return nil, fmt.Errorf("sqlite: bad string array %.40q", v)
		}
		end := strings.IndexByte(body[1:], '"')
		if end < 0 {
			return nil, fmt.Errorf("sqlite: bad string array %.40q", v)
		}
		out = append(out, body[1:1+end])
		body = body[end+2:]
		if body != "" {
			if body[0] != ',' {
				return nil, fmt.Errorf("sqlite: bad string array %.40q", v)
			}
			body = body[1:]
		}
	}
	return out, nil
}

// encodeAttrs stores attribute values by slot, trailing empty slots trimmed.
func encodeAttrs(a *im.AttrValues) sql.NullString {
	n := len(a)
	for n > 0 && a[n-1] == "" {
		n--
	}
	return encodeStrings(a[:n])
}

func decodeAttrs(s sql.NullString) (im.AttrValues, error) {
	var a im.AttrValues
	ss, err := decodeStrings(s)
	if err != nil {
		return a, err
	}
	if len(ss) > len(a) {
		return a, fmt.Errorf("sqlite: %d attribute values, want at most %d", len(ss), len(a))
	}
	copy(a[:], ss)
	return a, nil
}

// encodeJSON and decodeJSON handle the cold columns (app admins).
func encodeJSON(v any) (string, error) {
	b, err := json.Marshal(v)
	return string(b), err
}

func decodeJSON(s string, v any) error {
	return json.Unmarshal([]byte(s), v)
}
