package loadgen

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/coder/websocket"
)

// ServeBroadcastBaseline runs the yardstick for live delivery: a bare
// coder/websocket server with no auth, store or queues. Clients connect to
// /connect; POST /fire?task=ID writes {"Type":"push","TaskId":ID} to every
// connection, one goroutine per connection. It prints its address on out
// and serves until ctx ends. `timd bench --live` runs it in a child
// process so that it has its own file descriptors, like timd.
func ServeBroadcastBaseline(ctx context.Context, out func(addr string)) error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	var mu sync.Mutex
	conns := map[*websocket.Conn]struct{}{}
	mux := http.NewServeMux()
	mux.HandleFunc("/connect", func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		mu.Lock()
		conns[c] = struct{}{}
		mu.Unlock()
		_, _, _ = c.Read(context.Background()) // until the client goes
		mu.Lock()
		delete(conns, c)
		mu.Unlock()
	})
	mux.HandleFunc("POST /fire", func(w http.ResponseWriter, r *http.Request) {
		frame := []byte(fmt.Sprintf(`{"Type":"push","TaskId":%q}`, r.URL.Query().Get("task")))
		mu.Lock()
		for c := range conns {
			go func(c *websocket.Conn) {
				wctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				_ = c.Write(wctx, websocket.MessageText, frame)
			}(c)
		}
		mu.Unlock()
	})
	srv := &http.Server{Handler: mux}
	go func() { <-ctx.Done(); srv.Close() }()
	out(ln.Addr().String())
	if err := srv.Serve(ln); err != http.ErrServerClosed {
		return err
	}
	return nil
}

// LiveBaseline connects n clients to a broadcast baseline at addr, fires
// one frame and measures receipt times from the fire call, like PushOnce.
func LiveBaseline(ctx context.Context, addr string, n int, wait time.Duration) (LiveResult, error) {
	urls := make([]string, n)
	for i := range urls {
		urls[i] = "ws://" + addr + "/connect"
	}
	l, err := listen(ctx, urls, false)
	if err != nil {
		return LiveResult{}, err
	}
	defer l.Close()
	time.Sleep(200 * time.Millisecond) // let the server register the last ones
	p := Push{TaskID: "baseline", Start: time.Now(), Expect: Audience(Condition{}, n)}
	resp, err := http.Post("http://"+addr+"/fire?task=baseline", "text/plain", nil)
	p.Call = time.Since(p.Start)
	if err != nil {
		return LiveResult{}, err
	}
	resp.Body.Close()
	return oneShot(l, p, wait), nil
}
