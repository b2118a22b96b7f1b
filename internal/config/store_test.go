package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestCheckStore(t *testing.T) {
	for _, c := range []struct {
		in string
		ok bool
	}{
		{"./timd-data", true},
		{"/var/lib/timd", true},
		{"postgres://u@127.0.0.1:5432/db", true},
		{"postgresql://u:pw@db/timd?search_path=s1", true},
		{"postgres:///db?host=/run/postgresql", true},
		{"", false},
		{"postgres:///db", false},         // no host
		{"postgres://u:p%zz@h/db", false}, // bad escape
		{"mysql://u@h/db", false},         // another scheme is not a directory
		{"sqlite://./timd-data", false},
	} {
		err := CheckStore(c.in)
		if (err == nil) != c.ok {
			t.Errorf("CheckStore(%q) = %v, want ok=%t", c.in, err, c.ok)
		}
		if err != nil && strings.Contains(err.Error(), "p%zz") {
			t.Errorf("CheckStore(%q) quotes the URL: %v", c.in, err)
		}
	}
}

func TestStoreNameMasksPassword(t *testing.T) {
	for in, want := range map[string]string{
		"./timd-data":                            "./timd-data",
		"postgres://u@h:5432/db":                 "postgres://u@h:5432/db",
		"postgres://u:secret@h/db?search_path=s": "postgres://u:xxxxx@h/db?search_path=s",
	} {
		if got := StoreName(in); got != want {
			t.Errorf("StoreName(%q) = %q, want %q", in, got, want)
		}
	}
	c := Default()
	c.Store = "postgres://u:secret@h/db"
	if s := c.String(); strings.Contains(s, "secret") {
		t.Errorf("Config.String prints the password: %s", s)
	}
}

func TestLoadPostgresStore(t *testing.T) {
	c, err := Load([]string{"--store", "postgres://u@h/db", "--app", "1400000001:k:a"}, func(string) string { return "" })
	if err != nil || !IsPostgres(c.Store) {
		t.Fatalf("Load: %v %q", err, c.Store)
	}
	if _, err := Load([]string{"--store", "postgres:///nohost"}, func(string) string { return "" }); err == nil {
		t.Fatal("a postgres URL without a host was accepted")
	}
}

// TestClusterIndexSettings: --change-retention and --snapshot follow the
// precedence of every setting (flag over TIMD_* over the file), default
// to 24h and none, are range-checked, and --snapshot is refused on a
// SQLite store, which keeps its snapshot in its directory.
func TestClusterIndexSettings(t *testing.T) {
	none := func(string) string { return "" }
	pg := []string{"--store", "postgres://u@h/db"}
	c, err := Load(pg, none)
	if err != nil || c.ChangeRetention != Duration(24*time.Hour) || c.Snapshot != "" {
		t.Fatalf("defaults: %v, retention %s, snapshot %q", err, c.ChangeRetention, c.Snapshot)
	}
	if s := c.String(); !strings.Contains(s, "change-retention=24h0m0s") || strings.Contains(s, "snapshot=") {
		t.Fatalf("String: %s", s)
	}
	file := filepath.Join(t.TempDir(), "timd.json")
	if err := os.WriteFile(file, []byte(`{"store":"postgres://u@h/db","change-retention":"1h","snapshot":"/file.snap"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err = Load([]string{"--config", file}, none)
	if err != nil || c.ChangeRetention != Duration(time.Hour) || c.Snapshot != "/file.snap" {
		t.Fatalf("file: %v, %s, %q", err, c.ChangeRetention, c.Snapshot)
	}
	env := map[string]string{"TIMD_CHANGE_RETENTION": "2h", "TIMD_SNAPSHOT": "/env.snap"}
	getenv := func(k string) string { return env[k] }
	c, err = Load([]string{"--config", file}, getenv)
	if err != nil || c.ChangeRetention != Duration(2*time.Hour) || c.Snapshot != "/env.snap" {
		t.Fatalf("env over file: %v, %s, %q", err, c.ChangeRetention, c.Snapshot)
	}
	c, err = Load([]string{"--config", file, "--change-retention", "0", "--snapshot", "/flag.snap"}, getenv)
	if err != nil || c.ChangeRetention != 0 || c.Snapshot != "/flag.snap" {
		t.Fatalf("flag over env: %v, %s, %q", err, c.ChangeRetention, c.Snapshot)
	}
	for _, bad := range [][]string{
		append(pg, "--change-retention", "-1s"),
		append(pg, "--change-retention", "9000h"),
		append(pg, "--change-retention", "soon"),
		append(pg, "--snapshot", ""),
	} {
		if _, err := Load(bad, none); err == nil {
			t.Errorf("Load(%q) accepted", bad)
		}
	}
	_, err = Load([]string{"--store", t.TempDir(), "--snapshot", "/x.snap"}, none)
	if err == nil || !strings.Contains(err.Error(), "--snapshot") {
		t.Fatalf("--snapshot on a SQLite store: %v, want it refused", err)
	}
	_, err = Load([]string{"--store", t.TempDir()}, func(k string) string { return map[string]string{"TIMD_SNAPSHOT": "/x"}[k] })
	if err == nil || !strings.Contains(err.Error(), "TIMD_SNAPSHOT") {
		t.Fatalf("TIMD_SNAPSHOT on a SQLite store: %v, want it refused naming the variable", err)
	}
}
