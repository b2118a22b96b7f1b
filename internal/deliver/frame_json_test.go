package deliver_test

import (
	"bytes"
	"encoding/json"
	"math"
	"math/rand/v2"
	"testing"

	"timd/internal/deliver"
	"timd/internal/im"
)

// referenceFrame is a push frame as encoding/json renders it: the
// reflective encoder PushFrame replaced, kept here as the definition of
// the bytes it must produce.
type referenceFrame struct {
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

// referencePushFrame renders t with encoding/json, dropping a raw field
// that is not valid JSON, as PushFrame is documented to.
func referencePushFrame(t *im.TaskHead) []byte {
	f := referenceFrame{Type: deliver.TypePush, TaskID: t.ID, Seq: t.Seq, From: t.From, MsgBody: t.MsgBody,
		OfflinePushInfo: t.Offline, DataID: t.DataID, CreatedAt: t.CreatedAt, ExpiresAt: t.ExpiresAt}
	if !json.Valid(f.MsgBody) {
		f.MsgBody = nil
	}
	if !json.Valid(f.OfflinePushInfo) {
		f.OfflinePushInfo = nil
	}
	b, err := json.Marshal(f)
	if err != nil {
		panic(err)
	}
	return b
}

// checkFrame fails t unless PushFrame and AppendPushFrame render h exactly
// as encoding/json does, and the frame is valid JSON.
func checkFrame(t *testing.T, h *im.TaskHead) {
	t.Helper()
	want := referencePushFrame(h)
	if got := deliver.PushFrame(h); !bytes.Equal(got, want) {
		t.Fatalf("PushFrame(%+v) =\n%q\nencoding/json:\n%q", h, got, want)
	}
	prefix := []byte("prefix")
	if got := deliver.AppendPushFrame(prefix, h); !bytes.Equal(got[:6], prefix) || !bytes.Equal(got[6:], want) {
		t.Fatalf("AppendPushFrame(prefix, %+v) = %q", h, got)
	}
	if !json.Valid(want) {
		t.Fatalf("frame %q is not valid JSON", want)
	}
}

func TestPushFrameMatchesEncodingJSON(t *testing.T) {
	strs := []string{"", "t1", "ops", "a b", `q"uote`, `back\slash`, "<b>&amp;</b>", "tab\there", "nl\n",
		"\x00\x1f\x7f", "中文", "emoji 😀", "line\u2028sep\u2029", "bad utf8 \xff\xfe", "\xe2\x80", "\xe2"}
	raws := []string{"", "null", "[]", "{}", `[ {"MsgType":"TIMTextElem","MsgContent":{"Text":"hi there"}} ]`,
		`{"Title":"<b>T</b> & co"}`, "{\"a\":\"\u2028\u2029\"}", "{\n\t\"a\" : 1 ,\r\n \"b\":[1, 2]}", `[{`, `{"a":1}x`,
		`"str"`, `12.5e3`, `true`, "{\"k\":\"\xff\"}", `{"e":"\u003c"}`, `  [1]  `, "\xe2\x80\xa8", `{"a":"\xe2\x80"}`}
	nums := []int64{0, 1, -1, 42, math.MaxInt64, math.MinInt64}
	for _, id := range strs {
		checkFrame(t, &im.TaskHead{ID: id, From: id, DataID: id, Seq: 1, CreatedAt: 2})
	}
	for _, raw := range raws {
		checkFrame(t, &im.TaskHead{ID: "t", MsgBody: json.RawMessage(raw), Offline: json.RawMessage(raw)})
		checkFrame(t, &im.TaskHead{ID: "t", MsgBody: json.RawMessage(raw)})
		checkFrame(t, &im.TaskHead{ID: "t", Offline: json.RawMessage(raw)})
	}
	for _, n := range nums {
		checkFrame(t, &im.TaskHead{ID: "t", Seq: n, CreatedAt: n, ExpiresAt: n})
	}
	checkFrame(t, &im.TaskHead{ID: "t", MsgBody: json.RawMessage{}, Offline: json.RawMessage{}})
	// Random combinations of the above.
	r := rand.New(rand.NewPCG(1, 2))
	for range 20000 {
		h := im.TaskHead{ID: strs[r.IntN(len(strs))], From: strs[r.IntN(len(strs))], DataID: strs[r.IntN(len(strs))],
			MsgBody: json.RawMessage(raws[r.IntN(len(raws))]), Offline: json.RawMessage(raws[r.IntN(len(raws))]),
			Seq: nums[r.IntN(len(nums))], CreatedAt: r.Int64(), ExpiresAt: nums[r.IntN(len(nums))]}
		checkFrame(t, &h)
	}
}

// FuzzPushFrame checks that any task head renders to exactly the bytes
// encoding/json writes, and to valid JSON.
func FuzzPushFrame(f *testing.F) {
	f.Add("t1", "ops", "d1", []byte(`[{"MsgType":"TIMTextElem","MsgContent":{"Text":"hi"}}]`), []byte(`{"Title":"T"}`), int64(7), int64(100), int64(200))
	f.Add("<&>", "中文\u2028", "", []byte("{\n \"a\" : \"<\u2029>\" }"), []byte(`[{`), int64(-1), int64(0), int64(0))
	f.Fuzz(func(t *testing.T, id, from, data string, body, offline []byte, seq, created, expires int64) {
		checkFrame(t, &im.TaskHead{ID: id, From: from, DataID: data, MsgBody: body, Offline: offline,
			Seq: seq, CreatedAt: created, ExpiresAt: expires})
	})
}

func BenchmarkPushFrame(b *testing.B) {
	h := im.TaskHead{App: 1400000001, ID: "1400000001-000000000042-abcdef", Seq: 42, From: "administrator",
		MsgBody:   json.RawMessage(`[{"MsgType":"TIMTextElem","MsgContent":{"Text":"Your order has shipped and will arrive tomorrow"}}]`),
		Offline:   json.RawMessage(`{"PushFlag":0,"Title":"Shipping","Desc":"Your order has shipped"}`),
		DataID:    "d-42",
		CreatedAt: 1764633600, ExpiresAt: 1765238400}
	b.Run("append", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			deliver.PushFrame(&h)
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			referencePushFrame(&h)
		}
	})
}
