package vendortest

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// FCMMessage is one message the FCM fake accepted.
type FCMMessage struct {
	Token   string
	Message map[string]any // the body's "message"
}

// FCM is a fake Firebase Cloud Messaging HTTP v1 service with its own
// OAuth2 token endpoint (/token). The token endpoint verifies the
// JWT-bearer assertion (RS256 by the service account's key, kid, iss,
// aud, scope, iat and exp) and issues an access token that expires after
// TokenTTL; /v1/projects/<Project>/messages:send checks that bearer
// token and the message body.
type FCM struct {
	server
	Key      *rsa.PrivateKey
	KeyID    string
	Email    string
	Project  string
	TokenTTL time.Duration // lifetime of issued access tokens (default 1 h)

	mu     sync.Mutex
	tokens map[string]time.Time
	issued int
	last   string
	got    []FCMMessage
}

// NewFCM starts an FCM fake for project with a fresh RSA key.
func NewFCM(project string) (*FCM, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	f := &FCM{Key: key, KeyID: "fakekeyid0001", Email: "timd@" + project + ".iam.gserviceaccount.com",
		Project: project, TokenTTL: time.Hour, tokens: map[string]time.Time{}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /token", f.serveToken)
	mux.HandleFunc("POST /v1/projects/{project}/messages:send", f.serveSend)
	f.start(mux)
	return f, nil
}

// ServiceAccountJSON is a service-account key file whose token_uri is the
// fake's token endpoint.
func (f *FCM) ServiceAccountJSON() []byte {
	der, _ := x509.MarshalPKCS8PrivateKey(f.Key)
	b, _ := json.Marshal(map[string]string{
		"type": "service_account", "project_id": f.Project, "private_key_id": f.KeyID,
		"private_key":  string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})),
		"client_email": f.Email, "client_id": "1", "token_uri": f.URL() + "/token",
	})
	return b
}

// Received lists the messages accepted so far.
func (f *FCM) Received() []FCMMessage {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]FCMMessage(nil), f.got...)
}

// TokensIssued is how many access tokens the token endpoint issued.
func (f *FCM) TokensIssued() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.issued
}

// LastAccessToken is the access token issued last.
func (f *FCM) LastAccessToken() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.last
}

// RevokeTokens forgets every issued access token (the next send gets 401).
func (f *FCM) RevokeTokens() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.tokens = map[string]time.Time{}
}

func oauthError(w http.ResponseWriter, code, desc string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusBadRequest)
	fmt.Fprintf(w, `{"error":%q,"error_description":%q}`, code, desc)
}

func (f *FCM) serveToken(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil || r.PostForm.Get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer" {
		oauthError(w, "unsupported_grant_type", "want jwt-bearer")
		return
	}
	claims := jwt.MapClaims{}
	_, err := jwt.ParseWithClaims(r.PostForm.Get("assertion"), claims, func(t *jwt.Token) (any, error) {
		if t.Header["kid"] != f.KeyID {
			return nil, fmt.Errorf("kid %v", t.Header["kid"])
		}
		return &f.Key.PublicKey, nil
	}, jwt.WithValidMethods([]string{"RS256"}), jwt.WithIssuer(f.Email),
		jwt.WithAudience(f.URL()+"/token"), jwt.WithIssuedAt(), jwt.WithExpirationRequired())
	if err != nil {
		oauthError(w, "invalid_grant", "Invalid JWT Signature.")
		return
	}
	if scope, _ := claims["scope"].(string); !strings.Contains(" "+scope+" ", " https://www.googleapis.com/auth/firebase.messaging ") {
		oauthError(w, "invalid_scope", "firebase.messaging scope missing")
		return
	}
	buf := make([]byte, 24)
	rand.Read(buf)
	tok := "ya29.fake-" + hex.EncodeToString(buf)
	f.mu.Lock()
	f.tokens[tok] = time.Now().Add(f.TokenTTL)
	f.issued++
	f.last = tok
	f.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, `{"access_token":%q,"token_type":"Bearer","expires_in":%d}`, tok, int(f.TokenTTL/time.Second))
}

// fcmReply writes an FCM v1 error: status code, google.rpc status name,
// and FCM's errorCode when given.
func fcmReply(w http.ResponseWriter, status int, rpcStatus, errorCode, msg string) {
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	w.WriteHeader(status)
	e := map[string]any{"code": status, "message": msg, "status": rpcStatus}
	if errorCode != "" {
		e["details"] = []map[string]string{{"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": errorCode}}
	}
	json.NewEncoder(w).Encode(map[string]any{"error": e})
}

// rpcStatus names the google.rpc status of an HTTP status.
func rpcStatus(status int) string {
	switch status {
	case 400:
		return "INVALID_ARGUMENT"
	case 401:
		return "UNAUTHENTICATED"
	case 403:
		return "PERMISSION_DENIED"
	case 404:
		return "NOT_FOUND"
	case 429:
		return "RESOURCE_EXHAUSTED"
	case 503:
		return "UNAVAILABLE"
	}
	return "INTERNAL"
}

func (f *FCM) serveSend(w http.ResponseWriter, r *http.Request) {
	if r.ProtoMajor != 2 {
		fcmReply(w, 400, "INVALID_ARGUMENT", "", "fake: want HTTP/2")
		return
	}
	tok, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	f.mu.Lock()
	exp, ok := f.tokens[tok]
	f.mu.Unlock()
	if !ok || time.Now().After(exp) {
		fcmReply(w, 401, "UNAUTHENTICATED", "THIRD_PARTY_AUTH_ERROR", "Request had invalid authentication credentials.")
		return
	}
	if r.PathValue("project") != f.Project {
		fcmReply(w, 403, "PERMISSION_DENIED", "SENDER_ID_MISMATCH", "project does not match the credentials")
		return
	}
	var body struct {
		Message map[string]any `json:"message"`
	}
	dec := json.NewDecoder(io.LimitReader(r.Body, 8<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&body); err != nil || body.Message == nil {
		fcmReply(w, 400, "INVALID_ARGUMENT", "INVALID_ARGUMENT", "Invalid JSON payload received.")
		return
	}
	token, _ := body.Message["token"].(string)
	if msg := checkFCMMessage(body.Message, token); msg != "" {
		fcmReply(w, 400, "INVALID_ARGUMENT", "INVALID_ARGUMENT", msg)
		return
	}
	if a, ok := f.next(); ok {
		if a.RetryAfter != "" {
			w.Header().Set("Retry-After", a.RetryAfter)
		}
		fcmReply(w, a.Status, rpcStatus(a.Status), a.Reason, "forced by the fake")
		return
	}
	if f.isGone(token) {
		fcmReply(w, 404, "NOT_FOUND", "UNREGISTERED", "Requested entity was not found.")
		return
	}
	n := f.accepted.Load() + 1
	if f.accept() {
		f.mu.Lock()
		f.got = append(f.got, FCMMessage{Token: token, Message: body.Message})
		f.mu.Unlock()
	}
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	fmt.Fprintf(w, `{"name":"projects/%s/messages/%d"}`, f.Project, n)
}

// checkFCMMessage checks the parts of a v1 Message the senders use; ""
// when it is good.
func checkFCMMessage(m map[string]any, token string) string {
	if token == "" {
		return "The registration token is not a valid FCM registration token"
	}
	for k := range m {
		switch k {
		case "token", "notification", "data", "android", "apns", "webpush", "fcm_options", "name":
		case "topic", "condition":
			return "exactly one of token, topic or condition"
		default:
			return fmt.Sprintf("Invalid JSON payload received. Unknown name %q at 'message'", k)
		}
	}
	if d, ok := m["data"]; ok {
		dm, ok := d.(map[string]any)
		if !ok {
			return "data must be a map of strings"
		}
		for k, v := range dm {
			if _, ok := v.(string); !ok || k == "from" || strings.HasPrefix(k, "google") || strings.HasPrefix(k, "gcm") {
				return fmt.Sprintf("Invalid data key or value %q", k)
			}
		}
	}
	if a, ok := m["android"].(map[string]any); ok {
		if p, ok := a["priority"]; ok && p != "HIGH" && p != "NORMAL" {
			return "Invalid value at 'message.android.priority'"
		}
		if ttl, ok := a["ttl"].(string); ok && !strings.HasSuffix(ttl, "s") {
			return "Invalid value at 'message.android.ttl'"
		}
	}
	return ""
}
