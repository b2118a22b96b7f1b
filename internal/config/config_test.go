package config

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestDefaults(t *testing.T) {
	c, err := Load(nil, env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.Listen != "127.0.0.1:8080" || c.Store != "./timd-data" || !c.Limits || c.LogLevel != "info" || c.BodyLimit != 1<<20 {
		t.Fatalf("defaults: %+v", c)
	}
	if c.ReadHeaderTimeout != Duration(10*time.Second) || c.ReadTimeout != Duration(30*time.Second) ||
		c.WriteTimeout != Duration(30*time.Second) || c.IdleTimeout != Duration(120*time.Second) {
		t.Fatalf("default timeouts: %+v", c)
	}
}

// TestTimeouts reads the HTTP time-outs from the file as duration strings.
func TestTimeouts(t *testing.T) {
	file := filepath.Join(t.TempDir(), "timd.json")
	os.WriteFile(file, []byte(`{"read_header_timeout":"250ms","read_timeout":"1s","write_timeout":"2m","idle_timeout":"1h30m"}`), 0o600)
	c, err := Load([]string{"--config", file}, env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.ReadHeaderTimeout != Duration(250*time.Millisecond) || c.ReadTimeout != Duration(time.Second) ||
		c.WriteTimeout != Duration(2*time.Minute) || c.IdleTimeout != Duration(90*time.Minute) {
		t.Fatalf("timeouts: %+v", c)
	}
	if s := c.String(); !strings.Contains(s, "read-header-timeout=250ms") || !strings.Contains(s, "idle-timeout=1h30m0s") {
		t.Fatalf("String() = %s", s)
	}
	// Only the fields given change; null keeps the default.
	os.WriteFile(file, []byte(`{"idle_timeout":"5s","read_timeout":null}`), 0o600)
	if c, err = Load([]string{"--config", file}, env(nil)); err != nil || c.IdleTimeout != Duration(5*time.Second) ||
		c.ReadHeaderTimeout != Duration(10*time.Second) || c.ReadTimeout != Duration(30*time.Second) {
		t.Fatalf("partial timeouts: %v %+v", err, c)
	}
	b, _ := json.Marshal(c.IdleTimeout)
	if string(b) != `"5s"` {
		t.Fatalf("MarshalJSON = %s", b)
	}
}

// TestPrecedence checks flags over environment over file.
func TestPrecedence(t *testing.T) {
	file := filepath.Join(t.TempDir(), "timd.json")
	os.WriteFile(file, []byte(`{"listen":"file:1","store":"/file","log_level":"warn","limits":true,
		"apps":[{"sdkappid":1400000001,"secret_key":"k1","admins":["a"],"rates":{"timpush/set_attr":5},"callback_url":"http://cb"}]}`), 0o600)
	c, err := Load([]string{"--config", file, "--listen", "flag:1"}, env(map[string]string{
		"TIMD_LISTEN": "env:1", "TIMD_STORE": "/env", "TIMD_LIMITS": "off"}))
	if err != nil {
		t.Fatal(err)
	}
	if c.Listen != "flag:1" || c.Store != "/env" || c.LogLevel != "warn" || c.Limits {
		t.Fatalf("precedence: %+v", c)
	}
	// A flag app with the file's id keeps the file's rates and callback.
	c, err = Load([]string{"--config", file, "--app", "1400000001:k2:x,y", "--app", "1400000002:k3:z"}, env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Apps) != 2 || c.Apps[0].SecretKey != "k2" || c.Apps[0].Rates["timpush/set_attr"] != 5 ||
		c.Apps[0].CallbackURL != "http://cb" || strings.Join(c.Apps[0].Admins, ",") != "x,y" || c.Apps[1].SDKAppID != 1400000002 {
		t.Fatalf("apps: %+v", c.Apps)
	}
	c, err = Load(nil, env(map[string]string{"TIMD_APP": "1400000005:k:a 1400000006:k:b", "TIMD_CONFIG": file}))
	if err != nil || len(c.Apps) != 3 {
		t.Fatalf("TIMD_APP: %v %+v", err, c.Apps)
	}
}

func TestInvalid(t *testing.T) {
	dir := t.TempDir()
	n := 0
	write := func(s string) string { // a file per case: the cases are built before they run
		n++
		p := filepath.Join(dir, fmt.Sprintf("c%d.json", n))
		os.WriteFile(p, []byte(s), 0o600)
		return p
	}
	for _, c := range []struct {
		name string
		args []string
	}{
		{"bad app syntax", []string{"--app", "1400000001:key"}},
		{"duplicate flag app", []string{"--app", "1400000001:k:a", "--app", "1400000001:k2:b"}},
		{"bad app id", []string{"--app", "abc:key:admin"}},
		{"app id zero", []string{"--app", "0:key:admin"}},
		{"empty key", []string{"--app", "1400000001::admin"}},
		{"eleven admins", []string{"--app", "1400000001:k:a,b,c,d,e,f,g,h,i,j,k"}},
		{"long admin", []string{"--app", "1400000001:k:" + strings.Repeat("a", 33)}},
		{"empty admin", []string{"--app", "1400000001:k:a,"}},
		{"duplicate app", []string{"--config", write(`{"apps":[{"sdkappid":1,"secret_key":"k","admins":["a"]},{"sdkappid":1,"secret_key":"k","admins":["a"]}]}`)}},
		{"unknown file key", []string{"--config", write(`{"listne":"x"}`)}},
		{"not JSON", []string{"--config", write(`listen: x`)}},
		{"missing file", []string{"--config", filepath.Join(dir, "none.json")}},
		{"negative rate", []string{"--config", write(`{"apps":[{"sdkappid":1,"secret_key":"k","admins":["a"],"rates":{"x":-1}}]}`)}},
		{"tiny body limit", []string{"--config", write(`{"body_limit":10}`)}},
		{"timeout without unit", []string{"--config", write(`{"read_header_timeout":"10"}`)}},
		{"timeout as number", []string{"--config", write(`{"idle_timeout":10}`)}},
		{"zero timeout", []string{"--config", write(`{"read_timeout":"0s"}`)}},
		{"negative timeout", []string{"--config", write(`{"write_timeout":"-1s"}`)}},
		{"garbage timeout", []string{"--config", write(`{"idle_timeout":"soon"}`)}},
		{"bad limits", []string{"--limits", "maybe"}},
		{"bad log level", []string{"--log-level", "loud"}},
		{"nats without scheme", []string{"--nats", "127.0.0.1:4222"}},
		{"nats http scheme", []string{"--nats", "http://127.0.0.1:4222"}},
		{"nats one bad of two", []string{"--nats", "nats://a:4222,b"}},
		{"nats empty", []string{"--nats", ""}},
		{"nats prefix wildcard", []string{"--nats-prefix", "timd.*"}},
		{"nats prefix tail", []string{"--nats-prefix", "timd.>"}},
		{"nats prefix empty token", []string{"--nats-prefix", "a..b"}},
		{"nats prefix space", []string{"--nats-prefix", "a b"}},
		{"stray argument", []string{"extra"}},
		{"unknown flag", []string{"--nope"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			if _, err := Load(c.args, env(nil)); err == nil {
				t.Fatalf("Load(%v) accepted", c.args)
			}
		})
	}
}

func TestStringRedactsKeys(t *testing.T) {
	c, err := Load([]string{"--app", "1400000001:supersecretkey:admin"}, env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if s := c.String(); strings.Contains(s, "supersecretkey") || !strings.Contains(s, "1400000001") {
		t.Fatalf("String() = %s", s)
	}
}

// TestErrorsHideKeys: a rejected --app, TIMD_APP or file app is reported
// without its secret key (the flag package would quote the whole value).
func TestErrorsHideKeys(t *testing.T) {
	const key = "d3adb33fd3adb33fd3adb33fd3adb33f"
	file := filepath.Join(t.TempDir(), "timd.json")
	os.WriteFile(file, []byte(`{"apps":[{"sdkappid":1400000001,"secret_key":"`+key+`","admins":[]}]}`), 0o600)
	for _, c := range []struct {
		args []string
		env  map[string]string
	}{
		{[]string{"--app", "1400000001:" + key}, nil},
		{[]string{"--app", "x:" + key + ":admin"}, nil},
		{[]string{"--app", "0:" + key + ":admin"}, nil},
		{[]string{"--app", "1400000001:" + key + ":a,b,c,d,e,f,g,h,i,j,k"}, nil},
		{[]string{"--app", "1400000001:" + key + ":"}, nil},
		{nil, map[string]string{"TIMD_APP": "1400000001:" + key}},
		{[]string{"--config", file}, nil},
	} {
		_, err := Load(c.args, env(c.env))
		if err == nil {
			t.Fatalf("Load(%v, %v) accepted", c.args, c.env)
		}
		if strings.Contains(err.Error(), key) || strings.Contains(err.Error(), key[:16]) {
			t.Fatalf("Load(%v, %v) error shows the key: %v", c.args, c.env, err)
		}
	}
}

// TestMemorySettings reads the store cache sizes and the memory limit from
// the file, the environment and flags (in that precedence), in bytes or
// with a unit, and rejects sizes that cannot work.
func TestMemorySettings(t *testing.T) {
	c, err := Load(nil, env(nil))
	if err != nil || c.StoreCache != 32<<20 || c.StoreReadCache != 8<<20 || c.MemoryLimit != 0 || c.AudienceCache != 256<<20 {
		t.Fatalf("defaults: %v %+v", err, c)
	}
	file := filepath.Join(t.TempDir(), "timd.json")
	os.WriteFile(file, []byte(`{"store_cache":"64MiB","store_read_cache":2097152,"memory_limit":"1GiB"}`), 0o600)
	c, err = Load([]string{"--config", file}, env(nil))
	if err != nil || c.StoreCache != 64<<20 || c.StoreReadCache != 2<<20 || c.MemoryLimit != 1<<30 {
		t.Fatalf("file: %v %+v", err, c)
	}
	if s := c.String(); !strings.Contains(s, "store-cache=64MiB store-read-cache=2MiB memory-limit=1GiB") {
		t.Fatalf("String() = %s", s)
	}
	c, err = Load([]string{"--config", file, "--store-cache", "16mb", "--memory-limit", "512MiB"},
		env(map[string]string{"TIMD_STORE_CACHE": "8MiB", "TIMD_STORE_READ_CACHE": "3MiB", "TIMD_MEMORY_LIMIT": "2GiB"}))
	if err != nil || c.StoreCache != 16<<20 || c.StoreReadCache != 3<<20 || c.MemoryLimit != 512<<20 {
		t.Fatalf("flags over env over file: %v %+v", err, c)
	}
	if c, err = Load(nil, env(nil)); err != nil || c.GCHeapFloor != 128<<20 {
		t.Fatalf("gc-heap-floor default: %v %v", err, c.GCHeapFloor)
	}
	for in, want := range map[string]Bytes{"0": 0, "64MiB": 64 << 20, "4MiB": 4 << 20} {
		c, err = Load(nil, env(map[string]string{"TIMD_GC_HEAP_FLOOR": in}))
		if err != nil || c.GCHeapFloor != want || !strings.Contains(c.String(), "gc-heap-floor=") {
			t.Fatalf("TIMD_GC_HEAP_FLOOR=%s: %v %v", in, err, c.GCHeapFloor)
		}
	}
	if c, err = Load([]string{"--pprof-listen", "127.0.0.1:6060"}, env(nil)); err != nil || c.PprofListen != "127.0.0.1:6060" ||
		!strings.Contains(c.String(), "pprof-listen=127.0.0.1:6060") {
		t.Fatalf("pprof: %v %+v", err, c)
	}
	c, err = Load([]string{"--nats", "nats://u:natspw@127.0.0.1:4222,nats://10.0.0.2:4222", "--nats-prefix", "eu"}, env(nil))
	if err != nil || c.NATSPrefix != "eu" || strings.Contains(c.String(), "natspw") ||
		!strings.Contains(c.String(), "10.0.0.2:4222 nats-prefix=eu") {
		t.Fatalf("nats: %v %s", err, c)
	}
	for _, args := range [][]string{
		{"--store-cache", "1KiB"},          // below 1MiB
		{"--store-read-cache", "0"},        // below 1MiB
		{"--memory-limit", "1MiB"},         // below 64MiB
		{"--memory-limit", "-5"},           // not a size
		{"--store-cache", "12 parsecs"},    // unknown unit
		{"--store-cache", "9999999999GiB"}, // overflows
		{"--memory-limit", "MiB"},          // no number
		{"--gc-heap-floor", "1MiB"},        // below 4MiB
	} {
		if _, err := Load(args, env(nil)); err == nil {
			t.Errorf("%v: accepted", args)
		}
	}
	os.WriteFile(file, []byte(`{"memory_limit":true}`), 0o600)
	if _, err := Load([]string{"--config", file}, env(nil)); err == nil {
		t.Error(`memory_limit true: accepted`)
	}
}

func TestParseBytes(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Bytes
	}{{"0", 0}, {"1024", 1024}, {"1B", 1}, {"1k", 1 << 10}, {"3KiB", 3 << 10}, {"5 MiB", 5 << 20}, {"2GB", 2 << 30}} {
		if got, err := ParseBytes(tc.in); err != nil || got != tc.want {
			t.Errorf("ParseBytes(%q) = %d, %v; want %d", tc.in, got, err, tc.want)
		}
	}
	for _, b := range []Bytes{0, 1, 1023, 1 << 10, 3 << 20, 1 << 30, 1<<30 + 1} {
		if got, err := ParseBytes(b.String()); err != nil || got != b {
			t.Errorf("ParseBytes(%q) = %d, %v; want %d", b.String(), got, err, b)
		}
	}
}
