package service

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"net/netip"
	"sync"
	"time"

	"timd/internal/im"
	"timd/internal/usersig"
)

// Bad-signature throttling (spec code 70050): after failLimit failed
// verifications of one (app, identifier) from one caller address within
// failWindow, that caller's further failures answer 70050 until the window
// has passed. Only failures are throttled: a valid sig always passes, so
// nobody can lock an admin or a user out by sending junk in their name.
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
	accounts DeviceStore
	now      func() time.Time
	maxSkew  int64 // seconds a sig's TLS.time may lie ahead of now

	mu    sync.Mutex
	kicks map[kickKey]int64 // cached KickedAt per account; 0 = never kicked
	// kickGen counts ForgetKick calls, so that a store read that began
	// before a forget does not put its older KickedAt back in the cache.
	kickGen uint64
	// trustKicks reports whether the kick cache is current (see
	// SetKickTrust); nil: always.
	trustKicks func() bool
	fails      map[failKey]*failCount
	// ahead is the newest TLS.time accepted per identity for sigs dated
	// ahead of the clock when accepted: a kick must refuse every sig
	// accepted before it, including one dated up to maxSkew after the
	// kick. A sig dated at or before its acceptance is older than any
	// later kick anyway, so most identities never appear here.
	ahead map[kickKey]int64
	// good caches verified sigs: a client reuses one sig until it expires
	// (docs/compatibility.md, "UserSig and admins"), so verification (zlib
	// + HMAC, ~50 µs) runs once per sig rather than once per request or
	// reconnect.
	good *sigCache
}

// maxGoodSigs bounds the verified-sig cache (about 150 bytes each).
const maxGoodSigs = 100_000

type kickKey struct {
	app uint64
	id  string
}

// failKey is one identity as tried from one caller address.
type failKey struct {
	kickKey
	from netip.Addr
}

type failCount struct {
	n     int
	start time.Time
}

// Credential is what a request presents: the query's sdkappid, identifier
// and usersig, and the network address it came from (the zero Addr when
// unknown), which keys the failure throttle.
type Credential struct {
	SDKAppID   uint64
	Identifier string
	Sig        string
	From       netip.Addr
}

// CallerAddr returns the address that keys the failure throttle for a
// request from remoteAddr ("host:port", as net/http reports it): the IP,
// with an IPv6 address cut to its /64, the block one host usually holds.
// It returns the zero Addr when remoteAddr cannot be parsed.
func CallerAddr(remoteAddr string) netip.Addr {
	ap, err := netip.ParseAddrPort(remoteAddr)
	if err != nil {
		return netip.Addr{}
	}
	addr := ap.Addr().Unmap()
	if addr.Is6() {
		if p, err := addr.Prefix(64); err == nil {
			return p.Addr()
		}
	}
	return addr
}

// NewAuth returns an authenticator that accepts sigs dated at most
// usersig.DefaultMaxSkew seconds ahead. now may be nil for time.Now.
func NewAuth(apps *Apps, accounts DeviceStore, now func() time.Time) *Auth {
	if now == nil {
		now = time.Now
	}
	return &Auth{apps: apps, accounts: accounts, now: now, maxSkew: usersig.DefaultMaxSkew,
		kicks: map[kickKey]int64{}, fails: map[failKey]*failCount{}, ahead: map[kickKey]int64{}, good: newSigCache(maxGoodSigs)}
}

// SetMaxSkew sets how far ahead of this server's clock a sig's TLS.time
// may lie (at least 0; sub-second parts are dropped). Call it before
// serving.
func (a *Auth) SetMaxSkew(d time.Duration) {
	a.mu.Lock()
	a.maxSkew = max(0, int64(d/time.Second))
	a.mu.Unlock()
}

// Admin authenticates a REST caller: the app must exist (70020), the sig
// must verify for the identifier (70001, 70002, 70003, 70009, 70013,
// 70014, 70016; 70003 too for a sig dated more than the allowed skew
// ahead), must postdate a kick (70052), and a caller whose failures are
// throttled gets 70050 instead of the failure's own code. The admin check
// is separate (IsAdmin) because its code depends on the service.
func (a *Auth) Admin(ctx context.Context, c Credential) (im.App, error) {
	app, err := a.apps.Get(ctx, c.SDKAppID)
	if err != nil {
		return im.App{}, err
	}
	if err := a.verify(ctx, app, c); err != nil {
		return im.App{}, err
	}
	return app, nil
}

// User authenticates an end user of app (for the /v1 client API): like
// Admin, and the account must exist (70107). It reads the account once:
// its KickedAt serves the kick check too, so a reconnect storm after a
// restart costs one store read per connection, not two.
func (a *Auth) User(ctx context.Context, c Credential) (im.App, im.Account, error) {
	app, err := a.apps.Get(ctx, c.SDKAppID)
	if err != nil {
		return im.App{}, im.Account{}, err
	}
	now := a.now()
	issued, err := a.checkSig(app, c, now)
	if err != nil {
		return im.App{}, im.Account{}, err
	}
	gen := a.kickGenNow()
	accts, err := a.accounts.Accounts(ctx, app.SDKAppID, []string{c.Identifier})
	if err != nil {
		return im.App{}, im.Account{}, err
	}
	acct, ok := accts[c.Identifier]
	ok = ok && acct.Type == im.AcctUserID
	var stored int64
	if ok {
		stored = acct.KickedAt
	}
	key := kickKey{app.SDKAppID, c.Identifier}
	if kicked := a.noteKickRead(key, stored, gen); kicked > 0 && issued <= kicked {
		return im.App{}, im.Account{}, im.Errorf(im.CodeSigKicked, "usersig was invalidated by kick, generate a new one")
	}
	if !ok {
		return im.App{}, im.Account{}, im.Errorf(im.CodeAccountNotFound, "account %s was never imported", c.Identifier)
	}
	a.accepted(key, issued, now.Unix())
	return app, acct, nil
}

// Device authenticates a RegistrationID-only device by the credential it
// got at registration (/v1 devicetoken): the app must exist (70020), the
// device must exist, be nobody's, and hold a credential whose SHA-256
// matches (70009 otherwise; an unknown device is not told apart).
func (a *Auth) Device(ctx context.Context, sdkappid uint64, regID, credential string) (im.App, im.Account, error) {
	app, err := a.apps.Get(ctx, sdkappid)
	if err != nil {
		return im.App{}, im.Account{}, err
	}
	bad := im.Errorf(im.CodeSigMismatch, "devicetoken does not match the device %s", regID)
	if len(credential) > MaxCredentialLen {
		return im.App{}, im.Account{}, bad
	}
	d, err := a.accounts.PushDevice(ctx, app.SDKAppID, regID)
	if errors.Is(err, im.ErrNotFound) {
		return im.App{}, im.Account{}, bad
	} else if err != nil {
		return im.App{}, im.Account{}, err
	}
	if len(d.CredHash) != sha256.Size || d.Owner != "" || subtle.ConstantTimeCompare(d.CredHash, hashCredential(credential)) != 1 {
		return im.App{}, im.Account{}, bad
	}
	accts, err := a.accounts.Accounts(ctx, app.SDKAppID, []string{regID})
	if err != nil {
		return im.App{}, im.Account{}, err
	}
	acct, ok := accts[regID]
	if !ok || acct.Type != im.AcctRegistrationID || acct.Owner != "" || acct.Ordinal != d.Target {
		return im.App{}, im.Account{}, bad // displaced by an import of the same name
	}
	return app, acct, nil
}

// Signed verifies the caller's UserSig for identifier without requiring an
// account: a RegistrationID-only device registers with a UserSig the app's
// server made for its RegistrationID. Codes as for Admin.
func (a *Auth) Signed(ctx context.Context, c Credential) (im.App, error) {
	return a.Admin(ctx, c)
}

func (a *Auth) verify(ctx context.Context, app im.App, c Credential) error {
	key := kickKey{app.SDKAppID, c.Identifier}
	now := a.now()
	issued, err := a.checkSig(app, c, now)
	if err != nil {
		return err
	}
	kicked, err := a.kickedAt(ctx, key)
	if err != nil {
		return err
	}
	if kicked > 0 && issued <= kicked {
		return im.Errorf(im.CodeSigKicked, "usersig was invalidated by kick, generate a new one")
	}
	a.accepted(key, issued, now.Unix())
	return nil
}

// checkSig verifies c's sig for app (through the cache) and returns its
// issue time; failures count towards c's throttle, and past it answer
// 70050.
func (a *Auth) checkSig(app im.App, c Credential, now time.Time) (int64, error) {
	if app.SecretKey == "" {
		return 0, im.Errorf(im.CodeSigNoKey, "sdkappid %d has no secret key", app.SDKAppID)
	}
	issued, err := a.verifySig(app, c.Identifier, c.Sig, now.Unix())
	if err != nil {
		if a.fail(failKey{kickKey{app.SDKAppID, c.Identifier}, c.From}, now) {
			return 0, im.Errorf(im.CodeSigThrottled, "too many failed verifications, retry after 1 minute")
		}
		return 0, err
	}
	return issued, nil
}

// verifySig verifies sig, through the cache, and returns its issue time.
// A sig verified once stays good until it expires or the app's key
// changes (`timd app rotate-key`). A sig dated too far ahead is never
// cached; once accepted, it only grows older.
func (a *Auth) verifySig(app im.App, identifier, sig string, now int64) (int64, error) {
	gk := hashSig(app.SDKAppID, identifier, sig)
	if issued, ok := a.good.get(gk, app.SecretKey, now); ok {
		return issued, nil
	}
	a.mu.Lock()
	skew := a.maxSkew
	a.mu.Unlock()
	d, err := usersig.Decode(sig)
	if err == nil {
		err = d.Verify(app.SDKAppID, identifier, app.SecretKey, now)
	}
	if err == nil {
		err = d.CheckIssued(now, skew)
	}
	if err != nil {
		if im.CodeOf(err) == 0 {
			return 0, im.Errorf(im.CodeSigInvalid, "invalid usersig")
		}
		return 0, err
	}
	a.good.put(gk, app.SecretKey, d.Time, d.Time+d.Expire)
	return d.Time, nil
}

// fail counts a failed verification by k and reports whether k is now
// over the limit for the current window.
func (a *Auth) fail(k failKey, now time.Time) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.fails) > maxFailEntries { // bound memory under a spray of identities
		for fk, f := range a.fails {
			if now.Sub(f.start) > failWindow {
				delete(a.fails, fk)
			}
		}
		if len(a.fails) > maxFailEntries {
			clear(a.fails) // still a spray: forget, rather than grow without bound
		}
	}
	f := a.fails[k]
	if f == nil || now.Sub(f.start) > failWindow {
		f = &failCount{start: now}
		a.fails[k] = f
	}
	f.n++
	return f.n > failLimit
}

// accepted records that a sig of key issued at issued was accepted at now.
func (a *Auth) accepted(key kickKey, issued, now int64) {
	if issued <= now {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if issued <= a.ahead[key] {
		return
	}
	if len(a.ahead) >= maxAheadEntries {
		for k, t := range a.ahead {
			if t <= now {
				delete(a.ahead, k)
			}
		}
		if len(a.ahead) >= maxAheadEntries {
			clear(a.ahead)
		}
	}
	a.ahead[key] = issued
}

// maxAheadEntries bounds the map of sigs accepted while dated ahead.
const maxAheadEntries = 100_000

// kickTime returns the not-before time for a kick of (app, id) at now:
// now, or later when a sig dated ahead (within the skew) was accepted
// before the kick, so that every sig accepted so far is refused after it.
// A sig dated ahead that was never presented before the kick is
// indistinguishable from one made after it, and is accepted.
func (a *Auth) kickTime(app uint64, id string, now int64) int64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	return max(now, a.ahead[kickKey{app, id}])
}

func (a *Auth) kickedAt(ctx context.Context, key kickKey) (int64, error) {
	a.mu.Lock()
	t, ok := a.kicks[key]
	gen, trust := a.kickGen, a.trustKicks
	a.mu.Unlock()
	cached := trust == nil || trust()
	if ok && cached {
		return t, nil
	}
	accts, err := a.accounts.Accounts(ctx, key.app, []string{key.id})
	if err != nil {
		return 0, err
	}
	t = 0
	if acct, found := accts[key.id]; found && acct.Type == im.AcctUserID {
		t = acct.KickedAt
	}
	a.mu.Lock()
	if len(a.kicks) > 1_000_000 {
		clear(a.kicks)
	}
	if a.kickGen == gen && cached {
		a.kicks[key] = t
	}
	a.mu.Unlock()
	return t, nil
}

// kickGenNow returns the kick cache's generation, to pass to
// noteKickRead for a store read that starts now.
func (a *Auth) kickGenNow() uint64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.kickGen
}

// noteKickRead merges a kick time read from the store (0 when never
// kicked or not an account) by a read that started at generation gen
// into the kick cache, and returns the kick time to enforce. While the
// cache is trusted (SetKickTrust) that is the later of the cached and the
// stored time, since a kick this process made may be cached before a read
// that started earlier returns; the stored time is cached only when no
// kick or forget happened during the read. While it is not trusted, the
// stored time alone, and nothing is cached.
func (a *Auth) noteKickRead(key kickKey, stored int64, gen uint64) int64 {
	a.mu.Lock()
	trust := a.trustKicks
	a.mu.Unlock()
	if trust != nil && !trust() {
		return stored
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	t, ok := a.kicks[key]
	if !ok && a.kickGen == gen {
		if len(a.kicks) > 1_000_000 {
			clear(a.kicks)
		}
		a.kicks[key] = stored
	}
	return max(t, stored)
}

// SetKickTrust makes the kick cache conditional: while trusted returns
// false (a cluster node that may be missing kicks made through other
// nodes, see package relay), every verification reads the account's
// KickedAt from the store. Call it before serving.
func (a *Auth) SetKickTrust(trusted func() bool) {
	a.mu.Lock()
	a.trustKicks = trusted
	a.mu.Unlock()
}

// ForgetKick drops the cached KickedAt of (app, id), so that the next
// verification reads it from the store: another node kicked or deleted
// the account. app 0 forgets every account (a kick may have been missed).
func (a *Auth) ForgetKick(app uint64, id string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.kickGen++
	if app == 0 {
		clear(a.kicks)
		return
	}
	delete(a.kicks, kickKey{app, id})
}

// noteKick updates the kick cache after a kick or a delete.
func (a *Auth) noteKick(app uint64, id string, at int64) {
	a.mu.Lock()
	a.kickGen++ // a read in flight must not put an older value back
	a.kicks[kickKey{app, id}] = at
	a.mu.Unlock()
}
