package usersig

import (
	"encoding/base64"
	"encoding/json"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"

	"timd/internal/im"
)

// Random inputs for TestPropertyMatchesOfficial.

func randKey(r *rand.Rand) string {
	switch r.IntN(5) {
	case 0:
		return ""
	case 1:
		return randFrom(r, "abcdefghijklmnopqrstuvwxyz!@# ~\"\\", 1+r.IntN(40))
	case 2:
		return randFrom(r, "key密钥ключé😀\x00", 1+r.IntN(12))
	}
	return randFrom(r, "0123456789abcdef", 64)
}

func randIdentifier(r *rand.Rand) string {
	switch r.IntN(8) {
	case 0:
		return ""
	case 1:
		return []string{" ", "\t", "\u00a0", "\u200b", "\x00", "\n", " x "}[r.IntN(7)]
	case 2:
		return randFrom(r, "用户管理员éßΩıK😀Ǆ", 1+r.IntN(10))
	case 3:
		return randFrom(r, "\"\\<>&/'\u2028{}:,", 1+r.IntN(8))
	case 4:
		return string(randBytes(r, 1+r.IntN(8))) // often invalid UTF-8
	}
	return randFrom(r, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-", 1+r.IntN(32))
}

// randFrom returns n runes drawn from alphabet.
func randFrom(r *rand.Rand, alphabet string, n int) string {
	runes := []rune(alphabet)
	var b strings.Builder
	for range n {
		b.WriteRune(runes[r.IntN(len(runes))])
	}
	return b.String()
}

func randBytes(r *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func randAppID(r *rand.Rand) uint64 {
	switch r.IntN(5) {
	case 0:
		return 1 + r.Uint64N(10)
	case 1:
		return 1 + r.Uint64N(math.MaxUint64-1)
	case 2:
		return math.MaxUint64
	}
	return 1400000000 + r.Uint64N(100000000)
}

func randTime(r *rand.Rand) int64 {
	if r.IntN(10) == 0 {
		return 1 + r.Int64N(1<<62)
	}
	return 1 + r.Int64N(4000000000)
}

// randExpire returns an expire in [0, limit].
func randExpire(r *rand.Rand, limit int64) int64 {
	choices := []int64{0, 1, r.Int64N(100), 86400, 15552000, r.Int64N(1 << 40), limit, math.MaxInt64}
	return min(choices[r.IntN(len(choices))], limit)
}

// kv is one member of a JSON object, value already encoded.
type kv struct{ k, v string }

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

func docKVs(d tdoc) []kv {
	kvs := []kv{
		{"TLS.ver", `"2.0"`},
		{"TLS.identifier", jsonString(d.identifier)},
		{"TLS.sdkappid", strconv.FormatUint(d.sdkappid, 10)},
		{"TLS.expire", strconv.FormatInt(d.expire, 10)},
		{"TLS.time", strconv.FormatInt(d.time, 10)},
	}
	if d.userbuf != nil {
		kvs = append(kvs, kv{"TLS.userbuf", `"` + base64.StdEncoding.EncodeToString(d.userbuf) + `"`})
	}
	return append(kvs, kv{"TLS.sig", `"` + base64.StdEncoding.EncodeToString(d.mac) + `"`})
}

func encodeKVs(kvs []kv, sep string) []byte {
	parts := make([]string, len(kvs))
	for i, m := range kvs {
		parts[i] = jsonString(m.k) + ":" + sep + m.v
	}
	return []byte("{" + sep + strings.Join(parts, ","+sep) + sep + "}")
}

// repack rebuilds the token's JSON with one change, updating d (the model)
// or, for a malformed document, c.want.
func repack(t *testing.T, r *rand.Rand, c *propCase, d *tdoc, key string) string {
	kvs, tail := editDoc(r, c, d, key)
	if r.IntN(3) == 0 {
		r.Shuffle(len(kvs), func(i, j int) { kvs[i], kvs[j] = kvs[j], kvs[i] })
	}
	kvs = append(kvs, tail...) // duplicates stay last: the last member wins
	if r.IntN(4) == 0 {
		kvs = append(kvs, kv{"x", `[1,{"y":null},"TLS.sig"]`})
	}
	if r.IntN(4) == 0 && kvs[0].k == "TLS.ver" {
		kvs = kvs[1:]
	}
	sep := []string{"", " ", "\n\t"}[r.IntN(3)]
	return pack(t, encodeKVs(kvs, sep), -2+r.IntN(12))
}

// editDoc returns the document's members with one edit, and members that
// must come last.
func editDoc(r *rand.Rand, c *propCase, d *tdoc, key string) ([]kv, []kv) {
	switch r.IntN(9) {
	case 0:
		c.what = append(c.what, "repack")
	case 1:
		d.identifier = otherString(r, d.identifier, randIdentifier)
		d.identifier = strings.ToValidUTF8(d.identifier, "\uFFFD")
		c.what = append(c.what, "repack/identifier")
	case 2:
		changeNumber(r, d)
		c.what = append(c.what, "repack/number")
	case 3:
		changeNumber(r, d)
		d.mac = refSign(key, *d)
		c.what = append(c.what, "repack/resigned")
	case 4:
		return dropField(r, c, *d), nil
	case 5:
		return badType(r, c, *d), nil
	case 6:
		d.mac = randBytes(r, 32)
		c.what = append(c.what, "repack/sig")
	case 7:
		if d.userbuf == nil {
			d.userbuf = randBytes(r, r.IntN(5))
		} else {
			d.userbuf = nil
		}
		c.what = append(c.what, "repack/userbuf")
	case 8:
		return docKVs(*d), duplicateKey(r, c, d)
	}
	return docKVs(*d), nil
}

// changeNumber changes sdkappid, time or expire to another valid value.
func changeNumber(r *rand.Rand, d *tdoc) {
	switch r.IntN(3) {
	case 0:
		d.sdkappid = otherAppID(r, d.sdkappid)
	case 1:
		d.time = randTime(r)
	default:
		d.expire = randExpire(r, math.MaxInt64)
	}
}

// dropField removes (or nulls) a field whose value is not the zero value:
// the official verifier reads an absent zero as present, Decode does not.
func dropField(r *rand.Rand, c *propCase, d tdoc) []kv {
	kvs := docKVs(d)
	zero := map[string]bool{"TLS.ver": true, "TLS.userbuf": true, "TLS.identifier": d.identifier == "", "TLS.expire": d.expire == 0}
	for {
		i := r.IntN(len(kvs))
		if zero[kvs[i].k] {
			continue
		}
		c.what = append(c.what, "repack/drop "+kvs[i].k)
		c.want = []int{im.CodeSigInvalid}
		if r.IntN(2) == 0 {
			kvs[i].v = "null"
			return kvs
		}
		return append(kvs[:i], kvs[i+1:]...)
	}
}

// badType gives a field a value of a type the official field rejects.
func badType(r *rand.Rand, c *propCase, d tdoc) []kv {
	kvs := docKVs(d)
	bad := map[string][]string{
		"TLS.identifier": {"123", "true", "{}", "[]"},
		"TLS.sdkappid":   {"-1", `"1400000000"`, "1.5", "1e3", "18446744073709551616", "[]"},
		"TLS.expire":     {`"60"`, "1.5", "6e1", "9223372036854775808", "{}"},
		"TLS.time":       {`"60"`, "0.5", "-1e2", "true"},
		"TLS.sig":        {"1", `"%%%"`, "[]"},
	}
	i := 1 + r.IntN(4)
	if r.IntN(5) == 0 {
		i = len(kvs) - 1
	}
	vals := bad[kvs[i].k]
	kvs[i].v = vals[r.IntN(len(vals))]
	c.what = append(c.what, "repack/type "+kvs[i].k+"="+kvs[i].v)
	c.want = []int{im.CodeSigInvalid}
	return kvs
}

// duplicateKey returns a second identifier or sdkappid member (sometimes
// with a differently cased key) and updates d; like encoding/json, the
// last one wins.
func duplicateKey(r *rand.Rand, c *propCase, d *tdoc) []kv {
	var kvs []kv
	if r.IntN(2) == 0 {
		d.identifier = otherString(r, d.identifier, randIdentifier)
		d.identifier = strings.ToValidUTF8(d.identifier, "\uFFFD")
		kvs = append(kvs, kv{[]string{"TLS.identifier", "tls.IDENTIFIER"}[r.IntN(2)], jsonString(d.identifier)})
	} else {
		d.sdkappid = otherAppID(r, d.sdkappid)
		kvs = append(kvs, kv{[]string{"TLS.sdkappid", "TLS.SdkAppId"}[r.IntN(2)], strconv.FormatUint(d.sdkappid, 10)})
	}
	c.what = append(c.what, "repack/duplicate")
	return kvs
}
