package httpapi

// route is one REST command. rate is the documented per-app limit in
// requests per second (0: none at this layer).
type route struct {
	service string
	command string
	family  family
	rate    float64
	handle  func(*Server, *request) (any, error)
}

// routes is the one table of /v4/{service}/{command} endpoints.
var routes = []route{
	{"im_open_login_svc", "account_import", famAccount, 200, (*Server).accountImport},
	{"im_open_login_svc", "multiaccount_import", famAccount, 100, (*Server).multiAccountImport},
	{"im_open_login_svc", "account_delete", famAccount, 100, (*Server).accountDelete},
	{"im_open_login_svc", "account_check", famAccount, 100, (*Server).accountCheck},
	{"im_open_login_svc", "kick", famAccount, 100, (*Server).kick},
	{"openim", "query_online_status", famAccount, 200, (*Server).queryOnlineStatus},

	{"timpush", "set_attr_name", famPush, 100, (*Server).setAttrName},
	{"timpush", "get_attr_name", famPush, 100, (*Server).getAttrName},
	{"timpush", "set_attr", famPush, 100, (*Server).setAttr},
	{"timpush", "get_attr", famPush, 100, (*Server).getAttr},
	{"timpush", "remove_attr", famPush, 100, (*Server).removeAttr},
	{"timpush", "add_tag", famPush, 100, (*Server).addTag},
	{"timpush", "get_tag", famPush, 100, (*Server).getTag},
	{"timpush", "remove_tag", famPush, 100, (*Server).removeTag},
	{"timpush", "clear_all_tags", famPush, 100, (*Server).clearAllTags},

	// Pushing. push and revoke enforce their own spacing (90024, 90051) and
	// batch its recipient rate in the push service; rate 0 here.
	{"timpush", "push", famPush, 0, (*Server).push},
	{"timpush", "batch", famPush, 30, (*Server).batch},
	{"timpush", "revoke", famPush, 0, (*Server).revoke},
	{"timpush", "add_sched_task", famPush, 5, (*Server).addSchedTask},
	{"timpush", "modify_sched_task", famPush, 5, (*Server).modifySchedTask},
	{"timpush", "delete_sched_task", famPush, 5, (*Server).deleteSchedTask},
	{"timpush", "get_sched_task", famPush, 5, (*Server).getSchedTask},
	{"timpush", "list_sched_task", famPush, 5, (*Server).listSchedTask},
	{"timpush", "all_member_push_statistics", famPush, 1, (*Server).allMemberPushStatistics},
	{"timpush", "all_member_push_trace", famPush, 1, (*Server).allMemberPushTrace},
	{"timpush", "all_member_push_loss", famPush, 1, (*Server).allMemberPushLoss},
	{"timpush", "normal_push_statistics", famPush, 1, (*Server).normalPushStatistics},
	{"timpush", "normal_push_trace", famPush, 1, (*Server).normalPushTrace},
	{"timpush", "normal_push_loss", famPush, 1, (*Server).normalPushLoss},

	{"all_member_push", "im_set_attr_name", famPush, 100, (*Server).imSetAttrName},
	{"all_member_push", "im_get_attr_name", famPush, 100, (*Server).imGetAttrName},
	{"all_member_push", "im_set_attr", famPush, 100, (*Server).imSetAttr},
	{"all_member_push", "im_get_attr", famPush, 100, (*Server).imGetAttr},
	{"all_member_push", "im_remove_attr", famPush, 100, (*Server).imRemoveAttr},
	{"all_member_push", "im_add_tag", famPush, 100, (*Server).imAddTag},
	{"all_member_push", "im_get_tag", famPush, 100, (*Server).imGetTag},
	{"all_member_push", "im_remove_tag", famPush, 100, (*Server).imRemoveTag},
	{"all_member_push", "im_remove_all_tags", famPush, 100, (*Server).imRemoveAllTags},
	{"all_member_push", "im_push", famPush, 0, (*Server).imPush},
}

// routeKey is "service/command".
func routeKey(service, command string) string { return service + "/" + command }
