package usersig

import (
	"sync"
	"testing"
)

// TestDecodePooledAfterFailures: a reused inflater decodes correctly
// after failed decodes (bad zlib header, truncated stream, bomb), from
// many goroutines at once.
func TestDecodePooledAfterFailures(t *testing.T) {
	want, err := Decode(vecA)
	if err != nil {
		t.Fatal(err)
	}
	bad := []string{
		"AAAA",             // base64, not zlib
		vecA[:len(vecA)/2], // truncated
		vecA[:len(vecA)-8] + "AAAAAAA_",
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				if _, err := Decode(bad[(g+i)%len(bad)]); err == nil {
					t.Errorf("bad token %d decoded", (g+i)%len(bad))
					return
				}
				got, err := Decode(vecA)
				if err != nil || got.Identifier != want.Identifier || got.Time != want.Time || string(got.MAC) != string(want.MAC) {
					t.Errorf("after a failure: %+v, %v", got, err)
					return
				}
			}
		})
	}
	wg.Wait()
}
