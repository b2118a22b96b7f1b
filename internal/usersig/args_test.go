package usersig

import (
	"math"
	"testing"

	"timd/internal/im"
)

const argsKey = "5bd2850fff3ecb11d7c805251c51ee463a25727bddc2385f3fa8bfee1bb93b5e"

// TestGenRejectsBadArguments is the table of Gen's argument checks, with
// the edge each one allows.
func TestGenRejectsBadArguments(t *testing.T) {
	for _, c := range []struct {
		name        string
		identifier  string
		expire, now int64
		ok          bool
	}{
		{"ok", "alice", 86400, 1700000000, true},
		{"zero expire and time", "alice", 0, 0, true},
		{"invalid UTF-8", "al\xffice", 86400, 1700000000, false},
		{"negative expire", "alice", -1, 1700000000, false},
		{"negative time", "alice", 86400, -1, false},
		{"time + expire at the limit", "alice", 10, math.MaxInt64 - 10, true},
		{"time + expire overflows", "alice", 11, math.MaxInt64 - 10, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			tok, err := Gen(1400000001, argsKey, c.identifier, c.expire, c.now)
			if (err == nil) != c.ok {
				t.Fatalf("Gen: %v, want ok=%v", err, c.ok)
			}
			if c.ok {
				if s, err := Decode(tok); err != nil || s.Expire != c.expire || s.Time != c.now {
					t.Fatalf("Decode(Gen) = %+v, %v", s, err)
				}
			}
		})
	}
}

// TestVerifyWithUserBuf is the table of VerifyWithUserBuf's answers: the
// userbuf must be present exactly when the token has one, and equal.
func TestVerifyWithUserBuf(t *testing.T) {
	const app, now = 1400000001, 1700000000
	buf := []byte("room:42")
	withBuf, err := GenWithUserBuf(app, argsKey, "alice", 600, now, buf)
	if err != nil {
		t.Fatal(err)
	}
	plain, err := Gen(app, argsKey, "alice", 600, now)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name       string
		token      string
		app        uint64
		identifier string
		key        string
		now        int64
		userbuf    []byte
		code       int
	}{
		{"matching userbuf", withBuf, app, "alice", argsKey, now, buf, 0},
		{"last second", withBuf, app, "alice", argsKey, now + 600, buf, 0},
		{"expired", withBuf, app, "alice", argsKey, now + 601, buf, im.CodeSigExpired},
		{"other userbuf", withBuf, app, "alice", argsKey, now, []byte("room:43"), im.CodeSigMismatch},
		{"userbuf missing", withBuf, app, "alice", argsKey, now, nil, im.CodeSigInvalid},
		{"userbuf not in token", plain, app, "alice", argsKey, now, buf, im.CodeSigInvalid},
		{"empty userbuf vs none", plain, app, "alice", argsKey, now, []byte{}, im.CodeSigInvalid},
		{"other app", withBuf, app + 1, "alice", argsKey, now, buf, im.CodeSigSDKAppID},
		{"other identifier", withBuf, app, "bob", argsKey, now, buf, im.CodeSigIdentifier},
		{"wrong key", withBuf, app, "alice", argsKey[1:] + "0", now, buf, im.CodeSigMismatch},
		{"garbage", "eJx-not-a-sig", app, "alice", argsKey, now, buf, im.CodeSigInvalid},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := VerifyWithUserBuf(c.token, c.app, c.identifier, c.key, c.now, c.userbuf)
			if got := codeOf(err); got != c.code {
				t.Fatalf("VerifyWithUserBuf: %v (code %d), want %d", err, got, c.code)
			}
		})
	}
	// Verify is VerifyWithUserBuf without a userbuf.
	if err := Verify(plain, app, "alice", argsKey, now); err != nil {
		t.Fatalf("Verify(plain) = %v", err)
	}
	if got := codeOf(Verify(withBuf, app, "alice", argsKey, now)); got != im.CodeSigInvalid {
		t.Fatalf("Verify(token with userbuf) code %d, want %d", got, im.CodeSigInvalid)
	}
}
