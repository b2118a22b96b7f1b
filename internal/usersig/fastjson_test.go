package usersig

import (
	"encoding/json"
	"reflect"
	"testing"
)

var fastSeeds = []string{
	`{"TLS.ver":"2.0","TLS.identifier":"xiaojun","TLS.sdkappid":1400000001,"TLS.expire":86400,"TLS.time":1700000000,"TLS.sig":"LvA7d/Iw7gSsnskvVzBDPOCCDbuNCw4GHwTC0bip+B4="}`,
	` { "TLS.ver" : "2.0" ,
	"TLS.identifier": "a b", "TLS.sdkappid": 0, "TLS.expire": 0, "TLS.time": 0, "TLS.sig": "" } `,
	`{"TLS.identifier":"x","TLS.identifier":"y","TLS.sdkappid":1,"TLS.expire":1,"TLS.time":1,"TLS.sig":"AA=="}`,
	`{"tls.identifier":"x","TLS.sdkappid":1,"TLS.expire":1,"TLS.time":1,"TLS.sig":"AA=="}`,
	`{"TLS.identifier":"x\u0041","TLS.sdkappid":1,"TLS.expire":1,"TLS.time":1,"TLS.sig":"AA=="}`,
	`{"TLS.identifier":"x","TLS.sdkappid":01,"TLS.expire":1.0,"TLS.time":1e3,"TLS.sig":"AA=="}`,
	`{"TLS.identifier":"x","TLS.sdkappid":-1,"TLS.expire":-1,"TLS.time":18446744073709551616,"TLS.sig":"A"}`,
	`{"TLS.identifier":"x","TLS.sdkappid":1,"TLS.userbuf":"","TLS.expire":1,"TLS.time":1,"TLS.sig":"AA=="}`,
	`{"TLS.identifier":null,"TLS.sdkappid":1,"TLS.expire":1,"TLS.time":1,"TLS.sig":"AA=="}`,
	`{"TLS.identifier":"é","TLS.sdkappid":1,}`,
	`{"TLS.identifier":"x"}{}`,
	`{}`, ``, `{`, `[]`, `{"TLS.sig":"AA==\n"}`,
}

// TestParseFastMatchesEncodingJSON runs the seeds of the fuzz test below.
func TestParseFastMatchesEncodingJSON(t *testing.T) {
	for _, s := range fastSeeds {
		checkParseFast(t, []byte(s))
	}
}

// FuzzParseFastMatchesEncodingJSON: whatever parseFast accepts,
// encoding/json accepts too and decodes to the same fields.
func FuzzParseFastMatchesEncodingJSON(f *testing.F) {
	for _, s := range fastSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, js []byte) { checkParseFast(t, js) })
}

func checkParseFast(t *testing.T, js []byte) {
	var fast wireSig
	if !fast.parseFast(js) {
		return
	}
	var slow wireSig
	if err := json.Unmarshal(js, &slow); err != nil {
		t.Fatalf("parseFast accepted %q, encoding/json refuses it: %v", js, err)
	}
	if !reflect.DeepEqual(fast, slow) {
		t.Fatalf("%q: parseFast %+v, encoding/json %+v", js, fast, slow)
	}
}

// TestGeneratedSigsTakeTheFastPath: the sigs Gen makes (and the
// official generators, whose JSON has the same plain form) decode
// without encoding/json.
func TestGeneratedSigsTakeTheFastPath(t *testing.T) {
	sig, err := Gen(1400000001, vecKey, "user_1", 86400, 1700000000)
	if err != nil {
		t.Fatal(err)
	}
	before := slowDecodes.Load()
	for _, tok := range []string{sig, vecA} {
		if _, err := Decode(tok); err != nil {
			t.Fatal(err)
		}
	}
	if n := slowDecodes.Load() - before; n != 0 {
		t.Fatalf("%d of 2 generated sigs went through encoding/json", n)
	}
}
