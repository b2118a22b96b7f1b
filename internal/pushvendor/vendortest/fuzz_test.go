package vendortest

import (
	"crypto/ecdh"
	"crypto/rand"
	"testing"
)

// FuzzDecrypt feeds the fake's aes128gcm decoder arbitrary bodies: it
// must refuse them without a panic.
func FuzzDecrypt(f *testing.F) {
	priv, _ := ecdh.P256().GenerateKey(rand.Reader)
	auth := make([]byte, 16)
	f.Add(make([]byte, 21))
	f.Add(append(append(make([]byte, 16), 0, 0, 16, 0, 65), priv.PublicKey().Bytes()...))
	f.Fuzz(func(t *testing.T, body []byte) {
		if _, err := Decrypt(priv, auth, body); err == nil {
			t.Fatal("a random body decrypted")
		}
	})
}
