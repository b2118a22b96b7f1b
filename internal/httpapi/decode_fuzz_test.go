package httpapi

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"

	"timd/internal/im"
)

// fuzzReq exercises every kind of field the request types use.
type fuzzReq struct {
	Replace   int                `json:"Replace"`
	Random    *uint32            `json:"MsgRandom"`
	Start     *int64             `json:"StartTime"`
	Asc       *bool              `json:"Asc"`
	Lat       float64            `json:"Latitude"`
	ToAccount []string           `json:"To_Account"`
	Names     map[string]string  `json:"AttrNames"`
	Types     map[string]int     `json:"AttrTypes"`
	Items     []fuzzItem         `json:"UserAttrs"`
	Raw       json.RawMessage    `json:"Content"`
	Cond      *fuzzClosed        `json:"Condition"`
	Nested    map[string][]int16 `json:"Nested"`
}

type fuzzItem struct {
	ToAccount *string           `json:"To_Account"`
	Attrs     map[string]string `json:"Attrs"`
	Tags      []string          `json:"Tags"`
}

type fuzzClosed struct {
	TagsOr []string `json:"TagsOr"`
}

func (fuzzClosed) closedKeys() {}

// FuzzDecode checks decode against encoding/json: whatever decode accepts,
// json.Unmarshal accepts with the same result; whatever decode refuses is
// refused with the JSON error or 60015, and json.Unmarshal accepts it only
// when the body is not an object or a closed object has an unknown key.
func FuzzDecode(f *testing.F) {
	for _, s := range []string{`{}`, `null`, `[]`, `{"Replace":1.5}`, `{"MsgRandom":4294967296}`,
		`{"UserAttrs":[{"To_Account":"a","Attrs":{"x":"y"}},{"To_Account":1}]}`, `{"AttrTypes":{"0":"1"}}`,
		`{"Condition":{"TagOr":["x"]}}`, `{"Condition":{"tagsor":["x"]}}`, `{"replace":2,"REPLACE":3}`,
		`{"Nested":{"a":[1,70000]}}`, `{"Content":[1,{"a":null}]}`, `{"Latitude":1e400}`, `{"StartTime":-1}`,
		`{"To_Account":["a",null]}`, `{"Asc":"true"}`, `{"UserAttrs":[null]}`, `{"x":1} {}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var got, want fuzzReq
		err := decode(body, &got)
		uerr := json.Unmarshal(body, &want)
		if err == nil {
			if uerr != nil {
				t.Fatalf("decode accepted %q, json.Unmarshal: %v", body, uerr)
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("%q decodes differently:\n%+v\n%+v", body, got, want)
			}
			return
		}
		e, ok := im.AsError(err)
		if !ok || (e.Kind != im.KindBadJSON && !(e.Kind == im.KindCode && e.Code == im.CodeAccountNotStr)) {
			t.Fatalf("decode(%q) = %v: not the JSON error or 60015", body, err)
		}
		if uerr == nil && bytes.HasPrefix(bytes.TrimSpace(body), []byte("{")) && !closedRefusal(body) {
			t.Fatalf("decode refused %q (%v), json.Unmarshal accepts it", body, err)
		}
	})
}

// closedRefusal reports whether body's Condition object has a key other
// than exactly TagsOr, the one refusal json.Unmarshal cannot see.
func closedRefusal(body []byte) bool {
	var top map[string]json.RawMessage
	if json.Unmarshal(body, &top) != nil {
		return false
	}
	for k, v := range top {
		if !bytes.EqualFold([]byte(k), []byte("Condition")) {
			continue
		}
		var c map[string]json.RawMessage
		if json.Unmarshal(v, &c) != nil {
			continue
		}
		for ck := range c {
			if ck != "TagsOr" {
				return true
			}
		}
	}
	return false
}

// FuzzDecodeIDs checks the reads' fast path against decode: every body
// scanIDs accepts, decode accepts with the same To_Account; and the
// common bodies do take the fast path.
func FuzzDecodeIDs(f *testing.F) {
	for _, s := range []string{`{"To_Account":["a","b"]}`, ` { "To_Account" : [ "a" , "é" ] } `, `{"To_Account":[]}`,
		`{"To_Account":null}`, `{"to_account":["a"]}`, `{"To_Account":["a\"b"]}`, `{"To_Account":["\u00e9"]}`,
		"{\"To_Account\":[\"\xff\"]}", "{\"To_Account\":[\"a\x01\"]}", `{"To_Account":["a"],"To_Account":["b"]}`,
		`{"To_Account":["a"]} x`, `{"To_Account":["a",]}`, `{"To_Account":[1]}`, `{"To_Account":["a"]`, `{"To_Account":"a"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		ids, ok := scanIDs(body)
		if !ok {
			return
		}
		var want accountsReq
		if err := decode(body, &want); err != nil {
			t.Fatalf("scanIDs accepted %q, decode: %v", body, err)
		}
		if want.ToAccount == nil || !reflect.DeepEqual(ids, want.ToAccount) {
			t.Fatalf("scanIDs(%q) = %q, decode %q", body, ids, want.ToAccount)
		}
	})
}

// TestScanIDsTakesCommonBodies checks that the bodies clients send take
// the fast path, and the odd ones do not.
func TestScanIDsTakesCommonBodies(t *testing.T) {
	for body, want := range map[string]bool{
		`{"To_Account":["a","b"]}`:                   true,
		"{\n  \"To_Account\": [\"漢\", \"x y\"]\n}\n": true,
		`{"To_Account":[]}`:                          true,
		`{"To_Account":["a\"b"]}`:                    false,
		`{"To_Account":null}`:                        false,
		`{"To_Account":["a"],"x":1}`:                 false,
		"{\"To_Account\":[\"\xff\"]}":                false,
	} {
		if _, ok := scanIDs([]byte(body)); ok != want {
			t.Errorf("scanIDs(%q) ok = %v, want %v", body, ok, want)
		}
	}
}
