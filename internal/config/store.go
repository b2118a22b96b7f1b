package config

import (
	"errors"
	"net/url"
	"strings"
)

// IsPostgres reports whether a --store value names a PostgreSQL database
// (a postgres:// or postgresql:// URL) rather than a SQLite directory.
func IsPostgres(store string) bool {
	return strings.HasPrefix(store, "postgres://") || strings.HasPrefix(store, "postgresql://")
}

// StoreName is a --store value fit to print: a URL's password is
// replaced by "xxxxx".
func StoreName(store string) string {
	if !IsPostgres(store) {
		return store
	}
	u, err := url.Parse(store)
	if err != nil {
		return "postgres://[unparsable URL]"
	}
	return u.Redacted()
}

// CheckStore accepts a store directory, or a postgres:// URL that parses
// and names a host. The driver parses the URL's options when it connects.
func CheckStore(s string) error {
	if err := nonEmpty(s); err != nil {
		return err
	}
	if !IsPostgres(s) {
		if strings.Contains(s, "://") {
			return errors.New("want a directory or a postgres:// URL")
		}
		return nil
	}
	u, err := url.Parse(s)
	if err != nil {
		return errors.New("not a valid postgres:// URL") // never quote it: it may hold a password
	}
	if u.Host == "" && u.Query().Get("host") == "" {
		return errors.New("the postgres:// URL names no host")
	}
	return nil
}
