package httpapi

import "timd/internal/im"

// family groups services that answer generic error kinds with the same
// Tencent codes (docs/compatibility.md, "Transport").
type family int

const (
	famGateway family = iota // the REST layer itself
	famAccount               // im_open_login_svc, openim
	famPush                  // timpush, all_member_push
)

// kindCodes is the one table mapping service-dependent error kinds to
// Tencent codes per family.
var kindCodes = map[family]map[im.Kind]int{
	famGateway: {
		im.KindBadJSON:  im.CodeBodyJSON,
		im.KindNotAdmin: im.CodeGatewayNotAdmin,
		im.KindBadParam: im.CodeBadURLParam,
		im.KindTooMany:  im.CodeBadURLParam,
		im.KindRate:     im.CodeRESTRate,
		im.KindInternal: im.CodeAccountInternal,
	},
	famAccount: {
		im.KindBadJSON:  im.CodeBodyJSON,
		im.KindNotAdmin: im.CodeAccountNotAdmin,
		im.KindBadParam: im.CodeAccountBadParam,
		im.KindTooMany:  im.CodeAccountBadParam,
		im.KindRate:     im.CodeRESTRate,
		im.KindInternal: im.CodeAccountInternal,
	},
	famPush: {
		im.KindBadJSON:  im.CodePushJSON,
		im.KindNotAdmin: im.CodePushNotAdmin,
		im.KindBadParam: im.CodePushJSON,
		im.KindTooMany:  im.CodeTooManyAccounts,
		im.KindRate:     im.CodeRESTRate,
		im.KindInternal: im.CodePushInternal,
	},
}

// codeFor returns the Tencent code and the caller-safe text for err, and
// whether err was unexpected (to be logged).
func codeFor(f family, err error) (code int, info string, unexpected bool) {
	e, ok := im.AsError(err)
	if !ok {
		return kindCodes[f][im.KindInternal], "internal error, please retry", true
	}
	if e.Kind == im.KindCode {
		return e.Code, e.Info, false
	}
	return kindCodes[f][e.Kind], e.Info, e.Kind == im.KindInternal
}
