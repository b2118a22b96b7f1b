package httpapi

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strconv"
)

// writeEnvelope is the one writer of REST answers: HTTP 200, the
// ActionStatus/ErrorInfo/ErrorCode envelope, then the payload's fields.
// payload may be nil or any value that marshals to a JSON object.
func writeEnvelope(w http.ResponseWriter, code int, info string, payload any) {
	var b bytes.Buffer
	b.Grow(128)
	status := "OK"
	if code != 0 {
		status = "FAIL"
	}
	b.WriteString(`{"ActionStatus":"`)
	b.WriteString(status)
	b.WriteString(`","ErrorInfo":`)
	infoJSON, _ := json.Marshal(info) // a string always marshals
	b.Write(infoJSON)
	b.WriteString(`,"ErrorCode":`)
	b.WriteString(strconv.Itoa(code))
	if inner := payloadFields(payload); len(inner) > 0 {
		b.WriteByte(',')
		b.Write(inner)
	}
	b.WriteString("}\n")
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Content-Length", strconv.Itoa(b.Len()))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b.Bytes())
}

// fieldsAppender is a payload that writes its own JSON fields, for answers
// whose encoding through encoding/json costs more than the request (the
// profile reads).
type fieldsAppender interface {
	// appendFields appends the inside of the payload's JSON object,
	// without the braces.
	appendFields(b []byte) []byte
}

// payloadFields returns the inside of payload's JSON object, without the
// braces, or nil.
func payloadFields(payload any) []byte {
	if payload == nil {
		return nil
	}
	if f, ok := payload.(fieldsAppender); ok {
		return f.appendFields(make([]byte, 0, 4096))
	}
	raw, err := json.Marshal(payload)
	if err != nil || len(raw) < 2 || raw[0] != '{' {
		return nil
	}
	return bytes.TrimSpace(raw[1 : len(raw)-1])
}

// appendJSONString appends s as encoding/json writes a string. Strings of
// printable ASCII without '"', '\\', '<', '>' or '&' (ids, tags, the
// usual attribute values) are copied; any other goes through
// encoding/json, so the escaping is always encoding/json's.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s) // a string always marshals
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}
