package im

import (
	"errors"
	"fmt"
)

// Tencent Cloud Chat error codes used by timd (docs/compatibility.md, "Transport"). Only the codes a
// component returns itself live here; the mapping from generic kinds to
// service-specific codes lives in package httpapi.
const (
	CodeOK = 0

	// REST gateway (60xxx).
	CodeBadURL          = 60002
	CodeBodyJSON        = 60003
	CodeAppInvalid      = 60006
	CodeRESTRate        = 60007
	CodeBadHTTP         = 60008
	CodeUnknownCommand  = 60009
	CodeGatewayNotAdmin = 60010
	CodeAppRate         = 60011
	CodeNoSDKAppID      = 60012
	CodeAccountNotStr   = 60015
	CodeBadURLParam     = 60025

	// Account and UserSig (70xxx).
	CodeSigExpired      = 70001
	CodeSigEmpty        = 70002
	CodeSigInvalid      = 70003
	CodeSigMismatch     = 70009
	CodeSigIdentifier   = 70013
	CodeSigSDKAppID     = 70014
	CodeSigNoKey        = 70016
	CodeAppNotFound     = 70020
	CodeSigThrottled    = 70050
	CodeSigKicked       = 70052
	CodeAccountNotFound = 70107
	CodeAccountLimit    = 70398
	CodeAccountBadParam = 70402
	CodeAccountNotAdmin = 70403
	CodeAccountInternal = 70500

	// Push service (90xxx, 91000).
	CodePushJSON          = 90001
	CodeMsgBodyFormat     = 90002
	CodeMsgRandom         = 90005
	CodeMsgBodyNotArray   = 90007
	CodePushNotAdmin      = 90009
	CodeMsgElem           = 90010
	CodeTooManyAccounts   = 90018
	CodeTagTooLong        = 90020
	CodeTagAndOr          = 90022
	CodePushTooFrequent   = 90024
	CodeMsgLifeTime       = 90026
	CodeTooManyTags       = 90032
	CodeAttrInvalid       = 90033
	CodeAccountTypeBound  = 90035
	CodeAttrAndTag        = 90039
	CodeEmptyTag          = 90040
	CodePushDisabled      = 90045
	CodeDailyQuota        = 90047
	CodeTaskNotFound      = 90049
	CodeTaskRevoked       = 90050
	CodeRevokeTooFrequent = 90051
	CodeRevokeExpired     = 90052
	CodeRevokeNeedsInfo   = 90053
	CodePushBodyTooLarge  = 90056
	CodeDataIDTooLong     = 90057
	CodeSchedInvalid      = 90104
	CodeSchedNotPending   = 90107
	CodePushInternal      = 91000
)

// Kind classifies an error whose Tencent code depends on the service that
// answers it (for example "caller is not an admin" is 90009 in timpush and
// 70403 in im_open_login_svc). httpapi maps kinds to codes in one table.
type Kind int

// Error kinds. KindCode means the error carries its own fixed Code.
const (
	KindCode Kind = iota
	KindBadJSON
	KindNotAdmin
	KindBadParam
	KindTooMany
	KindRate
	KindInternal
)

// Error is a domain error. Code is the Tencent code when Kind is KindCode;
// otherwise the answering service chooses it. Info is safe to show callers.
type Error struct {
	Kind Kind
	Code int
	Info string
}

func (e *Error) Error() string {
	return fmt.Sprintf("%d: %s", e.Code, e.Info)
}

// Errorf returns an *Error with a fixed Tencent code.
func Errorf(code int, format string, args ...any) *Error {
	return &Error{Kind: KindCode, Code: code, Info: fmt.Sprintf(format, args...)}
}

// KindErrorf returns an *Error of a service-dependent kind.
func KindErrorf(kind Kind, format string, args ...any) *Error {
	return &Error{Kind: kind, Info: fmt.Sprintf(format, args...)}
}

// AsError reports the *Error in err's chain, if any.
func AsError(err error) (*Error, bool) {
	var e *Error
	ok := errors.As(err, &e)
	return e, ok
}

// CodeOf returns the fixed code carried by err, or 0 when it has none.
func CodeOf(err error) int {
	if e, ok := AsError(err); ok && e.Kind == KindCode {
		return e.Code
	}
	return 0
}

// Sentinel errors returned by stores.
var (
	ErrNotFound = errors.New("not found")
	ErrExists   = errors.New("already exists")
	ErrTooMany  = errors.New("over a limit")
)
