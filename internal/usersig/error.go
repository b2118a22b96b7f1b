package usersig

import "fmt"

// Tencent error codes returned by this package (spec §2.2).
const (
	// CodeExpired (70001): now is after TLS.time + TLS.expire.
	CodeExpired = 70001
	// CodeEmpty (70002): the token is empty.
	CodeEmpty = 70002
	// CodeInvalid (70003): the token cannot be decoded, is malformed, or
	// its userbuf presence differs from what the caller expects.
	CodeInvalid = 70003
	// CodeMismatch (70009): the HMAC, or the userbuf content, does not match.
	CodeMismatch = 70009
	// CodeIdentifier (70013): the token was made for another identifier.
	CodeIdentifier = 70013
	// CodeSDKAppID (70014): the token was made for another sdkappid.
	CodeSDKAppID = 70014
)

// Error is a UserSig failure carrying its Tencent code (one of the Code*
// constants) and a fixed message that is safe to show callers.
type Error struct {
	Code int
	Info string
}

// Error returns "usersig <code>: <info>".
func (e *Error) Error() string {
	return fmt.Sprintf("usersig %d: %s", e.Code, e.Info)
}

func fail(code int, info string) *Error {
	return &Error{Code: code, Info: info}
}
