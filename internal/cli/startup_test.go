package cli

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"timd/internal/service"
)

// TestStartGate checks what a server that is still starting answers:
// /healthz 503 with the phase and its progress as JSON, the REST API the
// envelope with the family's internal code, other paths too; and that
// once ready every request reaches the real handler.
func TestStartGate(t *testing.T) {
	p := service.NewStartProgress()
	p.Phase("rebuilding index", 200)
	g := newStartGate(p)
	get := func(path string) *httptest.ResponseRecorder {
		w := httptest.NewRecorder()
		g.ServeHTTP(w, httptest.NewRequest("POST", path, strings.NewReader("{}")))
		return w
	}
	w := get("/healthz")
	var st service.StartStatus
	if w.Code != http.StatusServiceUnavailable || json.Unmarshal(w.Body.Bytes(), &st) != nil ||
		st.Status != "starting" || st.Phase != "rebuilding index" || st.Total != 200 || st.Percent != 0 {
		t.Fatalf("healthz while starting: %d %s", w.Code, w.Body)
	}
	for path, code := range map[string]float64{
		"/v4/timpush/push":                     91000,
		"/v4/all_member_push/im_push":          91000,
		"/v4/im_open_login_svc/account_import": 70500,
		"/v1/sync":                             70500,
		"/metrics":                             70500,
	} {
		w := get(path + "?sdkappid=1")
		var env map[string]any
		if err := json.Unmarshal(w.Body.Bytes(), &env); err != nil || env["ErrorCode"] != code || env["ActionStatus"] != "FAIL" {
			t.Errorf("%s while starting: %d %s, want ErrorCode %v", path, w.Code, w.Body, code)
		}
	}
	g.ready(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusTeapot) }))
	for _, path := range []string{"/healthz", "/v4/timpush/push", "/metrics"} {
		if w := get(path); w.Code != http.StatusTeapot {
			t.Errorf("%s after ready: %d", path, w.Code)
		}
	}
}
