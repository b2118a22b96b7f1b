package pushvendor

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/jwt"
)

// FCMEndpoint is the FCM HTTP v1 host.
const FCMEndpoint = "https://fcm.googleapis.com"

// FCMScope is the OAuth2 scope of FCM HTTP v1.
const FCMScope = "https://www.googleapis.com/auth/firebase.messaging"

// maxAnswer bounds how much of a vendor's answer is read.
const maxAnswer = 64 << 10

// ServiceAccount is the part of a Google service-account JSON key FCM
// needs.
type ServiceAccount struct {
	Type         string `json:"type"`
	ProjectID    string `json:"project_id"`
	PrivateKeyID string `json:"private_key_id"`
	PrivateKey   string `json:"private_key"`
	ClientEmail  string `json:"client_email"`
	TokenURI     string `json:"token_uri"`
}

// ParseServiceAccount reads a service-account JSON key and checks that
// it has what FCM needs: a project, an e-mail, an RSA private key and an
// https token_uri. Errors never quote the key.
func ParseServiceAccount(data []byte) (ServiceAccount, error) {
	var sa ServiceAccount
	if err := json.Unmarshal(data, &sa); err != nil {
		return ServiceAccount{}, errors.New("service account: not a JSON object")
	}
	switch {
	case sa.Type != "service_account":
		return sa, fmt.Errorf("service account: type %q, want service_account", sa.Type)
	case sa.ProjectID == "" || sa.ClientEmail == "" || sa.PrivateKey == "":
		return sa, errors.New("service account: project_id, client_email and private_key are required")
	}
	block, _ := pem.Decode([]byte(sa.PrivateKey))
	if block == nil {
		return sa, errors.New("service account: private_key is not PEM")
	}
	if _, err := x509.ParsePKCS8PrivateKey(block.Bytes); err != nil {
		if _, err1 := x509.ParsePKCS1PrivateKey(block.Bytes); err1 != nil {
			return sa, errors.New("service account: private_key is not an RSA key")
		}
	}
	if sa.TokenURI == "" {
		sa.TokenURI = "https://oauth2.googleapis.com/token"
	}
	if u, err := url.Parse(sa.TokenURI); err != nil || u.Scheme != "https" || u.Host == "" {
		return sa, errors.New("service account: token_uri must be an https URL")
	}
	return sa, nil
}

// FCMOptions configure an FCM HTTP v1 sender.
type FCMOptions struct {
	Account  ServiceAccount
	Endpoint string       // default FCMEndpoint
	TokenURL string       // overrides Account.TokenURI when not ""
	Client   *http.Client // default NewHTTPClient(nil)
}

// fcmSender sends through FCM HTTP v1. The OAuth2 access token comes
// from golang.org/x/oauth2/jwt: a JWT-bearer assertion (RFC 7523) signed
// with the service account's key, posted to its token_uri, cached and
// renewed shortly before it expires. That is what
// golang.org/x/oauth2/google's JWTConfigFromJSON builds; we fill the
// jwt.Config ourselves so the token URL can be overridden for staging
// and tests without pulling in the GCE metadata client.
type fcmSender struct {
	client   *http.Client
	url      string
	conf     *jwt.Config
	mu       sync.Mutex
	tokens   oauth2.TokenSource
	tokenCtx context.Context
}

// NewFCM returns the FCM Sender of one app.
func NewFCM(o FCMOptions) (Sender, error) {
	if o.Account.ProjectID == "" || o.Account.ClientEmail == "" || o.Account.PrivateKey == "" {
		return nil, errors.New("fcm: incomplete service account")
	}
	ep := strings.TrimRight(o.Endpoint, "/")
	if ep == "" {
		ep = FCMEndpoint
	}
	tokenURL := o.Account.TokenURI
	if o.TokenURL != "" {
		tokenURL = o.TokenURL
	}
	c := o.Client
	if c == nil {
		c = NewHTTPClient(nil)
	}
	s := &fcmSender{
		client: c,
		url:    ep + "/v1/projects/" + url.PathEscape(o.Account.ProjectID) + "/messages:send",
		conf: &jwt.Config{
			Email:        o.Account.ClientEmail,
			PrivateKey:   []byte(o.Account.PrivateKey),
			PrivateKeyID: o.Account.PrivateKeyID,
			Scopes:       []string{FCMScope},
			TokenURL:     tokenURL,
		},
		tokenCtx: context.WithValue(context.Background(), oauth2.HTTPClient, c),
	}
	s.resetToken()
	return s, nil
}

func (s *fcmSender) Kind() Kind { return FCM }

func (s *fcmSender) resetToken() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tokens = s.conf.TokenSource(s.tokenCtx)
}

func (s *fcmSender) token() (*oauth2.Token, error) {
	s.mu.Lock()
	ts := s.tokens
	s.mu.Unlock()
	return ts.Token()
}

// Send posts one message to one registration token.
func (s *fcmSender) Send(ctx context.Context, t Target, n Notification) Result {
	if t.Token == "" || len(t.Token) > 4096 {
		return Result{Err: errors.New("fcm: empty or oversized token"), ErrCode: "INVALID_ARGUMENT", Unregistered: true}
	}
	if expired(n) {
		return badInput(FCM, "expired", errors.New("notification expired"))
	}
	tok, err := s.token()
	if err != nil {
		return tokenResult(err)
	}
	body, err := json.Marshal(map[string]any{"message": fcmMessage(t.Token, n)})
	if err != nil {
		return badInput(FCM, "encode", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url, bytes.NewReader(body))
	if err != nil {
		return badInput(FCM, "request", err)
	}
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	tok.SetAuthHeader(req)
	resp, err := s.client.Do(req)
	if err != nil {
		return networkResult(FCM, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if resp.StatusCode/100 == 2 {
		return Result{Status: resp.StatusCode}
	}
	e := ParseFCMError(data)
	r := statusResult(FCM, resp, e.Code(), e.Unregistered())
	if resp.StatusCode == http.StatusUnauthorized {
		// The access token was refused (revoked or expired early):
		// fetch a new one and try again.
		s.resetToken()
		r.Retry = true
	}
	return r
}

// tokenResult classifies a failure to get an access token: the token
// endpoint refusing the assertion (4xx) is a configuration error; no
// answer or a 5xx is retried.
func tokenResult(err error) Result {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) && re.Response != nil && re.Response.StatusCode/100 == 4 {
		ec := re.ErrorCode
		if ec == "" { // x/oauth2/jwt leaves the RFC 6749 error in Body
			var b struct {
				Error string `json:"error"`
			}
			_ = json.Unmarshal(re.Body, &b)
			ec = b.Error
		}
		code := "oauth2 " + clip(ec)
		if ec == "" {
			code = "oauth2 HTTP " + strconv.Itoa(re.Response.StatusCode)
		}
		return Result{Status: re.Response.StatusCode, Err: fmt.Errorf("fcm: access token: %w", err), ErrCode: code}
	}
	return Result{Err: fmt.Errorf("fcm: access token: %w", err), ErrCode: "oauth2", Retry: true}
}

// FCMError is an FCM HTTP v1 error answer (google.rpc.Status with FCM's
// details).
type FCMError struct {
	Error struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
		Status  string `json:"status"`
		Details []struct {
			Type            string `json:"@type"`
			ErrorCode       string `json:"errorCode"`
			FieldViolations []struct {
				Field string `json:"field"`
			} `json:"fieldViolations"`
		} `json:"details"`
	} `json:"error"`
}

// ParseFCMError decodes an FCM error body; anything else gives the zero
// FCMError.
func ParseFCMError(data []byte) FCMError {
	var e FCMError
	if json.Unmarshal(data, &e) != nil {
		return FCMError{}
	}
	return e
}

// Code is FCM's errorCode (such as UNREGISTERED), else the status.
func (e FCMError) Code() string {
	for _, d := range e.Error.Details {
		if d.ErrorCode != "" {
			return d.ErrorCode
		}
	}
	return e.Error.Status
}

// Unregistered reports the answers Firebase documents as "this token is
// no longer valid, remove it": UNREGISTERED, and INVALID_ARGUMENT when it
// concerns the token (a field violation on message.token, or a message
// naming the registration token). An INVALID_ARGUMENT about the payload
// keeps the token.
func (e FCMError) Unregistered() bool {
	switch e.Code() {
	case "UNREGISTERED":
		return true
	case "INVALID_ARGUMENT":
		for _, d := range e.Error.Details {
			for _, v := range d.FieldViolations {
				if v.Field == "message.token" {
					return true
				}
			}
		}
		return strings.Contains(strings.ToLower(e.Error.Message), "registration token")
	}
	return false
}

// fcmMessage maps the notification onto an FCM v1 Message
// (docs/offline-push.md lists every field).
func fcmMessage(token string, n Notification) map[string]any {
	data := map[string]string{}
	for k, v := range n.Data {
		if !fcmReserved(k) {
			data[k] = v
		}
	}
	if n.Ext != "" {
		data["ext"] = n.Ext
	}
	if n.TaskID != "" {
		data["task_id"] = n.TaskID
	}
	an := map[string]any{}
	if snd := firstNonEmpty(n.Android.Sound, n.Sound); snd != "" {
		an["sound"] = snd
	} else {
		an["sound"] = "default"
	}
	if n.Android.GoogleChannelID != "" {
		an["channel_id"] = n.Android.GoogleChannelID
	}
	if n.TaskID != "" {
		an["tag"] = n.TaskID
	}
	android := map[string]any{"priority": "HIGH", "notification": an}
	if n.Priority == PriorityNormal {
		android["priority"] = "NORMAL"
	}
	if n.TaskID != "" {
		android["collapse_key"] = n.TaskID
	}
	if !n.Expires.IsZero() {
		android["ttl"] = strconv.FormatInt(int64(max(time.Until(n.Expires)/time.Second, 0)), 10) + "s"
	}
	m := map[string]any{
		"token":        token,
		"notification": map[string]string{"title": n.Title, "body": n.Desc},
		"android":      android,
	}
	if len(data) > 0 {
		m["data"] = data
	}
	return m
}

// fcmReserved reports data keys FCM refuses.
func fcmReserved(k string) bool {
	l := strings.ToLower(k)
	return k == "" || l == "from" || l == "notification" || l == "message_type" ||
		strings.HasPrefix(l, "google") || strings.HasPrefix(l, "gcm")
}

// expired reports a notification whose lifetime has passed.
func expired(n Notification) bool { return !n.Expires.IsZero() && !time.Now().Before(n.Expires) }
