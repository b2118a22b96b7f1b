package service

import (
	"context"
	"encoding/json"
	"time"

	"github.com/RoaringBitmap/roaring/v2"

	"timd/internal/audience"
	"timd/internal/im"
)

// Limits of the console's extensions (docs/compatibility.md, "timd
// extensions").
const (
	MaxTopTags       = 100  // tag_histogram's largest Limit
	DefaultTopTags   = 20   // tag_histogram's Limit when absent
	MaxAccountPage   = 1000 // account_list's largest Limit
	DefaultPageLimit = 100  // account_list's Limit when absent
	MaxDevicesShown  = 100  // account_detail's device list
	FunnelDays       = 7    // app_summary's daily funnel
)

// Connected reports which ordinals of an app have a live connection (the
// delivery hub; fanout.Live has the same method).
type Connected interface {
	Connected(app uint64) *roaring.Bitmap
}

// Insights answers the operator's questions the Tencent API has no
// command for: how many recipients a Condition reaches, the app's
// counters, its most used tags, a page of accounts, one account in full.
// Everything comes from the in-memory audience index and the push store's
// task reports; nothing here writes.
type Insights struct {
	schema im.AudienceStore
	index  *audience.Index
	stats  *Stats
	live   Connected
	opt    audience.Options
	now    func() time.Time
}

// NewInsights returns the service. live may be nil (nobody is online);
// now may be nil.
func NewInsights(schema im.AudienceStore, index *audience.Index, stats *Stats, live Connected,
	opt audience.Options, now func() time.Time) *Insights {
	if now == nil {
		now = time.Now
	}
	return &Insights{schema: schema, index: index, stats: stats, live: live, opt: opt, now: now}
}

// AudienceCount returns how many recipients a push with Condition c would
// have now (a user and the devices they own count once, as in a push's
// TotalCount), and how long the index took. A nil c counts everyone.
// Errors are those of audience.Validate (90020, 90022, 90032, 90033,
// 90039, 90040).
func (s *Insights) AudienceCount(ctx context.Context, app uint64, c *im.Condition) (uint64, time.Duration, error) {
	schema, err := s.schema.AttrSchema(ctx, app)
	if err != nil {
		return 0, 0, err
	}
	start := time.Now()
	bm, err := s.index.Evaluate(app, &schema, c, s.opt)
	if err != nil {
		return 0, 0, err
	}
	n := s.index.Recipients(app, bm).GetCardinality()
	return n, time.Since(start), nil
}

// DayFunnel is one day's push funnel: the tasks created that UTC day.
type DayFunnel struct {
	Date string `json:"Date"` // YYYY-MM-DD, UTC
	Counts
}

// Summary is an app's counters.
type Summary struct {
	Accounts    uint64      `json:"Accounts"`    // live UserIDs
	Devices     uint64      `json:"Devices"`     // live RegistrationIDs
	Online      uint64      `json:"Online"`      // accounts with a live connection now
	PushesToday int         `json:"PushesToday"` // tasks created since 00:00 UTC
	Funnel      Counts      `json:"Funnel"`      // the last FunnelDays days, today included
	Days        []DayFunnel `json:"Days"`        // the same, per day, oldest first
}

// Summary returns app's counters. Statistics read at most 10,000 tasks a
// day. Errors: the push store's (internal).
func (s *Insights) Summary(ctx context.Context, app uint64) (Summary, error) {
	var out Summary
	out.Accounts, out.Devices = s.index.Kinds(app)
	if s.live != nil {
		out.Online = s.live.Connected(app).GetCardinality()
	}
	now := s.now().UTC()
	today := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC)
	var err error
	if out.PushesToday, err = s.stats.store.CountTasks(ctx, app, today.Unix()); err != nil {
		return Summary{}, err
	}
	kinds := allKinds()
	for d := FunnelDays - 1; d >= 0; d-- {
		day := today.AddDate(0, 0, -d)
		rs, err := s.stats.reports(ctx, app, kinds, Window{Start: day.Unix(), End: day.Unix() + 86399}, nil)
		if err != nil {
			return Summary{}, err
		}
		sum := sumStats("", rs).Counts
		out.Funnel.add(sum)
		out.Days = append(out.Days, DayFunnel{Date: day.Format(time.DateOnly), Counts: sum})
	}
	return out, nil
}

// TagHistogram returns the limit most carried tags of app and the number
// of distinct tags. Errors: 90001 when limit is outside 1..MaxTopTags.
func (s *Insights) TagHistogram(app uint64, limit int) ([]audience.TagCount, int, error) {
	if limit < 1 || limit > MaxTopTags {
		return nil, 0, im.KindErrorf(im.KindBadParam, "Limit must be from 1 to %d", MaxTopTags)
	}
	top, n := s.index.TopTags(app, limit)
	return top, n, nil
}

// Accounts returns a page of app's accounts in creation order from the
// cursor from (0: the first page) and the cursor of the next page (0: no
// more). Errors: 90001 when limit is outside 1..MaxAccountPage.
func (s *Insights) Accounts(app uint64, from uint32, limit int) ([]audience.Entry, uint32, error) {
	if limit < 1 || limit > MaxAccountPage {
		return nil, 0, im.KindErrorf(im.KindBadParam, "Limit must be from 1 to %d", MaxAccountPage)
	}
	page, next := s.index.Page(app, from, limit)
	return page, next, nil
}

// Devices returns up to MaxDevicesShown RegistrationIDs the UserID id owns.
func (s *Insights) Devices(app uint64, id string) []audience.Entry {
	return s.index.Devices(app, id, MaxDevicesShown)
}

// MaxHistory is push_history's largest Limit.
const MaxHistory = 200

// PushSummary is one task of the push history.
type PushSummary struct {
	TaskID     string          `json:"TaskId"`
	Kind       string          `json:"Kind"`  // "push", "batch" or "im_push"
	State      string          `json:"State"` // "pending", "running", "done" or "revoked"
	CreatedAt  int64           `json:"CreatedAt"`
	RevokedAt  int64           `json:"RevokedAt,omitempty"`
	From       string          `json:"From_Account"`
	Condition  *im.Condition   `json:"Condition,omitempty"`
	Offline    json.RawMessage `json:"OfflinePushInfo,omitempty"`
	HasMsgBody bool            `json:"HasMsgBody"`
	Counts
	Webhook string `json:"Webhook"` // "pending", "done", "gave_up" or "none"
}

var (
	kindNames  = map[im.PushKind]string{im.PushCondition: "push", im.PushBatch: "batch", im.PushLegacy: "im_push"}
	stateNames = map[im.TaskState]string{im.TaskPending: "pending", im.TaskRunning: "running", im.TaskDone: "done", im.TaskRevoked: "revoked"}
	hookNames  = map[im.HookState]string{im.HookPending: "pending", im.HookDone: "done", im.HookGaveUp: "gave_up", im.HookNone: "none"}
)

// History returns app's limit newest tasks of every kind created in the
// last FunnelDays days, newest first, with their funnel counts. Errors:
// 90001 when limit is outside 1..MaxHistory.
func (s *Insights) History(ctx context.Context, app uint64, limit int) ([]PushSummary, error) {
	if limit < 1 || limit > MaxHistory {
		return nil, im.KindErrorf(im.KindBadParam, "Limit must be from 1 to %d", MaxHistory)
	}
	now := s.now().Unix()
	rs, err := s.stats.store.Reports(ctx, app, allKinds(), now-FunnelDays*86400, now, limit)
	if err != nil {
		return nil, err
	}
	out := make([]PushSummary, len(rs))
	for i, r := range rs {
		t := r.Task
		out[i] = PushSummary{TaskID: t.ID, Kind: kindNames[t.Kind], State: stateNames[t.State],
			CreatedAt: t.CreatedAt, RevokedAt: t.RevokedAt, From: t.From, Condition: t.Condition,
			Offline: t.Offline, HasMsgBody: len(t.MsgBody) > 0, Webhook: hookNames[t.HookState],
			Counts: sumStats("", []report{{TaskReport: r}}).Counts}
	}
	return out, nil
}

func allKinds() []im.PushKind {
	return append(append([]im.PushKind{}, allMemberKinds...), normalKinds...)
}

// Live is what the console's live page polls.
type Live struct {
	Time        int64  `json:"Time"`        // unix ms of this reading
	Online      uint64 `json:"Online"`      // accounts with a live connection
	Running     int    `json:"Running"`     // tasks still fanning out
	SentToday   int64  `json:"SentToday"`   // recipients handed a push since 00:00 UTC
	HookPending int    `json:"HookPending"` // today's tasks whose webhook events are not all posted
}

// Live reads app's live counters. Pushes per second are the difference
// of two readings' SentToday over their Time. It reads at most 10,000 of
// today's tasks. Errors: the push store's (internal).
func (s *Insights) Live(ctx context.Context, app uint64) (Live, error) {
	now := s.now()
	out := Live{Time: now.UnixMilli()}
	if s.live != nil {
		out.Online = s.live.Connected(app).GetCardinality()
	}
	day := now.UTC().Truncate(24 * time.Hour)
	rs, err := s.stats.store.Reports(ctx, app, allKinds(), day.Unix(), now.Unix()+1, maxReportTasks)
	if err != nil {
		return Live{}, err
	}
	for _, r := range rs {
		out.SentToday += sumStats("", []report{{TaskReport: r}}).SentCount
		if !r.Task.Finished() {
			out.Running++
		}
		if r.Task.HookState == im.HookPending {
			out.HookPending++
		}
	}
	return out, nil
}
