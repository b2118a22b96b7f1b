package usersig

import (
	"math"
	"slices"
	"testing"

	"timd/internal/im"
)

// Seeds beyond the corpus in testdata/fuzz.
var fuzzSeeds = []string{vecA, vecB, vecC, "", "eJ", "not a usersig", "eAEA____"}

var knownCodes = []int{0, im.CodeSigExpired, im.CodeSigEmpty, im.CodeSigInvalid, im.CodeSigMismatch, im.CodeSigIdentifier, im.CodeSigSDKAppID}

// officialSafe bounds the inputs handed to the official verifier, which
// inflates without a cap.
const officialSafe = 4096

func FuzzDecode(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, token string) {
		s, err := Decode(token)
		if err != nil {
			if c := codeOf(err); c != im.CodeSigEmpty && c != im.CodeSigInvalid {
				t.Fatalf("Decode error code %d: %v", c, err)
			}
			return
		}
		checkInvariants(t, s)
		checkSelfVerify(t, token, s)
		checkRegen(t, s)
	})
}

func checkInvariants(t *testing.T, s Sig) {
	t.Helper()
	if s.Ver != "" && s.Ver != "2.0" || s.Time < 0 || s.Expire < 0 || len(s.MAC) == 0 || s.HasUserBuf != (s.UserBuf != nil) {
		t.Fatalf("Decode returned an impossible Sig %+v", s)
	}
}

// checkSelfVerify verifies token for its own app and identifier with the
// vectors' key at its issue time: only the key or expiry can fail.
func checkSelfVerify(t *testing.T, token string, s Sig) {
	t.Helper()
	err := VerifyWithUserBuf(token, s.SDKAppID, s.Identifier, vecKey, s.Time, s.UserBuf)
	overflow := s.Time > math.MaxInt64-s.Expire
	switch c := codeOf(err); {
	case c == im.CodeSigExpired && overflow, c == im.CodeSigMismatch && !overflow:
	case c == 0 && !overflow:
		if err := VerifyWithUserBuf(token, s.SDKAppID, s.Identifier, vecKey, s.Time, s.UserBuf); err != nil {
			t.Fatalf("second Verify: %v", err)
		}
	default:
		t.Fatalf("self-verify = %v (overflow %v)", err, overflow)
	}
}

// checkRegen regenerates the token from its decoded fields with Gen; the
// result must decode to the same fields and verify.
func checkRegen(t *testing.T, s Sig) {
	t.Helper()
	if s.Time > math.MaxInt64-s.Expire {
		return
	}
	tok, err := GenWithUserBuf(s.SDKAppID, "k", s.Identifier, s.Expire, s.Time, s.UserBuf)
	if err != nil {
		t.Fatalf("Gen from decoded fields: %v", err)
	}
	got, err := Decode(tok)
	if err != nil {
		t.Fatalf("Decode(Gen): %v", err)
	}
	s.Ver, got.MAC, s.MAC = "2.0", nil, nil
	if !sigEqual(got, s) {
		t.Fatalf("Decode(Gen) = %+v, want %+v", got, s)
	}
	if err := VerifyWithUserBuf(tok, s.SDKAppID, s.Identifier, "k", s.Time+s.Expire, s.UserBuf); err != nil {
		t.Fatalf("Verify(Gen): %v", err)
	}
}

func FuzzVerify(f *testing.F) {
	f.Add(vecA, uint64(vecAppID), "xiaojun", vecKey, int64(1700000100))
	f.Add(vecA, uint64(vecAppID), "xiaojun", vecKey, int64(1715552001))
	f.Add(vecB, uint64(vecAppID), "administrator", vecKey, int64(1700086400))
	f.Add(vecB, uint64(vecAppID), "admin", vecKey, int64(1700000000))
	f.Add(vecC, uint64(vecAppID), "xiaojun", vecKey, int64(1700000100))
	f.Add("", uint64(0), "", "", int64(0))
	f.Fuzz(func(t *testing.T, token string, sdkappid uint64, identifier, key string, now int64) {
		err := Verify(token, sdkappid, identifier, key, now)
		code := codeOf(err)
		if !slices.Contains(knownCodes, code) {
			t.Fatalf("Verify error outside the documented codes: %v", err)
		}
		if _, derr := Decode(token); derr != nil && code != codeOf(derr) {
			t.Fatalf("Verify = %v, but Decode = %v", err, derr)
		}
		if err == nil {
			checkAccepted(t, token, sdkappid, identifier, key, now)
		}
		if len(token) <= officialSafe {
			off := officialOK(token, sdkappid, identifier, key, now, nil)
			if err == nil && !off {
				t.Fatal("we accept a token the official verifier rejects")
			}
			if off && err != nil && code != im.CodeSigInvalid {
				t.Fatalf("official verifier accepts; we answer %v (only 70003 strictness is expected)", err)
			}
		}
	})
}

// checkAccepted: an accepted token stays accepted and decodes to the
// verified identity, without userbuf, unexpired.
func checkAccepted(t *testing.T, token string, sdkappid uint64, identifier, key string, now int64) {
	t.Helper()
	if err := Verify(token, sdkappid, identifier, key, now); err != nil {
		t.Fatalf("second Verify: %v", err)
	}
	s, err := Decode(token)
	if err != nil || s.SDKAppID != sdkappid || s.Identifier != identifier || s.HasUserBuf || now > s.Time+s.Expire {
		t.Fatalf("accepted token decodes to %+v, %v", s, err)
	}
}
