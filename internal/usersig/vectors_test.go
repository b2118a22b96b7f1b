package usersig

import (
	"bytes"
	"compress/zlib"
	"encoding/base64"
	"testing"
	"time"

	"github.com/tencentyun/tls-sig-api-v2-golang/tencentyun"

	"timd/internal/im"
)

// Spec §3.6 test vectors.
const (
	vecAppID = 1400000000
	vecKey   = "5bd2850fff3ecb11d7c805251c51ee463a25727bddc2385f3fa8bfee1bb93b5e"
	vecTime  = 1700000000
	vecA     = "eNqrVgrxCdYrSy1SslIy0jNQ0gHzM1NS80oy0zLBwhWZiflZpXlQqeKU7MSCgswUJStDEwMogMikVhRkFqUCxU1NTY3goiWZuSAxc1S1xZnpQJN9yhzNU-Q9y83Tg4vzirPLwqqcXAL8nZ1dkkr9nMtN3D3KQ5wNkjILtJ1MbJVqAa3HMfI_"
	vecB     = "eNqrVgrxCdYrSy1SslIy0jNQ0gHzM1NS80oy0zLBwokpuZl5mcUlRYkl*UVQBcUp2YkFBZkpSlaGJgZQAJFJrSjILEpVsrIwM4EJlWTmAgUMzVEVFmemAw2v9HFM1S43Dw9NDS0tTAqzzNAPiTC3KDUyzA9xz9TOtIwqMCw1DijIizQzsFWqBQC8iDOS"
	vecC     = "eNqrVgrxCdYrSy1SslIy0jNQ0gHzM1NS80oy0zLBwhWZiflZpXlQqeKU7MSCgswUJStDEwMogMikVhRkFqUCxU1NTY3goiWZuSAxc1S1pcWpRUmlaUDTI8O9smBGZ6YDBQKzQowMDCsCsiOy9RN9DVO1Kw3KErOjkgy8jTIDitxKU7W1DYpNK82S3HxtlWoB78I32g__"
)

// codeOf returns 0 for nil, the Tencent code of an *im.Error, or -1 for
// any other error.
func codeOf(err error) int {
	if err == nil {
		return 0
	}
	if e, ok := im.AsError(err); ok && e.Kind == im.KindCode {
		return e.Code
	}
	return -1
}

// officialOK runs the official verifier with the same inputs and instant.
func officialOK(token string, sdkappid uint64, identifier, key string, now int64, userbuf []byte) bool {
	t := time.Unix(now, 0)
	if userbuf == nil {
		return tencentyun.VerifyUserSig(sdkappid, key, identifier, token, t) == nil
	}
	return tencentyun.VerifyUserSigWithBuf(sdkappid, key, identifier, token, t, userbuf) == nil
}

func TestDecodeVectors(t *testing.T) {
	tests := []struct {
		name, token, identifier, mac string
		expire                       int64
		userbuf                      []byte
	}{
		{"A", vecA, "xiaojun", "LvA7d/Iw7gSsnskvVzBDPOCCDbuNCw4GHwTC0bip+B4=", 15552000, nil},
		{"B", vecB, "administrator", "yLAe+w7WUeUuqbV9h/TX78u21oTGi+i9Zp1u3PpnY60=", 86400, nil},
		{"C", vecC, "xiaojun", "QjT201xPkXk/aM1e+y0vakZb0K2iPrFue++0s5y6bFM=", 15552000, []byte("abc")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Decode(tt.token)
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			want := Sig{Ver: "2.0", Identifier: tt.identifier, SDKAppID: vecAppID, Expire: tt.expire, Time: vecTime,
				UserBuf: tt.userbuf, HasUserBuf: tt.userbuf != nil}
			if got := base64.StdEncoding.EncodeToString(s.MAC); got != tt.mac {
				t.Errorf("MAC = %s, want %s", got, tt.mac)
			}
			s.MAC = nil
			if !sigEqual(s, want) {
				t.Errorf("Decode = %+v, want %+v", s, want)
			}
		})
	}
}

func sigEqual(a, b Sig) bool {
	return a.Ver == b.Ver && a.Identifier == b.Identifier && a.SDKAppID == b.SDKAppID && a.Expire == b.Expire &&
		a.Time == b.Time && bytes.Equal(a.UserBuf, b.UserBuf) && a.HasUserBuf == b.HasUserBuf && bytes.Equal(a.MAC, b.MAC)
}

func TestVerifyVectors(t *testing.T) {
	tests := []struct {
		name       string
		token      string
		sdkappid   uint64
		identifier string
		key        string
		now        int64
		userbuf    []byte // nil: plain Verify
		want       int
	}{
		{"A valid", vecA, vecAppID, "xiaojun", vecKey, 1700000100, nil, 0},
		{"A at issue", vecA, vecAppID, "xiaojun", vecKey, vecTime, nil, 0},
		{"A before issue", vecA, vecAppID, "xiaojun", vecKey, vecTime - 3600, nil, 0},
		{"A last valid second", vecA, vecAppID, "xiaojun", vecKey, 1715552000, nil, 0},
		{"A expired", vecA, vecAppID, "xiaojun", vecKey, 1715552001, nil, im.CodeSigExpired},
		{"A identifier", vecA, vecAppID, "admin", vecKey, 1700000100, nil, im.CodeSigIdentifier},
		{"A identifier case", vecA, vecAppID, "XiaoJun", vecKey, 1700000100, nil, im.CodeSigIdentifier},
		{"A sdkappid", vecA, 1400000001, "xiaojun", vecKey, 1700000100, nil, im.CodeSigSDKAppID},
		{"A key", vecA, vecAppID, "xiaojun", "x", 1700000100, nil, im.CodeSigMismatch},
		{"A sdkappid before identifier", vecA, 1400000001, "admin", "x", 1715552001, nil, im.CodeSigSDKAppID},
		{"A identifier before expiry", vecA, vecAppID, "admin", "x", 1715552001, nil, im.CodeSigIdentifier},
		{"A expiry before key", vecA, vecAppID, "xiaojun", "x", 1715552001, nil, im.CodeSigExpired},
		{"A unexpected userbuf", vecA, vecAppID, "xiaojun", vecKey, 1700000100, []byte("abc"), im.CodeSigInvalid},
		{"B valid", vecB, vecAppID, "administrator", vecKey, 1700000100, nil, 0},
		{"B last valid second", vecB, vecAppID, "administrator", vecKey, vecTime + 86400, nil, 0},
		{"B expired", vecB, vecAppID, "administrator", vecKey, vecTime + 86401, nil, im.CodeSigExpired},
		{"B identifier", vecB, vecAppID, "xiaojun", vecKey, 1700000100, nil, im.CodeSigIdentifier},
		{"B key", vecB, vecAppID, "administrator", vecKey[1:], 1700000100, nil, im.CodeSigMismatch},
		{"C plain verify", vecC, vecAppID, "xiaojun", vecKey, 1700000100, nil, im.CodeSigInvalid},
		{"C with userbuf", vecC, vecAppID, "xiaojun", vecKey, 1700000100, []byte("abc"), 0},
		{"C other userbuf", vecC, vecAppID, "xiaojun", vecKey, 1700000100, []byte("abd"), im.CodeSigMismatch},
		{"C empty userbuf", vecC, vecAppID, "xiaojun", vecKey, 1700000100, []byte{}, im.CodeSigMismatch},
		{"C expired", vecC, vecAppID, "xiaojun", vecKey, 1715552001, []byte("abc"), im.CodeSigExpired},
		{"C key", vecC, vecAppID, "xiaojun", "x", 1700000100, []byte("abc"), im.CodeSigMismatch},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var err error
			if tt.userbuf == nil {
				err = Verify(tt.token, tt.sdkappid, tt.identifier, tt.key, tt.now)
			} else {
				err = VerifyWithUserBuf(tt.token, tt.sdkappid, tt.identifier, tt.key, tt.now, tt.userbuf)
			}
			if got := codeOf(err); got != tt.want {
				t.Errorf("code = %d (%v), want %d", got, err, tt.want)
			}
			if off := officialOK(tt.token, tt.sdkappid, tt.identifier, tt.key, tt.now, tt.userbuf); off != (err == nil) {
				t.Errorf("official ok = %v, ours err = %v", off, err)
			}
		})
	}
}

// TestGenRoundTrip regenerates the vectors with Gen: tokens differ byte-wise
// from the spec's (zlib implementations differ) but decode to the same
// fields and MAC, and both verifiers accept them.
func TestGenRoundTrip(t *testing.T) {
	for _, tt := range []struct {
		name, token, identifier string
		expire                  int64
		userbuf                 []byte
	}{
		{"A", vecA, "xiaojun", 15552000, nil},
		{"B", vecB, "administrator", 86400, nil},
		{"C", vecC, "xiaojun", 15552000, []byte("abc")},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tok, err := GenWithUserBuf(vecAppID, vecKey, tt.identifier, tt.expire, vecTime, tt.userbuf)
			if err != nil {
				t.Fatal(err)
			}
			got, err1 := Decode(tok)
			want, err2 := Decode(tt.token)
			if err1 != nil || err2 != nil || !sigEqual(got, want) {
				t.Fatalf("Decode(Gen) = %+v, %v; want %+v, %v", got, err1, want, err2)
			}
			if err := VerifyWithUserBuf(tok, vecAppID, tt.identifier, vecKey, vecTime+1, tt.userbuf); err != nil {
				t.Errorf("Verify: %v", err)
			}
			if !officialOK(tok, vecAppID, tt.identifier, vecKey, vecTime+1, tt.userbuf) {
				t.Error("official verifier rejects Gen's token")
			}
		})
	}
}

func TestGenPlainEqualsNilUserBuf(t *testing.T) {
	a, err1 := Gen(vecAppID, vecKey, "xiaojun", 15552000, vecTime)
	b, err2 := GenWithUserBuf(vecAppID, vecKey, "xiaojun", 15552000, vecTime, nil)
	if err1 != nil || err2 != nil || a != b {
		t.Fatalf("Gen = %q, %v; GenWithUserBuf(nil) = %q, %v", a, err1, b, err2)
	}
}

func TestGenEmptyUserBuf(t *testing.T) {
	tok, err := GenWithUserBuf(vecAppID, vecKey, "u", 60, vecTime, []byte{})
	if err != nil {
		t.Fatal(err)
	}
	s, err := Decode(tok)
	if err != nil || !s.HasUserBuf || len(s.UserBuf) != 0 {
		t.Fatalf("Decode = %+v, %v; want an empty userbuf present", s, err)
	}
	if err := VerifyWithUserBuf(tok, vecAppID, "u", vecKey, vecTime, []byte{}); err != nil {
		t.Errorf("VerifyWithUserBuf(empty): %v", err)
	}
	if got := codeOf(Verify(tok, vecAppID, "u", vecKey, vecTime)); got != im.CodeSigInvalid {
		t.Errorf("Verify = %d, want %d", got, im.CodeSigInvalid)
	}
	if !officialOK(tok, vecAppID, "u", vecKey, vecTime, []byte{}) {
		t.Error("official verifier rejects an empty userbuf")
	}
}

func TestGenErrors(t *testing.T) {
	tests := []struct {
		name       string
		identifier string
		expire     int64
		now        int64
	}{
		{"invalid UTF-8", "a\xffb", 60, vecTime},
		{"negative expire", "a", -1, vecTime},
		{"negative time", "a", 60, -1},
		{"overflow", "a", 1 << 62, 1 << 62},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tok, err := Gen(vecAppID, vecKey, tt.identifier, tt.expire, tt.now); err == nil {
				t.Errorf("Gen = %q, want an error", tok)
			}
		})
	}
}

func TestGenLevels(t *testing.T) {
	for level := zlib.HuffmanOnly; level <= zlib.BestCompression; level++ {
		tok, err := genLevel(vecAppID, vecKey, "xiaojun", 15552000, vecTime, nil, level)
		if err != nil {
			t.Fatalf("level %d: %v", level, err)
		}
		if err := Verify(tok, vecAppID, "xiaojun", vecKey, vecTime); err != nil {
			t.Errorf("level %d: %v", level, err)
		}
	}
	if _, err := genLevel(vecAppID, vecKey, "x", 1, 1, nil, 42); err == nil {
		t.Error("genLevel(42) succeeded, want an error")
	}
}

func TestErrorString(t *testing.T) {
	err := Verify("", vecAppID, "xiaojun", vecKey, vecTime)
	if got, want := err.Error(), "70002: usersig is empty"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}
