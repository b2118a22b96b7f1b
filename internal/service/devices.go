package service

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"

	"timd/internal/im"
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
	accounts im.AccountStore
	perUser  func(app uint64) int
}

// NewDevices returns the device service. perUser returns, per app, how
// many devices one user may register (the app's "devices_per_user"
// quota); nil, or an answer below 1, means im.DefaultDevicesPerUser. There
// is no way to lift the bound.
func NewDevices(accounts im.AccountStore, perUser func(app uint64) int) *Devices {
	return &Devices{accounts: accounts, perUser: perUser}
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

// Register records a device of owner (an authenticated UserID) on
// platform with its vendor push token, under regID or, when regID is
// empty, a new random UUID, and returns the RegistrationID account.
// Registering an existing RegistrationID of the same owner updates its
// platform and token. Errors: 70402 for a missing or malformed platform,
// an oversize token, a malformed regID, a regID that is a UserID or a
// device of someone else; 70398 when owner already has the most devices
// allowed.
func (d *Devices) Register(ctx context.Context, app uint64, owner string, platform, token, regID string) (im.Account, error) {
	if err := validDevice(platform, token, regID); err != nil {
		return im.Account{}, err
	}
	if regID == "" {
		regID = newUUID()
	}
	lim := d.limits(app)
	a, err := d.accounts.RegisterDevice(ctx, app, im.Device{RegistrationID: regID, Owner: owner, Platform: platform, Token: token}, lim)
	switch {
	case errors.Is(err, im.ErrExists):
		return im.Account{}, im.Errorf(im.CodeAccountBadParam, "RegistrationID %q is taken by an account or another user's device", regID)
	case errors.Is(err, im.ErrTooMany):
		return im.Account{}, im.Errorf(im.CodeAccountLimit, "%s already has %d devices, the most allowed", owner, lim.PerOwner)
	}
	return a, err
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
