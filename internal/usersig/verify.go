package usersig

import (
	"bytes"
	"crypto/hmac"
	"math"
)

// Verify checks token for app sdkappid and identifier at now (Unix
// seconds) with the app's secret key, expecting no userbuf, as IM REST
// does. It returns nil or an *Error whose Code is, in the official
// verifier's order after decoding: 70002 or 70003 (see Decode), 70014
// sdkappid mismatch, 70013 identifier mismatch (exact, case-sensitive),
// 70001 expired (still valid at exactly time+expire), 70003 when the token
// carries a userbuf (the official "userbuf type not match"), 70009 HMAC
// mismatch.
func Verify(token string, sdkappid uint64, identifier, key string, now int64) error {
	return VerifyWithUserBuf(token, sdkappid, identifier, key, now, nil)
}

// VerifyWithUserBuf is Verify for a token that must carry exactly userbuf.
// As in the official VerifyUserSigWithBuf, a nil userbuf expects no
// userbuf and a non-nil one, even empty, expects one. Presence mismatch
// ("userbuf type not match") is 70003; content mismatch is 70009. Other
// codes are as for Verify.
func VerifyWithUserBuf(token string, sdkappid uint64, identifier, key string, now int64, userbuf []byte) error {
	s, err := Decode(token)
	if err != nil {
		return err
	}
	return s.check(sdkappid, identifier, key, now, userbuf)
}

func (s Sig) check(sdkappid uint64, identifier, key string, now int64, userbuf []byte) error {
	switch {
	case s.SDKAppID != sdkappid:
		return fail(CodeSDKAppID, "usersig sdkappid does not match")
	case s.Identifier != identifier:
		return fail(CodeIdentifier, "usersig identifier does not match")
	case s.expired(now):
		return fail(CodeExpired, "usersig expired")
	case s.HasUserBuf != (userbuf != nil):
		return fail(CodeInvalid, "usersig userbuf type does not match")
	case userbuf != nil && !bytes.Equal(s.UserBuf, userbuf):
		return fail(CodeMismatch, "usersig userbuf does not match")
	}
	mac := sign(key, s.Identifier, s.SDKAppID, s.Time, s.Expire, s.UserBuf, s.HasUserBuf)
	if !hmac.Equal(mac, s.MAC) {
		return fail(CodeMismatch, "usersig verification failed")
	}
	return nil
}

// expired reports now > Time+Expire. Time and Expire are non-negative
// (Decode ensures it); a sum past MaxInt64 counts as expired, as the
// official verifier's wrapped int64 sum does.
func (s Sig) expired(now int64) bool {
	if s.Time > math.MaxInt64-s.Expire {
		return true
	}
	return now > s.Time+s.Expire
}
