package pushvendor_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync/atomic"
	"testing"

	"timd/internal/pushvendor"
)

// The vendor benchmarks send to 100,000 distinct offline devices on the
// local fakes (TLS, HTTP/2, full verification on the fake's side) and
// compare with bare HTTP/2 POSTs of a ready-made, valid request to the
// same fake in the same run. Run with -benchtime=100000x so each
// benchmark sends to every device once:
//
//	go test -run '^$' -bench 'Vendor' -benchtime 100000x ./internal/pushvendor/

const benchDevices = 100_000

func hexToken(i int) string { return fmt.Sprintf("%064x", i+1) }

// benchSend sends b.N notifications through s, to device i%benchDevices,
// paced by p (at a rate well above what is reached), from 32 goroutines
// per CPU.
func benchSend(b *testing.B, s pushvendor.Sender, p *pushvendor.Pacer, targets []pushvendor.Target) {
	var next, failed atomic.Int64
	n := benchNote
	b.SetParallelism(32)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := int(next.Add(1)-1) % len(targets)
			if err := p.Wait(context.Background(), 1, s.Kind()); err != nil {
				b.Error(err)
				return
			}
			if r := s.Send(context.Background(), targets[i], n); !r.OK() {
				failed.Add(1)
			}
		}
	})
	b.StopTimer()
	if failed.Load() > 0 {
		b.Fatalf("%d sends failed", failed.Load())
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "notif/s")
}

// benchBare posts the same ready-made request b.N times with nothing
// computed per request: the floor a sender could reach.
func benchBare(b *testing.B, c *http.Client, url string, header http.Header, body []byte) {
	var failed atomic.Int64
	b.SetParallelism(32)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
			req.Header = header.Clone()
			resp, err := c.Do(req)
			if err != nil {
				failed.Add(1)
				continue
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode/100 != 2 {
				failed.Add(1)
			}
		}
	})
	b.StopTimer()
	if failed.Load() > 0 {
		b.Fatalf("%d bare posts failed", failed.Load())
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "notif/s")
}

var benchNote = pushvendor.Notification{App: 1, TaskID: "bench_task", Title: "Market alert", Desc: "Both of your stocks moved", Ext: `{"k":"v"}`}

func pacer() *pushvendor.Pacer { return pushvendor.NewPacer(1e6) }

func BenchmarkVendorAPNs(b *testing.B) {
	f, s := newAPNs(b)
	targets := make([]pushvendor.Target, benchDevices)
	for i := range targets {
		targets[i] = pushvendor.Target{Kind: pushvendor.APNs, Token: hexToken(i)}
	}
	// A valid request (provider token, headers, payload), made once.
	if r := s.Send(context.Background(), targets[0], benchNote); !r.OK() {
		b.Fatal(r)
	}
	h := f.Received()[0].Header
	body, _ := json.Marshal(f.Received()[0].Payload)
	f.Record(false)
	b.Run("timd", func(b *testing.B) { benchSend(b, s, pacer(), targets) })
	b.Run("bare-http2", func(b *testing.B) {
		benchBare(b, pushvendor.NewHTTPClient(f.CertPool()), f.URL()+"/3/device/"+hexToken(0), h, body)
	})
}

func BenchmarkVendorFCM(b *testing.B) {
	f, s := newFCM(b)
	targets := make([]pushvendor.Target, benchDevices)
	for i := range targets {
		targets[i] = pushvendor.Target{Kind: pushvendor.FCM, Token: fmt.Sprintf("fcm-device-%d", i)}
	}
	if r := s.Send(context.Background(), targets[0], benchNote); !r.OK() {
		b.Fatal(r)
	}
	body, _ := json.Marshal(map[string]any{"message": f.Received()[0].Message})
	h := http.Header{"Content-Type": {"application/json"}, "Authorization": {"Bearer " + f.LastAccessToken()}}
	f.Record(false)
	b.Run("timd", func(b *testing.B) { benchSend(b, s, pacer(), targets) })
	b.Run("bare-http2", func(b *testing.B) {
		benchBare(b, pushvendor.NewHTTPClient(f.CertPool()), f.URL()+"/v1/projects/"+f.Project+"/messages:send", h, body)
	})
}

func BenchmarkVendorWebPush(b *testing.B) {
	f, s, _ := newWebPush(b)
	targets := make([]pushvendor.Target, benchDevices)
	for i := range targets {
		sub, err := f.Subscribe()
		if err != nil {
			b.Fatal(err)
		}
		targets[i] = pushvendor.Target{Kind: pushvendor.WebPush, Endpoint: sub.Endpoint, P256dh: sub.P256dh, Auth: sub.Auth}
	}
	// One message encrypted and signed once, posted again and again (the
	// fake still verifies and decrypts each).
	if r := s.Send(context.Background(), targets[0], benchNote); !r.OK() {
		b.Fatal(r)
	}
	got := f.Received()[len(f.Received())-1]
	body := f.LastBody()
	f.Record(false)
	b.Run("timd", func(b *testing.B) { benchSend(b, s, pacer(), targets) })
	b.Run("bare-http2", func(b *testing.B) {
		benchBare(b, pushvendor.NewHTTPClient(f.CertPool()), got.Endpoint, got.Header, body)
	})
}
