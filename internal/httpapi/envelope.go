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

// payloadFields returns the inside of payload's JSON object, without the
// braces, or nil.
func payloadFields(payload any) []byte {
	if payload == nil {
		return nil
	}
	raw, err := json.Marshal(payload)
	if err != nil || len(raw) < 2 || raw[0] != '{' {
		return nil
	}
	return bytes.TrimSpace(raw[1 : len(raw)-1])
}
