package service

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/RoaringBitmap/roaring/v2"

	"timd/internal/audience"
	"timd/internal/im"
)

// Statistics windows and limits (docs/api.md, "Statistics").
const (
	MaxStatsTasks  = 5
	StatsWindow    = 30 * 24 * 3600 // all_member/normal_push_statistics
	LossWindow     = 7 * 24 * 3600  // *_loss
	maxReportTasks = 10000          // tasks aggregated into one overall answer
)

// Loss codes of the *_loss statistics: timd's own reasons, as strings
// like Tencent's.
const (
	LossOffline   = "-1"  // online-only push, recipient not connected: nothing kept
	LossRevoked   = "-3"  // the revoke stopped the fan-out before this recipient
	LossUnacked   = "-4"  // handed over (stored or live) but not acknowledged by a client
	LossWebhook   = "-10" // webhook event dropped after the retry bound
	lossOfflineTx = "recipient offline and the push is online-only"
	lossRevokedTx = "fan-out terminated by revoke"
	lossUnackedTx = "not acknowledged by the client"
	lossWebhookTx = "callback event dropped after retries"
)

// PushPlatform of timd's own channel (live connection or stored inbox);
// Tencent's vendor enumeration is not documented.
const timdPlatform = 0

// Stats answers the push statistics and troubleshooting APIs from the
// counts the fan-out engine and the delivery hub recorded. "all_member"
// covers timpush/push and im_push tasks, "normal" covers batch tasks.
type Stats struct {
	store im.PushStore
	index *audience.Index
	sends im.Outbox // vendor sends; nil: none
	now   func() time.Time
	sync  IndexSyncer // nil on a single node
}

// SetIndexSync makes the traces wait, as a push does, until the index has
// every account change committed before them, so that they name the
// recipients of a push made through another node right after their
// accounts were created (nil: never wait).
func (s *Stats) SetIndexSync(sync IndexSyncer) { s.sync = sync }

// SetSends installs the vendor send results, which add per-vendor rows to
// the statistics, vendor reasons to the loss report and per-device
// instances to the trace.
func (s *Stats) SetSends(o im.Outbox) { s.sends = o }

// NewStats returns the statistics service; now may be nil.
func NewStats(store im.PushStore, index *audience.Index, now func() time.Time) *Stats {
	if now == nil {
		now = time.Now
	}
	return &Stats{store: store, index: index, now: now}
}

var (
	allMemberKinds = []im.PushKind{im.PushCondition, im.PushLegacy}
	normalKinds    = []im.PushKind{im.PushBatch}
)

// Counts is one statistics row.
type Counts struct {
	TotalCount     int64 `json:"TotalCount"`
	SentCount      int64 `json:"SentCount"`
	DeliveredCount int64 `json:"DeliveredCount"`
	ClickCount     int64 `json:"ClickCount"`
}

func (c *Counts) add(o Counts) {
	c.TotalCount += o.TotalCount
	c.SentCount += o.SentCount
	c.DeliveredCount += o.DeliveredCount
	c.ClickCount += o.ClickCount
}

// PlatformCounts is one PlatformStatistics item.
type PlatformCounts struct {
	EventType    int `json:"EventType"`
	PushPlatform int `json:"PushPlatform"`
	Counts
}

// TaskStatistics is one Results item of all_member_push_statistics, and
// (without TaskID) the answer of normal_push_statistics.
type TaskStatistics struct {
	TaskID string `json:"TaskID"`
	Counts
	PlatformStatistics []PlatformCounts `json:"PlatformStatistics"`
}

// Window is a statistics request's time range (unix seconds).
type Window struct{ Start, End int64 }

// check validates w against the longest span: 90001 when End is before
// Start or the span is longer.
func (w Window) check(span int64) error {
	if w.Start <= 0 || w.End < w.Start {
		return im.KindErrorf(im.KindBadParam, "StartTime and EndTime must be unix seconds with StartTime <= EndTime")
	}
	if w.End-w.Start > span {
		return im.KindErrorf(im.KindBadParam, "StartTime to EndTime spans more than %d days", span/86400)
	}
	return nil
}

// report is a task report with, for an unfinished fan-out, how many
// recipients it has handled (the audience up to the cursor).
type report struct {
	im.TaskReport
	handled int64
	sends   []im.SendCount // vendor sends, by vendor and ErrCode
}

// reports returns the reports of ids, or with no ids every task of kinds
// in w. Unknown ids get an empty report with that TaskID.
func (s *Stats) reports(ctx context.Context, app uint64, kinds []im.PushKind, w Window, ids []string) ([]report, error) {
	if len(ids) > MaxStatsTasks {
		return nil, im.KindErrorf(im.KindTooMany, "at most %d TaskIDs per request", MaxStatsTasks)
	}
	var rs []im.TaskReport
	if len(ids) == 0 {
		var err error
		if rs, err = s.store.Reports(ctx, app, kinds, w.Start, w.End, maxReportTasks); err != nil {
			return nil, err
		}
	}
	for _, id := range ids {
		r, err := s.store.Report(ctx, app, id)
		if errors.Is(err, im.ErrNotFound) {
			r = im.TaskReport{Task: im.PushTask{ID: id}}
		} else if err != nil {
			return nil, err
		}
		rs = append(rs, r)
	}
	out := make([]report, len(rs))
	for i, r := range rs {
		out[i].TaskReport = r
		if s.sends != nil && r.Task.ID != "" {
			c, err := s.sends.SendCounts(ctx, app, r.Task.ID)
			if err != nil {
				return nil, err
			}
			out[i].sends = c
		}
		if r.Task.State == im.TaskDone || r.Task.State == 0 {
			continue
		}
		t, err := s.store.Task(ctx, app, r.Task.ID)
		if err != nil {
			return nil, err
		}
		out[i].handled = int64(decodeSet(t.Audience).Rank(uint32(min(t.Cursor, 1<<32-1))))
	}
	return out, nil
}

// AllMember serves all_member_push_statistics: one result per TaskID, or
// with none one result (TaskID "") summing every push and im_push task
// created in w. Errors: 90001 for a bad window (over 30 days), 90018 for
// more than 5 TaskIDs.
func (s *Stats) AllMember(ctx context.Context, app uint64, w Window, ids []string) ([]TaskStatistics, error) {
	if err := w.check(StatsWindow); err != nil {
		return nil, err
	}
	rs, err := s.reports(ctx, app, allMemberKinds, w, ids)
	if err != nil {
		return nil, err
	}
	if len(ids) == 0 {
		return []TaskStatistics{sumStats("", rs)}, nil
	}
	out := make([]TaskStatistics, len(rs))
	for i, r := range rs {
		out[i] = sumStats(r.Task.ID, rs[i:i+1])
	}
	return out, nil
}

// Normal serves normal_push_statistics: the sum over batch tasks created
// in w. Errors: 90001 for a bad window (over 30 days).
func (s *Stats) Normal(ctx context.Context, app uint64, w Window) (TaskStatistics, error) {
	if err := w.check(StatsWindow); err != nil {
		return TaskStatistics{}, err
	}
	rs, err := s.reports(ctx, app, normalKinds, w, nil)
	if err != nil {
		return TaskStatistics{}, err
	}
	return sumStats("", rs), nil
}

// split is a report's counts split by EventType: 2 for recipients that
// were connected when the task fanned out, 1 for the others.
type split struct{ online, offline Counts }

func splitReport(r im.TaskReport) split {
	c := r.Counts
	d, cl, on := decodeSet(r.Delivered), decodeSet(r.Clicked), decodeSet(r.Task.Online)
	var s split
	s.online = Counts{TotalCount: c.Online, SentCount: c.Online,
		DeliveredCount: int64(d.AndCardinality(on)), ClickCount: int64(cl.AndCardinality(on))}
	s.offline = Counts{TotalCount: max(0, c.Total-c.Online), SentCount: max(0, c.Sent-c.Online),
		DeliveredCount: c.Delivered - s.online.DeliveredCount, ClickCount: c.Clicked - s.online.ClickCount}
	return s
}

func sumStats(id string, rs []report) TaskStatistics {
	out := TaskStatistics{TaskID: id, PlatformStatistics: []PlatformCounts{
		{EventType: 1, PushPlatform: timdPlatform}, {EventType: 2, PushPlatform: timdPlatform}}}
	for _, r := range rs {
		sp := splitReport(r.TaskReport)
		out.PlatformStatistics[0].add(sp.offline)
		out.PlatformStatistics[1].add(sp.online)
	}
	out.add(out.PlatformStatistics[0].Counts)
	out.add(out.PlatformStatistics[1].Counts)
	out.PlatformStatistics = append(out.PlatformStatistics, vendorStats(rs)...)
	return out
}

// vendorStats are the per-vendor rows (EventType 1, the vendor's
// PushPlatform): TotalCount notifications queued for its devices,
// SentCount those the vendor accepted. Vendors report no delivery or
// click; the overall counts stay per recipient.
func vendorStats(rs []report) []PlatformCounts {
	var out []PlatformCounts
	row := map[im.Vendor]int{}
	for _, r := range rs {
		for _, c := range r.sends {
			i, ok := row[c.Vendor]
			if !ok {
				i = len(out)
				row[c.Vendor] = i
				out = append(out, PlatformCounts{EventType: 1, PushPlatform: c.Vendor.PushPlatform()})
			}
			out[i].TotalCount += c.N
			if !c.Queued && c.ErrCode == "" {
				out[i].SentCount += c.N
			}
		}
	}
	return out
}

// decodeSet parses a stored bitmap; a corrupt one counts as empty.
func decodeSet(b []byte) (bm *roaring.Bitmap) {
	bm = roaring.New()
	if len(b) == 0 {
		return bm
	}
	defer func() {
		if recover() != nil {
			bm = roaring.New()
		}
	}()
	if bm.UnmarshalBinary(b) != nil {
		return roaring.New()
	}
	return bm
}

// LossItem is one loss reason and its count; EventType and PushPlatform
// are set in the Platform* lists only.
type LossItem struct {
	EventType    *int   `json:"EventType,omitempty"`
	PushPlatform *int   `json:"PushPlatform,omitempty"`
	ErrCode      string `json:"ErrCode"`
	ErrCount     int64  `json:"ErrCount"`
	ErrInfo      string `json:"ErrInfo"`
}

// Loss is the loss analysis of one task or of a sum of tasks.
type Loss struct {
	TaskID                        string     `json:"TaskID,omitempty"`
	ReadyToSendLoss               []LossItem `json:"ReadyToSendLoss"`
	PostSendDeliveredLoss         []LossItem `json:"PostSendDeliveredLoss"`
	PlatformReadyToSendLoss       []LossItem `json:"PlatformReadyToSendLoss"`
	PlatformPostSendDeliveredLoss []LossItem `json:"PlatformPostSendDeliveredLoss"`
}

// AllMemberLoss serves all_member_push_loss: per TaskID, or with none one
// result (TaskID "") over the push and im_push tasks created in w.
// Errors: 90001 (window over 7 days), 90018.
func (s *Stats) AllMemberLoss(ctx context.Context, app uint64, w Window, ids []string) ([]Loss, error) {
	if err := w.check(LossWindow); err != nil {
		return nil, err
	}
	rs, err := s.reports(ctx, app, allMemberKinds, w, ids)
	if err != nil {
		return nil, err
	}
	if len(ids) == 0 {
		l := sumLoss(rs)
		return []Loss{l}, nil
	}
	out := make([]Loss, len(rs))
	for i, r := range rs {
		out[i] = sumLoss(rs[i : i+1])
		out[i].TaskID = r.Task.ID
	}
	return out, nil
}

// NormalLoss serves normal_push_loss over the batch tasks created in w.
// Errors: 90001 (window over 7 days).
func (s *Stats) NormalLoss(ctx context.Context, app uint64, w Window) (Loss, error) {
	if err := w.check(LossWindow); err != nil {
		return Loss{}, err
	}
	rs, err := s.reports(ctx, app, normalKinds, w, nil)
	if err != nil {
		return Loss{}, err
	}
	return sumLoss(rs), nil
}

// sumLoss counts, over rs: offline recipients of online-only pushes and
// recipients a revoke kept the push from (ReadyToSendLoss); recipients
// handed the push that did not acknowledge it, and webhook events given
// up (PostSendDeliveredLoss). Reasons with no count are left out.
func sumLoss(rs []report) Loss {
	var offline, revoked, unacked, webhook int64
	for _, r := range rs {
		c := r.Counts
		if r.Task.State == im.TaskRevoked {
			revoked += max(0, c.Total-handled(r))
		}
		if r.Task.OnlineOnly {
			offline += max(0, handled(r)-c.Online)
		}
		unacked += max(0, c.Sent-c.Delivered)
		webhook += c.Lost
	}
	l := Loss{ReadyToSendLoss: []LossItem{}, PostSendDeliveredLoss: []LossItem{},
		PlatformReadyToSendLoss: []LossItem{}, PlatformPostSendDeliveredLoss: []LossItem{}}
	addLoss(&l.ReadyToSendLoss, &l.PlatformReadyToSendLoss, LossOffline, offline, lossOfflineTx, 1)
	addLoss(&l.ReadyToSendLoss, &l.PlatformReadyToSendLoss, LossRevoked, revoked, lossRevokedTx, 1)
	addLoss(&l.PostSendDeliveredLoss, &l.PlatformPostSendDeliveredLoss, LossUnacked, unacked, lossUnackedTx, 1)
	addLoss(&l.PostSendDeliveredLoss, &l.PlatformPostSendDeliveredLoss, LossWebhook, webhook, lossWebhookTx, 1)
	addVendorLoss(&l, rs)
	return l
}

// addVendorLoss adds the vendors' refusals, each under the vendor's own
// reason ("BadDeviceToken", "UNREGISTERED", "HTTP 410", "network", or
// timd's NoCredentials / NoToken), overall and per vendor (EventType 1).
func addVendorLoss(l *Loss, rs []report) {
	type key struct {
		v    im.Vendor
		code string
	}
	var order []key
	n := map[key]int64{}
	for _, r := range rs {
		for _, c := range r.sends {
			if c.Queued || c.ErrCode == "" {
				continue
			}
			k := key{c.Vendor, c.ErrCode}
			if _, ok := n[k]; !ok {
				order = append(order, k)
			}
			n[k] += c.N
		}
	}
	overall := map[string]int{}
	for _, k := range order {
		info := "vendor " + string(k.v) + " refused the notification: " + k.code
		if i, ok := overall[k.code]; ok {
			l.PostSendDeliveredLoss[i].ErrCount += n[k]
		} else {
			overall[k.code] = len(l.PostSendDeliveredLoss)
			l.PostSendDeliveredLoss = append(l.PostSendDeliveredLoss, LossItem{ErrCode: k.code, ErrCount: n[k], ErrInfo: "vendor refused the notification: " + k.code})
		}
		et, pp := 1, k.v.PushPlatform()
		l.PlatformPostSendDeliveredLoss = append(l.PlatformPostSendDeliveredLoss,
			LossItem{EventType: &et, PushPlatform: &pp, ErrCode: k.code, ErrCount: n[k], ErrInfo: info})
	}
}

// handled is how many recipients the fan-out reached the end of: all of
// them once Done, those up to the cursor otherwise.
func handled(r report) int64 {
	if r.Task.State == im.TaskDone {
		return r.Counts.Total
	}
	return r.handled
}

func addLoss(list, platform *[]LossItem, code string, n int64, text string, eventType int) {
	if n <= 0 {
		return
	}
	*list = append(*list, LossItem{ErrCode: code, ErrCount: n, ErrInfo: text})
	et, pp := eventType, timdPlatform
	*platform = append(*platform, LossItem{EventType: &et, PushPlatform: &pp, ErrCode: code, ErrCount: n, ErrInfo: text})
}

// Instance is one InstanceTrace item: the push as one recipient saw it.
// To_Account is timd's addition (Tencent's instances are per device).
type Instance struct {
	InstanceID         string `json:"InstanceId"`
	ToAccount          string `json:"To_Account"`
	PushTime           string `json:"PushTime"`
	DeviceModel        string `json:"DeviceModel"`
	System             string `json:"System"`
	SystemVersion      string `json:"SystemVersion"`
	EventType          int    `json:"EventType"`
	PushPlatform       int    `json:"PushPlatform"`
	Token              string `json:"Token"`
	CertID             string `json:"CertId"`
	SdkVersion         string `json:"SdkVersion"`
	PushVersion        string `json:"PushVersion"`
	NotificationStatus int    `json:"NotificationStatus"`
	LastActiveTerminal int    `json:"last_active_terminal"`
	IMCommitStat       struct {
		IMStat Stage `json:"IMStat"`
	} `json:"IMCommitStat"`
	OfflinePushStat struct {
		OfflineStat Stage `json:"OfflineStat"`
	} `json:"OfflinePushStat"`
}

// Stage is one step of an instance. PushStatus: 0 not yet handed over, 1
// handed over (stored for sync or sent live), 2 acknowledged by a client,
// 3 clicked, -1 not delivered (revoked first, or offline for an
// online-only push).
type Stage struct {
	PushStatus int    `json:"PushStatus"`
	ErrorCode  int    `json:"ErrorCode"`
	ErrorInfo  string `json:"ErrorInfo"`
	EventTime  string `json:"EventTime"`
}

// Trace serves all_member_push_trace: the instance of userID in task id,
// none when the user was not in its audience. Errors: 90001 when TaskID
// or UserID is empty; 90049 unknown task.
func (s *Stats) Trace(ctx context.Context, app uint64, id, userID string) ([]Instance, error) {
	if id == "" || userID == "" {
		return nil, im.KindErrorf(im.KindBadParam, "TaskID and UserID are required")
	}
	r, aud, err := s.traceTask(ctx, app, id)
	if err != nil {
		return nil, err
	}
	ord, ok := s.index.Ordinal(app, userID)
	if !ok || !aud.Contains(ord) {
		return []Instance{}, nil
	}
	out := []Instance{instance(r, ord, userID)}
	if s.sends != nil {
		sends, err := s.sends.AccountSends(ctx, app, id, userID)
		if err != nil {
			return nil, err
		}
		for _, sr := range sends {
			out = append(out, vendorInstance(r.Task, sr))
		}
		queued, err := s.sends.QueuedSends(ctx, app, id, ord)
		if err != nil {
			return nil, err
		}
		now := time.Now().UnixMilli()
		for _, q := range queued {
			out = append(out, queuedInstance(r.Task, userID, q, now))
		}
	}
	return out, nil
}

// queuedInstance is a vendor notification of the trace still in the send
// queue: PushStatus 0, and ErrorInfo "queued", "sending" (claimed by a
// node now) or "retrying" (a vendor asked to try again later).
func queuedInstance(t im.PushTask, account string, q im.QueuedSend, now int64) Instance {
	in := Instance{InstanceID: q.RegistrationID, ToAccount: account, PushTime: fmtTime(t.CreatedAt),
		System: q.Platform, EventType: 1, PushPlatform: q.Vendor.PushPlatform(), CertID: "0"}
	st := Stage{ErrorInfo: "queued", EventTime: fmtTime(t.CreatedAt)}
	switch {
	case q.LeaseUntil > now:
		st.ErrorInfo = "sending"
	case q.Attempts > 0:
		st.ErrorInfo = "retrying"
	}
	in.IMCommitStat.IMStat = Stage{PushStatus: 1, ErrorInfo: "success", EventTime: fmtTime(t.CreatedAt)}
	in.OfflinePushStat.OfflineStat = st
	return in
}

// vendorInstance is one vendor notification of the trace: the device
// (InstanceId its RegistrationID, System its platform), EventType 1, the
// vendor's PushPlatform, and the vendor's answer.
func vendorInstance(t im.PushTask, sr im.SendResult) Instance {
	in := Instance{InstanceID: sr.RegistrationID, ToAccount: sr.Account, PushTime: fmtTime(t.CreatedAt),
		System: sr.Platform, EventType: 1, PushPlatform: sr.Vendor.PushPlatform(), CertID: "0"}
	st := Stage{PushStatus: 1, ErrorInfo: "success", EventTime: fmtTime(sr.At)}
	if !sr.OK() {
		st.PushStatus, st.ErrorCode, st.ErrorInfo = -1, sr.Status, sr.ErrCode
	}
	in.IMCommitStat.IMStat = Stage{PushStatus: 1, ErrorInfo: "success", EventTime: fmtTime(t.CreatedAt)}
	in.OfflinePushStat.OfflineStat = st
	return in
}

// NormalTrace serves normal_push_trace: one instance per recipient of the
// batch task pushID (at most 500). Errors: 90001 empty PushID, 90049.
func (s *Stats) NormalTrace(ctx context.Context, app uint64, pushID string) ([]Instance, error) {
	if pushID == "" {
		return nil, im.KindErrorf(im.KindBadParam, "PushID is required")
	}
	r, aud, err := s.traceTask(ctx, app, pushID)
	if err != nil {
		return nil, err
	}
	ords := aud.ToArray()
	if len(ords) > im.MaxBatchRecipient {
		ords = ords[:im.MaxBatchRecipient]
	}
	ids := s.index.IDs(app, ords)
	out := make([]Instance, 0, len(ords))
	for i, o := range ords {
		out = append(out, instance(r, o, ids[i]))
	}
	return out, nil
}

func (s *Stats) traceTask(ctx context.Context, app uint64, id string) (im.TaskReport, *roaring.Bitmap, error) {
	t, err := s.store.Task(ctx, app, id)
	if errors.Is(err, im.ErrNotFound) {
		return im.TaskReport{}, nil, im.Errorf(im.CodeTaskNotFound, "task %s does not exist", id)
	}
	if err != nil {
		return im.TaskReport{}, nil, err
	}
	r, err := s.store.Report(ctx, app, id)
	if err != nil {
		return im.TaskReport{}, nil, err
	}
	if s.sync != nil {
		if err := s.sync.Sync(ctx, app); err != nil {
			return im.TaskReport{}, nil, err
		}
	}
	return r, decodeSet(t.Audience), nil
}

func instance(r im.TaskReport, ord uint32, id string) Instance {
	t := r.Task
	in := Instance{InstanceID: strconv.FormatUint(uint64(ord), 10), ToAccount: id,
		PushTime: fmtTime(t.CreatedAt), EventType: 1, PushPlatform: timdPlatform, CertID: "0"}
	if decodeSet(t.Online).Contains(ord) {
		in.EventType = 2
	}
	st := Stage{EventTime: fmtTime(t.CreatedAt)}
	switch {
	case decodeSet(r.Clicked).Contains(ord):
		st.PushStatus, st.ErrorInfo = 3, "clicked"
	case decodeSet(r.Delivered).Contains(ord):
		st.PushStatus, st.ErrorInfo = 2, "acknowledged"
	case int64(ord) > t.Cursor && t.State == im.TaskRevoked:
		st.PushStatus, st.ErrorCode, st.ErrorInfo = -1, im.CodeTaskRevoked, lossRevokedTx
	case int64(ord) > t.Cursor:
		st.PushStatus, st.ErrorInfo = 0, "pending"
	case t.OnlineOnly && in.EventType == 1:
		st.PushStatus, st.ErrorCode, st.ErrorInfo = -1, -1, lossOfflineTx
	default:
		st.PushStatus, st.ErrorInfo = 1, "success"
	}
	in.IMCommitStat.IMStat = st
	in.OfflinePushStat.OfflineStat = st
	return in
}

// String renders w for logs.
func (w Window) String() string { return fmt.Sprintf("[%d, %d]", w.Start, w.End) }
