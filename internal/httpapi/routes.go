package httpapi

import "net/http"

// route is one REST command. rate is the documented per-app limit in
// requests per second (0: none at this layer). push marks the commands
// served by the push services (Services.Push, Sched and Stats): on a
// server built without them they answer 90045.
type route struct {
	service string
	command string
	family  family
	rate    float64
	push    bool
	handle  func(*Server, *request) (any, error)
}

// pushCmd and plainCmd are the values of route.push.
const (
	pushCmd  = true
	plainCmd = false
)

// noPush answers a push route on a server without the push services.
func (s *Server) noPush(*request) (any, error) { return nil, errNoPush }

// routes is the one table of /v4/{service}/{command} endpoints: POST, an
// app admin's UserSig and the REST API's common query (docs/api.md, "Common to every command").
var routes = []route{
	{"im_open_login_svc", "account_import", famAccount, 200, plainCmd, (*Server).accountImport},
	{"im_open_login_svc", "multiaccount_import", famAccount, 100, plainCmd, (*Server).multiAccountImport},
	{"im_open_login_svc", "account_delete", famAccount, 100, plainCmd, (*Server).accountDelete},
	{"im_open_login_svc", "account_check", famAccount, 100, plainCmd, (*Server).accountCheck},
	{"im_open_login_svc", "kick", famAccount, 100, plainCmd, (*Server).kick},
	{"openim", "query_online_status", famAccount, 200, plainCmd, (*Server).queryOnlineStatus},

	{"timpush", "set_attr_name", famPush, 100, plainCmd, (*Server).setAttrName},
	{"timpush", "get_attr_name", famPush, 100, plainCmd, (*Server).getAttrName},
	{"timpush", "set_attr", famPush, 100, plainCmd, (*Server).setAttr},
	{"timpush", "get_attr", famPush, 100, plainCmd, (*Server).getAttr},
	{"timpush", "remove_attr", famPush, 100, plainCmd, (*Server).removeAttr},
	{"timpush", "add_tag", famPush, 100, plainCmd, (*Server).addTag},
	{"timpush", "get_tag", famPush, 100, plainCmd, (*Server).getTag},
	{"timpush", "remove_tag", famPush, 100, plainCmd, (*Server).removeTag},
	{"timpush", "clear_all_tags", famPush, 100, plainCmd, (*Server).clearAllTags},

	// Pushing. push and revoke enforce their own spacing (90024, 90051) and
	// batch its recipient rate in the push service; rate 0 here.
	{"timpush", "push", famPush, 0, pushCmd, (*Server).push},
	{"timpush", "batch", famPush, 30, pushCmd, (*Server).batch},
	{"timpush", "revoke", famPush, 0, pushCmd, (*Server).revoke},
	{"timpush", "add_sched_task", famPush, 5, pushCmd, (*Server).addSchedTask},
	{"timpush", "modify_sched_task", famPush, 5, pushCmd, (*Server).modifySchedTask},
	{"timpush", "delete_sched_task", famPush, 5, pushCmd, (*Server).deleteSchedTask},
	{"timpush", "get_sched_task", famPush, 5, pushCmd, (*Server).getSchedTask},
	{"timpush", "list_sched_task", famPush, 5, pushCmd, (*Server).listSchedTask},
	{"timpush", "all_member_push_statistics", famPush, 1, pushCmd, (*Server).allMemberPushStatistics},
	{"timpush", "all_member_push_trace", famPush, 1, pushCmd, (*Server).allMemberPushTrace},
	{"timpush", "all_member_push_loss", famPush, 1, pushCmd, (*Server).allMemberPushLoss},
	{"timpush", "normal_push_statistics", famPush, 1, pushCmd, (*Server).normalPushStatistics},
	{"timpush", "normal_push_trace", famPush, 1, pushCmd, (*Server).normalPushTrace},
	{"timpush", "normal_push_loss", famPush, 1, pushCmd, (*Server).normalPushLoss},

	{"all_member_push", "im_set_attr_name", famPush, 100, plainCmd, (*Server).imSetAttrName},
	{"all_member_push", "im_get_attr_name", famPush, 100, plainCmd, (*Server).imGetAttrName},
	{"all_member_push", "im_set_attr", famPush, 100, plainCmd, (*Server).imSetAttr},
	{"all_member_push", "im_get_attr", famPush, 100, plainCmd, (*Server).imGetAttr},
	{"all_member_push", "im_remove_attr", famPush, 100, plainCmd, (*Server).imRemoveAttr},
	{"all_member_push", "im_add_tag", famPush, 100, plainCmd, (*Server).imAddTag},
	{"all_member_push", "im_get_tag", famPush, 100, plainCmd, (*Server).imGetTag},
	{"all_member_push", "im_remove_tag", famPush, 100, plainCmd, (*Server).imRemoveTag},
	{"all_member_push", "im_remove_all_tags", famPush, 100, plainCmd, (*Server).imRemoveAllTags},
	{"all_member_push", "im_push", famPush, 0, pushCmd, (*Server).imPush},

	// timd's extensions (ext.go): reads for the console, served by
	// Services.Insights; marked push because they need the push store.
	{extService, "audience_count", famPush, 20, pushCmd, (*Server).audienceCount},
	{extService, "app_summary", famPush, 5, pushCmd, (*Server).appSummary},
	{extService, "tag_histogram", famPush, 5, pushCmd, (*Server).tagHistogram},
	{extService, "account_list", famPush, 20, pushCmd, (*Server).accountList},
	{extService, "account_devices", famPush, 20, pushCmd, (*Server).accountDevices},
	{extService, "push_history", famPush, 5, pushCmd, (*Server).pushHistory},
	{extService, "live", famPush, 5, pushCmd, (*Server).live},
}

// routeKey is "service/command".
func routeKey(service, command string) string { return service + "/" + command }

// clientRoute is one endpoint of timd's own client API (docs/client-api.md):
// an imported account's own UserSig and the client query (sdkappid,
// identifier, usersig). bodyLimit is the largest accepted body; 0 means
// the body is not read.
type clientRoute struct {
	path      string
	method    string
	caller    callerKind
	bodyLimit int64
	handle    func(*Server, *request) (any, error)
}

// clientBodyLimit bounds a /v1 request body (a device registration).
const clientBodyLimit = 4 << 10

// clientRoutes is the one table of /v1 endpoints.
var clientRoutes = []clientRoute{
	{"/v1/connect", http.MethodGet, callerUser, 0, (*Server).connect},
	{"/v1/sync", http.MethodGet, callerUser, 0, (*Server).sync},
	{"/v1/device/register", http.MethodPost, callerSigned, clientBodyLimit, (*Server).registerDevice},
}

// callerKind says who may call an endpoint and which query it takes.
type callerKind int

const (
	callerNone  callerKind = iota // no authentication (health, metrics)
	callerAdmin                   // an app admin; the REST query (docs/api.md, "Common to every command")
	callerUser                    // an imported account or a device credential; the client query
	// callerSigned is callerUser, or a UserSig for an identifier that is no
	// account: a RegistrationID-only device registering under that name.
	callerSigned
)

// endpoint is one served path, from either table, as the one dispatcher
// (Server.dispatch) sees it.
type endpoint struct {
	name      string // "service/command" or the /v1 path: the metrics label and rate-limit key
	method    string
	family    family
	caller    callerKind
	rate      float64
	bodyLimit int64 // 0: the body is not read
	bulk      bool  // waits for a bulk slot (Options.BulkSlots) before it is handled
	handle    func(*Server, *request) (any, error)
}

// bulkWrites are the /v4 commands a bulk load sends by the thousand: the
// account and audience writes. They take turns for Options.BulkSlots.
var bulkWrites = map[string]bool{
	"im_open_login_svc/account_import": true, "im_open_login_svc/multiaccount_import": true,
	"im_open_login_svc/account_delete": true,
	"timpush/set_attr":                 true, "timpush/remove_attr": true,
	"timpush/add_tag": true, "timpush/remove_tag": true, "timpush/clear_all_tags": true,
	"all_member_push/im_set_attr": true, "all_member_push/im_remove_attr": true,
	"all_member_push/im_add_tag": true, "all_member_push/im_remove_tag": true,
	"all_member_push/im_remove_all_tags": true,
}

// endpoints builds the path → endpoint table of s: every /v4 route, the
// /v1 routes when the client services are configured, GET /healthz, every
// file of the web console when it is configured, and GET /metrics when a
// Prometheus handler is.
func (s *Server) endpoints() map[string]*endpoint {
	t := map[string]*endpoint{}
	for _, r := range routes {
		name := routeKey(r.service, r.command)
		t["/v4/"+name] = &endpoint{name: name, method: http.MethodPost, family: r.family, caller: callerAdmin,
			rate: r.rate, bodyLimit: s.opt.BodyLimit, bulk: bulkWrites[name], handle: r.handle}
		if r.push && (s.svc.Push == nil || s.svc.Sched == nil || s.svc.Stats == nil ||
			r.service == extService && s.svc.Insights == nil) {
			t["/v4/"+name].handle = (*Server).noPush
		}
	}
	if s.svc.Hub != nil && s.svc.Inbox != nil && s.svc.Devices != nil {
		for _, r := range clientRoutes {
			t[r.path] = &endpoint{name: r.path, method: r.method, family: famAccount, caller: r.caller,
				bodyLimit: r.bodyLimit, handle: r.handle}
		}
	}
	t["/healthz"] = &endpoint{name: "/healthz", method: http.MethodGet, family: famGateway, handle: (*Server).healthz}
	if s.opt.Console != nil {
		for _, p := range s.opt.Console.Paths() {
			t[p] = &endpoint{name: "/console/", method: http.MethodGet, family: famGateway, handle: (*Server).console}
		}
	}
	if s.opt.Prometheus != nil {
		t["/metrics"] = &endpoint{name: "/metrics", method: http.MethodGet, family: famGateway, handle: (*Server).prometheus}
	}
	return t
}
