package vendortest

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Subscription is a browser PushSubscription the Web Push fake made:
// what a browser would hand the app server.
type Subscription struct {
	Endpoint string
	P256dh   string // base64url, no padding
	Auth     string // base64url, no padding
}

// WebPushMessage is one message the Web Push fake accepted, decrypted.
type WebPushMessage struct {
	Endpoint string
	Header   http.Header
	Payload  []byte // the decrypted plaintext
}

// WebPush is a fake push service (RFC 8030). Each Subscribe makes a
// subscription with its own P-256 key pair and auth secret; a POST to its
// endpoint must carry a VAPID (RFC 8292) Authorization whose ES256 JWT
// verifies with its k, names this origin as aud, expires within 24 hours
// and has a sub; the aes128gcm body (RFC 8291) must decrypt with the
// subscription's private key. TTL is required; Topic and Urgency are
// checked when present.
type WebPush struct {
	server

	mu       sync.Mutex
	vapidKey string // the only key accepted ("" = any): RequireVAPIDKey
	subs     map[string]subKeys
	got      []WebPushMessage
	lastBody []byte
}

// LastBody is the encrypted body of the last accepted message.
func (f *WebPush) LastBody() []byte {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.lastBody
}

type subKeys struct {
	priv *ecdh.PrivateKey
	auth []byte
}

// NewWebPush starts a Web Push fake.
func NewWebPush() (*WebPush, error) {
	f := &WebPush{subs: map[string]subKeys{}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /push/{id}", f.serve)
	f.start(mux)
	return f, nil
}

// RequireVAPIDKey makes pub (base64url) the only application server key
// accepted, as a browser that subscribed with it would.
func (f *WebPush) RequireVAPIDKey(pub string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.vapidKey = strings.TrimRight(pub, "=")
}

// Subscribe makes a new subscription on the fake.
func (f *WebPush) Subscribe() (Subscription, error) {
	priv, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		return Subscription{}, err
	}
	auth := make([]byte, 16)
	id := make([]byte, 12)
	rand.Read(auth)
	rand.Read(id)
	sid := hex.EncodeToString(id)
	f.mu.Lock()
	f.subs[sid] = subKeys{priv, auth}
	f.mu.Unlock()
	b64 := base64.RawURLEncoding.EncodeToString
	return Subscription{Endpoint: f.URL() + "/push/" + sid, P256dh: b64(priv.PublicKey().Bytes()), Auth: b64(auth)}, nil
}

// Received lists the messages accepted so far.
func (f *WebPush) Received() []WebPushMessage {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]WebPushMessage(nil), f.got...)
}

// GoneEndpoint marks a subscription as expired: its endpoint answers 410.
func (f *WebPush) GoneEndpoint(endpoint string) {
	f.Gone(endpoint[strings.LastIndex(endpoint, "/")+1:])
}

func (f *WebPush) serve(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	f.mu.Lock()
	keys, ok := f.subs[id]
	f.mu.Unlock()
	if !ok {
		http.Error(w, "no such subscription", http.StatusNotFound)
		return
	}
	if r.ProtoMajor != 2 {
		http.Error(w, "want HTTP/2", http.StatusBadRequest)
		return
	}
	if err := f.checkVAPID(r.Header.Get("Authorization")); err != nil {
		http.Error(w, "vapid: "+err.Error(), http.StatusForbidden)
		return
	}
	if err := checkWebPushHeaders(r.Header); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 4097))
	if err != nil || len(body) > 4096 {
		http.Error(w, "payload too large", http.StatusRequestEntityTooLarge)
		return
	}
	plain, err := Decrypt(keys.priv, keys.auth, body)
	if err != nil {
		http.Error(w, "decrypt: "+err.Error(), http.StatusBadRequest)
		return
	}
	if a, ok := f.next(); ok {
		if a.RetryAfter != "" {
			w.Header().Set("Retry-After", a.RetryAfter)
		}
		http.Error(w, "forced by the fake", a.Status)
		return
	}
	if f.isGone(id) {
		http.Error(w, "subscription expired", http.StatusGone)
		return
	}
	f.mu.Lock()
	f.lastBody = body
	if f.accept() {
		f.got = append(f.got, WebPushMessage{Endpoint: f.URL() + "/push/" + id, Header: r.Header.Clone(), Payload: plain})
	}
	f.mu.Unlock()
	w.Header().Set("Location", f.URL()+"/message/"+id)
	w.WriteHeader(http.StatusCreated)
}

func checkWebPushHeaders(h http.Header) error {
	if h.Get("Content-Encoding") != "aes128gcm" {
		return errors.New("Content-Encoding must be aes128gcm")
	}
	if ttl, err := strconv.ParseUint(h.Get("TTL"), 10, 31); err != nil || ttl > 1<<31 {
		return errors.New("TTL header missing or not a number")
	}
	if t := h.Get("Topic"); len(t) > 32 || strings.Trim(t, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") != "" {
		return errors.New("Topic must be at most 32 base64url characters")
	}
	switch h.Get("Urgency") {
	case "", "very-low", "low", "normal", "high":
	default:
		return errors.New("bad Urgency")
	}
	return nil
}

// checkVAPID verifies "vapid t=<jwt>, k=<key>" (RFC 8292 §3).
func (f *WebPush) checkVAPID(auth string) error {
	rest, ok := strings.CutPrefix(auth, "vapid ")
	if !ok {
		return errors.New("no vapid scheme")
	}
	var tok, key string
	for _, part := range strings.Split(rest, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		switch k {
		case "t":
			tok = v
		case "k":
			key = v
		}
	}
	f.mu.Lock()
	want := f.vapidKey
	f.mu.Unlock()
	if want != "" && key != want {
		return errors.New("k is not the key the subscription was made with")
	}
	raw, err := base64.RawURLEncoding.DecodeString(key)
	if err != nil {
		return errors.New("k is not base64url")
	}
	pub, err := ecdsa.ParseUncompressedPublicKey(ecdsaP256(), raw)
	if err != nil {
		return errors.New("k is not a P-256 point")
	}
	claims := jwt.MapClaims{}
	_, err = jwt.ParseWithClaims(tok, claims, func(*jwt.Token) (any, error) { return pub, nil },
		jwt.WithValidMethods([]string{"ES256"}), jwt.WithAudience(f.URL()), jwt.WithExpirationRequired())
	if err != nil {
		return err
	}
	exp, _ := claims.GetExpirationTime()
	if exp.After(time.Now().Add(24 * time.Hour)) {
		return errors.New("exp more than 24 hours ahead")
	}
	if sub, _ := claims["sub"].(string); !strings.HasPrefix(sub, "mailto:") && !strings.HasPrefix(sub, "https:") {
		return errors.New("sub must be mailto: or https:")
	}
	return nil
}

// Decrypt decrypts an aes128gcm Web Push message (RFC 8291 §3.4, RFC
// 8188) for the user agent holding priv and the auth secret. It accepts
// one record, as Web Push sends, and returns the plaintext without its
// padding.
func Decrypt(priv *ecdh.PrivateKey, auth, body []byte) ([]byte, error) {
	if len(body) < 21 {
		return nil, errors.New("short header")
	}
	salt, rs, idlen := body[:16], binary.BigEndian.Uint32(body[16:20]), int(body[20])
	if rs < 18 || idlen != 65 || len(body) < 21+idlen {
		return nil, fmt.Errorf("bad header (rs %d, idlen %d)", rs, idlen)
	}
	asPub, err := ecdh.P256().NewPublicKey(body[21 : 21+idlen])
	if err != nil {
		return nil, errors.New("keyid is not a P-256 point")
	}
	ct := body[21+idlen:]
	if len(ct) > int(rs) || len(ct) < 17 {
		return nil, errors.New("want exactly one record")
	}
	secret, err := priv.ECDH(asPub)
	if err != nil {
		return nil, err
	}
	info := append(append([]byte("WebPush: info\x00"), priv.PublicKey().Bytes()...), asPub.Bytes()...)
	ikm, err := hkdf.Key(sha256.New, secret, auth, string(info), 32)
	if err != nil {
		return nil, err
	}
	cek, _ := hkdf.Key(sha256.New, ikm, salt, "Content-Encoding: aes128gcm\x00", 16)
	nonce, _ := hkdf.Key(sha256.New, ikm, salt, "Content-Encoding: nonce\x00", 12)
	block, _ := aes.NewCipher(cek)
	gcm, _ := cipher.NewGCM(block)
	plain, err := gcm.Open(nil, nonce, ct, nil)
	if err != nil {
		return nil, errors.New("authentication failed")
	}
	// Padding: the last non-zero octet is the delimiter, 2 for the last
	// record.
	i := len(plain) - 1
	for i >= 0 && plain[i] == 0 {
		i--
	}
	if i < 0 || plain[i] != 2 {
		return nil, errors.New("bad padding delimiter")
	}
	return plain[:i], nil
}

func ecdsaP256() elliptic.Curve { return elliptic.P256() }

// VAPIDKeys makes a VAPID key pair, base64url without padding, as the
// config file takes them.
func VAPIDKeys() (public, private string, err error) {
	k, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		return "", "", err
	}
	b64 := base64.RawURLEncoding.EncodeToString
	return b64(k.PublicKey().Bytes()), b64(k.Bytes()), nil
}
