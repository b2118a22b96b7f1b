package usersig

import (
	"bytes"
	"compress/zlib"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"math"
	"strconv"
	"unicode/utf8"
)

// tokenEncoding is standard base64 with '+', '/', '=' replaced by '*', '-', '_'.
var tokenEncoding = base64.NewEncoding("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789*-").WithPadding('_')

// sigDoc is the JSON document in the official generators' key order.
type sigDoc struct {
	Ver        string  `json:"TLS.ver"`
	Identifier string  `json:"TLS.identifier"`
	SDKAppID   uint64  `json:"TLS.sdkappid"`
	Expire     int64   `json:"TLS.expire"`
	Time       int64   `json:"TLS.time"`
	UserBuf    *string `json:"TLS.userbuf,omitempty"`
	Sig        []byte  `json:"TLS.sig"`
}

// Gen makes a UserSig v2 for identifier on app sdkappid, issued at now
// (Unix seconds) and valid for expire seconds, signed with the app's secret
// key string. It returns a plain error (no Tencent code) when identifier is
// not valid UTF-8, now or expire is negative, or now+expire overflows.
func Gen(sdkappid uint64, key, identifier string, expire int64, now int64) (string, error) {
	return genLevel(sdkappid, key, identifier, expire, now, nil, zlib.BestCompression)
}

// GenWithUserBuf is Gen with a userbuf (TRTC PrivateMapKey style). A nil
// userbuf makes a plain UserSig; a non-nil one, even empty, is embedded and
// signed. It returns the same errors as Gen.
func GenWithUserBuf(sdkappid uint64, key, identifier string, expire, now int64, userbuf []byte) (string, error) {
	return genLevel(sdkappid, key, identifier, expire, now, userbuf, zlib.BestCompression)
}

func genLevel(sdkappid uint64, key, identifier string, expire, now int64, userbuf []byte, level int) (string, error) {
	if err := checkGenArgs(identifier, expire, now); err != nil {
		return "", err
	}
	doc := sigDoc{Ver: "2.0", Identifier: identifier, SDKAppID: sdkappid, Expire: expire, Time: now}
	if userbuf != nil {
		b := base64.StdEncoding.EncodeToString(userbuf)
		doc.UserBuf = &b
	}
	doc.Sig = sign(key, identifier, sdkappid, now, expire, userbuf, userbuf != nil)
	js, err := json.Marshal(doc)
	if err != nil {
		return "", err
	}
	var buf bytes.Buffer
	zw, err := zlib.NewWriterLevel(&buf, level)
	if err != nil {
		return "", err
	}
	if _, err := zw.Write(js); err != nil {
		return "", err
	}
	if err := zw.Close(); err != nil {
		return "", err
	}
	return tokenEncoding.EncodeToString(buf.Bytes()), nil
}

func checkGenArgs(identifier string, expire, now int64) error {
	switch {
	case !utf8.ValidString(identifier):
		return errors.New("usersig: identifier is not valid UTF-8")
	case expire < 0 || now < 0:
		return errors.New("usersig: negative expire or time")
	case now > math.MaxInt64-expire:
		return errors.New("usersig: time + expire overflows")
	}
	return nil
}

// sign returns HMAC-SHA256(key, string to sign) per docs/compatibility.md, "UserSig and admins".
func sign(key, identifier string, sdkappid uint64, time, expire int64, userbuf []byte, hasUserBuf bool) []byte {
	b := make([]byte, 0, 128+len(identifier)+base64.StdEncoding.EncodedLen(len(userbuf)))
	b = append(b, "TLS.identifier:"...)
	b = append(b, identifier...)
	b = append(b, "\nTLS.sdkappid:"...)
	b = strconv.AppendUint(b, sdkappid, 10)
	b = append(b, "\nTLS.time:"...)
	b = strconv.AppendInt(b, time, 10)
	b = append(b, "\nTLS.expire:"...)
	b = strconv.AppendInt(b, expire, 10)
	b = append(b, '\n')
	if hasUserBuf {
		b = append(b, "TLS.userbuf:"...)
		b = base64.StdEncoding.AppendEncode(b, userbuf)
		b = append(b, '\n')
	}
	h := hmac.New(sha256.New, []byte(key))
	h.Write(b)
	return h.Sum(nil)
}
