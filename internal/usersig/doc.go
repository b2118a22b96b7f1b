// Package usersig generates and verifies Tencent Cloud Chat UserSig v2
// tokens (TLSSigAPIv2, docs/compatibility.md, "UserSig and admins"). It is pure: no I/O, no clock, no state;
// callers pass the current time in Unix seconds.
//
// A token is zlib(JSON) in a base64 variant whose alphabet replaces '+',
// '/' and '=' with '*', '-' and '_'. The JSON carries the identifier,
// sdkappid, issue time, validity and an HMAC-SHA256 over those fields keyed
// with the app's secret-key string.
//
// Verification follows the official Go verifier
// (github.com/tencentyun/tls-sig-api-v2-golang) check by check, so a token
// this package accepts is also accepted by the official verifier. It is
// deliberately stricter in a few corners the official library lets
// through, each answered with 70003: a TLS.ver other than "2.0", a missing
// or null field (the official generator omits zero values, so it produces
// such tokens for an empty identifier, sdkappid 0 or expire 0), negative
// TLS.time or TLS.expire, and a token over 128 KiB or inflating past
// 64 KiB. A TLS.time+TLS.expire past MaxInt64 counts as expired (70001),
// the verdict the official verifier's wrapped sum gives.
package usersig
