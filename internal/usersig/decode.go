package usersig

import (
	"bytes"
	"compress/zlib"
	"encoding/base64"
	"encoding/json"
	"io"
	"sync"

	"timd/internal/im"
)

// Size caps: a real UserSig inflates to a few hundred bytes. The inflated
// cap stops a zlib bomb; the token cap bounds the base64 and zlib work.
const (
	maxInflated = 64 << 10
	maxToken    = 2 * maxInflated
)

// tokenByte maps the token alphabet back to standard base64 ('_' to '=',
// '-' to '/', '*' to '+'). Like the official verifier, it leaves '+', '/'
// and '=' alone, so both alphabets decode.
func tokenByte(c byte) byte {
	switch c {
	case '_':
		return '='
	case '-':
		return '/'
	case '*':
		return '+'
	}
	return c
}

// inflater is a reusable zlib reader: a fresh one allocates about 40 KiB
// of decompressor state, more than the rest of a verification together,
// and a reconnect storm verifies one fresh sig per client.
type inflater struct {
	src bytes.Reader
	zr  io.ReadCloser // zlib.Resetter too
}

var inflaters = sync.Pool{New: func() any { return new(inflater) }}

// Sig is a decoded, not yet verified, UserSig. Ver is "" when TLS.ver is
// absent. HasUserBuf reports whether TLS.userbuf was present (and not
// null); UserBuf is then non-nil, possibly empty. MAC is the decoded TLS.sig.
type Sig struct {
	Ver        string
	Identifier string
	SDKAppID   uint64
	Expire     int64
	Time       int64
	UserBuf    []byte
	HasUserBuf bool
	MAC        []byte
}

// wireSig mirrors the official verifier's field types, so JSON numbers
// parse exactly as there (a quoted, fractional, exponent or out-of-range
// number is an error), with pointers to detect absent or null fields.
type wireSig struct {
	Ver        *string `json:"TLS.ver"`
	Identifier *string `json:"TLS.identifier"`
	SDKAppID   *uint64 `json:"TLS.sdkappid"`
	Expire     *int64  `json:"TLS.expire"`
	Time       *int64  `json:"TLS.time"`
	UserBuf    []byte  `json:"TLS.userbuf"`
	Sig        []byte  `json:"TLS.sig"`
}

// Decode unpacks token without verifying it. It returns *Error with
// im.CodeSigEmpty (70002) for an empty token and im.CodeSigInvalid (70003) when the
// token is not base64, zlib or JSON, is longer than 128 KiB or inflates
// past 64 KiB, lacks one of TLS.identifier/sdkappid/expire/time/sig, has a
// TLS.ver other than "2.0", or has a negative TLS.time or TLS.expire.
// It never panics.
func Decode(token string) (Sig, error) {
	if token == "" {
		return Sig{}, fail(im.CodeSigEmpty, "usersig is empty")
	}
	js, err := unpack(token)
	if err != nil {
		return Sig{}, err
	}
	var w wireSig
	if !w.parseFast(js) {
		slowDecodes.Add(1)
		w = wireSig{}
		if json.Unmarshal(js, &w) != nil {
			return Sig{}, fail(im.CodeSigInvalid, "usersig JSON is malformed")
		}
	}
	return w.sig()
}

// unpack reverses the base64 variant and zlib, capping the inflated size.
func unpack(token string) ([]byte, error) {
	if len(token) > maxToken {
		return nil, fail(im.CodeSigInvalid, "usersig is too long")
	}
	std := make([]byte, len(token))
	for i := 0; i < len(token); i++ {
		std[i] = tokenByte(token[i])
	}
	z := make([]byte, base64.StdEncoding.DecodedLen(len(std)))
	n, err := base64.StdEncoding.Decode(z, std)
	if err != nil {
		return nil, fail(im.CodeSigInvalid, "usersig is not base64")
	}
	inf := inflaters.Get().(*inflater)
	defer inflaters.Put(inf)
	inf.src.Reset(z[:n])
	if inf.zr == nil {
		inf.zr, err = zlib.NewReader(&inf.src)
	} else {
		err = inf.zr.(zlib.Resetter).Reset(&inf.src, nil)
	}
	if err != nil {
		return nil, fail(im.CodeSigInvalid, "usersig is not zlib")
	}
	defer inf.zr.Close()
	js, err := io.ReadAll(io.LimitReader(inf.zr, maxInflated+1))
	if err != nil {
		return nil, fail(im.CodeSigInvalid, "usersig is not zlib")
	}
	if len(js) > maxInflated {
		return nil, fail(im.CodeSigInvalid, "usersig is too large")
	}
	return js, nil
}

func (w wireSig) sig() (Sig, error) {
	if w.Identifier == nil || w.SDKAppID == nil || w.Expire == nil || w.Time == nil || len(w.Sig) == 0 {
		return Sig{}, fail(im.CodeSigInvalid, "usersig lacks a required field")
	}
	if w.Ver != nil && *w.Ver != "2.0" {
		return Sig{}, fail(im.CodeSigInvalid, "usersig version is not 2.0")
	}
	if *w.Expire < 0 || *w.Time < 0 {
		return Sig{}, fail(im.CodeSigInvalid, "usersig time or expire is negative")
	}
	s := Sig{
		Identifier: *w.Identifier,
		SDKAppID:   *w.SDKAppID,
		Expire:     *w.Expire,
		Time:       *w.Time,
		UserBuf:    w.UserBuf,
		HasUserBuf: w.UserBuf != nil,
		MAC:        w.Sig,
	}
	if w.Ver != nil {
		s.Ver = *w.Ver
	}
	return s, nil
}
