package httpapi_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"timd/internal/im"
)

// serveRaw runs one request for method and the already-decoded path and
// raw query through the server in-process, exactly as given (no client
// cleans or escapes the path), and returns the recorded answer.
func serveRaw(h http.Handler, method, path, rawQuery, body string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(body))
	r.Method = method
	r.URL = &url.URL{Path: path, RawQuery: rawQuery}
	r.RequestURI = r.URL.RequestURI()
	r.RemoteAddr = "192.0.2.1:4000"
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

// envelopeOf checks that w holds the Tencent envelope (HTTP 200, JSON
// content type, ActionStatus consistent with ErrorCode, a string
// ErrorInfo) and returns its code.
func envelopeOf(t testing.TB, what string, w *httptest.ResponseRecorder) int {
	t.Helper()
	if w.Code != http.StatusOK {
		t.Fatalf("%s: HTTP %d (Location %q) %q", what, w.Code, w.Header().Get("Location"), w.Body)
	}
	if ct := w.Header().Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("%s: Content-Type %q, body %q", what, ct, w.Body)
	}
	var env struct {
		ActionStatus *string
		ErrorInfo    *string
		ErrorCode    *int
	}
	if err := json.Unmarshal(w.Body.Bytes(), &env); err != nil || env.ActionStatus == nil || env.ErrorInfo == nil || env.ErrorCode == nil {
		t.Fatalf("%s: not an envelope: %q", what, w.Body)
	}
	if (*env.ErrorCode == 0) != (*env.ActionStatus == "OK") || (*env.ErrorCode != 0 && *env.ActionStatus != "FAIL") {
		t.Fatalf("%s: inconsistent envelope: %q", what, w.Body)
	}
	return *env.ErrorCode
}

// TestEveryAnswerIsTheEnvelope: the one server answers every path and
// method under /v4 and /v1, and every path it does not serve, with the
// envelope: 60009 for unknown, unclean or differently cased paths, 60002
// for a wrong method (issue 8, point 11). Only GET /healthz and GET
// /metrics answer in their own formats.
func TestEveryAnswerIsTheEnvelope(t *testing.T) {
	e := newClientEnv(t)
	adminQ := strings.SplitN(e.url("timpush/get_attr_name", appA, "administrator", sig(t, appA, "administrator")), "?", 2)[1]
	userQ := strings.SplitN(e.v1("/v1/sync", appA, "alice", sig(t, appA, "alice"), nil), "?", 2)[1]
	for _, c := range []struct {
		method, path, query string
		code                int
	}{
		{"POST", "/v4/timpush/get_attr_name", adminQ, 0},
		{"GET", "/v1/sync", userQ, 0},
		{"POST", "//v4/timpush/get_attr_name", adminQ, im.CodeUnknownCommand},
		{"POST", "/v4//timpush/get_attr_name", adminQ, im.CodeUnknownCommand},
		{"POST", "/v4/timpush/./get_attr_name", adminQ, im.CodeUnknownCommand},
		{"POST", "/v4/timpush/../timpush/get_attr_name", adminQ, im.CodeUnknownCommand},
		{"POST", "/v4/timpush/get_attr_name/", adminQ, im.CodeUnknownCommand},
		{"POST", "/V4/timpush/get_attr_name", adminQ, im.CodeUnknownCommand},
		{"POST", "/v4/Timpush/get_attr_name", adminQ, im.CodeUnknownCommand},
		{"POST", "/v4", adminQ, im.CodeUnknownCommand},
		{"POST", "/v4/", adminQ, im.CodeUnknownCommand},
		{"POST", "/v4/timpush", adminQ, im.CodeUnknownCommand},
		{"POST", "", adminQ, im.CodeUnknownCommand},
		{"GET", "/v1", "", im.CodeUnknownCommand},
		{"GET", "/v1/", "", im.CodeUnknownCommand},
		{"GET", "/V1/sync", userQ, im.CodeUnknownCommand},
		{"GET", "/v1/sync/", userQ, im.CodeUnknownCommand},
		{"GET", "/v1/./sync", userQ, im.CodeUnknownCommand},
		{"GET", "/", "", im.CodeUnknownCommand},
		{"GET", "/healthz/", "", im.CodeUnknownCommand},
		{"GET", "/Metrics", "", im.CodeUnknownCommand},
		{"GET", "/v4/timpush/get_attr_name", adminQ, im.CodeBadURL},
		{"PATCH", "/v4/timpush/get_attr_name", adminQ, im.CodeBadURL},
		{"POST", "/v1/sync", userQ, im.CodeBadURL},
		{"PUT", "/v1/connect", userQ, im.CodeBadURL},
		{"GET", "/v1/device/register", userQ, im.CodeBadURL},
		{"POST", "/healthz", "", im.CodeBadURL},
		{"HEAD", "/healthz", "", im.CodeBadURL},
		{"POST", "/metrics", "", im.CodeBadURL},
	} {
		what := c.method + " " + c.path
		if got := envelopeOf(t, what, serveRaw(e.handler, c.method, c.path, c.query, `{}`)); got != c.code {
			t.Errorf("%s: ErrorCode %d, want %d", what, got, c.code)
		}
	}
	if w := serveRaw(e.handler, "GET", "/healthz", "", ""); w.Code != 200 || w.Body.String() != "ok\n" {
		t.Errorf("GET /healthz: %d %q", w.Code, w.Body)
	}
	if w := serveRaw(e.handler, "GET", "/metrics", "", ""); w.Code != 200 || !strings.Contains(w.Body.String(), "timd_rest_requests_total") {
		t.Errorf("GET /metrics: %d %.200q", w.Code, w.Body)
	}
}

// FuzzRequestPath sends arbitrary methods, paths and query strings to the
// one server. Whatever they are, the answer is the envelope (never a
// redirect, a plain-text error or a panic), except GET /healthz and GET
// /metrics.
func FuzzRequestPath(f *testing.F) {
	for _, s := range [][3]string{
		{"POST", "/v4/timpush/get_attr_name", "sdkappid=1400000001&identifier=administrator&usersig=x&random=1&contenttype=json"},
		{"POST", "//v4/timpush/push", ""}, {"GET", "/V4/a/b", ""}, {"POST", "/healthz", ""},
		{"GET", "/v1/connect", "sdkappid=1400000001&identifier=alice&usersig=x&platform=ios"},
		{"GET", "/v1/sync", "sdkappid=%zz"}, {"POST", "/v1/device/register", "sdkappid=1&identifier=a&usersig=b"},
		{"DELETE", "/v4/../v1/sync", "a=b&&&="}, {"GET", "/metrics/", ""},
	} {
		f.Add(s[0], s[1], s[2], `{}`)
	}
	e := newClientEnv(f)
	f.Fuzz(func(t *testing.T, method, path, query, body string) {
		if method == "" || strings.ContainsAny(method, " \t\r\n") {
			method = http.MethodPost
		}
		w := serveRaw(e.handler, method, path, query, body)
		if method == http.MethodGet && (path == "/healthz" || path == "/metrics") {
			if w.Code != http.StatusOK {
				t.Fatalf("GET %s: HTTP %d", path, w.Code)
			}
			return
		}
		if c := envelopeOf(t, method+" "+path, w); c == im.CodeAccountInternal || c == im.CodePushInternal {
			t.Fatalf("%s %s?%s: internal error: %s", method, path, query, w.Body)
		}
	})
}
