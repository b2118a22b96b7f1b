package vendortest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// APNsPush is one notification the APNs fake accepted.
type APNsPush struct {
	Token   string
	Header  http.Header
	Payload map[string]any
	JWT     string // the provider token it came with
}

// APNs is a fake Apple Push Notification service. It checks the path
// /3/device/<token>, the apns-* headers, and the provider token: an
// ES256 JWT whose kid is KeyID, whose iss is TeamID, whose iat is within
// the last hour, signed by Key.
type APNs struct {
	server
	Key    *ecdsa.PrivateKey
	KeyID  string
	TeamID string
	Topic  string // the apns-topic every request must carry ("" = any)

	mu   sync.Mutex
	got  []APNsPush
	jwts map[string]bool
}

// NewAPNs starts an APNs fake for topic with a fresh P-256 key.
func NewAPNs(topic string) (*APNs, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	f := &APNs{Key: key, KeyID: "FAKEKEY123", TeamID: "FAKETEAM45", Topic: topic, jwts: map[string]bool{}}
	f.start(http.HandlerFunc(f.serve))
	return f, nil
}

// KeyPEM is the provider key as a .p8 file (PKCS#8 PEM).
func (f *APNs) KeyPEM() []byte {
	der, _ := x509.MarshalPKCS8PrivateKey(f.Key)
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

// Received lists the notifications accepted so far.
func (f *APNs) Received() []APNsPush {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]APNsPush(nil), f.got...)
}

// ProviderTokens is how many distinct provider tokens were used.
func (f *APNs) ProviderTokens() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.jwts)
}

func apnsReply(w http.ResponseWriter, status int, reason string) {
	w.Header().Set("apns-id", "00000000-0000-0000-0000-000000000000")
	w.WriteHeader(status)
	if reason != "" {
		fmt.Fprintf(w, `{"reason":%q}`, reason)
	}
}

func (f *APNs) serve(w http.ResponseWriter, r *http.Request) {
	if r.ProtoMajor != 2 {
		apnsReply(w, http.StatusBadRequest, "HTTP2Required")
		return
	}
	if r.Method != http.MethodPost {
		apnsReply(w, http.StatusMethodNotAllowed, "MethodNotAllowed")
		return
	}
	tok, ok := strings.CutPrefix(r.URL.Path, "/3/device/")
	if !ok || tok == "" || strings.Contains(tok, "/") {
		apnsReply(w, http.StatusNotFound, "BadPath")
		return
	}
	bearer, err := f.checkJWT(r.Header.Get("Authorization"))
	if err != nil {
		apnsReply(w, http.StatusForbidden, "InvalidProviderToken")
		return
	}
	if reason := f.checkHeaders(r.Header); reason != "" {
		apnsReply(w, http.StatusBadRequest, reason)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 4097))
	if err != nil || len(body) > 4096 {
		apnsReply(w, http.StatusRequestEntityTooLarge, "PayloadTooLarge")
		return
	}
	var payload map[string]any
	if json.Unmarshal(body, &payload) != nil || payload["aps"] == nil {
		apnsReply(w, http.StatusBadRequest, "PayloadEmpty")
		return
	}
	if len(tok) != 64 || strings.Trim(strings.ToLower(tok), "0123456789abcdef") != "" {
		apnsReply(w, http.StatusBadRequest, "BadDeviceToken")
		return
	}
	if a, ok := f.next(); ok {
		if a.RetryAfter != "" {
			w.Header().Set("Retry-After", a.RetryAfter)
		}
		apnsReply(w, a.Status, a.Reason)
		return
	}
	if f.isGone(tok) {
		apnsReply(w, http.StatusGone, "Unregistered")
		return
	}
	if f.accept() {
		f.mu.Lock()
		f.got = append(f.got, APNsPush{Token: tok, Header: r.Header.Clone(), Payload: payload, JWT: bearer})
		f.mu.Unlock()
	}
	apnsReply(w, http.StatusOK, "")
}

// checkJWT verifies "bearer <jwt>": ES256 by Key, kid, iss, and an iat
// no older than an hour (and not in the future).
func (f *APNs) checkJWT(auth string) (string, error) {
	raw, ok := strings.CutPrefix(auth, "bearer ")
	if !ok {
		return "", fmt.Errorf("no bearer token")
	}
	claims := jwt.MapClaims{}
	t, err := jwt.ParseWithClaims(raw, claims, func(t *jwt.Token) (any, error) {
		if t.Header["kid"] != f.KeyID {
			return nil, fmt.Errorf("kid %v", t.Header["kid"])
		}
		return &f.Key.PublicKey, nil
	}, jwt.WithValidMethods([]string{"ES256"}), jwt.WithIssuer(f.TeamID), jwt.WithIssuedAt())
	if err != nil || !t.Valid {
		return "", fmt.Errorf("jwt: %v", err)
	}
	iat, err := claims.GetIssuedAt()
	if err != nil || iat == nil || time.Since(iat.Time) > time.Hour {
		return "", fmt.Errorf("iat missing or older than an hour")
	}
	f.mu.Lock()
	f.jwts[raw] = true
	f.mu.Unlock()
	return raw, nil
}

// checkHeaders returns the APNs reason for a bad apns-* header, "" if
// they are good.
func (f *APNs) checkHeaders(h http.Header) string {
	topic := h.Get("apns-topic")
	if topic == "" {
		return "MissingTopic"
	}
	if f.Topic != "" && topic != f.Topic {
		return "DeviceTokenNotForTopic"
	}
	switch h.Get("apns-push-type") {
	case "alert", "background", "voip", "complication", "fileprovider", "mdm", "location", "liveactivity", "pushtotalk":
	default:
		return "InvalidPushType"
	}
	if p := h.Get("apns-priority"); p != "" && p != "5" && p != "10" && p != "1" {
		return "BadPriority"
	}
	if e := h.Get("apns-expiration"); e != "" {
		if _, err := strconv.ParseInt(e, 10, 64); err != nil {
			return "BadExpirationDate"
		}
	}
	if len(h.Get("apns-collapse-id")) > 64 {
		return "BadCollapseId"
	}
	return ""
}
