package service

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"timd/internal/im"
	"timd/internal/pushvendor"
)

// Device registration limits.
const (
	MaxPlatformLen = 32
	MaxTokenLen    = 1024
	// MaxRegistrationIDLen leaves room for a UUID (36) and for custom ids.
	MaxRegistrationIDLen = 64
)

// Devices registers push devices: each becomes a RegistrationID account
// (type 1, docs/compatibility.md, "Devices and recipients") owned by the user who registered it, which
// attributes, tags and batch pushes can address. Pushes reach a device's
// owner, so a user's devices are never recipients of their own (see
// audience.Index.Recipients).
//
// RegistrationIDs the server issues are upper-case UUIDs, 36 bytes: longer
// than any UserID (32 bytes), so no account can ever be imported under
// one. A RegistrationID the client chooses must not name an account or
// another user's device; should an admin later import a UserID of the same
// name, the import wins and the device is deleted (im.AccountStore).
type Devices struct {
	accounts DeviceStore
	perUser  func(app uint64) int
	now      func() time.Time
	check    func(app uint64, t pushvendor.Target) error
}

// SetTargetCheck installs the check of a device's vendor side against the
// app's configured vendors (pushvendor.Set.CheckTarget): a vendor the app
// has no credentials for, or a token or subscription that vendor would
// refuse, is 70402. Without it only the shape is checked.
func (d *Devices) SetTargetCheck(check func(app uint64, t pushvendor.Target) error) { d.check = check }

// DeviceStore is what device registration needs of the store: the
// RegistrationID accounts and their vendor side.
type DeviceStore interface {
	im.AccountStore
	im.DeviceStore
}

// NewDevices returns the device service. perUser returns, per app, how
// many devices one user may register (the app's "devices_per_user"
// quota); nil, or an answer below 1, means im.DefaultDevicesPerUser. There
// is no way to lift the bound.
func NewDevices(accounts DeviceStore, perUser func(app uint64) int) *Devices {
	return &Devices{accounts: accounts, perUser: perUser, now: time.Now}
}

// limits returns the device limits of app.
func (d *Devices) limits(app uint64) im.DeviceLimits {
	n := 0
	if d.perUser != nil {
		n = d.perUser(app)
	}
	if n < 1 {
		n = im.DefaultDevicesPerUser
	}
	return im.DeviceLimits{PerOwner: n}
}

// Register records a device of owner without a vendor channel; see
// RegisterDevice.
func (d *Devices) Register(ctx context.Context, app uint64, owner string, platform, token, regID string) (im.Account, error) {
	r, err := d.RegisterDevice(ctx, app, DeviceRequest{Owner: owner, Platform: platform, Token: token, RegistrationID: regID})
	return r.Account, err
}

// DeviceRequest is one device registration, decoded and authenticated.
type DeviceRequest struct {
	// Owner is the authenticated UserID registering its device, or "" for
	// a RegistrationID-only device (then RegistrationID is the identifier
	// the caller authenticated as).
	Owner          string
	RegistrationID string
	Platform       string
	Vendor         im.Vendor
	Token          string // APNs device token or FCM registration token
	Bundle         string // APNs topic / Android package
	Endpoint       string // Web Push subscription
	P256dh, Auth   string
	// KeepCredential: the caller authenticated with the device's own
	// credential; it stays valid and no new one is issued.
	KeepCredential bool
}

// Registration is a registered device: its RegistrationID account and,
// for a RegistrationID-only device, the device credential issued now
// (empty otherwise), with which it uses /v1/connect and /v1/sync.
type Registration struct {
	Account    im.Account
	Credential string
}

// RegisterDevice records the device of req: the RegistrationID account
// (created, or updated when the same owner registers it again) and its
// vendor channel, which a refreshed token or subscription replaces. A
// RegistrationID-only device gets a new device credential each time it
// registers with a UserSig, which revokes the previous one. Errors: 70402
// for a missing or malformed platform, vendor, token, bundle or
// subscription, a malformed regID, a regID that is a UserID or a device of
// someone else; 70398 when the owner already has the most devices allowed.
func (d *Devices) RegisterDevice(ctx context.Context, app uint64, req DeviceRequest) (Registration, error) {
	if err := validDevice(req.Platform, req.Token, req.RegistrationID); err != nil {
		return Registration{}, err
	}
	if err := validVendor(&req); err != nil {
		return Registration{}, err
	}
	if req.Vendor != im.VendorNone && d.check != nil {
		t := pushvendor.Target{Kind: pushvendor.Kind(req.Vendor), Token: req.Token, Bundle: req.Bundle,
			Endpoint: req.Endpoint, P256dh: req.P256dh, Auth: req.Auth}
		if err := d.check(app, t); err != nil {
			return Registration{}, im.Errorf(im.CodeAccountBadParam, "Vendor %s: %v", req.Vendor, err)
		}
	}
	if req.RegistrationID == "" {
		req.RegistrationID = newUUID()
	}
	lim := d.limits(app)
	a, err := d.accounts.RegisterDevice(ctx, app, im.Device{RegistrationID: req.RegistrationID, Owner: req.Owner,
		Platform: req.Platform, Token: req.Token}, lim)
	switch {
	case errors.Is(err, im.ErrExists):
		return Registration{}, im.Errorf(im.CodeAccountBadParam, "RegistrationID %q is taken by an account or another user's device", req.RegistrationID)
	case errors.Is(err, im.ErrTooMany):
		return Registration{}, im.Errorf(im.CodeAccountLimit, "%s already has %d devices, the most allowed", req.Owner, lim.PerOwner)
	case err != nil:
		return Registration{}, err
	}
	pd := im.PushDevice{RegistrationID: a.ID, Target: a.Ordinal, Owner: req.Owner, Platform: req.Platform,
		Vendor: req.Vendor, Token: req.Token, Bundle: req.Bundle, Endpoint: req.Endpoint, P256dh: req.P256dh,
		Auth: req.Auth, UpdatedAt: d.now().Unix()}
	if req.Owner != "" {
		owners, err := d.accounts.Accounts(ctx, app, []string{req.Owner})
		if err != nil {
			return Registration{}, err
		}
		// The caller authenticated as the owner; one deleted since has
		// taken the device with it, and Target 0 reaches nobody.
		if o, ok := owners[req.Owner]; ok && o.Type == im.AcctUserID {
			pd.Target = o.Ordinal
		} else {
			pd.Target = 0
		}
	}
	out := Registration{Account: a}
	switch {
	case req.Owner != "":
	case req.KeepCredential:
		old, err := d.accounts.PushDevice(ctx, app, a.ID)
		if err != nil && !errors.Is(err, im.ErrNotFound) {
			return Registration{}, err
		}
		pd.CredHash = old.CredHash
	default:
		out.Credential, pd.CredHash = newCredential()
	}
	if err := d.accounts.PutPushDevice(ctx, app, pd); err != nil {
		return Registration{}, err
	}
	return out, nil
}

// Device credentials: 32 random bytes, base64url, prefixed so that a
// leaked one is recognisable; the store keeps only their SHA-256.
const credentialPrefix = "tdc1_"

func newCredential() (string, []byte) {
	var b [32]byte
	_, _ = rand.Read(b[:])
	c := credentialPrefix + base64.RawURLEncoding.EncodeToString(b[:])
	return c, hashCredential(c)
}

func hashCredential(c string) []byte {
	h := sha256.Sum256([]byte(c))
	return h[:]
}

// MaxCredentialLen bounds the devicetoken query parameter.
const MaxCredentialLen = 64

// validVendor checks req's vendor channel: APNs needs a hex device token,
// FCM a registration token, Web Push an https endpoint with its P-256 key
// (65 bytes) and auth secret (16 bytes), base64url. No vendor means no
// channel and no subscription.
func validVendor(req *DeviceRequest) error {
	bad := func(format string, a ...any) error { return im.Errorf(im.CodeAccountBadParam, format, a...) }
	if len(req.Bundle) > im.MaxBundleLen || !isToken(req.Bundle) {
		return bad("Bundle must be at most %d letters, digits, '.', '_' or '-'", im.MaxBundleLen)
	}
	web := req.Endpoint != "" || req.P256dh != "" || req.Auth != ""
	switch req.Vendor {
	case im.VendorNone:
		if web {
			return bad("a Subscription needs Vendor \"webpush\"")
		}
	case im.VendorAPNs:
		if req.Token == "" || len(req.Token)%2 != 0 || !isHex(req.Token) || web {
			return bad("Vendor apns needs Token, the device token in hex, and no Subscription")
		}
	case im.VendorFCM:
		if req.Token == "" || web {
			return bad("Vendor fcm needs Token, the FCM registration token, and no Subscription")
		}
	case im.VendorWebPush:
		if req.Token != "" {
			return bad("Vendor webpush takes a Subscription, not a Token")
		}
		if err := validSubscription(req.Endpoint, req.P256dh, req.Auth); err != nil {
			return err
		}
	default:
		return bad("Vendor must be apns, fcm or webpush")
	}
	return nil
}

func validSubscription(endpoint, p256dh, auth string) error {
	bad := func(format string, a ...any) error { return im.Errorf(im.CodeAccountBadParam, format, a...) }
	u, err := url.Parse(endpoint)
	if err != nil || len(endpoint) > im.MaxEndpointLen || !printable(endpoint) || u.Scheme != "https" || u.Host == "" ||
		u.User != nil || u.Fragment != "" {
		return bad("Subscription.endpoint must be an https URL of at most %d bytes, without user info or fragment", im.MaxEndpointLen)
	}
	if k, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(p256dh, "=")); err != nil || len(p256dh) > im.MaxKeyLen || len(k) != 65 || k[0] != 4 {
		return bad("Subscription.keys.p256dh must be an uncompressed P-256 point (65 bytes), base64url")
	}
	if k, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(auth, "=")); err != nil || len(auth) > im.MaxKeyLen || len(k) != 16 {
		return bad("Subscription.keys.auth must be 16 bytes, base64url")
	}
	return nil
}

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

// ValidPlatform reports whether p is a platform name: 1 to 32 letters,
// digits, '.', '_' or '-'.
func ValidPlatform(p string) bool {
	return p != "" && len(p) <= MaxPlatformLen && isToken(p)
}

func validDevice(platform, token, regID string) error {
	if !ValidPlatform(platform) {
		return im.Errorf(im.CodeAccountBadParam, "Platform is required: 1 to %d letters, digits, '.', '_' or '-'", MaxPlatformLen)
	}
	if len(token) > MaxTokenLen || !printable(token) {
		return im.Errorf(im.CodeAccountBadParam, "Token must be printable ASCII of at most %d bytes", MaxTokenLen)
	}
	if len(regID) > MaxRegistrationIDLen || !isToken(regID) {
		return im.Errorf(im.CodeAccountBadParam, "RegistrationID must be at most %d letters, digits, '.', '_' or '-'", MaxRegistrationIDLen)
	}
	return nil
}

// isToken reports whether s has only [A-Za-z0-9._-].
func isToken(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// printable reports whether s has only printable ASCII (0x21..0x7e).
func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] > '~' {
			return false
		}
	}
	return true
}

// newUUID returns a random (version 4) UUID in upper case, the shape of
// the RegistrationIDs in docs/compatibility.md, "Devices and recipients".
func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%X-%X-%X-%X-%X", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
