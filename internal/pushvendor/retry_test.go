package pushvendor_test

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"testing"
	"time"

	"timd/internal/pushvendor"
)

// script is a recording Sender answering from a list.
type script struct {
	mu      sync.Mutex
	answers []pushvendor.Result
	at      []time.Time
}

func (s *script) Kind() pushvendor.Kind { return pushvendor.FCM }
func (s *script) Send(ctx context.Context, t pushvendor.Target, n pushvendor.Notification) pushvendor.Result {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.at = append(s.at, time.Now())
	r := s.answers[0]
	if len(s.answers) > 1 {
		s.answers = s.answers[1:]
	}
	return r
}

func TestSendWithRetryHonoursRetryAfter(t *testing.T) {
	s := &script{answers: []pushvendor.Result{
		{Status: 429, Err: errors.New("x"), Retry: true, RetryAfter: 300 * time.Millisecond},
		{Status: 503, Err: errors.New("x"), Retry: true},
		{Status: 200},
	}}
	b := pushvendor.Backoff{Base: time.Millisecond, Max: 2 * time.Millisecond, Attempts: 5}
	r := pushvendor.SendWithRetry(context.Background(), s, nil, b, pushvendor.Target{}, pushvendor.Notification{})
	if !r.OK() || len(s.at) != 3 {
		t.Fatalf("result %+v after %d sends, want OK after 3", r, len(s.at))
	}
	if gap := s.at[1].Sub(s.at[0]); gap < 300*time.Millisecond {
		t.Fatalf("second attempt %v after a Retry-After of 300ms", gap)
	}
}

func TestSendWithRetryStops(t *testing.T) {
	for name, c := range map[string]struct {
		r     pushvendor.Result
		sends int
	}{
		"unregistered": {pushvendor.Result{Status: 410, Err: errors.New("x"), Unregistered: true}, 1},
		"bad request":  {pushvendor.Result{Status: 400, Err: errors.New("x")}, 1},
		"attempts":     {pushvendor.Result{Status: 500, Err: errors.New("x"), Retry: true}, 4},
	} {
		s := &script{answers: []pushvendor.Result{c.r}}
		b := pushvendor.Backoff{Base: time.Millisecond, Max: time.Millisecond, Attempts: 4}
		if r := pushvendor.SendWithRetry(context.Background(), s, nil, b, pushvendor.Target{}, pushvendor.Notification{}); r.OK() || len(s.at) != c.sends {
			t.Errorf("%s: %d sends, want %d", name, len(s.at), c.sends)
		}
	}
}

func TestBackoffDelay(t *testing.T) {
	b := pushvendor.Backoff{Base: 100 * time.Millisecond, Max: time.Second, Attempts: 10}
	retry := pushvendor.Result{Retry: true}
	for attempt := 1; attempt < 10; attempt++ {
		d, ok := b.Delay(attempt, retry)
		ceil := min(100*time.Millisecond<<(attempt-1), time.Second)
		if !ok || d < ceil/2 || d > ceil {
			t.Errorf("attempt %d: %v, want %v..%v", attempt, d, ceil/2, ceil)
		}
	}
	if _, ok := b.Delay(10, retry); ok {
		t.Error("retried past Attempts")
	}
	if d, _ := b.Delay(1, pushvendor.Result{Retry: true, RetryAfter: 7 * time.Second}); d != 7*time.Second {
		t.Errorf("Retry-After 7s gave %v", d)
	}
	if d, _ := b.Delay(1, pushvendor.Result{Retry: true, RetryAfter: 1000 * time.Hour}); d != pushvendor.MaxRetryAfter {
		t.Errorf("Retry-After 1000h gave %v, want the cap", d)
	}
}

func TestRetryAfterHeader(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	for v, want := range map[string]time.Duration{
		"":                              0,
		"5":                             5 * time.Second,
		"0":                             0,
		"-3":                            0,
		"soon":                          0,
		"99999999999999999999":          0,
		"9999999999":                    pushvendor.MaxRetryAfter,
		"Tue, 01 Dec 2026 12:00:30 GMT": 30 * time.Second,
		"Tue, 01 Dec 2026 11:00:30 GMT": 0,
	} {
		h := http.Header{}
		if v != "" {
			h.Set("Retry-After", v)
		}
		if got := pushvendor.RetryAfter(h, now); got != want {
			t.Errorf("Retry-After %q = %v, want %v", v, got, want)
		}
	}
}

func TestPacerPerAppAndVendor(t *testing.T) {
	p := pushvendor.NewPacer(1000)
	p.SetRate(1, pushvendor.APNs, 10) // burst 1, then one per 100 ms
	if !p.Allow(1, pushvendor.APNs) {
		t.Fatal("first send refused")
	}
	if p.Allow(1, pushvendor.APNs) {
		t.Fatal("second send at 10/s allowed at once")
	}
	// Another vendor of the same app, and the same vendor of another
	// app, have their own budgets.
	if !p.Allow(1, pushvendor.FCM) || !p.Allow(2, pushvendor.APNs) {
		t.Fatal("one (app, vendor) spent another's budget")
	}
	// Wait spaces sends: 5 more at 10/s take at least 400 ms.
	start := time.Now()
	for i := 0; i < 5; i++ {
		if err := p.Wait(context.Background(), 1, pushvendor.APNs); err != nil {
			t.Fatal(err)
		}
	}
	if el := time.Since(start); el < 400*time.Millisecond {
		t.Fatalf("5 sends at 10/s took %v", el)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := p.Wait(ctx, 1, pushvendor.APNs); err == nil {
		t.Fatal("Wait on a cancelled context returned nil")
	}
}
