package deliver_test

import (
	"encoding/json"
	"reflect"
	"testing"

	"timd/internal/deliver"
)

// FuzzDecodeClientFrame checks that any input either fails with
// ErrBadFrame or yields a valid frame that survives a round trip.
func FuzzDecodeClientFrame(f *testing.F) {
	for _, s := range []string{`{"Type":"ack","TaskId":"t1"}`, `{"Type":"click","TaskId":"t1"}`, `{"Type":"ping"}`,
		`{"Type":"ack","TaskIds":["t1","t2"]}`, `{"Type":"ack","TaskId":"t1","TaskIds":["t2"]}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		fr, err := deliver.DecodeClientFrame(b)
		if err != nil {
			if !reflect.DeepEqual(fr, deliver.ClientFrame{}) {
				t.Fatalf("error %v with a non-zero frame %+v", err, fr)
			}
			return
		}
		switch fr.Type {
		case deliver.TypePing:
			if fr.TaskID != "" || fr.TaskIDs != nil {
				t.Fatalf("ping with TaskId %q, TaskIds %q", fr.TaskID, fr.TaskIDs)
			}
		case deliver.TypeAck, deliver.TypeClick:
			if fr.TaskIDs != nil {
				if fr.Type != deliver.TypeAck || fr.TaskID != "" || len(fr.TaskIDs) == 0 || len(fr.TaskIDs) > deliver.MaxAckIDs {
					t.Fatalf("accepted %+v", fr)
				}
				for _, id := range fr.TaskIDs {
					if id == "" || len(id) > deliver.MaxTaskIDLen {
						t.Fatalf("ack with a TaskIds element of %d bytes", len(id))
					}
				}
			} else if fr.TaskID == "" || len(fr.TaskID) > deliver.MaxTaskIDLen {
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
		if err != nil || !reflect.DeepEqual(back, fr) {
			t.Fatalf("round trip of %+v: %+v, %v", fr, back, err)
		}
	})
}
