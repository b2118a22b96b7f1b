package service

import (
	"fmt"
	"reflect"
	"testing"

	"timd/internal/im"
)

// importLines are lines of the import file: ones the fast path takes and
// ones it must hand to encoding/json.
var importLines = []string{
	`{"UserID":"u1"}`,
	`{"UserID":"u1","Nick":"Ann","FaceUrl":"https://x/y.png","Attrs":{"city":"sz","level":"3"},"Tags":["vip","beta"]}`,
	` { "Tags" : [ "a" , "b" ] , "UserID" : "u2" , "Attrs" : { } } ` + "\r\n",
	`{"UserID":"u3","Tags":[],"Attrs":{}}`,
	`{"UserID":"ü-ser","Nick":"名字","Tags":["标签"]}`,
	`{"UserID":"u4","Attrs":{"city":""}}`,
	`{"UserID":"u4","Attrs":{"nope":"v"}}`,
	`{"UserID":"u4","Attrs":{"city":"a","city":"b"}}`,
	`{"UserID":"u4","Attrs":{"city":"a","level":"b","city":"c"}}`,
	`{"UserID":"u5","Tags":[""]}`,
	`{"UserID":"u5","Tags":["` + string(make([]byte, 51)) + `"]}`,
	`{"UserID":"u5","Tags":["aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"]}`,
	`{"UserID":"u5","Tags":["x"],"Tags":["y"]}`,
	`{"UserID":"u5","UserID":"u6"}`,
	`{"userid":"u7"}`,
	`{"USERID":"u7","tags":["a"]}`,
	`{"UserID":"u\u0037"}`,
	`{"UserID":"u\"q"}`,
	`{"UserID":"u8","Nick":null}`,
	`{"UserID":"u8","Attrs":null}`,
	`{"UserID":"u8","Tags":null}`,
	`{"UserID":"u8","Tags":[null]}`,
	`{"UserID":"u8","Attrs":{"city":null}}`,
	`{"UserID":"u9","Extra":1}`,
	`{"UserID":9}`,
	`{"UserID":"u9","Tags":"a"}`,
	`{"UserID":"u9","Attrs":["a"]}`,
	`{"UserID":"u9"`,
	`{"UserID":"u9",}`,
	`{"UserID":"u9"}{"UserID":"u10"}`,
	`{"UserID":"u9"} x`,
	`{"UserID" "u9"}`,
	`{"UserID":"u9" "Nick":"n"}`,
	`{,"UserID":"u9"}`,
	`{"UserID":"u9","Tags":["a",]}`,
	`{"UserID":"u9","Tags":["a" "b"]}`,
	`{"UserID":"u9","Attrs":{"city":"a",}}`,
	`{"UserID":"u9","Attrs":{"city" "a"}}`,
	`[]`,
	`"u1"`,
	`{}`,
	``,
	`{"UserID":"` + "\xff" + `"}`,
	`{"UserID":"u` + "\x01" + `"}`,
	`{"UserID":"u1","Tags":["` + "\xe4\xb8" + `"]}`,
	`{"UserID":"toolongtoolongtoolongtoolongtoolong"}`,
	`{"UserID":"u1","Attrs":{"a0":"1","a1":"1","a2":"1","a3":"1","a4":"1","a5":"1","a6":"1","a7":"1","a8":"1","a9":"1","b0":"1","b1":"1","b2":"1","b3":"1","b4":"1","b5":"1","b6":"1"}}`,
}

func testSchema() *im.AttrSchema {
	var s im.AttrSchema
	s[0].Name, s[1].Name = "city", "level"
	return &s
}

// sameDecode checks that DecodeImportLine (fast path where it applies)
// and encoding/json agree on line.
func sameDecode(t *testing.T, line string) {
	t.Helper()
	schema := testSchema()
	got, gotErr := DecodeImportLine([]byte(line), schema)
	want, wantErr := decodeImportLineJSON([]byte(line), schema)
	if fmt.Sprint(gotErr) != fmt.Sprint(wantErr) {
		t.Fatalf("line %q: error %v, encoding/json says %v", line, gotErr, wantErr)
	}
	if wantErr != nil {
		return
	}
	if len(got.Tags) == 0 && len(want.Tags) == 0 {
		got.Tags, want.Tags = nil, nil
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("line %q: %+v, encoding/json says %+v", line, got, want)
	}
}

// TestDecodeImportLineFastPath checks that the fast path and encoding/json
// decode every line to the same account or the same error, and that the
// fast path takes the common lines.
func TestDecodeImportLineFastPath(t *testing.T) {
	for _, line := range importLines {
		sameDecode(t, line)
	}
	for _, line := range importLines[:5] {
		if _, ok := scanImportLine([]byte(line)); !ok {
			t.Errorf("fast path declined %q", line)
		}
	}
	for _, line := range []string{`{"userid":"u7"}`, `{"UserID":"u\u0037"}`, `{"UserID":"u8","Nick":null}`,
		`{"UserID":"u4","Attrs":{"city":"a","city":"b"}}`, `{"UserID":"u9"}{"UserID":"u10"}`} {
		if _, ok := scanImportLine([]byte(line)); ok {
			t.Errorf("fast path took %q", line)
		}
	}
}

// FuzzDecodeImportLine: the two paths agree on any line.
func FuzzDecodeImportLine(f *testing.F) {
	for _, line := range importLines {
		f.Add(line)
	}
	f.Fuzz(sameDecode)
}

func BenchmarkDecodeImportLine(b *testing.B) {
	line := []byte(`{"UserID":"user00000042","Attrs":{"city":"gz","level":"l2"},"Tags":["t42","g0"]}`)
	schema := testSchema()
	b.Run("fast", func(b *testing.B) {
		for range b.N {
			if _, err := DecodeImportLine(line, schema); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		for range b.N {
			if _, err := decodeImportLineJSON(line, schema); err != nil {
				b.Fatal(err)
			}
		}
	})
}
