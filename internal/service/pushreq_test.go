package service

import (
	"encoding/json"
	"reflect"
	"testing"

	"timd/internal/im"
)

// TestStoredPush: a scheduled task's push survives its stored form, and a
// task stored by an older timd (the request's own body, extra keys and
// "Condition":{} included) still decodes, an empty Condition as none.
func TestStoredPush(t *testing.T) {
	in := &PushRequest{Kind: im.PushCondition, From: "ops", MsgRandom: 7, HasRandom: true,
		Condition: &im.Condition{TagsOr: []string{"gold"}}, MsgBody: json.RawMessage(`[{"MsgType":"TIMTextElem","MsgContent":{"Text":"hi"}}]`),
		Offline: json.RawMessage(`{"Title":"t"}`), OnlineOnly: true, MsgLifeTime: 60, DataID: "d"}
	raw, err := encodeStored(in)
	if err != nil {
		t.Fatal(err)
	}
	out, err := decodeStored(raw, im.PushCondition)
	if err != nil {
		t.Fatal(err)
	}
	out.Size = 0
	if !reflect.DeepEqual(in, out) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", out, in)
	}
	old := `{"From_Account":"a","Condition":{},"OfflinePushInfo":{"Title":"t"},"Extra":1}`
	r, err := decodeStored(json.RawMessage(old), im.PushCondition)
	if err != nil || r.Condition != nil || r.HasRandom || r.From != "a" || string(r.Offline) != `{"Title":"t"}` {
		t.Fatalf("old content = %+v, %v", r, err)
	}
	batch := `{"To_Account":["u1","u2"],"MsgRandom":0,"OfflinePushInfo":{}}`
	r, err = decodeStored(json.RawMessage(batch), im.PushBatch)
	if err != nil || len(r.To) != 2 || !r.HasRandom || r.MsgRandom != 0 {
		t.Fatalf("batch content = %+v, %v", r, err)
	}
}
