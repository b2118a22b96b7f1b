package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
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
	write := func(s string) string {
		p := filepath.Join(dir, "c.json")
		os.WriteFile(p, []byte(s), 0o600)
		return p
	}
	for _, c := range []struct {
		name string
		args []string
	}{
		{"bad app syntax", []string{"--app", "1400000001:key"}},
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
		{"bad limits", []string{"--limits", "maybe"}},
		{"bad log level", []string{"--log-level", "loud"}},
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
