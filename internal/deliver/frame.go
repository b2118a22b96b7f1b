package deliver

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"

	"timd/internal/im"
)

// Frame types. The server sends push, revoke and pong; the client sends
// ack, click and ping.
const (
	TypePush   = "push"
	TypeRevoke = "revoke"
	TypePong   = "pong"
	TypeAck    = "ack"
	TypeClick  = "click"
	TypePing   = "ping"
)

// MaxTaskIDLen bounds the TaskId of a client frame. Our TaskIds are far
// shorter; docs/api.md ("timpush/batch")
// documents at most 64 characters.
const MaxTaskIDLen = 128

// pushFrame is the JSON shape of a push frame and of a /v1/sync item.
type pushFrame struct {
	Type            string          `json:"Type"`
	TaskID          string          `json:"TaskId"`
	Seq             int64           `json:"Seq"`
	From            string          `json:"From_Account"`
	MsgBody         json.RawMessage `json:"MsgBody,omitempty"`
	OfflinePushInfo json.RawMessage `json:"OfflinePushInfo,omitempty"`
	DataID          string          `json:"DataId,omitempty"`
	CreatedAt       int64           `json:"CreatedAt"`
	ExpiresAt       int64           `json:"ExpiresAt,omitempty"`
}

// PushFrame renders t as a server→client push frame:
//
//	{"Type":"push","TaskId":…,"Seq":…,"From_Account":…,"MsgBody":[…],
//	 "OfflinePushInfo":{…},"DataId":…,"CreatedAt":…,"ExpiresAt":…}
//
// MsgBody, OfflinePushInfo, DataId and ExpiresAt are omitted when empty.
// The raw JSON fields are passed through verbatim (compacted); should one of
// them not be valid JSON, which the push service never stores, it is
// dropped rather than producing an invalid frame.
func PushFrame(t *im.TaskHead) []byte {
	f := pushFrame{Type: TypePush, TaskID: t.ID, Seq: t.Seq, From: t.From, MsgBody: t.MsgBody,
		OfflinePushInfo: t.Offline, DataID: t.DataID, CreatedAt: t.CreatedAt, ExpiresAt: t.ExpiresAt}
	if b, err := json.Marshal(f); err == nil {
		return b
	}
	if !json.Valid(f.MsgBody) {
		f.MsgBody = nil
	}
	if !json.Valid(f.OfflinePushInfo) {
		f.OfflinePushInfo = nil
	}
	b, _ := json.Marshal(f) // only strings and integers are left to fail on
	return b
}

// revokeFrame renders {"Type":"revoke","TaskId":id}.
func revokeFrame(id string) []byte {
	b, _ := json.Marshal(struct {
		Type   string `json:"Type"`
		TaskID string `json:"TaskId"`
	}{TypeRevoke, id})
	return b
}

// pongFrame answers a client ping.
var pongFrame = []byte(`{"Type":"pong"}`)

// ClientFrame is a client→server frame: {"Type":"ack","TaskId":"…"},
// {"Type":"click","TaskId":"…"} or {"Type":"ping"}.
type ClientFrame struct {
	Type   string `json:"Type"`
	TaskID string `json:"TaskId,omitempty"`
}

// ErrBadFrame is wrapped by every DecodeClientFrame error.
var ErrBadFrame = errors.New("bad client frame")

// DecodeClientFrame parses one client frame. It must be a JSON object
// whose Type is ack, click or ping; ack and click need a TaskId of 1 to
// 128 bytes. Unknown fields are ignored; a ping's TaskId is
// dropped. Errors wrap ErrBadFrame.
func DecodeClientFrame(b []byte) (ClientFrame, error) {
	var raw struct {
		Type   *string `json:"Type"`
		TaskID *string `json:"TaskId"`
	}
	if b = bytes.TrimLeft(b, " \t\r\n"); len(b) == 0 || b[0] != '{' {
		return ClientFrame{}, fmt.Errorf("%w: not a JSON object", ErrBadFrame)
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return ClientFrame{}, fmt.Errorf("%w: not a JSON object with string Type and TaskId", ErrBadFrame)
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
	if raw.TaskID == nil || *raw.TaskID == "" || len(*raw.TaskID) > MaxTaskIDLen {
		return ClientFrame{}, fmt.Errorf("%w: %s needs a TaskId of 1 to %d bytes", ErrBadFrame, f.Type, MaxTaskIDLen)
	}
	f.TaskID = *raw.TaskID
	return f, nil
}
