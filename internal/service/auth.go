package service

import (
	"context"
	"errors"
	"sync"
	"time"

	"timd/internal/im"
	"timd/internal/usersig"
)

// Bad-signature throttling (spec code 70050): after failLimit failures for
// one (app, identifier) within failWindow, further attempts are refused
// until the window has passed.
const (
	failLimit  = 20
	failWindow = time.Minute
	// maxFailEntries bounds the failure map; past it, expired entries go,
	// and if that is not enough the map is emptied.
	maxFailEntries = 100_000
)

// Auth verifies UserSigs and admin rights.
type Auth struct {
	apps     *Apps
	accounts im.AccountStore
	now      func() time.Time

	mu    sync.Mutex
	kicks map[kickKey]int64 // cached KickedAt per account; 0 = never kicked
	fails map[kickKey]*failCount
	// good caches verified sigs: a REST client reuses one sig until it
	// expires (spec §3.5), so verification (zlib + HMAC, ~50 µs) runs once
	// per sig rather than once per request.
	good map[goodKey]goodSig
}

// maxGoodSigs bounds the verified-sig cache; it is emptied when full.
const maxGoodSigs = 100_000

type goodKey struct {
	app        uint64
	identifier string
	sig        string
}

type goodSig struct {
	issued, expires int64
	key             string // the app key it verified under
}

type kickKey struct {
	app uint64
	id  string
}

type failCount struct {
	n     int
	start time.Time
}

// NewAuth returns an authenticator. now may be nil for time.Now.
func NewAuth(apps *Apps, accounts im.AccountStore, now func() time.Time) *Auth {
	if now == nil {
		now = time.Now
	}
	return &Auth{apps: apps, accounts: accounts, now: now, kicks: map[kickKey]int64{}, fails: map[kickKey]*failCount{}, good: map[goodKey]goodSig{}}
}

// Admin authenticates a REST caller: the app must exist (70020), the sig
// must verify for identifier (70001, 70002, 70003, 70009, 70013, 70014,
// 70016), must postdate a kick (70052), and the caller must not be
// throttled for repeated failures (70050). The admin check is separate
// (IsAdmin) because its code depends on the service.
func (a *Auth) Admin(ctx context.Context, sdkappid uint64, identifier, sig string) (im.App, error) {
	app, err := a.apps.Get(ctx, sdkappid)
	if err != nil {
		return im.App{}, err
	}
	if err := a.verify(ctx, app, identifier, sig); err != nil {
		return im.App{}, err
	}
	return app, nil
}

// User authenticates an end user of app (for the /v1 client API): like
// Admin, and the account must exist (70107).
func (a *Auth) User(ctx context.Context, sdkappid uint64, identifier, sig string) (im.App, im.Account, error) {
	app, err := a.apps.Get(ctx, sdkappid)
	if err != nil {
		return im.App{}, im.Account{}, err
	}
	if err := a.verify(ctx, app, identifier, sig); err != nil {
		return im.App{}, im.Account{}, err
	}
	accts, err := a.accounts.Accounts(ctx, app.SDKAppID, []string{identifier})
	if err != nil {
		return im.App{}, im.Account{}, err
	}
	acct, ok := accts[identifier]
	if !ok || acct.Type != im.AcctUserID {
		return im.App{}, im.Account{}, im.Errorf(im.CodeAccountNotFound, "account %s was never imported", identifier)
	}
	return app, acct, nil
}

func (a *Auth) verify(ctx context.Context, app im.App, identifier, sig string) error {
	if app.SecretKey == "" {
		return im.Errorf(im.CodeSigNoKey, "sdkappid %d has no secret key", app.SDKAppID)
	}
	key := kickKey{app.SDKAppID, identifier}
	now := a.now()
	if a.throttled(key, now) {
		return im.Errorf(im.CodeSigThrottled, "too many failed verifications, retry after 1 minute")
	}
	issued, err := a.verifySig(app, identifier, sig, now.Unix())
	if err != nil {
		a.fail(key, now)
		return err
	}
	kicked, err := a.kickedAt(ctx, key)
	if err != nil {
		return err
	}
	if kicked > 0 && issued <= kicked {
		return im.Errorf(im.CodeSigKicked, "usersig was invalidated by kick, generate a new one")
	}
	return nil
}

// verifySig verifies sig, through the cache, and returns its issue time.
// A sig verified once stays good until it expires or the app's key
// changes (`timd app rotate-key`).
func (a *Auth) verifySig(app im.App, identifier, sig string, now int64) (int64, error) {
	gk := goodKey{app.SDKAppID, identifier, sig}
	a.mu.Lock()
	g, ok := a.good[gk]
	a.mu.Unlock()
	if ok && now <= g.expires && g.key == app.SecretKey {
		return g.issued, nil
	}
	if err := usersig.Verify(sig, app.SDKAppID, identifier, app.SecretKey, now); err != nil {
		var se *usersig.Error
		if errors.As(err, &se) {
			return 0, im.Errorf(se.Code, "%s", se.Info)
		}
		return 0, im.Errorf(im.CodeSigInvalid, "invalid usersig")
	}
	d, err := usersig.Decode(sig)
	if err != nil {
		return 0, im.Errorf(im.CodeSigInvalid, "invalid usersig")
	}
	a.mu.Lock()
	if len(a.good) >= maxGoodSigs {
		clear(a.good)
	}
	a.good[gk] = goodSig{issued: d.Time, expires: d.Time + d.Expire, key: app.SecretKey}
	a.mu.Unlock()
	return d.Time, nil
}

func (a *Auth) throttled(key kickKey, now time.Time) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	f := a.fails[key]
	if f == nil {
		return false
	}
	if now.Sub(f.start) > failWindow {
		delete(a.fails, key)
		return false
	}
	return f.n >= failLimit
}

func (a *Auth) fail(key kickKey, now time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.fails) > maxFailEntries { // bound memory under a spray of identities
		for k, f := range a.fails {
			if now.Sub(f.start) > failWindow {
				delete(a.fails, k)
			}
		}
		if len(a.fails) > maxFailEntries {
			clear(a.fails) // still a spray: forget, rather than grow without bound
		}
	}
	f := a.fails[key]
	if f == nil || now.Sub(f.start) > failWindow {
		f = &failCount{start: now}
		a.fails[key] = f
	}
	f.n++
}

func (a *Auth) kickedAt(ctx context.Context, key kickKey) (int64, error) {
	a.mu.Lock()
	t, ok := a.kicks[key]
	a.mu.Unlock()
	if ok {
		return t, nil
	}
	accts, err := a.accounts.Accounts(ctx, key.app, []string{key.id})
	if err != nil {
		return 0, err
	}
	if acct, found := accts[key.id]; found && acct.Type == im.AcctUserID {
		t = acct.KickedAt
	}
	a.mu.Lock()
	if len(a.kicks) > 1_000_000 {
		clear(a.kicks)
	}
	a.kicks[key] = t
	a.mu.Unlock()
	return t, nil
}

// noteKick updates the kick cache after a kick or a delete.
func (a *Auth) noteKick(app uint64, id string, at int64) {
	a.mu.Lock()
	a.kicks[kickKey{app, id}] = at
	a.mu.Unlock()
}
