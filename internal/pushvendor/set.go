package pushvendor

import (
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"

	"timd/internal/config"
)

// Set holds the Senders of every configured app and one Pacer at each
// app's configured rates. cli builds it at start from the config file.
type Set struct {
	senders map[appKind]Sender
	hosts   map[uint64][]string
	// Pacer paces sends per app and per vendor.
	Pacer *Pacer
}

// NewSet builds the senders of apps, reading their key files. An app
// without vendors gets none; a bad key file is an error naming the app
// and the file, never its content.
func NewSet(apps []config.AppConfig) (*Set, error) {
	s := &Set{senders: map[appKind]Sender{}, hosts: map[uint64][]string{}, Pacer: NewPacer(DefaultRate)}
	for _, a := range apps {
		if err := s.add(a); err != nil {
			return nil, fmt.Errorf("app %d: %w", a.SDKAppID, err)
		}
	}
	return s, nil
}

// Add puts sender in as app's sender of its kind (tests, and a vendor
// built outside the config file).
func (s *Set) Add(app uint64, sender Sender) { s.senders[appKind{app, sender.Kind()}] = sender }

// Sender returns app's sender through kind.
func (s *Set) Sender(app uint64, kind Kind) (Sender, bool) {
	x, ok := s.senders[appKind{app, kind}]
	return x, ok
}

// CheckTarget checks a device before it is stored: its vendor is
// configured for app, and its token or subscription is well formed.
func (s *Set) CheckTarget(app uint64, t Target) error {
	if !t.Kind.Valid() {
		return fmt.Errorf("unknown vendor %q", t.Kind)
	}
	if _, ok := s.Sender(app, t.Kind); !ok {
		return fmt.Errorf("vendor %s is not configured for app %d", t.Kind, app)
	}
	switch t.Kind {
	case APNs:
		if !validAPNsToken(t.Token) {
			return errors.New("apns token must be 64 to 200 hex digits")
		}
	case FCM:
		if t.Token == "" || len(t.Token) > 4096 {
			return errors.New("fcm token must be 1 to 4096 bytes")
		}
	case WebPush:
		return CheckSubscription(t.Endpoint, t.P256dh, t.Auth, s.hosts[app])
	}
	return nil
}

func (s *Set) add(a config.AppConfig) error {
	v := a.Vendors
	if c := v.APNs; c != nil {
		pem, err := os.ReadFile(c.KeyFile)
		if err != nil {
			return fmt.Errorf("apns key-file: %w", err)
		}
		key, err := APNsKey(pem)
		if err != nil {
			return fmt.Errorf("apns key-file %s: not a .p8 ECDSA key", c.KeyFile)
		}
		client, err := clientFor(c.CAFile)
		if err != nil {
			return fmt.Errorf("apns ca-file: %w", err)
		}
		x, err := NewAPNs(APNsOptions{Key: key, KeyID: c.KeyID, TeamID: c.TeamID, Topic: c.Topic, Endpoint: c.Endpoint, Client: client})
		if err != nil {
			return err
		}
		s.Add(a.SDKAppID, x)
		s.Pacer.SetRate(a.SDKAppID, APNs, c.Rate)
	}
	if c := v.FCM; c != nil {
		data, err := os.ReadFile(c.ServiceAccountFile)
		if err != nil {
			return fmt.Errorf("fcm service-account-file: %w", err)
		}
		sa, err := ParseServiceAccount(data)
		if err != nil {
			return fmt.Errorf("fcm service-account-file %s: %w", c.ServiceAccountFile, err)
		}
		client, err := clientFor(c.CAFile)
		if err != nil {
			return fmt.Errorf("fcm ca-file: %w", err)
		}
		x, err := NewFCM(FCMOptions{Account: sa, Endpoint: c.Endpoint, TokenURL: c.TokenURL, Client: client})
		if err != nil {
			return err
		}
		s.Add(a.SDKAppID, x)
		s.Pacer.SetRate(a.SDKAppID, FCM, c.Rate)
	}
	if c := v.WebPush; c != nil {
		priv, err := os.ReadFile(c.VAPIDPrivateKeyFile)
		if err != nil {
			return fmt.Errorf("webpush vapid-private-key-file: %w", err)
		}
		client, err := clientFor(c.CAFile)
		if err != nil {
			return fmt.Errorf("webpush ca-file: %w", err)
		}
		x, err := NewWebPush(WebPushOptions{PublicKey: c.VAPIDPublicKey, PrivateKey: strings.TrimSpace(string(priv)),
			Subscriber: c.Subscriber, AllowedHosts: c.AllowedHosts, Client: client})
		if err != nil {
			return err
		}
		s.Add(a.SDKAppID, x)
		s.hosts[a.SDKAppID] = c.AllowedHosts
		s.Pacer.SetRate(a.SDKAppID, WebPush, c.Rate)
	}
	return nil
}

// clientFor is NewHTTPClient trusting the system's CAs plus those in
// caFile (none when "").
func clientFor(caFile string) (*http.Client, error) {
	if caFile == "" {
		return NewHTTPClient(nil), nil
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, err
	}
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s: no PEM certificate", caFile)
	}
	return NewHTTPClient(pool), nil
}
