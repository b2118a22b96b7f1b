package httpapi

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"testing"

	"timd/internal/deliver"
	"timd/internal/im"
	"timd/internal/service"
)

// TestProfilesAnswerMatchesEncodingJSON checks that the hand-written
// get_attr and get_tag answers are byte for byte what encoding/json writes
// for the same answer built from maps, over random profiles whose strings
// need every kind of escaping.
func TestProfilesAnswerMatchesEncodingJSON(t *testing.T) {
	type attrsOut struct {
		ToAccount string            `json:"To_Account"`
		Attrs     map[string]string `json:"Attrs"`
	}
	type tagsOut struct {
		ToAccount string   `json:"To_Account"`
		Tags      []string `json:"Tags"`
	}
	pieces := []string{"a", "Z9", "_-", `"`, `\`, "<", ">", "&", "\x00", "\x1f", "\x7f", "é", "漢", "\u2028", "\xff", " "}
	rng := rand.New(rand.NewPCG(1, 2))
	str := func() string {
		s := ""
		for range rng.IntN(4) {
			s += pieces[rng.IntN(len(pieces))]
		}
		return s
	}
	for range 2000 {
		var a profilesAnswer
		var wantAttrs []attrsOut
		var wantTags []tagsOut
		for range rng.IntN(4) {
			p := service.Profile{Account: str(), Tags: []string{}}
			m := map[string]string{}
			names := map[string]bool{}
			for range rng.IntN(4) {
				name := str()
				if names[name] {
					continue // names are unique in a schema
				}
				names[name] = true
				v := str()
				m[name] = v
				p.Attrs = append(p.Attrs, service.NamedValue{Name: name, Value: v})
			}
			// Profiles orders attributes by name, as encoding/json orders keys.
			sortNamed(p.Attrs)
			for range rng.IntN(3) {
				p.Tags = append(p.Tags, str())
			}
			a.profiles = append(a.profiles, p)
			wantAttrs = append(wantAttrs, attrsOut{p.Account, m})
			wantTags = append(wantTags, tagsOut{p.Account, p.Tags})
		}
		if rng.IntN(3) == 0 {
			a.errs = []itemError{{ToAccount: str(), ErrorCode: 70107}}
		}
		for _, list := range []string{"UserAttrs", "UserTags"} {
			a.list = list
			var want []byte
			if list == "UserAttrs" {
				want, _ = json.Marshal(struct {
					UserAttrs []attrsOut  `json:"UserAttrs"`
					ErrorList []itemError `json:"ErrorList,omitempty"`
				}{append([]attrsOut{}, wantAttrs...), a.errs})
			} else {
				want, _ = json.Marshal(struct {
					UserTags  []tagsOut   `json:"UserTags"`
					ErrorList []itemError `json:"ErrorList,omitempty"`
				}{append([]tagsOut{}, wantTags...), a.errs})
			}
			got := "{" + string(a.appendFields(nil)) + "}"
			if got != string(want) {
				t.Fatalf("%s:\n got %s\nwant %s", list, got, want)
			}
			if got := payloadFields(a); "{"+string(got)+"}" != string(want) {
				t.Fatalf("payloadFields(%s) = %s", list, got)
			}
		}
	}
}

func sortNamed(v []service.NamedValue) {
	for i := 1; i < len(v); i++ {
		for j := i; j > 0 && v[j].Name < v[j-1].Name; j-- {
			v[j], v[j-1] = v[j-1], v[j]
		}
	}
}

// TestSyncRespMatchesEncodingJSON checks that the hand-written /v1/sync
// answer is byte for byte what encoding/json writes for the same struct,
// for pages of real push frames (including escaped and empty pages).
func TestSyncRespMatchesEncodingJSON(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	bodies := []string{`[{"MsgType":"TIMTextElem","MsgContent":{"Text":"hi there"}}]`, `{"Title":"<b>&</b>"}`,
		"[\"\u2028\"]", "", "null"}
	for range 2000 {
		r := syncResp{Pushes: []json.RawMessage{}, Cursor: rng.Int64N(1 << 40), Complete: rng.IntN(2) == 0}
		for i := range rng.IntN(5) {
			h := im.TaskHead{ID: fmt.Sprintf("t<%d>", i), Seq: int64(i), From: "ops\u00e9",
				MsgBody: json.RawMessage(bodies[rng.IntN(len(bodies))]), CreatedAt: int64(i)}
			r.Pushes = append(r.Pushes, deliver.PushFrame(&h))
		}
		want, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		if got := "{" + string(payloadFields(r)) + "}"; got != string(want) {
			t.Fatalf("sync answer:\n got %s\nwant %s", got, want)
		}
	}
}
