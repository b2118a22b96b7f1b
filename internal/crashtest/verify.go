package crashtest

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"timd/internal/im"
)

// maxListed bounds the violations of one kind listed one by one.
const maxListed = 10

// verify reads every account back, checks it against the model, settles
// the model on what was read, and checks the audience index against it.
func (r *runner) verify(ctx context.Context, rd *Round) error {
	states, err := r.readStates(ctx, rd)
	if err != nil {
		return err
	}
	bad := 0
	for i, got := range states {
		a := &r.accounts[i]
		if a.Ambiguous() {
			rd.Ambiguous++
			if got != a.Acked() {
				rd.OpenApplied++
			}
		}
		if !a.Holds(got) {
			if bad++; bad <= maxListed {
				r.violation("round %s: %s holds {%s}; acknowledged: {%s}; legal: %s",
					rd.Name, r.ids[i], got, a.Acked(), statesText(a.States()))
			}
		}
		a.Settle(got)
	}
	if bad > maxListed {
		r.violation("round %s: %d more accounts lost acknowledged writes", rd.Name, bad-maxListed)
	}
	rd.Accounts = len(states)
	return r.checkIndex(ctx, rd, states)
}

func statesText(ss []State) string {
	parts := make([]string, len(ss))
	for i, s := range ss {
		parts[i] = "{" + s.String() + "}"
	}
	return strings.Join(parts, " or ")
}

// readStates reads every account's attributes and tags, 100 at a time.
func (r *runner) readStates(ctx context.Context, rd *Round) ([]State, error) {
	states := make([]State, len(r.ids))
	return states, r.batches(ctx, len(r.ids), func(ctx context.Context, lo, hi int) error {
		r.prog.set("round %s/%d: reading accounts back: %d/%d", rd.Name, r.cfg.Kills, hi, len(r.ids))
		req := map[string]any{"To_Account": r.ids[lo:hi]}
		raw, err := r.call(ctx, "timpush/get_attr", req)
		if err != nil {
			return err
		}
		var attrs attrsAnswer
		if err := json.Unmarshal(raw, &attrs); err != nil {
			return fmt.Errorf("get_attr: %w", err)
		}
		if raw, err = r.call(ctx, "timpush/get_tag", req); err != nil {
			return err
		}
		var tags tagsAnswer
		if err := json.Unmarshal(raw, &tags); err != nil {
			return fmt.Errorf("get_tag: %w", err)
		}
		if len(attrs.ErrorList) > 0 || len(tags.ErrorList) > 0 {
			r.violation("round %s: imported accounts reported missing: %s %s", rd.Name, attrs.ErrorList, tags.ErrorList)
		}
		if len(attrs.UserAttrs) != hi-lo || len(tags.UserTags) != hi-lo {
			return fmt.Errorf("get_attr/get_tag answered %d/%d accounts of %d", len(attrs.UserAttrs), len(tags.UserTags), hi-lo)
		}
		for j := range hi - lo {
			id := r.ids[lo+j]
			if attrs.UserAttrs[j].Account != id || tags.UserTags[j].Account != id {
				return fmt.Errorf("get_attr/get_tag answered %s/%s in place of %s", attrs.UserAttrs[j].Account, tags.UserTags[j].Account, id)
			}
			s := &states[lo+j]
			var perr error
			if s.Attrs, perr = parseAttrs(attrs.UserAttrs[j].Attrs); perr == nil {
				s.Tags, perr = parseTags(tags.UserTags[j].Tags)
			}
			if perr != nil {
				r.violation("round %s: %s: %v", rd.Name, id, perr)
			}
		}
		return nil
	})
}

// checkIndex pushes to each condition (online only, so nothing is stored)
// and compares the audience the server captured, the task's TotalCount,
// with the count over the states read from the store.
func (r *runner) checkIndex(ctx context.Context, rd *Round, states []State) error {
	conds := conditions(r.rng)
	type pending struct {
		id   string
		want int64
		cond *im.Condition
	}
	var ps []pending
	for i, c := range conds {
		r.prog.set("round %s/%d: checking the audience index: %d/%d conditions", rd.Name, r.cfg.Kills, i+1, len(conds))
		id, err := r.push(ctx, c, true)
		if err != nil {
			return err
		}
		// The admin is an imported account too (docs/compatibility.md, "UserSig and admins"), without
		// attributes or tags.
		ps = append(ps, pending{id, audienceSize(c, states) + audienceSize(c, []State{{}}), c})
	}
	for lo := 0; lo < len(ps); lo += 5 {
		batch := ps[lo:min(len(ps), lo+5)]
		ids := make([]string, len(batch))
		for i, p := range batch {
			ids[i] = p.id
		}
		got, err := r.stats(ctx, ids)
		if err != nil {
			return err
		}
		for _, p := range batch {
			if got[p.id].TotalCount != p.want {
				r.violation("round %s: audience index ≠ store: condition %s selected %d accounts (TotalCount of task %s), %d accounts in the store match it",
					rd.Name, condText(p.cond), got[p.id].TotalCount, p.id, p.want)
			}
			r.mu.Lock()
			r.tasks[p.id] = true
			r.rep.phase1Total += got[p.id].TotalCount
			r.mu.Unlock()
		}
	}
	rd.Conditions = len(conds)
	return nil
}

func condText(c *im.Condition) string {
	if c.Empty() {
		return "(everyone)"
	}
	b, _ := json.Marshal(c)
	return string(b)
}

// push sends a text push to c (nil: everyone) and returns its TaskId.
func (r *runner) push(ctx context.Context, c *im.Condition, onlineOnly bool) (string, error) {
	id, _, err := r.pushRandom(ctx, c, onlineOnly, r.msgRandom())
	return id, err
}

func (r *runner) pushRandom(ctx context.Context, c *im.Condition, onlineOnly bool, msgRandom uint32) (string, uint32, error) {
	body := map[string]any{"From_Account": r.app.admin, "MsgRandom": msgRandom,
		"MsgBody": []any{map[string]any{"MsgType": "TIMTextElem", "MsgContent": map[string]string{"Text": "crash test"}}}}
	if onlineOnly {
		body["OnlineOnlyFlag"] = 1
	}
	if !c.Empty() {
		body["Condition"] = c
	}
	raw, err := r.call(ctx, "timpush/push", body)
	if err != nil {
		return "", 0, err
	}
	var ans struct{ TaskId string }
	if err := json.Unmarshal(raw, &ans); err != nil || ans.TaskId == "" {
		return "", 0, fmt.Errorf("timpush/push answered no TaskId: %.300s", raw)
	}
	return ans.TaskId, msgRandom, nil
}

// taskCounts is one task's all_member_push_statistics result.
type taskCounts struct {
	TaskID     string
	TotalCount int64
	SentCount  int64
}

// stats returns the statistics of up to 5 tasks by TaskId.
func (r *runner) stats(ctx context.Context, ids []string) (map[string]taskCounts, error) {
	now := time.Now().Unix()
	raw, err := r.call(ctx, "timpush/all_member_push_statistics",
		map[string]any{"StartTime": now - 86400, "EndTime": now + 60, "TaskID": ids})
	if err != nil {
		return nil, err
	}
	var ans struct{ Results []taskCounts }
	if err := json.Unmarshal(raw, &ans); err != nil {
		return nil, fmt.Errorf("all_member_push_statistics: %w", err)
	}
	out := make(map[string]taskCounts, len(ans.Results))
	for _, c := range ans.Results {
		out[c.TaskID] = c
	}
	for _, id := range ids {
		if _, ok := out[id]; !ok {
			return nil, fmt.Errorf("all_member_push_statistics has no result for %s: %.300s", id, raw)
		}
	}
	return out, nil
}
