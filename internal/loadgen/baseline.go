package loadgen

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
)

// Baseline starts a bare net/http server on a free loopback port whose one
// handler reads the body, decodes the same JSON shapes timd decodes and
// answers the OK envelope: no auth, no store, no index. It is the same-run
// yardstick for the HTTP figures. Close the returned server when done.
func Baseline() (*http.Server, string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, "", err
	}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		var v struct {
			UserAttrs []struct {
				ToAccount string          `json:"To_Account"`
				Attrs     json.RawMessage `json:"Attrs"`
			}
			UserTags []struct {
				ToAccount string   `json:"To_Account"`
				Tags      []string `json:"Tags"`
			}
			ToAccount []string `json:"To_Account"`
		}
		code := 0
		if json.Unmarshal(body, &v) != nil {
			code = 90001
		}
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		if code != 0 {
			_, _ = w.Write([]byte(`{"ActionStatus":"FAIL","ErrorInfo":"bad json","ErrorCode":90001}`))
			return
		}
		_, _ = w.Write([]byte(`{"ActionStatus":"OK","ErrorInfo":"","ErrorCode":0}`))
	})
	srv := &http.Server{Handler: h}
	go srv.Serve(ln)
	return srv, "http://" + ln.Addr().String(), nil
}
