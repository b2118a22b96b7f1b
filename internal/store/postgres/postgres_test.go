package postgres

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"sync"
	"testing"
	"timd/internal/testenv"
	"time"

	"timd/internal/im"
	"timd/internal/store/storetest"

	"github.com/jackc/pgx/v5"
)

// testURL returns the database of TIMD_TEST_POSTGRES, or skips the test
// when it is unset or the server does not answer.
func testURL(t *testing.T) string {
	t.Helper()
	return testenv.PostgresURL(t)
}

// schemas opens stores each in its own schema, named from the directory
// the suite gives, created on first use and dropped when the test ends.
type schemas struct {
	url  string
	mu   sync.Mutex
	made map[string]string
}

func (sc *schemas) open(t *testing.T, dir string) im.Store {
	t.Helper()
	ctx := context.Background()
	sc.mu.Lock()
	name, ok := sc.made[dir]
	if !ok {
		sum := sha256.Sum256([]byte(dir + time.Now().String()))
		name = "timd_test_" + hex.EncodeToString(sum[:8])
		sc.made[dir] = name
	}
	sc.mu.Unlock()
	if !ok {
		conn, err := pgx.Connect(ctx, sc.url)
		if err != nil {
			t.Fatalf("connect: %v", err)
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, `CREATE SCHEMA `+name); err != nil {
			t.Fatalf("create schema: %v", err)
		}
		t.Cleanup(func() {
			c, err := pgx.Connect(ctx, sc.url)
			if err != nil {
				t.Errorf("connect: %v", err)
				return
			}
			defer c.Close(ctx)
			if _, err := c.Exec(ctx, `DROP SCHEMA `+name+` CASCADE`); err != nil {
				t.Errorf("drop schema: %v", err)
			}
		})
	}
	s, err := Open(ctx, sc.url, Options{Schema: name})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return s
}

func TestConformance(t *testing.T) {
	sc := &schemas{url: testURL(t), made: map[string]string{}}
	storetest.RunWith(t, sc.open, storetest.Options{Shared: true})
}
