package httpapi

import (
	"bytes"
	"encoding/json"
	"slices"
	"testing"

	"timd/internal/im"
	"timd/internal/service"
)

// FuzzParsePush feeds arbitrary bodies to the push body decoder as each
// command. It must never panic; an error must be an *im.Error with one of
// the documented codes or kinds; an accepted request must satisfy every
// limit the decoder promises, and re-encode to JSON the decoder accepts
// again with the same result.
func FuzzParsePush(f *testing.F) {
	codes := []int{im.CodeMsgRandom, im.CodeMsgBodyFormat, im.CodeMsgBodyNotArray, im.CodeMsgElem,
		im.CodeMsgLifeTime, im.CodeDataIDTooLong, im.CodeAccountNotStr}
	kinds := []im.Kind{im.KindBadJSON, im.KindBadParam, im.KindTooMany}
	f.Fuzz(func(t *testing.T, body []byte, k uint8) {
		kind := im.PushKind(k%3 + 1)
		req, err := parsePushBody(body, kind)
		if err != nil {
			e, ok := im.AsError(err)
			if !ok || (e.Kind == im.KindCode && !slices.Contains(codes, e.Code)) || (e.Kind != im.KindCode && !slices.Contains(kinds, e.Kind)) {
				t.Fatalf("parsePushBody(%q, %d) = %v: not a documented error", body, kind, err)
			}
			return
		}
		checkAccepted(t, body, req)
		again, err := parsePushBody(reencode(t, req), kind)
		if err != nil {
			t.Fatalf("re-encoded %q rejected: %v", body, err)
		}
		if again.Hash() != req.Hash() || again.MsgRandom != req.MsgRandom {
			t.Fatalf("re-encoded %q decodes differently", body)
		}
	})
}

func checkAccepted(t *testing.T, body []byte, r *service.PushRequest) {
	t.Helper()
	switch {
	case !r.HasRandom:
		t.Fatalf("%q accepted without MsgRandom", body)
	case len(r.DataID) > im.MaxDataIDLen, len(r.From) > service.MaxFromLen:
		t.Fatalf("%q accepted with DataId %d bytes, From %d bytes", body, len(r.DataID), len(r.From))
	case r.MsgLifeTime < 0 || r.MsgLifeTime > im.MaxMsgLifeTime:
		t.Fatalf("%q accepted with MsgLifeTime %d", body, r.MsgLifeTime)
	case r.Kind == im.PushBatch && (len(r.To) == 0 || len(r.To) > im.MaxBatchRecipient || r.Offline == nil):
		t.Fatalf("%q accepted as a batch of %d", body, len(r.To))
	case r.Kind == im.PushLegacy && r.MsgBody == nil:
		t.Fatalf("%q accepted as im_push without MsgBody", body)
	case r.Kind == im.PushCondition && r.MsgBody == nil && r.Offline == nil:
		t.Fatalf("%q accepted with nothing to show", body)
	}
	if r.Condition != nil && r.Condition.Empty() {
		t.Fatalf("%q accepted with a Condition that names no clause", body)
	}
	if r.Kind != im.PushBatch {
		checkClosed(t, body, r.Kind)
	}
	if r.MsgBody != nil {
		var elems []json.RawMessage
		if json.Unmarshal(r.MsgBody, &elems) != nil || len(elems) == 0 {
			t.Fatalf("%q: MsgBody %q is not a non-empty array", body, r.MsgBody)
		}
	}
	if r.Offline != nil && (!json.Valid(r.Offline) || !bytes.HasPrefix(r.Offline, []byte("{"))) {
		t.Fatalf("%q: OfflinePushInfo %q is not an object", body, r.Offline)
	}
}

// checkClosed fails when an accepted push or im_push body has a key, or
// a Condition key, that is not documented: ignoring one could widen the
// push to everyone.
func checkClosed(t *testing.T, body []byte, kind im.PushKind) {
	t.Helper()
	var top map[string]json.RawMessage
	if err := json.Unmarshal(body, &top); err != nil {
		t.Fatalf("%q accepted but is not an object: %v", body, err)
	}
	for k := range top {
		if !slices.Contains(pushKeys, k) {
			t.Fatalf("%q accepted with the unknown key %q", body, k)
		}
	}
	var cond map[string]json.RawMessage
	if json.Unmarshal(top["Condition"], &cond) != nil {
		return // absent or null
	}
	keys := conditionKeys
	if kind == im.PushLegacy {
		keys = legacyConditionKeys
	}
	for k := range cond {
		if !slices.Contains(keys, k) {
			t.Fatalf("%q accepted with the unknown Condition key %q", body, k)
		}
	}
}

// reencode writes r back as a request body.
func reencode(t *testing.T, r *service.PushRequest) []byte {
	t.Helper()
	m := map[string]any{"MsgRandom": r.MsgRandom, "MsgLifeTime": r.MsgLifeTime}
	if r.From != "" {
		m["From_Account"] = r.From
	}
	if r.Condition != nil {
		m["Condition"] = r.Condition
	}
	if r.To != nil {
		m["To_Account"] = r.To
	}
	if r.MsgBody != nil {
		m["MsgBody"] = r.MsgBody
	}
	if r.Offline != nil {
		m["OfflinePushInfo"] = r.Offline
	}
	if r.OnlineOnly {
		m["OnlineOnlyFlag"] = 1
	}
	if r.DataID != "" {
		m["DataId"] = r.DataID
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
