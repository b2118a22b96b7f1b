package httpapi

// route is one REST command. rate is the documented per-app limit in
// requests per second (0: none at this layer). push marks the commands
// served by the push services (Services.Push, Sched and Stats), which
// answer 90045 on a server built without them.
type route struct {
	service string
	command string
	family  family
	rate    float64
	push    bool
	handle  func(*Server, *request) (any, error)
}

// pushCmd and plainCmd say whether a route needs the push services.
const (
	pushCmd  = true
	plainCmd = false
)

// call runs the route's handler, or answers 90045 when it needs the push
// services and the server has none.
func (rt *route) call(s *Server, r *request) (any, error) {
	if rt.push && (s.svc.Push == nil || s.svc.Sched == nil || s.svc.Stats == nil) {
		return nil, errNoPush
	}
	return rt.handle(s, r)
}

// routes is the one table of /v4/{service}/{command} endpoints.
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
}

// routeKey is "service/command".
func routeKey(service, command string) string { return service + "/" + command }
