package usersig

import (
	"bytes"
	"compress/zlib"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tencentyun/tls-sig-api-v2-golang/tencentyun"

	"timd/internal/im"
)

var propSeed = flag.Uint64("usersig.seed", 0, "seed for TestPropertyMatchesOfficial (0 picks one from the clock)")

// propCases is the number of random cases; -short runs the minimum of 1,000.
func propCases() int {
	if testing.Short() {
		return 1000
	}
	return 2000
}

// tdoc is the test's own model of a token's JSON document.
type tdoc struct {
	identifier string // as the JSON decodes it
	sdkappid   uint64
	time       int64
	expire     int64
	userbuf    []byte // nil: absent
	mac        []byte
}

// verifyArgs are the inputs of one verification.
type verifyArgs struct {
	sdkappid   uint64
	identifier string
	key        string
	now        int64
	userbuf    []byte // nil: plain Verify
}

// propCase is one token with its verification and the codes Verify may return.
type propCase struct {
	what  []string
	token string
	v     verifyArgs
	want  []int // nil when not determinable
}

// refSign is an independent HMAC of the string to sign (docs/compatibility.md, "UserSig and admins").
func refSign(key string, d tdoc) []byte {
	s := fmt.Sprintf("TLS.identifier:%s\nTLS.sdkappid:%d\nTLS.time:%d\nTLS.expire:%d\n", d.identifier, d.sdkappid, d.time, d.expire)
	if d.userbuf != nil {
		s += "TLS.userbuf:" + base64.StdEncoding.EncodeToString(d.userbuf) + "\n"
	}
	h := hmac.New(sha256.New, []byte(key))
	io.WriteString(h, s)
	return h.Sum(nil)
}

// oracle is the code the spec's check order gives for d verified with v.
func oracle(d tdoc, v verifyArgs) int {
	switch {
	case d.sdkappid != v.sdkappid:
		return im.CodeSigSDKAppID
	case d.identifier != v.identifier:
		return im.CodeSigIdentifier
	case d.time > math.MaxInt64-d.expire || v.now > d.time+d.expire:
		return im.CodeSigExpired
	case (d.userbuf != nil) != (v.userbuf != nil):
		return im.CodeSigInvalid
	case v.userbuf != nil && !bytes.Equal(d.userbuf, v.userbuf):
		return im.CodeSigMismatch
	case !hmac.Equal(refSign(v.key, d), d.mac):
		return im.CodeSigMismatch
	}
	return 0
}

func TestPropertyMatchesOfficial(t *testing.T) {
	seed := *propSeed
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("seed %d; rerun with: go test -run TestPropertyMatchesOfficial ./internal/usersig/ -usersig.seed=%d", seed, seed)
		}
	})
	r := rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))
	counts := map[int]int{}
	n := propCases()
	for i := range n {
		c := newPropCase(t, r)
		code := checkPropCase(t, i, c)
		counts[code]++
	}
	t.Logf("seed %d, result codes: %v", seed, counts)
	if ok := counts[0]; ok < n/10 || n-ok < n/10 {
		t.Errorf("unbalanced cases: %d of %d verified ok", ok, n)
	}
}

// checkPropCase compares our verdict with the official one and the oracle.
func checkPropCase(t *testing.T, i int, c propCase) int {
	t.Helper()
	var err error
	if c.v.userbuf == nil {
		err = Verify(c.token, c.v.sdkappid, c.v.identifier, c.v.key, c.v.now)
	} else {
		err = VerifyWithUserBuf(c.token, c.v.sdkappid, c.v.identifier, c.v.key, c.v.now, c.v.userbuf)
	}
	code := codeOf(err)
	off := officialOK(c.token, c.v.sdkappid, c.v.identifier, c.v.key, c.v.now, c.v.userbuf)
	if off != (err == nil) {
		t.Errorf("case %d %v: ours %v, official ok %v\n token %q\n verify %+v", i, c.what, err, off, c.token, c.v)
	}
	if c.want != nil && !slices.Contains(c.want, code) {
		t.Errorf("case %d %v: code %d (%v), want one of %v\n token %q\n verify %+v", i, c.what, code, err, c.want, c.token, c.v)
	}
	return code
}

func newPropCase(t *testing.T, r *rand.Rand) propCase {
	var c propCase
	d, key, token := genToken(t, r, &c)
	c.v = verifyArgs{sdkappid: d.sdkappid, identifier: d.identifier, key: key, now: pickNow(r, d), userbuf: d.userbuf}
	switch r.IntN(10) {
	case 0, 1:
		c.token = flipChar(r, token)
		c.what = append(c.what, "flip")
		mutateArgs(r, &c)
		c.want = []int{im.CodeSigInvalid, oracle(d, c.v)}
		return c
	case 2, 3, 4:
		c.token = repack(t, r, &c, &d, key)
	default:
		c.token = token
	}
	mutateArgs(r, &c)
	if c.want == nil {
		c.want = []int{oracle(d, c.v)}
	}
	return c
}

// genToken makes a token with our genLevel or the official generator.
func genToken(t *testing.T, r *rand.Rand, c *propCase) (tdoc, string, string) {
	key := randKey(r)
	d := tdoc{identifier: randIdentifier(r), sdkappid: randAppID(r)}
	if r.IntN(5) == 0 {
		d.userbuf = randBytes(r, 1+r.IntN(40))
	}
	if r.IntN(2) == 0 {
		return genOfficial(t, r, c, d, key)
	}
	if d.userbuf != nil && r.IntN(5) == 0 {
		d.userbuf = []byte{}
	}
	d.identifier = strings.ToValidUTF8(d.identifier, "?")
	d.time = randTime(r)
	d.expire = randExpire(r, math.MaxInt64-d.time)
	level := zlib.HuffmanOnly + r.IntN(zlib.BestCompression-zlib.HuffmanOnly+1)
	tok, err := genLevel(d.sdkappid, key, d.identifier, d.expire, d.time, d.userbuf, level)
	if err != nil {
		t.Fatalf("genLevel: %v", err)
	}
	d.mac = refSign(key, d)
	c.what = append(c.what, "ours/level="+strconv.Itoa(level))
	return d, key, tok
}

// genOfficial uses tencentyun, which stamps time.Now() and drops zero
// fields; expire is kept >= 1 and identifier non-empty so no field is
// dropped (see TestOfficialOmitsZeroFields for that difference).
func genOfficial(t *testing.T, r *rand.Rand, c *propCase, d tdoc, key string) (tdoc, string, string) {
	if d.identifier == "" {
		d.identifier = "x"
	}
	d.expire = max(1, randExpire(r, math.MaxInt64))
	var tok string
	var err error
	if d.userbuf == nil {
		tok, err = tencentyun.GenUserSig(int(d.sdkappid), key, d.identifier, int(d.expire))
	} else {
		tok, err = tencentyun.GenUserSigWithBuf(int(d.sdkappid), key, d.identifier, int(d.expire), d.userbuf)
	}
	if err != nil {
		t.Fatalf("official GenUserSig: %v", err)
	}
	var raw struct {
		Identifier string `json:"TLS.identifier"`
		Time       int64  `json:"TLS.time"`
	}
	if err := json.Unmarshal(inflate(t, tok), &raw); err != nil {
		t.Fatalf("official token JSON: %v", err)
	}
	d.time = raw.Time
	d.mac = refSign(key, d) // signed over the identifier as given
	d.identifier = raw.Identifier
	c.what = append(c.what, "official")
	return d, key, tok
}

// inflate is the test's own unpacking, independent of Decode.
func inflate(t *testing.T, token string) []byte {
	z, err := base64.StdEncoding.DecodeString(strings.NewReplacer("_", "=", "-", "/", "*", "+").Replace(token))
	if err != nil {
		t.Fatal(err)
	}
	zr, err := zlib.NewReader(bytes.NewReader(z))
	if err != nil {
		t.Fatal(err)
	}
	js, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

// pickNow picks a verification time around the document's expiry.
func pickNow(r *rand.Rand, d tdoc) int64 {
	end := d.time + d.expire
	if d.time > math.MaxInt64-d.expire {
		end = math.MaxInt64
	}
	switch r.IntN(7) {
	case 0:
		return max(0, d.time-r.Int64N(100000))
	case 1:
		return d.time
	case 2:
		return max(0, end-1)
	case 3, 4:
		return end
	case 5:
		return min(math.MaxInt64-1, end) + 1
	}
	return end + min(r.Int64N(1<<40), math.MaxInt64-end)
}

// mutateArgs sometimes verifies with a different key, identifier,
// sdkappid or userbuf expectation.
func mutateArgs(r *rand.Rand, c *propCase) {
	v := &c.v
	switch r.IntN(10) {
	case 0:
		v.key = otherString(r, v.key, randKey)
		c.what = append(c.what, "key")
	case 1:
		v.identifier = otherString(r, v.identifier, randIdentifier)
		c.what = append(c.what, "identifier")
	case 2:
		v.sdkappid = otherAppID(r, v.sdkappid)
		c.what = append(c.what, "sdkappid")
	case 3:
		if v.userbuf == nil {
			v.userbuf = randBytes(r, r.IntN(8))
		} else if r.IntN(2) == 0 {
			v.userbuf = nil
		} else {
			v.userbuf = append(bytes.Clone(v.userbuf), 'x')
		}
		c.what = append(c.what, "userbuf")
	}
}

func otherString(r *rand.Rand, s string, gen func(*rand.Rand) string) string {
	switch r.IntN(3) {
	case 0:
		return s + "x"
	case 1:
		if u := strings.ToUpper(s); u != s {
			return u
		}
	}
	for {
		if o := gen(r); o != s {
			return o
		}
	}
}

func otherAppID(r *rand.Rand, id uint64) uint64 {
	if r.IntN(2) == 0 {
		return id + 1
	}
	for {
		if o := randAppID(r); o != id {
			return o
		}
	}
}

// flipChar replaces one character of token with a different one.
func flipChar(r *rand.Rand, token string) string {
	const chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789*-_+/=!\x00é"
	b := []byte(token)
	i := r.IntN(len(b))
	for {
		if ch := chars[r.IntN(len(chars))]; ch != b[i] {
			b[i] = ch
			return string(b)
		}
	}
}
