package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Callback authentication. When an app has a callback token (the config
// file's "callback-token"), every callback carries two proofs that it
// came from timd:
//
//   - Tencent's callback authentication: RequestTime (unix seconds) and
//     Sign = lowercase hex of SHA-256(token + RequestTime) added to the
//     callback URL's query, so receivers written for Tencent Chat work
//     unchanged.
//   - A signature of the raw body, which Tencent's Sign does not cover:
//     headers X-Timd-Timestamp (unix seconds) and X-Timd-Signature
//     ("v1=" + lowercase hex of HMAC-SHA256(token, timestamp + "." +
//     body)). A receiver that checks it knows the body was not altered,
//     and by refusing old timestamps it refuses replays.
//
// docs/webhooks.md shows how to verify both; ExampleVerifyRequest is a
// receiver in Go.
const (
	HeaderTimestamp = "X-Timd-Timestamp"
	HeaderSignature = "X-Timd-Signature"
)

// MaxSkew is how far from the receiver's clock a callback's time may be
// before VerifyRequest refuses it as a replay (or a badly set clock).
const MaxSkew = 5 * time.Minute

// Errors of VerifyRequest.
var (
	ErrUnsigned  = errors.New("webhook: callback is not signed")
	ErrBadSign   = errors.New("webhook: signature does not match")
	ErrStale     = errors.New("webhook: callback time is too far from now (replay?)")
	ErrMalformed = errors.New("webhook: malformed RequestTime or timestamp")
)

// Sign is Tencent's callback Sign for token at requestTime (unix s).
func Sign(token string, requestTime int64) string {
	sum := sha256.Sum256([]byte(token + strconv.FormatInt(requestTime, 10)))
	return hex.EncodeToString(sum[:])
}

// BodySignature is the X-Timd-Signature value for body sent at ts.
func BodySignature(token string, ts int64, body []byte) string {
	m := hmac.New(sha256.New, []byte(token))
	m.Write([]byte(strconv.FormatInt(ts, 10)))
	m.Write([]byte{'.'})
	m.Write(body)
	return "v1=" + hex.EncodeToString(m.Sum(nil))
}

// SignRequest adds both signatures to req, whose body is body: it
// appends RequestTime and Sign to the query (the rest of the URL is kept
// byte for byte) and sets the two headers. An empty token signs nothing.
func SignRequest(req *http.Request, token string, body []byte, now time.Time) {
	if token == "" {
		return
	}
	ts := now.Unix()
	add := "RequestTime=" + strconv.FormatInt(ts, 10) + "&Sign=" + Sign(token, ts)
	if req.URL.RawQuery == "" {
		req.URL.RawQuery = add
	} else {
		req.URL.RawQuery += "&" + add
	}
	req.Header.Set(HeaderTimestamp, strconv.FormatInt(ts, 10))
	req.Header.Set(HeaderSignature, BodySignature(token, ts, body))
}

// VerifyRequest checks a callback the way a receiver should: Tencent's
// RequestTime and Sign in the query, then the body signature in the
// headers, both with token, both within MaxSkew of now. It returns
// ErrUnsigned, ErrMalformed, ErrStale or ErrBadSign; comparisons take
// constant time.
func VerifyRequest(query url.Values, h http.Header, body []byte, token string, now time.Time) error {
	rt, sign := query.Get("RequestTime"), query.Get("Sign")
	ts, sig := h.Get(HeaderTimestamp), h.Get(HeaderSignature)
	if rt == "" || sign == "" || ts == "" || sig == "" {
		return ErrUnsigned
	}
	rtN, err1 := strconv.ParseInt(rt, 10, 64)
	tsN, err2 := strconv.ParseInt(ts, 10, 64)
	if err1 != nil || err2 != nil {
		return ErrMalformed
	}
	for _, t := range []int64{rtN, tsN} {
		if d := now.Sub(time.Unix(t, 0)); d > MaxSkew || d < -MaxSkew {
			return ErrStale
		}
	}
	okURL := subtle.ConstantTimeCompare([]byte(strings.ToLower(sign)), []byte(Sign(token, rtN))) == 1
	okBody := hmac.Equal([]byte(sig), []byte(BodySignature(token, tsN, body)))
	if !okURL || !okBody {
		return ErrBadSign
	}
	return nil
}
