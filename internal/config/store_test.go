package config

import (
	"strings"
	"testing"
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
