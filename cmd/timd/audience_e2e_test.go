package main_test

import (
	"testing"
)

// TestE2ESeedRemoveAttr runs the example of the page this project started
// from (v4/timpush/remove_attr) against the real binary.
func TestE2ESeedRemoveAttr(t *testing.T) {
	p := startApp(t, t.TempDir())
	p.want("timpush/set_attr_name", `{"AttrNames":{"0":"sex","1":"city"}}`, 0)
	p.want("im_open_login_svc/account_import", `{"UserID":"xiaoming"}`, 0)
	p.want("timpush/set_attr", `{"UserAttrs":[{"To_Account":"xiaoming","Attrs":{"sex":"male","city":"Shenzhen"}}]}`, 0)
	r := p.want("timpush/remove_attr", `{"UserAttrs":[{"To_Account":"Mary","Attrs":["sex","city"]},{"To_Account":"xiaoming","Attrs":["sex","city"]}]}`, 0)
	if got := js(r["ErrorList"]); got != `[{"ErrorCode":70107,"To_Account":"Mary"}]` {
		t.Fatalf("ErrorList = %s", got)
	}
	r = p.want("timpush/get_attr", `{"To_Account":["xiaoming"]}`, 0)
	if got := js(r["UserAttrs"]); got != `[{"Attrs":{},"To_Account":"xiaoming"}]` {
		t.Fatalf("UserAttrs = %s", got)
	}
}

// TestE2ETimpushFamily drives every v4/timpush attribute and tag command of
// the real binary, and checks the data survives a restart (the audience
// index is rebuilt from the store).
func TestE2ETimpushFamily(t *testing.T) {
	p := startApp(t, t.TempDir())
	p.want("timpush/set_attr_name", `{"AttrNames":{"0":"gender","1":"city"},"AttrTypes":{"0":0,"1":0}}`, 0)
	r := p.want("timpush/get_attr_name", `{}`, 0)
	if js(r["AttrNames"])+js(r["AttrTypes"]) != `{"0":"gender","1":"city"}{"0":0,"1":0}` {
		t.Fatalf("get_attr_name: %s", js(r))
	}
	p.want("timpush/set_attr_name", `{"AttrNames":{"2":"city"}}`, 90033)
	p.want("im_open_login_svc/multiaccount_import", `{"Accounts":["alice","bob"]}`, 0)
	r = p.want("timpush/set_attr", `{"UserAttrs":[{"To_Account":"alice","Attrs":{"gender":"f","city":"Berlin"}},{"To_Account":"ghost","Attrs":{"city":"x"}}]}`, 0)
	if js(r["ErrorList"]) != `[{"ErrorCode":70107,"To_Account":"ghost"}]` {
		t.Fatalf("set_attr: %s", js(r))
	}
	p.want("timpush/remove_attr", `{"UserAttrs":[{"To_Account":"alice","Attrs":["gender"]}]}`, 0)
	p.want("timpush/add_tag", `{"UserTags":[{"To_Account":"alice","Tags":["gold","weekly"]},{"To_Account":"bob","Tags":["gold"]}]}`, 0)
	p.want("timpush/add_tag", `{"Replace":1,"UserTags":[{"To_Account":"bob","Tags":["silver"]}]}`, 0)
	p.want("timpush/remove_tag", `{"UserTags":[{"To_Account":"alice","Tags":["weekly"]}]}`, 0)
	p.want("timpush/add_tag", `{"UserTags":[{"To_Account":"alice","Tags":[""]}]}`, 90040)
	p.stop()

	p = startApp(t, p.store)
	r = p.want("timpush/get_attr", `{"To_Account":["alice","bob","ghost"]}`, 0)
	if js(r["UserAttrs"]) != `[{"Attrs":{"city":"Berlin"},"To_Account":"alice"},{"Attrs":{},"To_Account":"bob"}]` || js(r["ErrorList"]) != `[{"ErrorCode":70107,"To_Account":"ghost"}]` {
		t.Fatalf("get_attr after restart: %s", js(r))
	}
	r = p.want("timpush/get_tag", `{"To_Account":["alice","bob"]}`, 0)
	if js(r["UserTags"]) != `[{"Tags":["gold"],"To_Account":"alice"},{"Tags":["silver"],"To_Account":"bob"}]` {
		t.Fatalf("get_tag after restart: %s", js(r))
	}
	p.want("timpush/clear_all_tags", `{"To_Account":["alice","bob"]}`, 0)
	r = p.want("timpush/get_tag", `{"To_Account":["alice","bob"]}`, 0)
	if js(r["UserTags"]) != `[{"Tags":[],"To_Account":"alice"},{"Tags":[],"To_Account":"bob"}]` {
		t.Fatalf("get_tag after clear: %s", js(r))
	}
}

// TestE2ELegacyFamily drives every v4/all_member_push attribute and tag
// command of the real binary with the legacy shapes.
func TestE2ELegacyFamily(t *testing.T) {
	p := startApp(t, t.TempDir())
	p.want("all_member_push/im_set_attr_name", `{"AttrNames":{"0":"sex","1":"city"}}`, 0)
	r := p.want("all_member_push/im_get_attr_name", `{}`, 0)
	if js(r["AttrNames"]) != `{"0":"sex","1":"city"}` || r["AttrTypes"] != nil {
		t.Fatalf("im_get_attr_name: %s", js(r))
	}
	p.want("im_open_login_svc/account_import", `{"UserID":"alice"}`, 0)
	r = p.want("all_member_push/im_set_attr", `{"UserAttrs":[{"To_Account":"alice","Attrs":{"sex":"f","city":"Rome"}},{"To_Account":"ghost","Attrs":{"sex":"m"}}]}`, 0)
	if r["ErrorList"] != nil {
		t.Fatalf("legacy ErrorList: %s", js(r))
	}
	p.want("all_member_push/im_remove_attr", `{"UserAttrs":[{"To_Account":"alice","Attrs":["sex"]}]}`, 0)
	r = p.want("all_member_push/im_get_attr", `{"To_Account":["alice","ghost"]}`, 0)
	if js(r["UserAttrs"]) != `[{"Attrs":{"city":"Rome"},"To_Account":"alice"},{"Attrs":{},"To_Account":"ghost"}]` {
		t.Fatalf("im_get_attr: %s", js(r))
	}
	p.want("all_member_push/im_add_tag", `{"UserTags":[{"To_Account":"alice","Tags":["a","b","c"]}]}`, 0)
	p.want("all_member_push/im_remove_tag", `{"UserTags":[{"To_Account":"alice","Tags":["b"]}]}`, 0)
	r = p.want("all_member_push/im_get_tag", `{"To_Account":["alice","ghost"]}`, 0)
	if js(r["UserTags"]) != `[{"Tags":["a","c"],"To_Account":"alice"},{"Tags":[],"To_Account":"ghost"}]` {
		t.Fatalf("im_get_tag: %s", js(r))
	}
	p.want("all_member_push/im_remove_all_tags", `{"To_Account":["alice"]}`, 0)
	r = p.want("timpush/get_tag", `{"To_Account":["alice"]}`, 0)
	if js(r["UserTags"]) != `[{"Tags":[],"To_Account":"alice"}]` {
		t.Fatalf("after im_remove_all_tags: %s", js(r))
	}
}
