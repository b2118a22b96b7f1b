package service

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"

	"timd/internal/im"
)

// MaxFromLen bounds From_Account, which may be a UserID or a
// RegistrationID.
const MaxFromLen = 128

// PushRequest is a timpush/push, timpush/batch or all_member_push/im_push
// request, or a scheduled task's push, decoded and checked for shape at
// the edge (package httpapi).
type PushRequest struct {
	Kind      im.PushKind
	From      string // "" when absent: the caller
	MsgRandom uint32
	HasRandom bool
	Condition *im.Condition
	To        []string // batch recipients
	// MsgBody and Offline are compacted JSON, nil when absent.
	MsgBody     json.RawMessage
	Offline     json.RawMessage
	OnlineOnly  bool  // OnlineOnlyFlag 1
	MsgLifeTime int64 // seconds, 0..604800
	DataID      string
	// Size is the length in bytes of the body it was decoded from, for
	// the app's body limit (90056).
	Size int
}

// Hash fingerprints the request's content (everything but MsgRandom), for
// the MsgRandom idempotency warning.
func (r *PushRequest) Hash() string {
	b, _ := json.Marshal(struct {
		Kind        im.PushKind
		From        string
		Condition   *im.Condition
		To          []string
		MsgBody     json.RawMessage
		Offline     json.RawMessage
		OnlineOnly  bool
		MsgLifeTime int64
		DataID      string
	}{r.Kind, r.From, r.Condition, r.To, r.MsgBody, r.Offline, r.OnlineOnly, r.MsgLifeTime, r.DataID})
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:16])
}

// storedPush is the stored form of a scheduled task's push
// (im.SchedTask.Content): the wire shape of a push or batch body, which
// get_sched_task shows as Content. Tasks stored before this form was
// introduced hold the request's own body, which decodes the same way.
type storedPush struct {
	From       string          `json:"From_Account,omitempty"`
	MsgRandom  *uint32         `json:"MsgRandom,omitempty"`
	Condition  *im.Condition   `json:"Condition,omitempty"`
	To         []string        `json:"To_Account,omitempty"`
	MsgBody    json.RawMessage `json:"MsgBody,omitempty"`
	Offline    json.RawMessage `json:"OfflinePushInfo,omitempty"`
	OnlineOnly int             `json:"OnlineOnlyFlag,omitempty"`
	LifeTime   int64           `json:"MsgLifeTime,omitempty"`
	DataID     string          `json:"DataId,omitempty"`
}

// encodeStored returns r's stored form.
func encodeStored(r *PushRequest) (json.RawMessage, error) {
	sp := storedPush{From: r.From, Condition: r.Condition, To: r.To, MsgBody: r.MsgBody,
		Offline: r.Offline, LifeTime: r.MsgLifeTime, DataID: r.DataID}
	if r.HasRandom {
		sp.MsgRandom = &r.MsgRandom
	}
	if r.OnlineOnly {
		sp.OnlineOnly = 1
	}
	return json.Marshal(sp)
}

// decodeStored reads a stored push of kind. It fails only for content
// that was not written by encodeStored or checked at the edge.
func decodeStored(raw json.RawMessage, kind im.PushKind) (*PushRequest, error) {
	var sp storedPush
	if err := json.Unmarshal(raw, &sp); err != nil {
		return nil, fmt.Errorf("stored push: %w", err)
	}
	r := &PushRequest{Kind: kind, From: sp.From, Condition: sp.Condition, To: sp.To, MsgBody: sp.MsgBody,
		Offline: sp.Offline, OnlineOnly: sp.OnlineOnly == 1, MsgLifeTime: sp.LifeTime, DataID: sp.DataID,
		Size: len(raw)}
	if sp.MsgRandom != nil {
		r.MsgRandom, r.HasRandom = *sp.MsgRandom, true
	}
	if r.Condition.Empty() {
		r.Condition = nil // an old task's "Condition":{} of Type All
	}
	return r, nil
}
