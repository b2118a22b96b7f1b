package im

import "fmt"

// MaxAdmins is the most admins an app may have (docs/compatibility.md, "UserSig and admins").
const MaxAdmins = 10

// App is one hosted application: its SDKAppID, the secret key its UserSigs
// are signed with, and its admin accounts.
type App struct {
	SDKAppID  uint64
	SecretKey string
	Admins    []string
	// CallbackURL receives webhook events; empty disables them.
	CallbackURL string
	CreatedAt   int64
}

// IsAdmin reports whether id is one of the app's admins.
func (a App) IsAdmin(id string) bool {
	for _, adm := range a.Admins {
		if adm == id {
			return true
		}
	}
	return false
}

// Validate checks the app's shape: a non-zero id, a key and 1..10 admins.
func (a App) Validate() error {
	if a.SDKAppID == 0 || a.SDKAppID > 1<<32-1 {
		return fmt.Errorf("sdkappid %d out of range", a.SDKAppID)
	}
	if a.SecretKey == "" {
		return fmt.Errorf("app %d has no secret key", a.SDKAppID)
	}
	if len(a.Admins) == 0 || len(a.Admins) > MaxAdmins {
		return fmt.Errorf("app %d needs 1 to %d admins, has %d", a.SDKAppID, MaxAdmins, len(a.Admins))
	}
	for _, adm := range a.Admins {
		if err := ValidUserID(adm); err != nil {
			return fmt.Errorf("app %d admin: %w", a.SDKAppID, err)
		}
	}
	return nil
}

// String redacts the secret key.
func (a App) String() string {
	return fmt.Sprintf("App{SDKAppID:%d Admins:%v SecretKey:[redacted]}", a.SDKAppID, a.Admins)
}
