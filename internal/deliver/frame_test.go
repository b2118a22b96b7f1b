package deliver_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"timd/internal/deliver"
	"timd/internal/im"
)

func TestPushFrame(t *testing.T) {
	for _, tc := range []struct {
		name string
		task im.TaskHead
		want string
	}{
		{"message", im.TaskHead{ID: "t1", Seq: 7, From: "ops", CreatedAt: 100, ExpiresAt: 200,
			MsgBody: json.RawMessage(`[ {"MsgType":"TIMTextElem","MsgContent":{"Text":"hi"}} ]`),
			Offline: json.RawMessage(`{"Title":"T"}`), DataID: "d1"},
			`{"Type":"push","TaskId":"t1","Seq":7,"From_Account":"ops","MsgBody":[{"MsgType":"TIMTextElem","MsgContent":{"Text":"hi"}}],"OfflinePushInfo":{"Title":"T"},"DataId":"d1","CreatedAt":100,"ExpiresAt":200}`},
		{"notification only", im.TaskHead{ID: "t2", Seq: 8, From: "ops", CreatedAt: 100,
			Offline: json.RawMessage(`{"PushFlag":0,"Desc":"d"}`)},
			`{"Type":"push","TaskId":"t2","Seq":8,"From_Account":"ops","OfflinePushInfo":{"PushFlag":0,"Desc":"d"},"CreatedAt":100}`},
		{"invalid raw JSON is dropped", im.TaskHead{ID: "t3", Seq: 9, From: "ops", CreatedAt: 1,
			MsgBody: json.RawMessage(`[{`), Offline: json.RawMessage(`{"Title":"ok"}`)},
			`{"Type":"push","TaskId":"t3","Seq":9,"From_Account":"ops","OfflinePushInfo":{"Title":"ok"},"CreatedAt":1}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := string(deliver.PushFrame(&tc.task)); got != tc.want {
				t.Fatalf("PushFrame =\n%s\nwant\n%s", got, tc.want)
			}
		})
	}
}

func TestDecodeClientFrame(t *testing.T) {
	long := strings.Repeat("t", deliver.MaxTaskIDLen)
	var hundredIDs []string
	for i := range deliver.MaxAckIDs {
		hundredIDs = append(hundredIDs, fmt.Sprint("t", i))
	}
	hundred := `"` + strings.Join(hundredIDs, `","`) + `"`
	for _, tc := range []struct {
		in   string
		want deliver.ClientFrame
		ok   bool
	}{
		{`{"Type":"ack","TaskId":"t1"}`, deliver.ClientFrame{Type: "ack", TaskID: "t1"}, true},
		{`{"Type":"click","TaskId":"t1","Extra":{"a":1}}`, deliver.ClientFrame{Type: "click", TaskID: "t1"}, true},
		{` {"Type":"ping"}`, deliver.ClientFrame{Type: "ping"}, true},
		{`{"Type":"ping","TaskId":"ignored"}`, deliver.ClientFrame{Type: "ping"}, true},
		{`{"Type":"ack","TaskId":"` + long + `"}`, deliver.ClientFrame{Type: "ack", TaskID: long}, true},
		{`{"Type":"ack","TaskId":"` + long + `x"}`, deliver.ClientFrame{}, false},
		{`{"Type":"ack"}`, deliver.ClientFrame{}, false},
		{`{"Type":"ack","TaskId":""}`, deliver.ClientFrame{}, false},
		{`{"Type":"ack","TaskId":7}`, deliver.ClientFrame{}, false},
		{`{"Type":"pong"}`, deliver.ClientFrame{}, false},
		{`{"TaskId":"t1"}`, deliver.ClientFrame{}, false},
		{`{"Type":null}`, deliver.ClientFrame{}, false},
		{`null`, deliver.ClientFrame{}, false},
		{`[]`, deliver.ClientFrame{}, false},
		{`{"Type":"ping"} x`, deliver.ClientFrame{}, false},
		{``, deliver.ClientFrame{}, false},
		// Batched acks.
		{`{"Type":"ack","TaskIds":["t1","t2"]}`, deliver.ClientFrame{Type: "ack", TaskIDs: []string{"t1", "t2"}}, true},
		{`{"Type":"ack","TaskIds":["t1"]}`, deliver.ClientFrame{Type: "ack", TaskIDs: []string{"t1"}}, true},
		{`{"Type":"ack","TaskIds":[` + hundred + `]}`, deliver.ClientFrame{Type: "ack", TaskIDs: hundredIDs}, true},
		{`{"Type":"ack","TaskIds":["` + long + `"]}`, deliver.ClientFrame{Type: "ack", TaskIDs: []string{long}}, true},
		{`{"Type":"ack","TaskIds":[]}`, deliver.ClientFrame{}, false},
		{`{"Type":"ack","TaskIds":[` + hundred + `,"t101"]}`, deliver.ClientFrame{}, false},
		{`{"Type":"ack","TaskIds":["` + long + `x"]}`, deliver.ClientFrame{}, false},
		{`{"Type":"ack","TaskIds":["t1",""]}`, deliver.ClientFrame{}, false},
		{`{"Type":"ack","TaskId":"t1","TaskIds":["t2"]}`, deliver.ClientFrame{}, false},
		{`{"Type":"ack","TaskIds":["t1",7]}`, deliver.ClientFrame{}, false},
		{`{"Type":"ack","TaskIds":[null]}`, deliver.ClientFrame{}, false},
		{`{"Type":"ack","TaskIds":"t1"}`, deliver.ClientFrame{}, false},
		{`{"Type":"click","TaskIds":["t1"]}`, deliver.ClientFrame{}, false},
		{`{"Type":"ping","TaskIds":["t1"]}`, deliver.ClientFrame{Type: "ping"}, true},
	} {
		got, err := deliver.DecodeClientFrame([]byte(tc.in))
		if (err == nil) != tc.ok || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("DecodeClientFrame(%s) = %+v, %v; want %+v, ok=%v", tc.in, got, err, tc.want, tc.ok)
		}
		if err != nil && !errors.Is(err, deliver.ErrBadFrame) {
			t.Errorf("DecodeClientFrame(%s) error %v does not wrap ErrBadFrame", tc.in, err)
		}
	}
}

// TestPushesFrame: a pushes message is the push frames, byte for byte, in
// the order given, inside {"Type":"pushes","Pushes":[…]}, and valid JSON.
func TestPushesFrame(t *testing.T) {
	a := deliver.PushFrame(&im.TaskHead{ID: "t1", Seq: 1, From: "ops", CreatedAt: 5, MsgBody: json.RawMessage(`[{"MsgType":"TIMTextElem","MsgContent":{"Text":"<hi>"}}]`)})
	b := deliver.PushFrame(&im.TaskHead{ID: "t2", Seq: 2, From: "ops", CreatedAt: 6, Offline: json.RawMessage(`{"Title":"T"}`)})
	got := deliver.AppendPushesFrame([]byte("x"), a, b)
	if want := `x{"Type":"pushes","Pushes":[` + string(a) + `,` + string(b) + `]}`; string(got) != want {
		t.Fatalf("AppendPushesFrame =\n%s\nwant\n%s", got, want)
	}
	var m struct {
		Type   string
		Pushes []json.RawMessage
	}
	if err := json.Unmarshal(got[1:], &m); err != nil || m.Type != deliver.TypePushes || len(m.Pushes) != 2 ||
		string(m.Pushes[0]) != string(a) || string(m.Pushes[1]) != string(b) {
		t.Fatalf("decoded %+v, %v", m, err)
	}
	if one := deliver.AppendPushesFrame(nil, a); string(one) != `{"Type":"pushes","Pushes":[`+string(a)+`]}` {
		t.Fatalf("one push: %s", one)
	}
}

func TestParseBatch(t *testing.T) {
	for _, tc := range []struct {
		in       string
		want, ok bool
	}{{"", false, true}, {"0", false, true}, {"1", true, true}, {"2", false, false}, {"true", false, false}, {" 1", false, false}} {
		got, err := deliver.ParseBatch(tc.in)
		if got != tc.want || (err == nil) != tc.ok {
			t.Errorf("ParseBatch(%q) = %v, %v", tc.in, got, err)
		}
	}
}
