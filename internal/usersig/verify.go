package usersig

import (
	"bytes"
	"crypto/hmac"
	"math"

	"timd/internal/im"
)

// Verify checks token for app sdkappid and identifier at now (Unix
// seconds) with the app's secret key, expecting no userbuf, as IM REST
// does. It returns nil or an *im.Error whose Code is, in the official
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

// Verify checks a decoded token as the package-level Verify does.
func (s Sig) Verify(sdkappid uint64, identifier, key string, now int64) error {
	return s.check(sdkappid, identifier, key, now, nil)
}

// DefaultMaxSkew is how far, in seconds, a token's TLS.time may lie ahead
// of the verifier's clock by default: five minutes, enough for the clocks
// of an app server and timd to disagree, far too little to mint a token
// that outlives a kick.
const DefaultMaxSkew = 5 * 60

// CheckIssued returns im.CodeSigInvalid (70003) when the token's TLS.time
// is more than maxSkew seconds after now. The official verifier accepts
// such a token, so a token dated a year ahead would never expire in
// practice and would postdate every kick; timd refuses it. Tencent
// documents no code for it; 70003 is the code for a token whose fields are
// not acceptable (a negative TLS.time is 70003 too), whereas 70001 would
// tell the caller it had expired.
func (s Sig) CheckIssued(now, maxSkew int64) error {
	if maxSkew < 0 {
		maxSkew = 0
	}
	if now <= math.MaxInt64-maxSkew && s.Time > now+maxSkew {
		return fail(im.CodeSigInvalid, "usersig is dated in the future (TLS.time is after the server's clock), check the signing clock")
	}
	return nil
}

func (s Sig) check(sdkappid uint64, identifier, key string, now int64, userbuf []byte) error {
	switch {
	case s.SDKAppID != sdkappid:
		return fail(im.CodeSigSDKAppID, "usersig sdkappid does not match")
	case s.Identifier != identifier:
		return fail(im.CodeSigIdentifier, "usersig identifier does not match")
	case s.expired(now):
		return fail(im.CodeSigExpired, "usersig expired")
	case s.HasUserBuf != (userbuf != nil):
		return fail(im.CodeSigInvalid, "usersig userbuf type does not match")
	case userbuf != nil && !bytes.Equal(s.UserBuf, userbuf):
		return fail(im.CodeSigMismatch, "usersig userbuf does not match")
	}
	mac := sign(key, s.Identifier, s.SDKAppID, s.Time, s.Expire, s.UserBuf, s.HasUserBuf)
	if !hmac.Equal(mac, s.MAC) {
		return fail(im.CodeSigMismatch, "usersig verification failed")
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
