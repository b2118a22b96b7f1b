package config

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// samples holds a valid, non-default value for every flag that is also a
// file key. A new flag without a sample fails TestFileKeysAreFlagNames.
var samples = map[string]struct {
	arg  string // as a flag or environment value
	json string // as a file value
}{
	"listen":               {"0.0.0.0:9999", `"0.0.0.0:9999"`},
	"store":                {"postgres://timd@db/timd", `"postgres://timd@db/timd"`}, // --snapshot needs PostgreSQL
	"limits":               {"off", `false`},
	"log-level":            {"debug", `"debug"`},
	"body-limit":           {"65536", `65536`},
	"read-header-timeout":  {"3s", `"3s"`},
	"read-timeout":         {"4s", `"4s"`},
	"write-timeout":        {"5s", `"5s"`},
	"idle-timeout":         {"6s", `"6s"`},
	"tls-cert":             {"/etc/timd/cert.pem", `"/etc/timd/cert.pem"`},
	"tls-key":              {"/etc/timd/key.pem", `"/etc/timd/key.pem"`},
	"store-cache":          {"64MiB", `"64MiB"`},
	"store-read-cache":     {"2097152", `2097152`},
	"memory-limit":         {"1GiB", `"1GiB"`},
	"gc-heap-floor":        {"64MiB", `"64MiB"`},
	"audience-cache":       {"512MiB", `"512MiB"`},
	"pprof-listen":         {"127.0.0.1:6060", `"127.0.0.1:6060"`},
	"usersig-skew":         {"2m", `"2m"`},
	"index-sync-wait":      {"500ms", `"500ms"`},
	"configured-apps-only": {"on", `true`},
	"nats":                 {"nats://127.0.0.1:4222", `"nats://127.0.0.1:4222"`},
	"nats-prefix":          {"prod.eu", `"prod.eu"`},
	"change-retention":     {"36h", `"36h"`},
	"snapshot":             {"/var/lib/timd/index.snap", `"/var/lib/timd/index.snap"`},
}

// needs lists the settings another must accompany.
var needs = map[string]string{"tls-cert": "tls-key", "tls-key": "tls-cert", "snapshot": "store"}

func writeFile(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "timd.json")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// settings is c without the record of where each setting came from.
func settings(c Config) Config {
	c.src = nil
	for i := range c.Apps {
		c.Apps[i].src = ""
	}
	return c
}

// TestFileKeysAreFlagNames checks the one naming rule: each flag (but
// --config and --app) is a file key of the same name, also spelt with
// `_`, and an environment variable TIMD_<NAME>; all three set the same
// value.
func TestFileKeysAreFlagNames(t *testing.T) {
	FlagSet().VisitAll(func(f *flag.Flag) {
		if f.Name == "config" || f.Name == "app" {
			return
		}
		s, ok := samples[f.Name]
		if !ok {
			t.Errorf("flag --%s has no sample value in this test", f.Name)
			return
		}
		args := []string{"--" + f.Name, s.arg}
		env := map[string]string{EnvName(f.Name): s.arg}
		obj := fmt.Sprintf(`"%s":%s`, f.Name, s.json)
		oldObj := fmt.Sprintf(`"%s":%s`, strings.ReplaceAll(f.Name, "-", "_"), s.json)
		if other, ok := needs[f.Name]; ok {
			o := samples[other]
			args = append(args, "--"+other, o.arg)
			env[EnvName(other)] = o.arg
			obj += fmt.Sprintf(`,"%s":%s`, other, o.json)
			oldObj += fmt.Sprintf(`,"%s":%s`, other, o.json)
		}
		byFlag, err := Load(args, env2(nil))
		if err != nil {
			t.Fatalf("--%s: %v", f.Name, err)
		}
		if reflect.DeepEqual(settings(byFlag), settings(Default())) {
			t.Fatalf("--%s %s changed nothing", f.Name, s.arg)
		}
		byEnv, err := Load(nil, env2(env))
		if err != nil {
			t.Fatalf("%s: %v", EnvName(f.Name), err)
		}
		byFile, err := Load([]string{"--config", writeFile(t, "{"+obj+"}")}, env2(nil))
		if err != nil {
			t.Fatalf("file key %s: %v", f.Name, err)
		}
		byOldFile, err := Load([]string{"--config", writeFile(t, "{"+oldObj+"}")}, env2(nil))
		if err != nil {
			t.Fatalf("file key %s with _: %v", f.Name, err)
		}
		for what, c := range map[string]Config{"environment": byEnv, "file": byFile, "file with _": byOldFile} {
			if !reflect.DeepEqual(settings(c), settings(byFlag)) {
				t.Errorf("%s: %s gives %+v, the flag %+v", f.Name, what, settings(c), settings(byFlag))
			}
		}
	})
}

func env2(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

// TestFileErrors: every refused file names the file, the key and the
// reason.
func TestFileErrors(t *testing.T) {
	app := func(extra string) string {
		return `{"apps":[{"sdkappid":1400000001,"secret-key":"k","admins":["a"]` + extra + `}]}`
	}
	for _, c := range []struct {
		name, body string
		want       []string // substrings of the error besides the file name
	}{
		{"unknown key", `{"listne":"x"}`, []string{`key "listne"`, "unknown key", "log-level"}},
		{"misspelt key", `{"log-lvel":"info"}`, []string{`key "log-lvel"`, "unknown key"}},
		{"app is a flag only", `{"app":"1:k:a"}`, []string{`key "app"`, "unknown key"}},
		{"config is a flag only", `{"config":"other.json"}`, []string{`key "config"`, "unknown key"}},
		{"both spellings", `{"log_level":"info","log-level":"warn"}`, []string{`"log-level"`, "given twice", `"log_level"`}},
		{"same key twice", `{"store":"a","store":"b"}`, []string{`"store"`, "given twice"}},
		{"not an object", `["listen"]`, []string{"want a JSON object"}},
		{"not JSON", `listen: x`, []string{"not JSON"}},
		{"cut short", `{"listen":"x:1"`, []string{"not JSON"}},
		{"data after the object", `{"listen":"x:1"} {}`, []string{"data after the object"}},
		{"object value", `{"listen":{"host":"x"}}`, []string{`key "listen"`, "want a string, a number or a boolean"}},
		{"bad listen", `{"listen":"8080"}`, []string{`key "listen"`, "host:port"}},
		{"listen port out of range", `{"listen":"127.0.0.1:70000"}`, []string{`key "listen"`, "0 to 65535"}},
		{"empty store", `{"store":""}`, []string{`key "store"`, "must not be empty"}},
		{"bad limits", `{"limits":"maybe"}`, []string{`key "limits"`, "want on or off"}},
		{"bad log level", `{"log-level":"loud"}`, []string{`key "log-level"`, "debug, info, warn or error"}},
		{"body limit too small", `{"body-limit":10}`, []string{`key "body-limit"`, "out of range", "1024"}},
		{"body limit too large", `{"body_limit":1073741824}`, []string{`key "body_limit"`, "out of range", "67108864"}},
		{"body limit not a number", `{"body-limit":"lots"}`, []string{`key "body-limit"`, "whole number"}},
		{"body limit fraction", `{"body-limit":2048.5}`, []string{`key "body-limit"`, "whole number"}},
		{"timeout without unit", `{"read-header-timeout":"10"}`, []string{`key "read-header-timeout"`, "unit"}},
		{"timeout as number", `{"idle-timeout":10}`, []string{`key "idle-timeout"`, "unit"}},
		{"zero timeout", `{"read-timeout":"0s"}`, []string{`key "read-timeout"`, "out of range"}},
		{"negative timeout", `{"write_timeout":"-1s"}`, []string{`key "write_timeout"`, "out of range"}},
		{"timeout over a day", `{"idle-timeout":"25h"}`, []string{`key "idle-timeout"`, "out of range"}},
		{"usersig skew over an hour", `{"usersig-skew":"61m"}`, []string{`key "usersig-skew"`, "out of range"}},
		{"negative usersig skew", `{"usersig_skew":"-1s"}`, []string{`key "usersig_skew"`, "out of range"}},
		{"usersig skew without unit", `{"usersig-skew":300}`, []string{`key "usersig-skew"`, "unit"}},
		{"index sync wait over a minute", `{"index-sync-wait":"61s"}`, []string{`key "index-sync-wait"`, "out of range"}},
		{"negative index sync wait", `{"index_sync_wait":"-1ms"}`, []string{`key "index_sync_wait"`, "out of range"}},
		{"tls cert without key", `{"tls-cert":"c.pem"}`, []string{`key "tls-cert"`, "--tls-key", "both or neither"}},
		{"tls key without cert", `{"tls-key":"k.pem"}`, []string{`key "tls-key"`, "both or neither"}},
		{"apps not a list", `{"apps":{"sdkappid":1}}`, []string{`key "apps"`, "list of app objects"}},
		{"app unknown key", app(`,"secret":"x"`), []string{"apps[0]", `key "secret"`, "unknown key", "secret-key"}},
		{"app id zero", `{"apps":[{"sdkappid":0}]}`, []string{"apps[0]", `key "sdkappid"`, "1 to 4294967295"}},
		{"app id too big", `{"apps":[{"sdkappid":4294967296}]}`, []string{"apps[0]", `key "sdkappid"`, "1 to 4294967295"}},
		{"app id as string", `{"apps":[{"sdkappid":"1400000001"}]}`, []string{"apps[0]", `key "sdkappid"`}},
		{"empty key", `{"apps":[{"sdkappid":1,"secret_key":""}]}`, []string{"apps[0]", `key "secret_key"`, "non-empty"}},
		{"admins twice", app(`,"admins":"a"`), []string{"apps[0]", `key "admins"`, "given twice"}},
		{"admins wrong type", `{"apps":[{"sdkappid":1,"secret-key":"k","admins":"a"}]}`, []string{"apps[0]", `key "admins"`, "list of strings"}},
		{"no admins", `{"apps":[{"sdkappid":1,"secret-key":"k","admins":[]}]}`, []string{"apps[0]", "1 to 10 admins"}},
		{"eleven admins", `{"apps":[{"sdkappid":1,"secret-key":"k","admins":["a","b","c","d","e","f","g","h","i","j","k"]}]}`, []string{"apps[0]", "1 to 10 admins"}},
		{"no secret key", `{"apps":[{"sdkappid":1,"admins":["a"]}]}`, []string{"apps[0]", "no secret key"}},
		{"second app bad", `{"apps":[{"sdkappid":1,"secret-key":"k","admins":["a"]},{"sdkappid":2,"secret-key":"k","admins":[""]}]}`, []string{"apps[1]", "1 to 32 bytes"}},
		{"duplicate app", `{"apps":[{"sdkappid":1,"secret-key":"k","admins":["a"]},{"sdkappid":1,"secret-key":"k","admins":["a"]}]}`, []string{"apps[1]", "configured twice"}},
		{"callback not a URL", app(`,"callback-url":"example.com/cb"`), []string{"apps[0]", `key "callback-url"`, "http"}},
		{"callback relative", app(`,"callback-url":"/cb"`), []string{"apps[0]", `key "callback-url"`, "absolute"}},
		{"callback ftp", app(`,"callback_url":"ftp://example.com/cb"`), []string{"apps[0]", `key "callback_url"`, "http"}},
		{"negative rate", app(`,"rates":{"timpush/set_attr":-1}`), []string{"apps[0]", `key "rates"`, "timpush/set_attr", "out of range"}},
		{"rate not a number", app(`,"rates":{"timpush/set_attr":"fast"}`), []string{"apps[0]", `key "rates"`, "number"}},
		{"unknown quota", app(`,"quotas":{"push-per-dya":5}`), []string{"apps[0]", `key "quotas"`, `"push-per-dya"`, "unknown quota", "push-per-day"}},
		{"negative quota", app(`,"quotas":{"push_per_day":-1}`), []string{"apps[0]", `key "quotas"`, "out of range"}},
		{"quota too large", app(`,"quotas":{"push-body-bytes":1073741824}`), []string{"apps[0]", `key "quotas"`, "out of range"}},
		{"quota fraction", app(`,"quotas":{"push-per-day":1.5}`), []string{"apps[0]", `key "quotas"`, "whole number"}},
		{"quota twice", app(`,"quotas":{"push-per-day":1,"push_per_day":2}`), []string{"apps[0]", "given twice"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := writeFile(t, c.body)
			_, err := Load([]string{"--config", path}, env2(nil))
			if err == nil {
				t.Fatalf("accepted %s", c.body)
			}
			for _, w := range append([]string{"config " + path}, c.want...) {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
}

// TestFileLimits: a file over 1 MiB and a missing file are refused by
// name.
func TestFileLimits(t *testing.T) {
	big := writeFile(t, `{"store":"`+strings.Repeat("a", maxFileSize)+`"}`)
	if _, err := Load([]string{"--config", big}, env2(nil)); err == nil || !strings.Contains(err.Error(), big) ||
		!strings.Contains(err.Error(), "larger than") {
		t.Fatalf("big file: %v", err)
	}
	missing := filepath.Join(t.TempDir(), "none.json")
	if _, err := Load(nil, env2(map[string]string{"TIMD_CONFIG": missing})); err == nil || !strings.Contains(err.Error(), missing) {
		t.Fatalf("missing file: %v", err)
	}
}

// TestFileApp reads an app with every key, in both spellings, and the
// quota names in both spellings.
func TestFileApp(t *testing.T) {
	for _, body := range []string{
		`{"apps":[{"sdkappid":1400000001,"secret-key":"k","admins":["a","b"],"callback-url":"https://example.com/cb",
			"rates":{"timpush/set_attr":5},"quotas":{"push-per-day":7,"fanout-per-second":100}}]}`,
		`{"apps":[{"sdkappid":1400000001,"secret_key":"k","admins":["a","b"],"callback_url":"https://example.com/cb",
			"rates":{"timpush/set_attr":5},"quotas":{"push_per_day":7,"fanout_per_second":100}}]}`,
	} {
		c, err := Load([]string{"--config", writeFile(t, body)}, env2(nil))
		if err != nil {
			t.Fatal(err)
		}
		want := []AppConfig{{SDKAppID: 1400000001, SecretKey: "k", Admins: []string{"a", "b"}, CallbackURL: "https://example.com/cb",
			Rates: map[string]float64{"timpush/set_attr": 5}, Quotas: map[string]int64{"push_per_day": 7, "fanout_per_second": 100}}}
		if got := settings(c).Apps; !reflect.DeepEqual(got, want) {
			t.Fatalf("apps %+v, want %+v", got, want)
		}
		if err := c.CheckRates([]string{"timpush/set_attr"}); err != nil {
			t.Fatal(err)
		}
	}
}

// TestCheckRates refuses a rate for a command timd does not serve, naming
// the file and the app.
func TestCheckRates(t *testing.T) {
	path := writeFile(t, `{"apps":[{"sdkappid":1,"secret-key":"k","admins":["a"],"rates":{"timpush/set_atr":5}}]}`)
	c, err := Load([]string{"--config", path}, env2(nil))
	if err != nil {
		t.Fatal(err)
	}
	err = c.CheckRates([]string{"timpush/set_attr"})
	if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "apps[0]") ||
		!strings.Contains(err.Error(), `unknown command "timpush/set_atr"`) {
		t.Fatalf("CheckRates: %v", err)
	}
}

// TestEnvAndFlagErrorsNameTheirSource: a bad value from the environment
// names the variable, from a flag the flag.
func TestEnvAndFlagErrorsNameTheirSource(t *testing.T) {
	for _, c := range []struct {
		args []string
		env  map[string]string
		want string
	}{
		{nil, map[string]string{"TIMD_BODY_LIMIT": "10"}, "TIMD_BODY_LIMIT: 10 is out of range"},
		{nil, map[string]string{"TIMD_IDLE_TIMEOUT": "0s"}, "TIMD_IDLE_TIMEOUT: 0s is out of range"},
		{nil, map[string]string{"TIMD_LISTEN": "nope"}, "TIMD_LISTEN: want host:port"},
		{nil, map[string]string{"TIMD_TLS_CERT": "c.pem"}, "TIMD_TLS_CERT: --tls-cert and --tls-key go together"},
		{nil, map[string]string{"TIMD_APP": "1:k"}, "TIMD_APP: want SDKAPPID:SECRETKEY:ADMIN"},
		{[]string{"--body-limit", "10"}, nil, "-body-limit: 10 is out of range"},
		{[]string{"--listen", "nope"}, nil, "-listen: want host:port"},
		{[]string{"--tls-key", "k.pem"}, nil, "--tls-key: --tls-cert and --tls-key go together"},
		{[]string{"--app", "1:k:" + strings.Repeat("a", 33)}, nil, "--app 1: app 1: admin"},
	} {
		_, err := Load(c.args, env2(c.env))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Load(%v, %v) = %v, want %q", c.args, c.env, err, c.want)
		}
	}
	// A flag wins over a bad environment value, which is never read.
	if _, err := Load([]string{"--body-limit", "2048"}, env2(map[string]string{"TIMD_BODY_LIMIT": "10"})); err != nil {
		t.Fatalf("flag over a bad environment value: %v", err)
	}
}

// TestHelp: --help and -h report flag.ErrHelp, and the flag set lists
// every setting with its default.
func TestHelp(t *testing.T) {
	for _, a := range []string{"--help", "-h", "-help"} {
		if _, err := Load([]string{a}, env2(nil)); err != flag.ErrHelp {
			t.Fatalf("Load(%s) = %v, want flag.ErrHelp", a, err)
		}
	}
	if f := FlagSet().Lookup("body-limit"); f == nil || f.DefValue != "1048576" {
		t.Fatalf("body-limit default: %+v", f)
	}
	if f := FlagSet().Lookup("limits"); f == nil || f.DefValue != "on" {
		t.Fatalf("limits default: %+v", f)
	}
}
