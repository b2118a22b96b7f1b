package httpapi

import "testing"

// TestBulkWritesAreRoutes: every name in bulkWrites is a /v4 command and
// is marked bulk in the table, and no read or push is (a misspelt name
// would leave its command ungated).
func TestBulkWritesAreRoutes(t *testing.T) {
	s := New(Services{}, Options{}, nil, nil)
	for name := range bulkWrites {
		ep := s.table["/v4/"+name]
		if ep == nil || !ep.bulk {
			t.Errorf("bulkWrites names %q, which is not a bulk /v4 command", name)
		}
	}
	for path, ep := range s.table {
		if ep.bulk && !bulkWrites[ep.name] {
			t.Errorf("%s is bulk but not in bulkWrites", path)
		}
	}
	for _, name := range []string{"timpush/push", "timpush/get_attr", "timpush/get_tag", "im_open_login_svc/account_check", "all_member_push/im_push"} {
		if ep := s.table["/v4/"+name]; ep == nil || ep.bulk {
			t.Errorf("%s: missing, or waits for a bulk slot", name)
		}
	}
	if got := cap(New(Services{}, Options{BulkSlots: 3}, nil, nil).bulk); got != 3 {
		t.Errorf("BulkSlots 3 gave %d slots", got)
	}
	if got := cap(s.bulk); got < 1 {
		t.Errorf("default BulkSlots gave %d slots", got)
	}
}
