package usersig

import (
	"bytes"
	"compress/zlib"
	"encoding/base64"
	"fmt"
	"math"
	"strings"
	"sync"
	"testing"

	"github.com/tencentyun/tls-sig-api-v2-golang/tencentyun"
	"timd/internal/im"
)

// packWriters caches one zlib writer per level: a flate writer costs
// hundreds of KiB, which dominated the property test's run time.
var packWriters = struct {
	sync.Mutex
	m map[int]*zlib.Writer
}{m: map[int]*zlib.Writer{}}

// pack zlib-compresses js at level and applies the token alphabet.
func pack(tb testing.TB, js []byte, level int) string {
	tb.Helper()
	packWriters.Lock()
	defer packWriters.Unlock()
	var b bytes.Buffer
	zw := packWriters.m[level]
	if zw == nil {
		var err error
		if zw, err = zlib.NewWriterLevel(&b, level); err != nil {
			tb.Fatal(err)
		}
		packWriters.m[level] = zw
	}
	zw.Reset(&b)
	zw.Write(js)
	zw.Close()
	return tokenEncoding.EncodeToString(b.Bytes())
}

// mac is the standard base64 TLS.sig for key "k" without userbuf.
func mac(identifier string, sdkappid uint64, time, expire int64) string {
	return base64.StdEncoding.EncodeToString(sign("k", identifier, sdkappid, time, expire, nil, false))
}

// doc is a correctly signed document for ("u", 1, time 1000, expire 60).
func doc(format string) []byte {
	return []byte(fmt.Sprintf(format, mac("u", 1, 1000, 60)))
}

// TestDecodeEdges covers malformed and unusual tokens. officialOK records
// the official verifier's verdict, so deliberate strictness stays visible.
func TestDecodeEdges(t *testing.T) {
	valid := doc(`{"TLS.ver":"2.0","TLS.identifier":"u","TLS.sdkappid":1,"TLS.expire":60,"TLS.time":1000,"TLS.sig":"%s"}`)
	validTok := pack(t, valid, zlib.DefaultCompression)
	z, _ := tokenEncoding.DecodeString(validTok)
	badSum := bytes.Clone(z)
	badSum[len(badSum)-1] ^= 1
	bigPad := func(n int) []byte { return append(bytes.Repeat([]byte(" "), n), valid...) }
	tests := []struct {
		name       string
		token      string
		want       int
		officialOK bool
	}{
		{"valid", validTok, 0, true},
		{"empty", "", im.CodeSigEmpty, false},
		{"not base64", "%%%%", im.CodeSigInvalid, false},
		{"bad padding", validTok[:len(validTok)-1], im.CodeSigInvalid, false},
		{"not zlib", tokenEncoding.EncodeToString([]byte("plain text here")), im.CodeSigInvalid, false},
		{"truncated zlib", tokenEncoding.EncodeToString(z[:len(z)-6]), im.CodeSigInvalid, false},
		{"bad checksum", tokenEncoding.EncodeToString(badSum), im.CodeSigInvalid, false},
		{"trailing bytes after zlib", tokenEncoding.EncodeToString(append(bytes.Clone(z), "junk"...)), 0, true},
		{"standard alphabet", base64.StdEncoding.EncodeToString(z), 0, true},
		{"level 0", pack(t, valid, zlib.NoCompression), 0, true},
		{"JSON garbage", pack(t, []byte(`{"TLS.ver":`), 9), im.CodeSigInvalid, false},
		{"JSON null", pack(t, []byte(`null`), 9), im.CodeSigInvalid, false},
		{"JSON array", pack(t, []byte(`[1]`), 9), im.CodeSigInvalid, false},
		{"no ver", pack(t, doc(`{"TLS.identifier":"u","TLS.sdkappid":1,"TLS.expire":60,"TLS.time":1000,"TLS.sig":"%s"}`), 9), 0, true},
		{"key order and spaces", pack(t, doc(" {\n \"TLS.sig\" : \"%s\", \"TLS.time\":1000,\"TLS.expire\":60,\"TLS.sdkappid\":1,\"TLS.identifier\":\"u\", \"x\":[{}]}\n"), 9), 0, true},
		{"keys match case-insensitively like encoding/json", pack(t, doc(`{"tls.IDENTIFIER":"u","TLS.SdkAppID":1,"TLS.expire":60,"TLS.time":1000,"TLS.sig":"%s"}`), 9), 0, true},
		{"expire -0", pack(t, []byte(fmt.Sprintf(`{"TLS.identifier":"u","TLS.sdkappid":1,"TLS.expire":-0,"TLS.time":1030,"TLS.sig":"%s"}`, mac("u", 1, 1030, 0))), 9), 0, true},
		{"ver 3.0", pack(t, doc(`{"TLS.ver":"3.0","TLS.identifier":"u","TLS.sdkappid":1,"TLS.expire":60,"TLS.time":1000,"TLS.sig":"%s"}`), 9), im.CodeSigInvalid, true},
		{"ver number", pack(t, doc(`{"TLS.ver":2.0,"TLS.identifier":"u","TLS.sdkappid":1,"TLS.expire":60,"TLS.time":1000,"TLS.sig":"%s"}`), 9), im.CodeSigInvalid, false},
		{"no identifier", pack(t, doc(`{"TLS.sdkappid":1,"TLS.expire":60,"TLS.time":1000,"TLS.sig":"%s"}`), 9), im.CodeSigInvalid, false},
		{"null identifier", pack(t, doc(`{"TLS.identifier":null,"TLS.sdkappid":1,"TLS.expire":60,"TLS.time":1000,"TLS.sig":"%s"}`), 9), im.CodeSigInvalid, false},
		{"no sdkappid", pack(t, doc(`{"TLS.identifier":"u","TLS.expire":60,"TLS.time":1000,"TLS.sig":"%s"}`), 9), im.CodeSigInvalid, false},
		{"no expire", pack(t, doc(`{"TLS.identifier":"u","TLS.sdkappid":1,"TLS.time":1000,"TLS.sig":"%s"}`), 9), im.CodeSigInvalid, false},
		{"no time", pack(t, doc(`{"TLS.identifier":"u","TLS.sdkappid":1,"TLS.expire":60,"TLS.sig":"%s"}`), 9), im.CodeSigInvalid, false},
		{"no sig", pack(t, []byte(`{"TLS.identifier":"u","TLS.sdkappid":1,"TLS.expire":60,"TLS.time":1000}`), 9), im.CodeSigInvalid, false},
		{"empty sig", pack(t, []byte(`{"TLS.identifier":"u","TLS.sdkappid":1,"TLS.expire":60,"TLS.time":1000,"TLS.sig":""}`), 9), im.CodeSigInvalid, false},
		{"sig not base64", pack(t, []byte(`{"TLS.identifier":"u","TLS.sdkappid":1,"TLS.expire":60,"TLS.time":1000,"TLS.sig":"!!"}`), 9), im.CodeSigInvalid, false},
		{"short sig", pack(t, []byte(`{"TLS.identifier":"u","TLS.sdkappid":1,"TLS.expire":60,"TLS.time":1000,"TLS.sig":"AAAA"}`), 9), im.CodeSigMismatch, false},
		{"quoted sdkappid", pack(t, doc(`{"TLS.identifier":"u","TLS.sdkappid":"1","TLS.expire":60,"TLS.time":1000,"TLS.sig":"%s"}`), 9), im.CodeSigInvalid, false},
		{"negative sdkappid", pack(t, doc(`{"TLS.identifier":"u","TLS.sdkappid":-1,"TLS.expire":60,"TLS.time":1000,"TLS.sig":"%s"}`), 9), im.CodeSigInvalid, false},
		{"fractional sdkappid", pack(t, doc(`{"TLS.identifier":"u","TLS.sdkappid":1.0,"TLS.expire":60,"TLS.time":1000,"TLS.sig":"%s"}`), 9), im.CodeSigInvalid, false},
		{"exponent expire", pack(t, doc(`{"TLS.identifier":"u","TLS.sdkappid":1,"TLS.expire":6e1,"TLS.time":1000,"TLS.sig":"%s"}`), 9), im.CodeSigInvalid, false},
		{"huge sdkappid", pack(t, doc(`{"TLS.identifier":"u","TLS.sdkappid":18446744073709551617,"TLS.expire":60,"TLS.time":1000,"TLS.sig":"%s"}`), 9), im.CodeSigInvalid, false},
		{"negative expire", pack(t, []byte(fmt.Sprintf(`{"TLS.identifier":"u","TLS.sdkappid":1,"TLS.expire":-10,"TLS.time":1100,"TLS.sig":"%s"}`, mac("u", 1, 1100, -10))), 9), im.CodeSigInvalid, true},
		{"negative time", pack(t, []byte(fmt.Sprintf(`{"TLS.identifier":"u","TLS.sdkappid":1,"TLS.expire":2000,"TLS.time":-1,"TLS.sig":"%s"}`, mac("u", 1, -1, 2000))), 9), im.CodeSigInvalid, true},
		{"time+expire overflows", pack(t, []byte(fmt.Sprintf(`{"TLS.identifier":"u","TLS.sdkappid":1,"TLS.expire":%d,"TLS.time":1000,"TLS.sig":"%s"}`, int64(math.MaxInt64), mac("u", 1, 1000, math.MaxInt64))), 9), im.CodeSigExpired, false},
		{"userbuf null is absent", pack(t, doc(`{"TLS.identifier":"u","TLS.sdkappid":1,"TLS.expire":60,"TLS.time":1000,"TLS.userbuf":null,"TLS.sig":"%s"}`), 9), 0, true},
		{"userbuf empty is present", pack(t, doc(`{"TLS.identifier":"u","TLS.sdkappid":1,"TLS.expire":60,"TLS.time":1000,"TLS.userbuf":"","TLS.sig":"%s"}`), 9), im.CodeSigInvalid, false},
		{"60 KiB document", pack(t, bigPad(60<<10), 9), 0, true},
		{"zlib bomb", pack(t, bigPad(1<<20), 9), im.CodeSigInvalid, true},
		{"token too long", strings.Repeat("A", maxToken+4), im.CodeSigInvalid, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Verify(tt.token, 1, "u", "k", 1030)
			if got := codeOf(err); got != tt.want {
				t.Errorf("code = %d (%v), want %d", got, err, tt.want)
			}
			if got := officialOK(tt.token, 1, "u", "k", 1030, nil); got != tt.officialOK {
				t.Errorf("official ok = %v, want %v", got, tt.officialOK)
			}
		})
	}
}

// TestOfficialOmitsZeroFields documents a deliberate difference: the
// official generator drops a zero field (omitempty), and its verifier reads
// the absence as zero; Decode requires every field (70003).
func TestOfficialOmitsZeroFields(t *testing.T) {
	tok, err := tencentyun.GenUserSig(1, "k", "", 60)
	if err != nil {
		t.Fatal(err)
	}
	if !officialOK(tok, 1, "", "k", 0, nil) {
		t.Error("official verifier rejects its own token")
	}
	if got := codeOf(Verify(tok, 1, "", "k", 0)); got != im.CodeSigInvalid {
		t.Errorf("Verify = %d, want %d", got, im.CodeSigInvalid)
	}
}

func TestDecodeNeverPanics(t *testing.T) {
	for _, tok := range []string{"_", "__", "*", "-", "eJ", "eNo_", "eAEA", strings.Repeat("_", 8), "\x00\xff"} {
		if _, err := Decode(tok); err == nil {
			t.Errorf("Decode(%q) succeeded", tok)
		}
	}
}

// TestCheckIssued: a token dated more than maxSkew seconds ahead of now
// is 70003; at or within the skew, or in the past, it passes.
func TestCheckIssued(t *testing.T) {
	const now = 1_700_000_000
	for _, c := range []struct {
		time, skew int64
		code       int
	}{
		{now, DefaultMaxSkew, 0},
		{now - 86400, DefaultMaxSkew, 0},
		{now + DefaultMaxSkew, DefaultMaxSkew, 0},
		{now + DefaultMaxSkew + 1, DefaultMaxSkew, im.CodeSigInvalid},
		{now + 365*86400, DefaultMaxSkew, im.CodeSigInvalid},
		{math.MaxInt64, DefaultMaxSkew, im.CodeSigInvalid},
		{now + 1, 0, im.CodeSigInvalid},
		{now, 0, 0},
		{now + 1, -5, im.CodeSigInvalid}, // a negative skew counts as 0
		{now + 3600, 3600, 0},
	} {
		s := Sig{Time: c.time}
		if got := im.CodeOf(s.CheckIssued(now, c.skew)); got != c.code {
			t.Errorf("TLS.time now%+d, skew %d: code %d, want %d", c.time-now, c.skew, got, c.code)
		}
	}
	if DefaultMaxSkew != 300 {
		t.Errorf("DefaultMaxSkew = %d, documented as five minutes", DefaultMaxSkew)
	}
}
