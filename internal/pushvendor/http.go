package pushvendor

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"net/http"
	"time"
)

// NewHTTPClient returns the client senders use: HTTP/2 over TLS (1.2 or
// later), a 30 s timeout per request, and roots (nil: the system's) as
// the trusted CAs, so staging and tests can trust a fake vendor.
func NewHTTPClient(roots *x509.CertPool) *http.Client {
	tr := &http.Transport{
		TLSClientConfig:     &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12},
		ForceAttemptHTTP2:   true,
		MaxIdleConnsPerHost: 16,
		IdleConnTimeout:     90 * time.Second,
		TLSHandshakeTimeout: 10 * time.Second,
	}
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

// digest is a URL-safe SHA-256 digest of s (43 characters).
func digest(s string) string {
	sum := sha256.Sum256([]byte(s))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}
