package httpapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"timd/internal/im"
)

// setupAudience names slots and imports accounts for attribute tests.
func setupAudience(t *testing.T, e *env) {
	t.Helper()
	wantCode(t, e.call("timpush/set_attr_name", `{"AttrNames":{"0":"sex","1":"city","2":"tier"},"AttrTypes":{"0":0,"1":0,"2":1}}`), 0)
	wantCode(t, e.call("im_open_login_svc/multiaccount_import", `{"Accounts":["xiaoming","alice","bob"]}`), 0)
	if _, err := e.store.RegisterDevice(context.Background(), appA.SDKAppID, im.Device{RegistrationID: "REG-1", Owner: "alice", Platform: "ios", Token: "tok"}, im.DeviceLimits{}); err != nil {
		t.Fatal(err)
	}
}

// TestSeedRemoveAttr is the example of the page this project started from.
func TestSeedRemoveAttr(t *testing.T) {
	e := newEnv(t, envOpts{})
	wantCode(t, e.call("timpush/set_attr_name", `{"AttrNames":{"0":"sex","1":"city"}}`), 0)
	wantCode(t, e.call("im_open_login_svc/account_import", `{"UserID":"xiaoming"}`), 0)
	wantCode(t, e.call("timpush/set_attr", `{"UserAttrs":[{"To_Account":"xiaoming","Attrs":{"sex":"male","city":"Shenzhen"}}]}`), 0)
	r := e.call("timpush/remove_attr", `{"UserAttrs":[{"To_Account":"Mary","Attrs":["sex","city"]},{"To_Account":"xiaoming","Attrs":["sex","city"]}]}`)
	wantCode(t, r, 0)
	if got := jsonOf(r["ErrorList"]); got != `[{"ErrorCode":70107,"To_Account":"Mary"}]` {
		t.Fatalf("ErrorList = %s", got)
	}
	r = e.call("timpush/get_attr", `{"To_Account":["xiaoming"]}`)
	if got := jsonOf(r["UserAttrs"]); got != `[{"Attrs":{},"To_Account":"xiaoming"}]` {
		t.Fatalf("UserAttrs = %s", got)
	}
}

func TestAttrNames(t *testing.T) {
	e := newEnv(t, envOpts{})
	r := e.call("timpush/get_attr_name", `{}`)
	if jsonOf(r["AttrNames"]) != `{}` {
		t.Fatalf("fresh app has names: %v", r)
	}
	wantCode(t, e.call("timpush/set_attr_name", `{"AttrNames":{"0":"sex","1":"city"},"AttrTypes":{"1":1}}`), 0)
	// Partial update: only slot 2 changes; slot 1 keeps its type.
	wantCode(t, e.call("timpush/set_attr_name", `{"AttrNames":{"2":"tier"}}`), 0)
	r = e.call("timpush/get_attr_name", `{}`)
	if got := jsonOf(r["AttrNames"]) + jsonOf(r["AttrTypes"]); got != `{"0":"sex","1":"city","2":"tier"}{"0":0,"1":1,"2":0}` {
		t.Fatalf("names = %s", got)
	}
	r = e.call("all_member_push/im_get_attr_name", `{}`)
	if _, has := r["AttrTypes"]; has || jsonOf(r["AttrNames"]) != `{"0":"sex","1":"city","2":"tier"}` {
		t.Fatalf("legacy names = %v", r)
	}
	long := strings.Repeat("n", 51)
	for _, c := range []struct{ name, body string }{
		{"duplicate name", `{"AttrNames":{"3":"city"}}`},
		{"duplicate within request", `{"AttrNames":{"4":"a","5":"a"}}`},
		{"type change", `{"AttrNames":{"1":"city"},"AttrTypes":{"1":0}}`},
		{"type for unlisted slot", `{"AttrNames":{"3":"x"},"AttrTypes":{"4":0}}`},
		{"bad type", `{"AttrNames":{"3":"x"},"AttrTypes":{"3":2}}`},
		{"slot 10", `{"AttrNames":{"10":"x"}}`},
		{"slot -1", `{"AttrNames":{"-1":"x"}}`},
		{"slot 01", `{"AttrNames":{"01":"x"}}`},
		{"name too long", `{"AttrNames":{"3":"` + long + `"}}`},
		{"empty name", `{"AttrNames":{"3":""}}`},
		{"no names", `{}`},
	} {
		t.Run(c.name, func(t *testing.T) {
			wantCode(t, e.call("timpush/set_attr_name", c.body), im.CodeAttrInvalid)
		})
	}
	// The edge refuses a key past slot 9 itself, naming the key as sent
	// (the service's own check, a layer below, would print the number).
	if r := e.call("timpush/set_attr_name", `{"AttrNames":{"10":"x"}}`); r["ErrorInfo"] != `attribute index "10" must be 0 to 9` {
		t.Fatalf("slot 10: ErrorInfo = %v", r["ErrorInfo"])
	}
	r = e.call("timpush/set_attr_name", `{"AttrNames":{"3":"city"}}`)
	if r["ErrorInfo"] != "attrName:city already exists at index:1" {
		t.Fatalf("ErrorInfo = %v", r["ErrorInfo"])
	}
	wantCode(t, e.call("timpush/set_attr_name", `{"AttrNames":{"3":"`+strings.Repeat("n", 50)+`"}}`), 0)
	// Renaming keeps the slot's type.
	wantCode(t, e.call("timpush/set_attr_name", `{"AttrNames":{"1":"town"}}`), 0)
	r = e.call("timpush/get_attr_name", `{}`)
	if jsonOf(r["AttrTypes"]) != `{"0":0,"1":1,"2":0,"3":0}` {
		t.Fatalf("types = %s", jsonOf(r["AttrTypes"]))
	}
	wantCode(t, e.call("timpush/set_attr_name", `{"AttrNames":"x"}`), im.CodePushJSON)
}

// accountList returns a JSON list of n distinct accounts.
func accountList(n int) string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf(`"acc%d"`, i)
	}
	return "[" + strings.Join(ids, ",") + "]"
}

func userAttrs(n int, attrs string) string {
	items := make([]string, n)
	for i := range items {
		items[i] = fmt.Sprintf(`{"To_Account":"acc%d","Attrs":%s}`, i, attrs)
	}
	return `{"UserAttrs":[` + strings.Join(items, ",") + `]}`
}

func userTags(n int, tags string) string {
	items := make([]string, n)
	for i := range items {
		items[i] = fmt.Sprintf(`{"To_Account":"acc%d","Tags":%s}`, i, tags)
	}
	return `{"UserTags":[` + strings.Join(items, ",") + `]}`
}

func tagList(n int, prefix string) string {
	tags := make([]string, n)
	for i := range tags {
		tags[i] = fmt.Sprintf(`"%s%d"`, prefix, i)
	}
	return "[" + strings.Join(tags, ",") + "]"
}

// TestAudienceLimits is the table of spec limits and whole-request codes.
func TestAudienceLimits(t *testing.T) {
	e := newEnv(t, envOpts{})
	setupAudience(t, e)
	v50, v51 := strings.Repeat("v", 50), strings.Repeat("v", 51)
	t50, t51 := strings.Repeat("t", 50), strings.Repeat("t", 51)
	cases := []struct {
		name, cmd, body string
		code            int
	}{
		{"set_attr 100 accounts", "timpush/set_attr", userAttrs(100, `{"sex":"m"}`), 0},
		{"set_attr 101 accounts", "timpush/set_attr", userAttrs(101, `{"sex":"m"}`), im.CodeTooManyAccounts},
		{"set_attr none", "timpush/set_attr", `{"UserAttrs":[]}`, im.CodePushJSON},
		{"set_attr no To_Account", "timpush/set_attr", `{"UserAttrs":[{"Attrs":{"sex":"m"}}]}`, im.CodePushJSON},
		{"set_attr undefined name", "timpush/set_attr", `{"UserAttrs":[{"To_Account":"alice","Attrs":{"age":"3"}}]}`, im.CodeAttrInvalid},
		{"set_attr value 50 bytes", "timpush/set_attr", `{"UserAttrs":[{"To_Account":"alice","Attrs":{"city":"` + v50 + `"}}]}`, 0},
		{"set_attr value 51 bytes", "timpush/set_attr", `{"UserAttrs":[{"To_Account":"alice","Attrs":{"city":"` + v51 + `"}}]}`, im.CodeAttrInvalid},
		{"set_attr value not string", "timpush/set_attr", `{"UserAttrs":[{"To_Account":"alice","Attrs":{"city":5}}]}`, im.CodePushJSON},
		{"get_attr 100", "timpush/get_attr", `{"To_Account":` + accountList(100) + `}`, 0},
		{"get_attr 101", "timpush/get_attr", `{"To_Account":` + accountList(101) + `}`, im.CodeTooManyAccounts},
		{"get_attr none", "timpush/get_attr", `{"To_Account":[]}`, im.CodePushJSON},
		{"remove_attr 101", "timpush/remove_attr", userAttrs(101, `["sex"]`), im.CodeTooManyAccounts},
		{"remove_attr undefined", "timpush/remove_attr", `{"UserAttrs":[{"To_Account":"alice","Attrs":["age"]}]}`, im.CodeAttrInvalid},
		{"add_tag 100 accounts", "timpush/add_tag", userTags(100, `["a"]`), 0},
		{"add_tag 101 accounts", "timpush/add_tag", userTags(101, `["a"]`), im.CodeTooManyAccounts},
		{"add_tag 10 tags", "timpush/add_tag", `{"UserTags":[{"To_Account":"alice","Tags":` + tagList(10, "x") + `}]}`, 0},
		{"add_tag 11 tags", "timpush/add_tag", `{"UserTags":[{"To_Account":"alice","Tags":` + tagList(11, "x") + `}]}`, im.CodeTooManyTags},
		{"add_tag replace 100 tags", "timpush/add_tag", `{"Replace":1,"UserTags":[{"To_Account":"bob","Tags":` + tagList(100, "r") + `}]}`, 0},
		{"add_tag replace 101 tags", "timpush/add_tag", `{"Replace":1,"UserTags":[{"To_Account":"bob","Tags":` + tagList(101, "r") + `}]}`, im.CodeTooManyTags},
		{"add_tag bad Replace", "timpush/add_tag", `{"Replace":2,"UserTags":[{"To_Account":"bob","Tags":["a"]}]}`, im.CodePushJSON},
		{"tag 50 bytes", "timpush/add_tag", `{"UserTags":[{"To_Account":"alice","Tags":["` + t50 + `"]}]}`, 0},
		{"tag 51 bytes", "timpush/add_tag", `{"UserTags":[{"To_Account":"alice","Tags":["` + t51 + `"]}]}`, im.CodeTagTooLong},
		{"empty tag", "timpush/add_tag", `{"UserTags":[{"To_Account":"alice","Tags":[""]}]}`, im.CodeEmptyTag},
		{"remove_tag long tag", "timpush/remove_tag", `{"UserTags":[{"To_Account":"alice","Tags":["` + t51 + `"]}]}`, im.CodeTagTooLong},
		{"remove_tag 101", "timpush/remove_tag", userTags(101, `["a"]`), im.CodeTooManyAccounts},
		{"get_tag 101", "timpush/get_tag", `{"To_Account":` + accountList(101) + `}`, im.CodeTooManyAccounts},
		{"clear_all_tags 101", "timpush/clear_all_tags", `{"To_Account":` + accountList(101) + `}`, im.CodeTooManyAccounts},
		{"clear_all_tags empty id", "timpush/clear_all_tags", `{"To_Account":[""]}`, im.CodePushJSON},
		{"legacy im_add_tag 11 tags", "all_member_push/im_add_tag", `{"UserTags":[{"To_Account":"alice","Tags":` + tagList(11, "x") + `}]}`, im.CodeTooManyTags},
		{"legacy im_set_attr 101", "all_member_push/im_set_attr", userAttrs(101, `{"sex":"m"}`), im.CodeTooManyAccounts},
		{"legacy im_get_attr 101", "all_member_push/im_get_attr", `{"To_Account":` + accountList(101) + `}`, im.CodeTooManyAccounts},
		{"legacy bad JSON", "all_member_push/im_get_tag", `{`, im.CodePushJSON},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			wantCode(t, e.call(c.cmd, c.body), c.code)
		})
	}
}

// TestPerItemErrors checks partial success: failing accounts are listed,
// valid items of the same request are applied.
func TestPerItemErrors(t *testing.T) {
	e := newEnv(t, envOpts{})
	setupAudience(t, e)
	r := e.call("timpush/set_attr", `{"UserAttrs":[
		{"To_Account":"alice","Attrs":{"sex":"f","city":"Berlin"}},
		{"To_Account":"ghost","Attrs":{"sex":"m"}},
		{"To_Account":"REG-1","Attrs":{"sex":"m"}},
		{"To_Account":"REG-1","Attrs":{"tier":"gold"}},
		{"To_Account":"bob","Attrs":{"tier":"gold"}}]}`)
	wantCode(t, r, 0)
	got := jsonOf(r["ErrorList"])
	for _, want := range []string{`"ErrorCode":70107,"To_Account":"ghost"`, `"ErrorCode":90035`, `"To_Account":"REG-1"`, `"To_Account":"bob"`} {
		if !strings.Contains(got, want) {
			t.Fatalf("ErrorList %s lacks %s", got, want)
		}
	}
	r = e.call("timpush/get_attr", `{"To_Account":["alice","REG-1","bob","ghost"]}`)
	if got := jsonOf(r["UserAttrs"]); got != `[{"Attrs":{"city":"Berlin","sex":"f"},"To_Account":"alice"},{"Attrs":{"tier":"gold"},"To_Account":"REG-1"},{"Attrs":{},"To_Account":"bob"}]` {
		t.Fatalf("UserAttrs = %s", got)
	}
	if got := jsonOf(r["ErrorList"]); got != `[{"ErrorCode":70107,"To_Account":"ghost"}]` {
		t.Fatalf("ErrorList = %s", got)
	}
	// A tag first used by a RegistrationID is bound to that type.
	r = e.call("timpush/add_tag", `{"UserTags":[{"To_Account":"REG-1","Tags":["device-tag"]},{"To_Account":"alice","Tags":["device-tag","vip"]}]}`)
	if got := jsonOf(r["ErrorList"]); !strings.Contains(got, `"ErrorCode":90035`) || !strings.Contains(got, `"To_Account":"alice"`) {
		t.Fatalf("ErrorList = %s", got)
	}
	// alice's edit failed as a whole: not even "vip" was added.
	r = e.call("timpush/get_tag", `{"To_Account":["alice","REG-1"]}`)
	if got := jsonOf(r["UserTags"]); got != `[{"Tags":[],"To_Account":"alice"},{"Tags":["device-tag"],"To_Account":"REG-1"}]` {
		t.Fatalf("UserTags = %s", got)
	}
}

func TestTags(t *testing.T) {
	e := newEnv(t, envOpts{})
	setupAudience(t, e)
	wantCode(t, e.call("timpush/add_tag", `{"UserTags":[{"To_Account":"alice","Tags":["gold","weekly"]},{"To_Account":"bob","Tags":["platinum"]}]}`), 0)
	wantCode(t, e.call("timpush/add_tag", `{"UserTags":[{"To_Account":"alice","Tags":["gold","new"]}]}`), 0)
	r := e.call("timpush/get_tag", `{"To_Account":["alice","bob","ghost"]}`)
	if got := jsonOf(r["UserTags"]); got != `[{"Tags":["gold","weekly","new"],"To_Account":"alice"},{"Tags":["platinum"],"To_Account":"bob"}]` {
		t.Fatalf("UserTags = %s", got)
	}
	if got := jsonOf(r["ErrorList"]); got != `[{"ErrorCode":70107,"To_Account":"ghost"}]` {
		t.Fatalf("ErrorList = %s", got)
	}
	wantCode(t, e.call("timpush/add_tag", `{"Replace":1,"UserTags":[{"To_Account":"alice","Tags":["x","y"]}]}`), 0)
	wantCode(t, e.call("timpush/remove_tag", `{"UserTags":[{"To_Account":"alice","Tags":["x","absent"]}]}`), 0)
	r = e.call("timpush/get_tag", `{"To_Account":["alice"]}`)
	if got := jsonOf(r["UserTags"]); got != `[{"Tags":["y"],"To_Account":"alice"}]` {
		t.Fatalf("UserTags = %s", got)
	}
	r = e.call("timpush/clear_all_tags", `{"To_Account":["alice","bob","ghost"]}`)
	if got := jsonOf(r["ErrorList"]); got != `[{"ErrorCode":70107,"To_Account":"ghost"}]` {
		t.Fatalf("ErrorList = %s", got)
	}
	r = e.call("timpush/get_tag", `{"To_Account":["alice","bob"]}`)
	if got := jsonOf(r["UserTags"]); got != `[{"Tags":[],"To_Account":"alice"},{"Tags":[],"To_Account":"bob"}]` {
		t.Fatalf("UserTags = %s", got)
	}
	// remove_all_tags does not exist in timpush (docs/api.md, "Attributes and tags").
	wantCode(t, e.call("timpush/remove_all_tags", `{"To_Account":["alice"]}`), im.CodeUnknownCommand)
}

// TestTagCountLimits checks the per-user (100) and per-app (1,000) limits.
func TestTagCountLimits(t *testing.T) {
	e := newEnv(t, envOpts{})
	setupAudience(t, e)
	for i := 0; i < 10; i++ {
		wantCode(t, e.call("timpush/add_tag", `{"UserTags":[{"To_Account":"alice","Tags":`+tagList(10, fmt.Sprintf("u%d-", i))+`}]}`), 0)
	}
	r := e.call("timpush/add_tag", `{"UserTags":[{"To_Account":"alice","Tags":["one-more"]},{"To_Account":"bob","Tags":["fine"]}]}`)
	if got := jsonOf(r["ErrorList"]); !strings.Contains(got, `"ErrorCode":90032`) || !strings.Contains(got, `"alice"`) || strings.Contains(got, "bob") {
		t.Fatalf("ErrorList = %s", got)
	}
	// Replace with the same count is fine.
	wantCode(t, e.call("timpush/add_tag", `{"Replace":1,"UserTags":[{"To_Account":"alice","Tags":`+tagList(100, "w")+`}]}`), 0)
	// The app now holds 100 (alice) + 1 (bob) distinct tags; fill to 1,000.
	var accts []string
	for i := 0; i < 9; i++ {
		accts = append(accts, fmt.Sprintf(`"f%d"`, i))
	}
	wantCode(t, e.call("im_open_login_svc/multiaccount_import", `{"Accounts":[`+strings.Join(accts, ",")+`]}`), 0)
	for i := 0; i < 9; i++ {
		n := 100
		if i == 8 {
			n = 99
		}
		wantCode(t, e.call("timpush/add_tag", fmt.Sprintf(`{"Replace":1,"UserTags":[{"To_Account":"f%d","Tags":%s}]}`, i, tagList(n, fmt.Sprintf("f%d-", i)))), 0)
	}
	r = e.call("timpush/add_tag", `{"UserTags":[{"To_Account":"bob","Tags":["tag-1001"]}]}`)
	if got := jsonOf(r["ErrorList"]); !strings.Contains(got, `"ErrorCode":90032`) {
		t.Fatalf("1,001st tag accepted: %s", jsonOf(r))
	}
	// An existing tag can still be added to others.
	wantCode(t, e.call("timpush/add_tag", `{"UserTags":[{"To_Account":"bob","Tags":["w1"]}]}`), 0)
	// Freeing a tag makes room.
	wantCode(t, e.call("timpush/clear_all_tags", `{"To_Account":["f8"]}`), 0)
	r = e.call("timpush/add_tag", `{"UserTags":[{"To_Account":"bob","Tags":["tag-1001"]}]}`)
	if _, has := r["ErrorList"]; has {
		t.Fatalf("tag refused after freeing: %s", jsonOf(r))
	}
}

// TestLegacyShapes checks the all_member_push projections of docs/api.md, "The legacy family".
func TestLegacyShapes(t *testing.T) {
	e := newEnv(t, envOpts{})
	wantCode(t, e.call("all_member_push/im_set_attr_name", `{"AttrNames":{"0":"sex","1":"city"},"AttrTypes":{"0":1}}`), 0)
	r := e.call("timpush/get_attr_name", `{}`)
	if jsonOf(r["AttrTypes"]) != `{"0":0,"1":0}` {
		t.Fatalf("legacy set_attr_name applied AttrTypes: %s", jsonOf(r))
	}
	wantCode(t, e.call("im_open_login_svc/account_import", `{"UserID":"alice"}`), 0)
	r = e.call("all_member_push/im_set_attr", `{"UserAttrs":[{"To_Account":"alice","Attrs":{"sex":"f"}},{"To_Account":"ghost","Attrs":{"sex":"m"}}]}`)
	wantCode(t, r, 0)
	if _, has := r["ErrorList"]; has {
		t.Fatalf("legacy answer has ErrorList: %s", jsonOf(r))
	}
	r = e.call("all_member_push/im_get_attr", `{"To_Account":["alice","ghost"]}`)
	if got := jsonOf(r["UserAttrs"]); got != `[{"Attrs":{"sex":"f"},"To_Account":"alice"},{"Attrs":{},"To_Account":"ghost"}]` {
		t.Fatalf("UserAttrs = %s", got)
	}
	if _, has := r["ErrorList"]; has {
		t.Fatal("legacy get has ErrorList")
	}
	// Both families see the same data.
	wantCode(t, e.call("all_member_push/im_add_tag", `{"Replace":1,"UserTags":[{"To_Account":"alice","Tags":["a","b"]}]}`), 0)
	wantCode(t, e.call("all_member_push/im_add_tag", `{"Replace":1,"UserTags":[{"To_Account":"alice","Tags":["c"]}]}`), 0)
	r = e.call("timpush/get_tag", `{"To_Account":["alice"]}`)
	if got := jsonOf(r["UserTags"]); got != `[{"Tags":["a","b","c"],"To_Account":"alice"}]` {
		t.Fatalf("legacy add honoured Replace: %s", got)
	}
	wantCode(t, e.call("all_member_push/im_remove_tag", `{"UserTags":[{"To_Account":"alice","Tags":["a"]}]}`), 0)
	r = e.call("all_member_push/im_get_tag", `{"To_Account":["alice","ghost"]}`)
	if got := jsonOf(r["UserTags"]); got != `[{"Tags":["b","c"],"To_Account":"alice"},{"Tags":[],"To_Account":"ghost"}]` {
		t.Fatalf("UserTags = %s", got)
	}
	wantCode(t, e.call("all_member_push/im_remove_attr", `{"UserAttrs":[{"To_Account":"alice","Attrs":["sex"]}]}`), 0)
	wantCode(t, e.call("all_member_push/im_remove_all_tags", `{"To_Account":["alice"]}`), 0)
	r = e.call("timpush/get_attr", `{"To_Account":["alice"]}`)
	r2 := e.call("timpush/get_tag", `{"To_Account":["alice"]}`)
	if jsonOf(r["UserAttrs"])+jsonOf(r2["UserTags"]) != `[{"Attrs":{},"To_Account":"alice"}][{"Tags":[],"To_Account":"alice"}]` {
		t.Fatalf("legacy removals not applied: %s %s", jsonOf(r), jsonOf(r2))
	}
}

// TestReadAnswersMatchEncodingJSON reads attributes and tags that need
// every kind of escaping through the real store and handlers (get_attr,
// get_tag and their legacy forms) and checks each answer is byte for byte
// what encoding/json writes for the answer it decodes to.
func TestReadAnswersMatchEncodingJSON(t *testing.T) {
	e := newEnv(t, envOpts{})
	setupAudience(t, e)
	odd := `we<i>rd&"id\` + "\u0001é漢\u2028"
	wantCode(t, e.call("im_open_login_svc/multiaccount_import", `{"Accounts":[`+jsonOf(odd)+`]}`), 0)
	val := `<b>&"v"\` + "\u0001\u007fé\u2029"
	tag := `t<&>"\` + "\u001f漢\u2028"
	wantCode(t, e.call("timpush/set_attr", `{"UserAttrs":[{"To_Account":`+jsonOf(odd)+`,"Attrs":{"sex":`+jsonOf(val)+`,"city":"Berlin"}},`+
		`{"To_Account":"alice","Attrs":{"city":`+jsonOf(val)+`}},{"To_Account":"REG-1","Attrs":{"tier":"gold"}}]}`), 0)
	wantCode(t, e.call("timpush/add_tag", `{"UserTags":[{"To_Account":`+jsonOf(odd)+`,"Tags":[`+jsonOf(tag)+`,"plain"]},`+
		`{"To_Account":"REG-1","Tags":[`+jsonOf(tag)+`]}]}`), 0)

	type item struct {
		ToAccount string             `json:"To_Account"`
		Attrs     *map[string]string `json:"Attrs,omitempty"`
		Tags      *[]string          `json:"Tags,omitempty"`
	}
	type answer struct {
		ActionStatus string
		ErrorInfo    string
		ErrorCode    int
		UserAttrs    *[]item `json:",omitempty"`
		UserTags     *[]item `json:",omitempty"`
		ErrorList    []struct {
			ToAccount string `json:"To_Account"`
			ErrorCode int
		} `json:",omitempty"`
	}
	body := `{"To_Account":[` + jsonOf(odd) + `,"alice","ghost","REG-1","bob",` + jsonOf(odd) + `]}`
	for _, cmd := range []string{"timpush/get_attr", "timpush/get_tag", "all_member_push/im_get_attr", "all_member_push/im_get_tag"} {
		resp, err := http.Post(e.url(cmd, appA, "administrator", sig(t, appA, "administrator")), "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var a answer
		if err := json.Unmarshal(raw, &a); err != nil {
			t.Fatalf("%s: %v: %s", cmd, err, raw)
		}
		want, _ := json.Marshal(a)
		if string(raw) != string(want)+"\n" {
			t.Fatalf("%s:\n got %s\nwant %s", cmd, raw, want)
		}
		// The answer holds what was stored, not merely well-formed bytes.
		var items []item
		if a.UserAttrs != nil {
			items = *a.UserAttrs
		} else if a.UserTags != nil {
			items = *a.UserTags
		}
		legacy := strings.HasPrefix(cmd, "all_member_push/")
		if n := len(items); legacy && n != 6 || !legacy && (n != 5 || len(a.ErrorList) != 1) {
			t.Fatalf("%s: %d items, %d errors: %s", cmd, n, len(a.ErrorList), raw)
		}
		first := items[0]
		if first.ToAccount != odd || a.UserAttrs != nil && (first.Attrs == nil || (*first.Attrs)["sex"] != val || (*first.Attrs)["city"] != "Berlin") ||
			a.UserTags != nil && (first.Tags == nil || len(*first.Tags) != 2 || (*first.Tags)[0] != tag) {
			t.Fatalf("%s: first item %+v: %s", cmd, first, raw)
		}
	}
}
