package service_test

import (
	"context"
	"testing"
	"time"

	"timd/internal/im"
	"timd/internal/service"
)

// TestLimitsHoldAcrossNodes: two nodes on one PostgreSQL database, each
// with its own push service. Neither knows the other's pushes in memory,
// so only the store's check inside the task transaction can refuse the
// second push of an interval (90024), the push over the daily quota
// (90047) and the second revoke of an interval (90051). With limits off
// (--limits off) both nodes accept everything.
func TestLimitsHoldAcrossNodes(t *testing.T) {
	a, b := twoNodes(t, service.TailConfig{})
	ctx := context.Background()
	lim := service.PushLimits{IntervalMs: 60_000, PerDay: 3, LegacyPerDay: 100, RevokeIntervalMs: 60_000}
	clock := time.Date(2027, 1, 2, 8, 0, 0, 0, time.UTC)
	now := func() time.Time { return clock }
	cfg := service.PushConfig{Limits: true, AppLimits: func(uint64) service.PushLimits { return lim }, Now: now}
	pa := service.NewPush(a.st, a.st, a.idx, nil, cfg)
	pb := service.NewPush(b.st, b.st, b.idx, nil, cfg)
	push := func(p *service.Push, rnd uint32) (string, int) {
		id, err := p.Push(ctx, tailApp, "admin", &service.PushRequest{Kind: im.PushCondition, MsgRandom: rnd,
			Offline: []byte(`{"Title":"t","Desc":"d"}`)})
		if err != nil && im.CodeOf(err) == 0 {
			t.Fatalf("push %d: %v", rnd, err)
		}
		return id, im.CodeOf(err)
	}
	first, code := push(pa, 1)
	if code != 0 {
		t.Fatalf("first push through A: code %d", code)
	}
	if _, code := push(pb, 2); code != im.CodePushTooFrequent {
		t.Fatalf("push through B 0 s after one through A: code %d, want 90024", code)
	}
	clock = clock.Add(time.Minute)
	second, code := push(pb, 3)
	if code != 0 {
		t.Fatalf("push through B a minute later: code %d", code)
	}
	clock = clock.Add(time.Minute)
	if _, code := push(pa, 4); code != 0 {
		t.Fatalf("third push of the day: code %d", code)
	}
	clock = clock.Add(time.Minute)
	if _, code := push(pb, 5); code != im.CodeDailyQuota {
		t.Fatalf("fourth push of the day (quota 3, two nodes): code %d, want 90047", code)
	}
	if err := pa.Revoke(ctx, tailApp, first, nil); err != nil {
		t.Fatalf("revoke through A: %v", err)
	}
	if code := im.CodeOf(pb.Revoke(ctx, tailApp, second, nil)); code != im.CodeRevokeTooFrequent {
		t.Fatalf("revoke through B 0 s after one through A: code %d, want 90051", code)
	}

	// --limits off: no check on either node, even right after the others.
	off := service.PushConfig{Limits: false, AppLimits: cfg.AppLimits, Now: now}
	oa := service.NewPush(a.st, a.st, a.idx, nil, off)
	ob := service.NewPush(b.st, b.st, b.idx, nil, off)
	for i, p := range []*service.Push{oa, ob, oa, ob} {
		if _, code := push(p, uint32(10+i)); code != 0 {
			t.Fatalf("push %d with limits off: code %d", i, code)
		}
	}
	if err := ob.Revoke(ctx, tailApp, second, nil); err != nil {
		t.Fatalf("revoke with limits off: %v", err)
	}
}
