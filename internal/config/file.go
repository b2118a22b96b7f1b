package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
)

// maxFileSize bounds the configuration file.
const maxFileSize = 1 << 20

// member is one key of a JSON object, in file order.
type member struct {
	key string
	raw json.RawMessage
}

// readFile applies the configuration file at path. Its keys are the flag
// names of fs (with `_` allowed for `-`) and "apps"; every other key, a
// key given twice, a value of the wrong type and a value out of range is
// refused with the file, the key and the reason. A null value keeps the
// setting as it was.
func (c *Config) readFile(fs *flag.FlagSet, path string) error {
	data, err := readBounded(path)
	if err != nil {
		return fmt.Errorf("config %s: %w", path, err)
	}
	members, err := objectMembers(data)
	if err != nil {
		return fmt.Errorf("config %s: %w", path, err)
	}
	for _, m := range members {
		where := fmt.Sprintf("config %s: key %q", path, m.key)
		name := canonical(m.key)
		if name == "apps" {
			if err := c.readApps(path, m.raw); err != nil {
				return err
			}
			continue
		}
		f := fs.Lookup(name)
		if f == nil || name == "config" || name == "app" {
			return fmt.Errorf("%s: unknown key (known: %s)", where, strings.Join(fileKeys(fs), ", "))
		}
		s, null, err := scalar(m.raw)
		if err != nil {
			return fmt.Errorf("%s: %w", where, err)
		}
		if null {
			continue
		}
		if err := f.Value.Set(s); err != nil {
			return fmt.Errorf("%s: %w", where, err)
		}
		c.src[name] = where
	}
	return nil
}

// readBounded reads at most maxFileSize bytes of path.
func readBounded(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxFileSize {
		return nil, fmt.Errorf("larger than %d bytes", maxFileSize)
	}
	return data, nil
}

// fileKeys lists the keys the file may hold.
func fileKeys(fs *flag.FlagSet) []string {
	keys := []string{"apps"}
	fs.VisitAll(func(f *flag.Flag) {
		if f.Name != "config" && f.Name != "app" {
			keys = append(keys, f.Name)
		}
	})
	slices.Sort(keys)
	return keys
}

// canonical spells a file key with `-` for `_`.
func canonical(key string) string { return strings.ReplaceAll(key, "_", "-") }

// objectMembers decodes one JSON object and nothing after it, refusing a
// key given twice (also in its two spellings, such as log_level and
// log-level).
func objectMembers(data []byte) ([]member, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if tok, err := dec.Token(); err != nil {
		return nil, syntaxError(err)
	} else if tok != json.Delim('{') {
		return nil, errors.New("want a JSON object")
	}
	var out []member
	seen := map[string]string{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, syntaxError(err)
		}
		key, _ := tok.(string)
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, syntaxError(err)
		}
		if prev, ok := seen[canonical(key)]; ok {
			return nil, fmt.Errorf("key %q: given twice (also as %q)", key, prev)
		}
		seen[canonical(key)] = key
		out = append(out, member{key, raw})
	}
	if _, err := dec.Token(); err != nil {
		return nil, syntaxError(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("not JSON: data after the object")
	}
	return out, nil
}

func syntaxError(err error) error {
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return errors.New("not JSON: unexpected end of file")
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Errorf("not JSON: %v (at byte %d)", se, se.Offset)
	}
	return fmt.Errorf("not JSON: %v", err)
}

// scalar returns a JSON string, number or boolean as the text a flag
// would take; null reports null.
func scalar(raw json.RawMessage) (s string, null bool, err error) {
	raw = bytes.TrimSpace(raw)
	switch {
	case string(raw) == "null":
		return "", true, nil
	case string(raw) == "true" || string(raw) == "false":
		return string(raw), false, nil
	case len(raw) > 0 && raw[0] == '"':
		err := json.Unmarshal(raw, &s)
		return s, false, err
	case len(raw) > 0 && (raw[0] == '-' || raw[0] >= '0' && raw[0] <= '9'):
		return string(raw), false, nil
	}
	return "", false, errors.New("want a string, a number or a boolean")
}

// readApps reads the file's "apps": a list of objects with the keys
// sdkappid, secret-key, admins, callback-url, callback-token, rates,
// quotas and vendors. Errors
// name the app by its index and never quote a secret key.
func (c *Config) readApps(path string, raw json.RawMessage) error {
	var list []json.RawMessage
	if err := json.Unmarshal(raw, &list); err != nil {
		return fmt.Errorf("config %s: key \"apps\": want a list of app objects", path)
	}
	for i, r := range list {
		where := fmt.Sprintf("config %s: apps[%d]", path, i)
		a, err := readApp(r)
		if err != nil {
			return fmt.Errorf("%s: %w", where, err)
		}
		a.src = where
		c.Apps = append(c.Apps, a)
	}
	return nil
}

// appKeys are the keys of an app object.
var appKeys = []string{"admins", "callback-token", "callback-url", "quotas", "rates", "sdkappid", "secret-key", "vendors"}

func readApp(raw json.RawMessage) (AppConfig, error) {
	members, err := objectMembers(raw)
	if err != nil {
		return AppConfig{}, err
	}
	var a AppConfig
	for _, m := range members {
		if string(bytes.TrimSpace(m.raw)) == "null" {
			continue
		}
		if err := a.set(canonical(m.key), m.raw); err != nil {
			return AppConfig{}, fmt.Errorf("key %q: %w", m.key, err)
		}
	}
	return a, nil
}

// set reads one key of an app object.
func (a *AppConfig) set(key string, raw json.RawMessage) error {
	switch key {
	case "sdkappid":
		n, err := strconv.ParseUint(string(bytes.TrimSpace(raw)), 10, 32)
		if err != nil || n == 0 {
			return errors.New("want a whole number from 1 to 4294967295")
		}
		a.SDKAppID = n
	case "secret-key":
		if json.Unmarshal(raw, &a.SecretKey) != nil || a.SecretKey == "" {
			return errors.New("want a non-empty string")
		}
	case "admins":
		if json.Unmarshal(raw, &a.Admins) != nil {
			return errors.New("want a list of strings")
		}
	case "callback-url":
		if json.Unmarshal(raw, &a.CallbackURL) != nil {
			return errors.New("want a string")
		}
		if a.CallbackURL == "" { // as if absent: no callbacks
			return nil
		}
		if err := checkCallbackURL(a.CallbackURL); err != nil {
			return err
		}
	case "callback-token":
		// Tencent's set_callback_token takes 1 to 128 characters.
		if json.Unmarshal(raw, &a.CallbackToken) != nil || len(a.CallbackToken) > 128 {
			return errors.New("want a string of at most 128 bytes")
		}
	case "vendors":
		return a.setVendors(raw)
	case "rates":
		return a.setRates(raw)
	case "quotas":
		return a.setQuotas(raw)
	default:
		return fmt.Errorf("unknown key (known: %s)", strings.Join(appKeys, ", "))
	}
	return nil
}

// setRates reads "rates": requests per second by "service/command",
// each from 0 to MaxRate. The command names are checked by CheckRates.
func (a *AppConfig) setRates(raw json.RawMessage) error {
	members, err := objectMembers(raw)
	if err != nil {
		return err
	}
	a.Rates = map[string]float64{}
	for _, m := range members {
		v, err := strconv.ParseFloat(string(bytes.TrimSpace(m.raw)), 64)
		if err != nil {
			return fmt.Errorf("%q: want a number of requests per second", m.key)
		}
		if v < 0 || v > MaxRate {
			return fmt.Errorf("%q: %v is out of range (0 to %v requests per second)", m.key, v, MaxRate)
		}
		a.Rates[m.key] = v
	}
	return nil
}

// setQuotas reads "quotas": each key one of Quotas (with `-` or `_`),
// each value a whole number from 0 (off) to the quota's Max.
func (a *AppConfig) setQuotas(raw json.RawMessage) error {
	members, err := objectMembers(raw)
	if err != nil {
		return err
	}
	a.Quotas = map[string]int64{}
	for _, m := range members {
		name := strings.ReplaceAll(m.key, "-", "_")
		i := slices.IndexFunc(Quotas, func(q Quota) bool { return q.Name == name })
		if i < 0 {
			return fmt.Errorf("%q: unknown quota (known: %s)", m.key, strings.Join(quotaNames(), ", "))
		}
		v, err := strconv.ParseInt(string(bytes.TrimSpace(m.raw)), 10, 64)
		if err != nil {
			return fmt.Errorf("%q: want a whole number", m.key)
		}
		if v < 0 || v > Quotas[i].Max {
			return fmt.Errorf("%q: %d is out of range (0 to %d)", m.key, v, Quotas[i].Max)
		}
		a.Quotas[name] = v
	}
	return nil
}

func quotaNames() []string {
	out := make([]string, len(Quotas))
	for i, q := range Quotas {
		out[i] = strings.ReplaceAll(q.Name, "_", "-")
	}
	return out
}
