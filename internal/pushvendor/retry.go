package pushvendor

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// MaxRetryAfter caps a vendor's Retry-After: a hostile or broken answer
// of "a year" must not park a notification past any lifetime.
const MaxRetryAfter = time.Hour

// Backoff is the retry policy for Results with Retry set: exponential
// from Base to Max with full jitter, never sooner than the vendor's
// Retry-After, at most Attempts sends in all. Zero fields take the
// defaults (Base 500 ms, Max 5 min, Attempts 6).
type Backoff struct {
	Base     time.Duration
	Max      time.Duration
	Attempts int
}

func (b Backoff) norm() Backoff {
	if b.Base <= 0 {
		b.Base = 500 * time.Millisecond
	}
	if b.Max <= 0 {
		b.Max = 5 * time.Minute
	}
	if b.Max < b.Base {
		b.Max = b.Base
	}
	if b.Attempts <= 0 {
		b.Attempts = 6
	}
	return b
}

// Delay is how long to wait before attempt number attempt+1, after
// attempt (counted from 1) answered r: the vendor's RetryAfter when it
// gave one (capped at MaxRetryAfter), else a random wait up to
// Base·2^(attempt-1), capped at Max. ok is false when r is not
// retryable or the attempts are spent.
func (b Backoff) Delay(attempt int, r Result) (d time.Duration, ok bool) {
	b = b.norm()
	if !r.Retry || r.Unregistered || attempt >= b.Attempts {
		return 0, false
	}
	if r.RetryAfter > 0 {
		return min(r.RetryAfter, MaxRetryAfter), true
	}
	ceil := b.Base
	for i := 1; i < attempt && ceil < b.Max; i++ {
		ceil *= 2
	}
	ceil = min(ceil, b.Max)
	return ceil/2 + rand.N(ceil/2+1), true
}

// SendWithRetry sends n to t, waiting for the pacer before each attempt
// (p may be nil) and retrying as b says. It returns the last Result; a
// cancelled ctx ends the wait with a network-class Result.
func SendWithRetry(ctx context.Context, s Sender, p *Pacer, b Backoff, t Target, n Notification) Result {
	for attempt := 1; ; attempt++ {
		if p != nil {
			if err := p.Wait(ctx, n.App, s.Kind()); err != nil {
				return Result{Err: err, ErrCode: "cancelled", Retry: true}
			}
		}
		r := s.Send(ctx, t, n)
		d, again := b.Delay(attempt, r)
		if !again {
			return r
		}
		timer := time.NewTimer(d)
		select {
		case <-ctx.Done():
			timer.Stop()
			return r
		case <-timer.C:
		}
	}
}

// RetryAfter parses a Retry-After header (RFC 9110 §10.2.3): seconds or
// an HTTP date. It returns 0 for an absent, malformed, negative or past
// value, and caps the wait at MaxRetryAfter.
func RetryAfter(h http.Header, now time.Time) time.Duration {
	v := h.Get("Retry-After")
	if v == "" {
		return 0
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs <= 0 {
			return 0
		}
		return min(time.Duration(min(secs, int64(MaxRetryAfter/time.Second)))*time.Second, MaxRetryAfter)
	}
	if at, err := http.ParseTime(v); err == nil && at.After(now) {
		return min(at.Sub(now), MaxRetryAfter)
	}
	return 0
}

// retryable reports whether an HTTP status is worth another attempt:
// 429 and every 5xx.
func retryable(status int) bool {
	return status == http.StatusTooManyRequests || status >= 500 && status <= 599
}

// networkResult is the Result of a request that got no HTTP answer.
func networkResult(kind Kind, err error) Result {
	if errors.Is(err, context.Canceled) {
		return Result{Err: fmt.Errorf("%s: %w", kind, err), ErrCode: "cancelled", Retry: true}
	}
	return Result{Err: fmt.Errorf("%s: %w", kind, err), ErrCode: "network", Retry: true}
}

// statusResult classifies an HTTP answer that was not a success, given
// the vendor's reason (may be "") and whether the vendor said the device
// is gone.
func statusResult(kind Kind, resp *http.Response, reason string, gone bool) Result {
	code := clip(reason)
	if code == "" {
		code = "HTTP " + strconv.Itoa(resp.StatusCode)
	}
	r := Result{
		Status:       resp.StatusCode,
		Err:          fmt.Errorf("%s: HTTP %d %s", kind, resp.StatusCode, reason),
		ErrCode:      code,
		Unregistered: gone,
	}
	if !gone && retryable(resp.StatusCode) {
		r.Retry = true
		r.RetryAfter = RetryAfter(resp.Header, time.Now())
	}
	return r
}

// badInput is the Result of a target or notification that cannot be sent
// at all (no retry helps).
func badInput(kind Kind, code string, err error) Result {
	return Result{Err: fmt.Errorf("%s: %w", kind, err), ErrCode: code}
}

// clip bounds a vendor's reason, which lands in loss reports.
func clip(s string) string {
	const limit = 64
	if len(s) > limit {
		s = s[:limit]
	}
	return strings.ToValidUTF8(s, "")
}
