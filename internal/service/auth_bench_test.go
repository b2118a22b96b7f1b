package service_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"syscall"
	"testing"
	"time"

	"timd/internal/im"
	"timd/internal/service"
	"timd/internal/store/sqlite"
	"timd/internal/usersig"
)

// BenchmarkAuthUser is the authentication of one /v1 connection or sync
// (Auth.User) over the real SQLite store with 1,000 accounts: "restart"
// with an authenticator that has seen none of the sigs (a reconnect
// storm after a restart), "warm" with one that has (a storm after a
// network blip, or repeated syncs). cpu-µs/op moves less with the
// machine's load than ns/op.
func BenchmarkAuthUser(b *testing.B) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, b.TempDir(), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	apps := service.NewApps(st, st)
	if err := apps.Put(ctx, im.App{SDKAppID: app, SecretKey: authKey, Admins: []string{"administrator"}}); err != nil {
		b.Fatal(err)
	}
	const n = 1000
	in := make([]im.AccountInput, n)
	creds := make([]service.Credential, n)
	now := time.Now().Unix()
	for i := range n {
		id := fmt.Sprintf("user%04d", i)
		in[i] = im.AccountInput{UserID: id}
		s, err := usersig.Gen(app, authKey, id, 86400, now)
		if err != nil {
			b.Fatal(err)
		}
		creds[i] = service.Credential{SDKAppID: app, Identifier: id, Sig: s}
	}
	if _, err := st.ImportAccounts(ctx, app, in); err != nil {
		b.Fatal(err)
	}
	run := func(b *testing.B, fresh bool) {
		auth := service.NewAuth(apps, st, nil)
		b.ReportAllocs()
		cpu0 := cpuTime(b)
		i := 0
		for b.Loop() {
			if fresh && i%n == 0 {
				auth = service.NewAuth(apps, st, nil)
			}
			if _, _, err := auth.User(ctx, creds[i%n]); err != nil {
				b.Fatal(err)
			}
			i++
		}
		b.ReportMetric(float64((cpuTime(b)-cpu0).Microseconds())/float64(b.N), "cpu-µs/op")
	}
	b.Run("restart", func(b *testing.B) { run(b, true) })
	b.Run("warm", func(b *testing.B) { run(b, false) })
}

// cpuTime is the process's user and system CPU time so far.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
