package deliver

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"timd/internal/im"
)

// Frame types. The server sends push, pushes (batched catch-up, see
// AppendPushesFrame), revoke, pong and caughtup; the client sends ack,
// click and ping.
const (
	TypePush     = "push"
	TypePushes   = "pushes"
	TypeRevoke   = "revoke"
	TypePong     = "pong"
	TypeCaughtUp = "caughtup"
	TypeAck      = "ack"
	TypeClick    = "click"
	TypePing     = "ping"
)

// MaxTaskIDLen bounds the TaskId of a client frame. Our TaskIds are far
// shorter; docs/api.md ("timpush/batch")
// documents at most 64 characters.
const MaxTaskIDLen = 128

// MaxAckIDs bounds the TaskIds of one batched ack
// ({"Type":"ack","TaskIds":[…]}).
const MaxAckIDs = 100

// MaxPushesBytes bounds a pushes message: catch-up on a batched
// connection starts a new message before a push frame that would make it
// larger. A single push frame larger than that goes alone.
const MaxPushesBytes = 256 << 10

// pushesOpen and pushesClose wrap the push frames of a pushes message.
const (
	pushesOpen  = `{"Type":"pushes","Pushes":[`
	pushesClose = `]}`
)

// AppendPushesFrame appends to b the pushes message carrying frames, push
// frames (PushFrame) in the order given:
//
//	{"Type":"pushes","Pushes":[<push frame>,<push frame>,…]}
//
// Each element is exactly the push frame's bytes.
func AppendPushesFrame(b []byte, frames ...[]byte) []byte {
	b = append(b, pushesOpen...)
	for i, f := range frames {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, f...)
	}
	return append(b, pushesClose...)
}

// PushFrame renders t as a server→client push frame:
//
//	{"Type":"push","TaskId":…,"Seq":…,"From_Account":…,"MsgBody":[…],
//	 "OfflinePushInfo":{…},"DataId":…,"CreatedAt":…,"ExpiresAt":…}
//
// MsgBody, OfflinePushInfo, DataId and ExpiresAt are omitted when empty.
// The raw JSON fields are passed through verbatim (compacted); should one of
// them not be valid JSON, which the push service never stores, it is
// dropped rather than producing an invalid frame. The bytes are exactly
// those encoding/json writes for the same fields (the tests compare them),
// without its reflection: a frame is rendered for every stored push that a
// catch-up or a /v1/sync serves.
func PushFrame(t *im.TaskHead) []byte {
	return AppendPushFrame(make([]byte, 0, 192+len(t.ID)+len(t.From)+len(t.DataID)+len(t.MsgBody)+len(t.Offline)), t)
}

// AppendPushFrame appends t's push frame (see PushFrame) to b.
func AppendPushFrame(b []byte, t *im.TaskHead) []byte {
	b = append(b, `{"Type":"push","TaskId":`...)
	b = appendString(b, t.ID)
	b = append(b, `,"Seq":`...)
	b = strconv.AppendInt(b, t.Seq, 10)
	b = append(b, `,"From_Account":`...)
	b = appendString(b, t.From)
	b = appendRaw(b, `,"MsgBody":`, t.MsgBody)
	b = appendRaw(b, `,"OfflinePushInfo":`, t.Offline)
	if t.DataID != "" {
		b = append(b, `,"DataId":`...)
		b = appendString(b, t.DataID)
	}
	b = append(b, `,"CreatedAt":`...)
	b = strconv.AppendInt(b, t.CreatedAt, 10)
	if t.ExpiresAt != 0 {
		b = append(b, `,"ExpiresAt":`...)
		b = strconv.AppendInt(b, t.ExpiresAt, 10)
	}
	return append(b, '}')
}

// appendString appends s as encoding/json writes a string (HTML escaping
// on). Printable ASCII without '"', '\\', '<', '>' or '&' (ids and names,
// almost always) is copied; any other string goes through encoding/json,
// so the escaping is always encoding/json's.
func appendString(b []byte, s string) []byte {
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

// appendRaw appends name and raw as encoding/json writes a non-empty
// json.RawMessage field: compacted, with '<', '>', '&', U+2028 and U+2029
// escaped. An empty raw is omitted (omitempty), an invalid one dropped.
// Raw JSON with nothing to escape (what the push service stores, almost
// always) is compacted in one pass, which also validates it.
func appendRaw(b []byte, name string, raw json.RawMessage) []byte {
	if len(raw) == 0 {
		return b
	}
	if needsEscape(raw) {
		q, err := json.Marshal(raw) // compacts and escapes, or fails when invalid
		if err != nil {
			return b
		}
		b = append(b, name...)
		return append(b, q...)
	}
	if !hasSpace(raw) { // already compact: validate and copy
		if !json.Valid(raw) {
			return b
		}
		return append(append(b, name...), raw...)
	}
	n := len(b)
	buf := bytes.NewBuffer(append(b, name...))
	if err := json.Compact(buf, raw); err != nil {
		return b[:n]
	}
	return buf.Bytes()
}

// hasSpace reports whether raw holds a JSON whitespace byte (which
// compacting may drop).
func hasSpace(raw []byte) bool {
	for _, c := range raw {
		switch c {
		case ' ', '\t', '\n', '\r':
			return true
		}
	}
	return false
}

// needsEscape reports whether raw holds a byte that encoding/json escapes
// in a json.RawMessage: '<', '>', '&', or the lead byte of U+2028 and
// U+2029.
func needsEscape(raw []byte) bool {
	for _, c := range raw {
		switch c {
		case '<', '>', '&', 0xE2:
			return true
		}
	}
	return false
}

// revokeFrame renders {"Type":"revoke","TaskId":id}.
func revokeFrame(id string) []byte {
	b, _ := json.Marshal(struct {
		Type   string `json:"Type"`
		TaskID string `json:"TaskId"`
	}{TypeRevoke, id})
	return b
}

// CaughtUpFrame renders {"Type":"caughtup","Seq":seq}, which ends a
// connection's catch-up: every stored push with a Seq up to seq that the
// account is owed has been written before it on this connection. It is
// the client's safe resume point (the since of its next connect), unlike
// the Seq of a live push, which may overtake older stored pushes still
// fanning out.
func CaughtUpFrame(seq int64) []byte {
	return append(strconv.AppendInt([]byte(`{"Type":"caughtup","Seq":`), seq, 10), '}')
}

// pongFrame answers a client ping.
var pongFrame = []byte(`{"Type":"pong"}`)

// ClientFrame is a client→server frame: {"Type":"ack","TaskId":"…"},
// {"Type":"ack","TaskIds":["…",…]} (a batched ack),
// {"Type":"click","TaskId":"…"} or {"Type":"ping"}.
type ClientFrame struct {
	Type    string   `json:"Type"`
	TaskID  string   `json:"TaskId,omitempty"`
	TaskIDs []string `json:"TaskIds,omitempty"`
}

// ErrBadFrame is wrapped by every DecodeClientFrame error.
var ErrBadFrame = errors.New("bad client frame")

// DecodeClientFrame parses one client frame. It must be a JSON object
// whose Type is ack, click or ping; ack and click need a TaskId of 1 to
// 128 bytes, or, an ack only, instead TaskIds: an array of 1 to MaxAckIDs
// such TaskIds. Unknown fields are ignored; a ping's TaskId and TaskIds
// are dropped. Errors wrap ErrBadFrame.
func DecodeClientFrame(b []byte) (ClientFrame, error) {
	var raw struct {
		Type    *string   `json:"Type"`
		TaskID  *string   `json:"TaskId"`
		TaskIDs *[]string `json:"TaskIds"`
	}
	if b = bytes.TrimLeft(b, " \t\r\n"); len(b) == 0 || b[0] != '{' {
		return ClientFrame{}, fmt.Errorf("%w: not a JSON object", ErrBadFrame)
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return ClientFrame{}, fmt.Errorf("%w: not a JSON object with string Type and TaskId (or TaskIds, strings)", ErrBadFrame)
	}
	if raw.Type == nil {
		return ClientFrame{}, fmt.Errorf("%w: Type is missing", ErrBadFrame)
	}
	f := ClientFrame{Type: *raw.Type}
	switch f.Type {
	case TypePing:
		return f, nil
	case TypeAck, TypeClick:
	default:
		return ClientFrame{}, fmt.Errorf("%w: unknown Type", ErrBadFrame)
	}
	if raw.TaskIDs != nil {
		ids := *raw.TaskIDs
		if f.Type != TypeAck || raw.TaskID != nil || len(ids) == 0 || len(ids) > MaxAckIDs {
			return ClientFrame{}, fmt.Errorf("%w: TaskIds needs an ack of 1 to %d TaskIds and no TaskId", ErrBadFrame, MaxAckIDs)
		}
		for _, id := range ids {
			if id == "" || len(id) > MaxTaskIDLen {
				return ClientFrame{}, fmt.Errorf("%w: ack TaskIds must be of 1 to %d bytes", ErrBadFrame, MaxTaskIDLen)
			}
		}
		f.TaskIDs = ids
		return f, nil
	}
	if raw.TaskID == nil || *raw.TaskID == "" || len(*raw.TaskID) > MaxTaskIDLen {
		return ClientFrame{}, fmt.Errorf("%w: %s needs a TaskId of 1 to %d bytes", ErrBadFrame, f.Type, MaxTaskIDLen)
	}
	f.TaskID = *raw.TaskID
	return f, nil
}
