package main_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"timd/internal/usersig"
)

// These tests drive the web console in headless Chromium (Debian's
// chromium package) against the real binary. They skip, saying so, when
// no Chromium is installed, and in -short runs. TIMD_SCREENSHOTS=dir
// writes a PNG of each page there (docs/ holds the published ones).

// chromiumPath finds a Chromium binary, or "".
func chromiumPath() string {
	if p := os.Getenv("TIMD_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// browser is one headless Chromium with a fresh profile, and every
// request, request body and WebSocket frame the page sent.
type browser struct {
	t   *testing.T
	ctx context.Context

	mu   sync.Mutex
	sent []string // "METHOD URL\nheaders\nbody" and "ws: payload"
	logs []string // the page's console and uncaught exceptions
}

func newBrowser(t *testing.T) *browser {
	t.Helper()
	if testing.Short() {
		t.Skip("browser tests run in the full suite, not with -short")
	}
	bin := chromiumPath()
	if bin == "" {
		t.Skip("no Chromium found (apt-get install -y chromium, or set TIMD_CHROMIUM): skipping the console's browser tests")
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(bin),
		chromedp.Headless,
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1200, 900),
	}
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelC := chromedp.NewContext(actx)
	ctx, cancelT := context.WithTimeout(ctx, 8*time.Minute)
	t.Cleanup(func() { cancelT(); cancelC(); cancelA() })
	b := &browser{t: t, ctx: ctx}
	listen := chromedp.Listen(ctx, func(ev any) {
		b.mu.Lock()
		defer b.mu.Unlock()
		switch e := ev.(type) {
		case *network.EventRequestWillBeSent:
			var body strings.Builder
			for _, p := range e.Request.PostDataEntries {
				body.Write(p.Bytes)
			}
			b.sent = append(b.sent, fmt.Sprintf("%s %s\n%v\n%s", e.Request.Method, e.Request.URL, e.Request.Headers, body.String()))
		case *network.EventWebSocketFrameSent:
			b.sent = append(b.sent, "ws: "+string(e.Response.PayloadData))
		case *runtime.EventExceptionThrown:
			b.logs = append(b.logs, fmt.Sprintf("exception: %s %v", e.ExceptionDetails.Text, e.ExceptionDetails.Exception))
		case *runtime.EventConsoleAPICalled:
			var args []string
			for _, a := range e.Args {
				args = append(args, string(a.Value)+a.Description)
			}
			b.logs = append(b.logs, fmt.Sprintf("console.%s: %s", e.Type, strings.Join(args, " ")))
		}
	})
	if listen != nil {
		t.Fatalf("start Chromium %s: %v", bin, listen)
	}
	if _, err := chromedp.Call(ctx, network.Enable, network.EnableParams{}); err != nil {
		t.Fatalf("Chromium %s: %v", bin, err)
	}
	if _, err := chromedp.Call(ctx, runtime.Enable, cdp.Empty{}); err != nil {
		t.Fatalf("Chromium %s: %v", bin, err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			b.mu.Lock()
			defer b.mu.Unlock()
			for _, l := range b.logs {
				t.Log("page:", l)
			}
		}
	})
	return b
}

func (b *browser) run(what string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 90*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		var page string
		_ = b.evalErr(`location.href + "\n" + document.body.innerText`, &page)
		b.t.Fatalf("%s: %v\nthe page shows: %s", what, err, page)
	}
}

// text returns the text of the first visible node matching the CSS selector.
func (b *browser) text(sel string) string {
	b.t.Helper()
	s, err := chromedp.Run(b.ctx, chromedp.Text(chromedp.CSS(sel), chromedp.NodeVisible))
	if err != nil {
		b.t.Fatalf("read %s: %v", sel, err)
	}
	return s
}

// waitText waits until the text of sel contains want (generous deadline:
// the machine may be loaded).
func (b *browser) waitText(sel, want string) {
	b.t.Helper()
	var js = fmt.Sprintf(`(() => { const e = document.querySelector(%q); return !!e && e.textContent.includes(%q); })()`, sel, want)
	if _, err := chromedp.Run(b.ctx, chromedp.Poll[bool](js, chromedp.WithPollingTimeout(90*time.Second), chromedp.WithPollingInterval(100*time.Millisecond))); err != nil {
		var now string
		_ = b.evalErr(fmt.Sprintf(`(document.querySelector(%q) || {}).textContent || "(absent)"`, sel), &now)
		b.t.Fatalf("waiting for %q in %s: %v; it shows %q", want, sel, err, now)
	}
}

// eval evaluates a JavaScript expression into out (a pointer).
func (b *browser) eval(js string, out any) {
	b.t.Helper()
	if err := b.evalErr(js, out); err != nil {
		b.t.Fatalf("eval %s: %v", js, err)
	}
}

func (b *browser) evalErr(js string, out any) error {
	raw, err := chromedp.Run(b.ctx, chromedp.Evaluate[json.RawMessage](js))
	if err != nil {
		return err
	}
	return json.Unmarshal(raw, out)
}

// set sets the value of the control sel as typing would (an input event
// follows), as an action.
func set(sel, value string) chromedp.Action[chromedp.Void] {
	js := fmt.Sprintf(`(() => { const e = document.querySelector(%q); e.value = %q; e.dispatchEvent(new Event('input', {bubbles: true})); return true; })()`, sel, value)
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := chromedp.Evaluate[bool](js)(ctx, t)
		return err
	})
}

// requests returns what the page sent so far.
func (b *browser) requests() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.sent...)
}

// screenshot writes the viewport as name.png under TIMD_SCREENSHOTS.
func (b *browser) screenshot(name string) {
	b.t.Helper()
	dir := os.Getenv("TIMD_SCREENSHOTS")
	if dir == "" {
		return
	}
	var ok bool
	b.eval(`window.scrollTo(0, 0); document.activeElement.blur(); true`, &ok)
	b.run("settle", chromedp.Sleep(300*time.Millisecond))
	png, err := chromedp.Run(b.ctx, chromedp.CaptureScreenshot())
	if err != nil {
		b.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
		b.t.Fatal(err)
	}
}

// markup is a UserID and a tag that are HTML: the console must show them
// as text, never run or render them.
const (
	markupUser = `<img src=x onerror=pwned=1>`
	markupTag  = `<b id=bold>t</b><script>pwned=1</script>`
)

// TestE2EConsole signs in with the secret key, reads the overview, counts
// an audience while the Condition is typed, sends, sees the statistics
// change, revokes; shows markup from the data as text; and checks that
// the key never left the browser: no request URL, header, body or
// WebSocket frame holds it, and nothing was stored.
func TestE2EConsole(t *testing.T) {
	b := newBrowser(t)
	p := startApp(t, t.TempDir())
	p.want("timpush/set_attr_name", `{"AttrNames":{"0":"city"}}`, 0)
	p.want("im_open_login_svc/multiaccount_import", `{"Accounts":["u1","u2","u3","u4","u5","console-test-device"]}`, 0)
	p.want("im_open_login_svc/account_import", fmt.Sprintf(`{"UserID":%q}`, markupUser), 0)
	p.want("timpush/add_tag", fmt.Sprintf(`{"UserTags":[{"To_Account":"u1","Tags":["gold"]},{"To_Account":"console-test-device","Tags":["gold"]},{"To_Account":"u2","Tags":["gold","beta"]},{"To_Account":"u3","Tags":["beta"]},{"To_Account":%q,"Tags":[%q]}]}`, markupUser, markupTag), 0)
	p.want("timpush/set_attr", `{"UserAttrs":[{"To_Account":"u1","Attrs":{"city":"Berlin"}}]}`, 0)
	b.run("set the viewport", chromedp.EmulateViewport(1200, 860))

	t.Run("headers", func(t *testing.T) {
		resp, err := http.Get(p.base + "/console/")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "frame-ancestors 'none'") || strings.Contains(csp, "unsafe") {
			t.Errorf("CSP %q", csp)
		}
		if resp.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("nosniff missing: %v", resp.Header)
		}
	})

	// Sign in with the key.
	b.run("open the console", chromedp.Navigate(p.base+"/console/"), chromedp.WaitVisible(chromedp.CSS(`#signin`)))
	b.screenshot("console-signin")
	b.run("sign in",
		chromedp.SendKeys(chromedp.CSS(`input[name=sdkappid]`), fmt.Sprint(e2eApp)),
		set(`input[name=identifier]`, e2eAdmin),
		chromedp.SendKeys(chromedp.CSS(`#secret`), e2eKey),
		chromedp.Click(chromedp.CSS(`#signin button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS(`#stat-accounts`)))
	b.waitText("#stat-accounts", "8") // 7 imported and the admin
	var overviews int
	b.eval(`document.querySelectorAll('#stat-accounts').length`, &overviews)
	if overviews != 1 {
		t.Errorf("after sign-in the overview is shown %d times", overviews)
	}
	pushesBefore := b.text("#stat-pushes .n")
	if pushesBefore != "0" {
		t.Errorf("pushes today before sending: %q", pushesBefore)
	}

	// Compose: the count follows the Condition as it is typed.
	b.run("open compose", chromedp.Navigate(p.base+"/console/#/compose"), chromedp.WaitVisible(chromedp.CSS(`#compose`)))
	b.run("connect the test device", chromedp.Click(chromedp.CSS(`#device button[type=submit]`)))
	b.waitText("#device-state", "console-test-device: open")
	b.waitText("#audience-count", "8 recipients (everyone)")
	b.run("type TagsAnd", chromedp.SendKeys(chromedp.CSS(`input[name=TagsAnd]`), "gold"))
	b.waitText("#audience-count", "3 recipients")
	b.run("type TagsNot", chromedp.SendKeys(chromedp.CSS(`input[name=TagsNot]`), "beta"))
	b.waitText("#audience-count", "2 recipients")
	b.run("clear TagsNot, add an attribute clause", set(`input[name=TagsNot]`, ""),
		chromedp.SendKeys(chromedp.CSS(`input[name=AttrsAnd]`), "city=Berlin"))
	b.waitText("#audience-count", "Refused by timd: error 90039") // tag and attribute clauses together
	b.run("clear AttrsAnd", set(`input[name=AttrsAnd]`, ""), chromedp.SendKeys(chromedp.CSS(`input[name=TagsOr]`), " "))
	b.waitText("#audience-count", "3 recipients")
	b.run("write the push",
		chromedp.SendKeys(chromedp.CSS(`textarea[name=text]`), "Hello gold members"),
		chromedp.SendKeys(chromedp.CSS(`input[name=Title]`), "Gold week"),
		chromedp.SendKeys(chromedp.CSS(`input[name=Desc]`), "Starts now"))
	b.waitText("#preview", "Gold week")
	b.screenshot("console-compose")
	b.run("send", chromedp.Click(chromedp.CSS(`#send`)), chromedp.WaitVisible(chromedp.CSS(`#sent-task`)))
	task := b.text("#sent-task")
	if task == "" {
		t.Fatal("no TaskId shown")
	}
	// The push lands on the test device, which acks it; opening it clicks.
	b.waitText("#device-pushes", "Gold week")
	b.waitText("#device-pushes", task)
	b.screenshot("console-compose-sent")
	b.run("open the push on the device", chromedp.Click(chromedp.CSS(`#device-pushes li button`)))
	b.waitText("#device-pushes", "clicked")
	counts := func() map[string]any {
		for _, x := range p.call("timd_ext/push_history", `{}`)["Tasks"].([]any) {
			if m := x.(map[string]any); m["TaskId"] == task {
				return m
			}
		}
		return nil
	}
	within(t, "the click reaches the statistics", 60*time.Second, func() bool {
		c := counts()
		return c != nil && c["DeliveredCount"] == 1.0 && c["ClickCount"] == 1.0
	})

	// The statistics change.
	b.run("overview again", chromedp.Navigate(p.base+"/console/#/overview"), chromedp.WaitVisible(chromedp.CSS(`#stat-pushes`)))
	b.waitText("#stat-pushes .n", "1")
	b.waitText("#funnel-total", "Total 3 ·")
	b.waitText("#funnel-total", "delivered 1 · clicked 1")
	var views int
	b.eval(`document.querySelectorAll('#stat-pushes').length`, &views)
	if views != 1 {
		t.Errorf("the overview is shown %d times", views)
	}
	b.screenshot("console-overview")

	// Pushes: the task, its funnel, revoke.
	b.run("open pushes", chromedp.Navigate(p.base+"/console/#/pushes?task="+url.QueryEscape(task)), chromedp.WaitVisible(chromedp.CSS(`#history table`)))
	b.waitText("#history", task)
	b.waitText("#task-detail", "Per platform")
	b.screenshot("console-pushes")
	var ok bool
	b.eval(`window.confirm = () => true; true`, &ok)
	b.run("revoke", chromedp.Click(chromedp.CSS(fmt.Sprintf(`button[aria-label="Revoke %s"]`, task))))
	b.waitText("#history tbody", "revoked")
	b.waitText("#device-pushes", "revoked") // the device was told to drop it
	var struck int
	b.eval(`document.querySelectorAll('#device-pushes li.revoked').length`, &struck)
	if struck != 1 {
		t.Errorf("%d revoked pushes shown on the device", struck)
	}
	if r := p.call("timd_ext/push_history", `{}`); !strings.Contains(fmt.Sprint(r["Tasks"]), "State:revoked") {
		t.Errorf("the server does not have the task revoked: %v", r["Tasks"])
	}

	// Markup in the data shows as text.
	b.run("look up the markup user", chromedp.Navigate(p.base+"/console/#/accounts?id="+url.QueryEscape(markupUser)),
		chromedp.WaitVisible(chromedp.CSS(`#account-detail .acct-id`)))
	var shown struct {
		ID, Tag string
		Imgs    int
		Bold    bool
		Pwned   bool
	}
	b.waitText("#account-detail", "Tags")
	b.eval(`({ID: document.querySelector('#account-detail .acct-id').textContent,
		Tag: document.querySelector('#account-detail .tag').textContent,
		Imgs: document.querySelectorAll('main img').length,
		Bold: !!document.getElementById('bold'),
		Pwned: typeof pwned !== 'undefined'})`, &shown)
	if shown.ID != markupUser || shown.Tag != markupTag || shown.Imgs != 0 || shown.Bold || shown.Pwned {
		t.Errorf("markup was rendered: %+v", shown)
	}
	b.screenshot("console-accounts")

	// Import a CSV: a progress bar, and one error per bad line.
	csv := filepath.Join(t.TempDir(), "accounts.csv")
	long := strings.Repeat("x", 40)
	body := "UserID,Tags,city\nimp1,vip;new,Paris\n,vip,Rome\nimp2,,Oslo\n" + long + ",vip,\nimp3,vip,nowhere-but-a-value-that-is-far-longer-than-fifty-bytes\n"
	if err := os.WriteFile(csv, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	b.run("import", chromedp.SetUploadFiles(chromedp.CSS(`input[type=file]`), []string{csv}),
		chromedp.Click(chromedp.CSS(`#import button`)))
	b.waitText("#import-report", "problems")
	var report struct {
		Text       string
		Value, Max float64
	}
	b.eval(`({Text: document.querySelector('#import-report').textContent,
		Value: document.querySelector('#import progress').value, Max: document.querySelector('#import progress').max})`, &report)
	for _, want := range []string{"4 accounts read", "3empty UserID", "5" + long + ": not imported"} {
		if !strings.Contains(report.Text, want) {
			t.Errorf("import report lacks %q: %s", want, report.Text)
		}
	}
	if report.Value != report.Max || report.Max != 4 {
		t.Errorf("progress %v of %v", report.Value, report.Max)
	}
	if r := p.call("timpush/get_tag", `{"To_Account":["imp1"]}`); !strings.Contains(fmt.Sprint(r["UserTags"]), "vip new") {
		t.Errorf("imp1's tags: %v", r["UserTags"])
	}
	b.run("audience", chromedp.Navigate(p.base+"/console/#/audience"), chromedp.WaitVisible(chromedp.CSS(`.tag`)))
	b.waitText("main", markupTag)
	b.eval(`!!document.getElementById('bold') || typeof pwned !== 'undefined'`, &ok)
	if ok {
		t.Error("the audience page rendered a tag as HTML")
	}
	b.screenshot("console-audience")
	b.run("live", chromedp.Navigate(p.base+"/console/#/live"), chromedp.WaitVisible(chromedp.CSS(`#live-online`)))
	b.waitText("#live-hooks", "0")
	b.screenshot("console-live")

	// A refused request shows its code and ErrorInfo.
	b.run("bad attribute", chromedp.Navigate(p.base+"/console/#/compose"), chromedp.WaitVisible(chromedp.CSS(`#compose`)),
		chromedp.SendKeys(chromedp.CSS(`input[name=AttrsOr]`), "nosuch=1"))
	b.waitText("#audience-count", "error 90033")

	// The key never left the browser, and nothing was stored.
	reqs := b.requests()
	if len(reqs) < 10 {
		t.Fatalf("only %d requests seen: the capture is not working", len(reqs))
	}
	v4 := 0
	for _, r := range reqs {
		if strings.Contains(r, "/v4/") {
			v4++
		}
		for _, form := range []string{e2eKey, url.QueryEscape(e2eKey), strings.ToUpper(e2eKey)} {
			if strings.Contains(r, form) {
				t.Errorf("the key left the browser: %.200s", r)
			}
		}
	}
	if v4 < 5 {
		t.Errorf("only %d /v4 calls seen", v4)
	}
	var stored string
	b.eval(`JSON.stringify(localStorage) + JSON.stringify(sessionStorage) + document.cookie`, &stored)
	if strings.Contains(stored, e2eKey) || stored != "{}{}" {
		t.Errorf("the console stored something: %q", stored)
	}
	t.Logf("%d requests checked, %d of them /v4 calls", len(reqs), v4)
}

// TestE2EConsoleErrors: a wrong key is refused with its code and
// ErrorInfo; an expired UserSig says so; a stopped server is reported as
// unreachable; and the console renders on a phone-sized screen.
func TestE2EConsoleErrors(t *testing.T) {
	b := newBrowser(t)
	p := startApp(t, t.TempDir())
	signIn := func(secret, sig string) {
		b.run("sign in", chromedp.Navigate(p.base+"/console/"), chromedp.Reload(), chromedp.WaitVisible(chromedp.CSS(`#signin`)),
			set(`input[name=sdkappid]`, fmt.Sprint(e2eApp)),
			set(`input[name=identifier]`, e2eAdmin),
			set(`#secret`, secret),
			set(`#usersig`, sig),
			chromedp.Click(chromedp.CSS(`#signin button[type=submit]`)))
	}
	signIn("0000"+e2eKey[4:], "")
	b.waitText("#signin", "Refused by timd: error 70009")
	expired := genSig(t, e2eAdmin, 1, time.Now().Unix()-3600)
	signIn("", expired)
	b.waitText("#signin", "expired")

	b.run("phone", chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(2), chromedp.EmulateMobile, chromedp.EmulatePortrait))
	// Keyboard only: the SDKAppID field has the focus, Tab moves on (and
	// selects the prefilled identifier), Enter submits.
	b.run("sign in from the keyboard", chromedp.Navigate(p.base+"/console/"), chromedp.Reload(), chromedp.WaitVisible(chromedp.CSS(`#signin`)),
		chromedp.KeyEvent(fmt.Sprint(e2eApp)+"\t"+e2eAdmin+"\t"+e2eKey+"\r"))
	b.run("compose on a phone", chromedp.WaitVisible(chromedp.CSS(`#stat-accounts`)),
		chromedp.Navigate(p.base+"/console/#/compose"), chromedp.WaitVisible(chromedp.CSS(`#compose`)))
	var overflow bool
	b.eval(`document.documentElement.scrollWidth > window.innerWidth + 1`, &overflow)
	if overflow {
		t.Error("the compose page scrolls sideways on a 390 px screen")
	}
	b.screenshot("console-compose-phone")

	p.kill()
	b.run("type after the server stopped", chromedp.SendKeys(chromedp.CSS(`input[name=TagsOr]`), "x"))
	b.waitText("#audience-count", "Server unreachable")
}

// genSig makes a UserSig of the e2e app issued at now, valid expire seconds.
func genSig(t *testing.T, id string, expire, now int64) string {
	t.Helper()
	s, err := usersig.Gen(e2eApp, e2eKey, id, expire, now)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
