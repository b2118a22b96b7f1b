package httpapi

import (
	"net/http"

	"timd/internal/im"
)

// Starting answers a /v4 or /v1 request that arrives while the server is
// still starting (opening the store, loading the audience index): the
// envelope with the internal-error code of the command's family and a
// "retry" text, so that a client sees a retryable failure rather than a
// refused connection.
func Starting(w http.ResponseWriter, r *http.Request) {
	code := im.CodeAccountInternal
	if f := familyOfPath(r.URL.Path); f == famPush {
		code = im.CodePushInternal
	}
	w.Header().Set("Retry-After", "1")
	writeEnvelope(w, code, "server is starting, retry shortly", nil)
}

// familyOfPath returns the error family of a /v4/<service>/<command> path.
func familyOfPath(path string) family {
	const prefix = "/v4/"
	if len(path) > len(prefix) && path[:len(prefix)] == prefix {
		svc := path[len(prefix):]
		for i := 0; i < len(svc); i++ {
			if svc[i] == '/' {
				svc = svc[:i]
				break
			}
		}
		switch svc {
		case "timpush", "all_member_push":
			return famPush
		case "im_open_login_svc", "openim":
			return famAccount
		}
	}
	return famGateway
}
