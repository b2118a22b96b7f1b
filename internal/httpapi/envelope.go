package httpapi

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strconv"
	"sync"
)

// writeEnvelope is the one writer of REST answers: HTTP 200, the
// ActionStatus/ErrorInfo/ErrorCode envelope, then the payload's fields.
// payload may be nil or any value that marshals to a JSON object.
func writeEnvelope(w http.ResponseWriter, code int, info string, payload any) {
	status := "OK"
	if code != 0 {
		status = "FAIL"
	}
	var b []byte
	if f, ok := payload.(fieldsAppender); ok {
		// A large answer (a /v1/sync page, ~10 KiB) is written into a
		// reused buffer: at hundreds of answers a second, a fresh one
		// each time is most of the request's garbage.
		bp := getAnswerBuf(128 + f.sizeHint())
		defer putAnswerBuf(bp)
		b = (*bp)[:0]
		defer func() { *bp = b }()
	} else {
		b = make([]byte, 0, 128)
	}
	b = append(b, `{"ActionStatus":"`...)
	b = append(b, status...)
	b = append(b, `","ErrorInfo":`...)
	b = appendJSONString(b, info)
	b = append(b, `,"ErrorCode":`...)
	b = strconv.AppendInt(b, int64(code), 10)
	if f, ok := payload.(fieldsAppender); ok {
		// Written in place: a large answer (a /v1/sync page, a profile
		// read) is not copied from a buffer of its own.
		n := len(b)
		if b = f.appendFields(append(b, ',')); len(b) == n+1 {
			b = b[:n]
		}
	} else if inner := payloadFields(payload); len(inner) > 0 {
		b = append(b, ',')
		b = append(b, inner...)
	}
	b = append(b, "}\n"...)
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
}

// fieldsAppender is a payload that writes its own JSON fields, for answers
// whose encoding through encoding/json costs more than the request (the
// profile reads).
type fieldsAppender interface {
	// appendFields appends the inside of the payload's JSON object,
	// without the braces.
	appendFields(b []byte) []byte
	// sizeHint is about how many bytes appendFields appends.
	sizeHint() int
}

// payloadFields returns the inside of payload's JSON object, without the
// braces, or nil.
func payloadFields(payload any) []byte {
	if payload == nil {
		return nil
	}
	if f, ok := payload.(fieldsAppender); ok {
		return f.appendFields(make([]byte, 0, f.sizeHint()))
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

// maxPooledAnswer is the largest answer buffer kept for reuse: a larger
// one (a rare, huge profile read) is left to the collector rather than
// pinned in the pool.
const maxPooledAnswer = 64 << 10

var answerBufs = sync.Pool{New: func() any { return new([]byte) }}

// getAnswerBuf returns a pooled buffer with room for about n bytes. The
// caller hands it back with putAnswerBuf once the answer is written:
// http.ResponseWriter.Write does not keep the slice.
func getAnswerBuf(n int) *[]byte {
	bp := answerBufs.Get().(*[]byte)
	if cap(*bp) < n {
		*bp = make([]byte, 0, n)
	}
	return bp
}

func putAnswerBuf(bp *[]byte) {
	if cap(*bp) <= maxPooledAnswer {
		*bp = (*bp)[:0]
		answerBufs.Put(bp)
	}
}
