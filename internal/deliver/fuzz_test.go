package deliver_test

import (
	"encoding/json"
	"testing"

	"timd/internal/deliver"
)

// FuzzDecodeClientFrame checks that any input either fails with
// ErrBadFrame or yields a valid frame that survives a round trip.
func FuzzDecodeClientFrame(f *testing.F) {
	for _, s := range []string{`{"Type":"ack","TaskId":"t1"}`, `{"Type":"click","TaskId":"t1"}`, `{"Type":"ping"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		fr, err := deliver.DecodeClientFrame(b)
		if err != nil {
			if fr != (deliver.ClientFrame{}) {
				t.Fatalf("error %v with a non-zero frame %+v", err, fr)
			}
			return
		}
		switch fr.Type {
		case deliver.TypePing:
			if fr.TaskID != "" {
				t.Fatalf("ping with TaskId %q", fr.TaskID)
			}
		case deliver.TypeAck, deliver.TypeClick:
			if fr.TaskID == "" || len(fr.TaskID) > deliver.MaxTaskIDLen {
				t.Fatalf("%s with TaskId of %d bytes", fr.Type, len(fr.TaskID))
			}
		default:
			t.Fatalf("accepted Type %q", fr.Type)
		}
		again, err := json.Marshal(fr)
		if err != nil {
			t.Fatal(err)
		}
		back, err := deliver.DecodeClientFrame(again)
		if err != nil || back != fr {
			t.Fatalf("round trip of %+v: %+v, %v", fr, back, err)
		}
	})
}
