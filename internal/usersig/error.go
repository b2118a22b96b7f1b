package usersig

import "timd/internal/im"

// Verification failures carry Tencent's codes from the one table in package
// im (docs/compatibility.md, "Transport"), as an *im.Error whose Info is safe to show callers:
//
//   - im.CodeSigExpired (70001): now is after TLS.time + TLS.expire;
//   - im.CodeSigEmpty (70002): the token is empty;
//   - im.CodeSigInvalid (70003): the token cannot be decoded, is malformed,
//     its userbuf presence differs from what the caller expects, or (with
//     VerifyOptions.MaxSkew) it is dated too far ahead;
//   - im.CodeSigMismatch (70009): the HMAC, or the userbuf content, does
//     not match;
//   - im.CodeSigIdentifier (70013): the token was made for another
//     identifier;
//   - im.CodeSigSDKAppID (70014): the token was made for another sdkappid.
//
// im.CodeOf(err) returns the code.
func fail(code int, info string) *im.Error {
	return &im.Error{Kind: im.KindCode, Code: code, Info: info}
}
