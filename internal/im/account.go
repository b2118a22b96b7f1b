package im

import "fmt"

// MaxUserIDLen is the longest UserID in bytes (docs/compatibility.md, "UserSig and admins").
const MaxUserIDLen = 32

// AcctType is the account type of docs/compatibility.md, "Devices and recipients".
type AcctType uint8

// Account types.
const (
	AcctUserID         AcctType = 0
	AcctRegistrationID AcctType = 1
)

// Account is one addressable push target: an imported UserID or a device
// RegistrationID. Ordinal is its dense per-app number in the audience index;
// ordinals are never reused within an app.
type Account struct {
	ID       string
	Type     AcctType
	Ordinal  uint32
	Nick     string
	FaceURL  string
	KickedAt int64 // unix seconds; UserSigs issued at or before it are invalid
	// Owner, Platform and Token describe a RegistrationID's device.
	Owner    string
	Platform string
	Token    string
}

// AccountInput is one account to import.
type AccountInput struct {
	UserID  string
	Nick    string
	FaceURL string
}

// Device is a RegistrationID's registration.
type Device struct {
	RegistrationID string
	Owner          string // the UserID that registered it, may be empty
	Platform       string
	Token          string
}

// DefaultDevicesPerUser is how many devices one UserID may register unless
// configured otherwise.
const DefaultDevicesPerUser = 20

// DeviceLimits bound what device registration may create.
type DeviceLimits struct {
	// PerOwner is the most RegistrationIDs one UserID may own; 0 means
	// no limit (stores only; the service always sets it).
	PerOwner int
}

// ValidUserID checks that id is a non-empty UserID of at most 32 bytes.
func ValidUserID(id string) error {
	if id == "" {
		return fmt.Errorf("empty UserID")
	}
	if len(id) > MaxUserIDLen {
		return fmt.Errorf("UserID %q longer than %d bytes", id, MaxUserIDLen)
	}
	return nil
}
