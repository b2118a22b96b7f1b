package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"timd/internal/im"
	"timd/internal/usersig"
)

// restSink imports through a running server's REST API: per 100
// accounts, multiaccount_import, then set_attr for those with attributes,
// then add_tag in rounds of at most 10 tags per account, with
// o.concurrency such groups in flight. A retryable answer (rate limits,
// "server is starting", a transport error) is retried with back-off.
type restSink struct {
	base   string
	app    uint64
	admin  string
	sig    string
	conc   int
	client *http.Client
	slots  im.AttrSchema
}

// restRetries bounds the attempts of one REST call.
const restRetries = 8

func newRESTSink(ctx context.Context, o importOptions) (*restSink, error) {
	u, err := url.Parse(o.url)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, errUsage{fmt.Errorf("--url %q: want http://HOST:PORT or https://…", o.url)}
	}
	sig, err := usersig.Gen(o.app, o.key, o.admin, defaultExpire, time.Now().Unix())
	if err != nil {
		return nil, err
	}
	return &restSink{base: strings.TrimRight(o.url, "/"), app: o.app, admin: o.admin, sig: sig, conc: o.concurrency,
		client: &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: o.concurrency}}}, nil
}

// envelope is the common part of every answer.
type envelope struct {
	ActionStatus string
	ErrorCode    int
	ErrorInfo    string
}

// retryable reports codes worth another attempt.
func retryable(code int) bool {
	switch code {
	case im.CodeRESTRate, im.CodeAppRate, im.CodeAccountInternal, im.CodePushInternal:
		return true
	}
	return false
}

// call posts body to /v4/cmd and decodes the answer into out, retrying
// what is retryable. A final non-zero ErrorCode is an *im.Error.
func (r *restSink) call(ctx context.Context, cmd string, body, out any) error {
	raw, err := json.Marshal(body)
	if err != nil {
		return err
	}
	var last error
	for attempt := range restRetries {
		if attempt > 0 {
			d := time.Duration(50<<min(attempt, 6)) * time.Millisecond
			select {
			case <-time.After(d + time.Duration(rand.Int64N(int64(d)))):
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		var env envelope
		env, last = r.post(ctx, cmd, raw, out)
		if last == nil && env.ErrorCode == 0 {
			return nil
		}
		if last == nil {
			last = im.Errorf(env.ErrorCode, "%s: %s", cmd, env.ErrorInfo)
			if !retryable(env.ErrorCode) {
				return last
			}
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	return fmt.Errorf("%s: giving up after %d attempts: %w", cmd, restRetries, last)
}

func (r *restSink) post(ctx context.Context, cmd string, raw []byte, out any) (envelope, error) {
	q := url.Values{"sdkappid": {strconv.FormatUint(r.app, 10)}, "identifier": {r.admin}, "usersig": {r.sig},
		"random": {strconv.FormatUint(uint64(rand.Uint32()), 10)}, "contenttype": {"json"}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.base+"/v4/"+cmd+"?"+q.Encode(), bytes.NewReader(raw))
	if err != nil {
		return envelope{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := r.client.Do(req)
	if err != nil {
		return envelope{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return envelope{}, err
	}
	if resp.StatusCode != http.StatusOK {
		return envelope{}, fmt.Errorf("%s: HTTP %d", cmd, resp.StatusCode)
	}
	var env envelope
	if err := json.Unmarshal(b, &env); err != nil {
		return envelope{}, fmt.Errorf("%s: answer is not JSON: %.80q", cmd, b)
	}
	if env.ErrorCode == 0 && out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return envelope{}, fmt.Errorf("%s: %w", cmd, err)
		}
	}
	return env, nil
}

func (r *restSink) defineAttrs(ctx context.Context, names []string) error {
	cur, err := r.schema(ctx)
	if err != nil || len(names) == 0 {
		return err
	}
	add, err := newSlots(cur, names)
	if err != nil || len(add) == 0 {
		return err
	}
	wire := map[string]string{}
	for slot, name := range add {
		wire[strconv.Itoa(slot)] = name
	}
	return r.call(ctx, "timpush/set_attr_name", map[string]any{"AttrNames": wire}, nil)
}

func (r *restSink) schema(ctx context.Context) (*im.AttrSchema, error) {
	var out struct {
		AttrNames map[string]string
		AttrTypes map[string]int
	}
	if err := r.call(ctx, "timpush/get_attr_name", map[string]any{}, &out); err != nil {
		return nil, err
	}
	var s im.AttrSchema
	for k, name := range out.AttrNames {
		if slot, err := strconv.Atoi(k); err == nil && slot >= 0 && slot < len(s) {
			s[slot] = im.AttrSlot{Name: name, Type: im.AcctType(out.AttrTypes[k])}
		}
	}
	r.slots = s
	return &s, nil
}

func (r *restSink) batchSize() int { return 4 * r.conc * im.MaxAccountsPerCall }

func (r *restSink) close() { r.client.CloseIdleConnections() }

// load sends the batch in groups of 100, o.concurrency at a time.
func (r *restSink) load(ctx context.Context, batch []im.BulkAccount) ([]error, error) {
	errs := make([]error, len(batch))
	groups := make(chan int)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var fatal error
	for range r.conc {
		wg.Go(func() {
			for start := range groups {
				end := min(len(batch), start+im.MaxAccountsPerCall)
				if err := r.group(ctx, batch[start:end], errs[start:end]); err != nil {
					mu.Lock()
					fatal = err
					mu.Unlock()
				}
			}
		})
	}
	for start := 0; start < len(batch); start += im.MaxAccountsPerCall {
		groups <- start
	}
	close(groups)
	wg.Wait()
	return errs, fatal
}

// group imports up to 100 accounts; errs receives each one's first
// failure. The error is a failure of a whole call.
func (r *restSink) group(ctx context.Context, accts []im.BulkAccount, errs []error) error {
	type acct struct {
		UserID  string `json:"UserID"`
		Nick    string `json:"Nick,omitempty"`
		FaceURL string `json:"FaceUrl,omitempty"`
	}
	list := make([]acct, len(accts))
	for i, a := range accts {
		list[i] = acct{a.UserID, a.Nick, a.FaceURL}
	}
	var imp struct{ FailAccounts []string }
	if err := r.call(ctx, "im_open_login_svc/multiaccount_import", map[string]any{"AccountList": list}, &imp); err != nil {
		return err
	}
	at := map[string][]int{}
	for i, a := range accts {
		at[a.UserID] = append(at[a.UserID], i)
	}
	fail := func(id string, code int, info string) {
		for _, i := range at[id] {
			if errs[i] == nil {
				errs[i] = im.Errorf(code, "%s", info)
			}
		}
	}
	for _, id := range imp.FailAccounts {
		fail(id, im.CodeAccountBadParam, "multiaccount_import refused the UserID")
	}
	type partial struct {
		ErrorList []struct {
			ToAccount string `json:"To_Account"`
			ErrorCode int
			ErrorInfo string
		}
	}
	send := func(cmd string, body any) error {
		var p partial
		if err := r.call(ctx, cmd, body, &p); err != nil {
			return err
		}
		for _, e := range p.ErrorList {
			fail(e.ToAccount, e.ErrorCode, cmd+": "+e.ErrorInfo)
		}
		return nil
	}
	type userAttrs struct {
		ToAccount string            `json:"To_Account"`
		Attrs     map[string]string `json:"Attrs"`
	}
	var ua []userAttrs
	for i, a := range accts {
		if errs[i] != nil || a.Attrs == (im.AttrValues{}) {
			continue
		}
		m := map[string]string{}
		for slot, v := range a.Attrs {
			if v != "" {
				m[r.slots[slot].Name] = v
			}
		}
		ua = append(ua, userAttrs{a.UserID, m})
	}
	if len(ua) > 0 {
		if err := send("timpush/set_attr", map[string]any{"UserAttrs": ua}); err != nil {
			return err
		}
	}
	type userTags struct {
		ToAccount string   `json:"To_Account"`
		Tags      []string `json:"Tags"`
	}
	for round := 0; ; round++ {
		var ut []userTags
		lo := round * im.MaxTagsPerAdd
		for i, a := range accts {
			if errs[i] == nil && len(a.Tags) > lo {
				ut = append(ut, userTags{a.UserID, a.Tags[lo:min(len(a.Tags), lo+im.MaxTagsPerAdd)]})
			}
		}
		if len(ut) == 0 {
			return nil
		}
		if err := send("timpush/add_tag", map[string]any{"UserTags": ut}); err != nil {
			return err
		}
	}
}
