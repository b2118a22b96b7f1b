package loadgen

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
)

// Baseline starts a bare net/http server on a free loopback port whose one
// handler reads the body, decodes the same JSON shapes timd decodes and
// answers the OK envelope: no auth, no store, no index. To get_attr and
// get_tag it answers the same shape timd does (every account with the
// attributes or tags of a prepared profile), so the encoding of the
// answer is in the yardstick too. It is the same-run yardstick for the
// HTTP figures. Close the returned server when done.
func Baseline() (*http.Server, string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, "", err
	}
	p := ProfileOf(0)
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
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		if json.Unmarshal(body, &v) != nil {
			_, _ = w.Write([]byte(`{"ActionStatus":"FAIL","ErrorInfo":"bad json","ErrorCode":90001}`))
			return
		}
		type item struct {
			ToAccount string            `json:"To_Account"`
			Attrs     map[string]string `json:"Attrs,omitempty"`
			Tags      []string          `json:"Tags,omitempty"`
		}
		var out struct {
			ActionStatus, ErrorInfo string
			ErrorCode               int
			UserAttrs               []item `json:",omitempty"`
			UserTags                []item `json:",omitempty"`
		}
		out.ActionStatus = "OK"
		for _, id := range v.ToAccount {
			switch {
			case strings.HasSuffix(r.URL.Path, "/get_attr"):
				out.UserAttrs = append(out.UserAttrs, item{ToAccount: id, Attrs: p.Attrs})
			case strings.HasSuffix(r.URL.Path, "/get_tag"):
				out.UserTags = append(out.UserTags, item{ToAccount: id, Tags: p.Tags})
			}
		}
		_ = json.NewEncoder(w).Encode(out)
	})
	srv := &http.Server{Handler: h}
	go srv.Serve(ln)
	return srv, "http://" + ln.Addr().String(), nil
}
