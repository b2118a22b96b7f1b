package service_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"

	"timd/internal/im"
	"timd/internal/service"
	"timd/internal/store/postgres"
	"timd/internal/store/sqlite"
)

// BenchmarkRegisterDevice is one /v1/device/register of a new APNs device
// (Devices.RegisterDevice: the RegistrationID account, its owner's
// ordinal, the vendor row and the check that no other device holds the
// token) over the real SQLite store and, with TIMD_TEST_POSTGRES, the real
// PostgreSQL, with 1,000 and with 100,000 devices already registered (20
// per user). The cost must not grow with the number of devices: before
// the push_devices token and endpoint indexes, each registration scanned
// every device of the app. cpu-µs/op (the whole process, store included
// for SQLite) moves less with the machine's load than ns/op.
func BenchmarkRegisterDevice(b *testing.B) {
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	stores := []struct {
		name string
		open func(b *testing.B) im.Store
	}{
		{"sqlite", func(b *testing.B) im.Store {
			st, err := sqlite.Open(context.Background(), b.TempDir(), quiet)
			if err != nil {
				b.Fatal(err)
			}
			return st
		}},
		{"postgres", func(b *testing.B) im.Store {
			url := pgURL(b)
			st, err := postgres.Open(context.Background(), url, postgres.Options{Schema: freshSchema(b, url)})
			if err != nil {
				b.Fatal(err)
			}
			return st
		}},
	}
	for _, s := range stores {
		for _, n := range []int{1_000, 100_000} {
			b.Run(fmt.Sprintf("%s/devices=%d", s.name, n), func(b *testing.B) {
				st := s.open(b)
				b.Cleanup(func() { st.Close() })
				benchRegister(b, st, n)
			})
		}
	}
}

func benchRegister(b *testing.B, st im.Store, n int) {
	ctx := context.Background()
	if err := st.PutApp(ctx, im.App{SDKAppID: app, SecretKey: authKey, Admins: []string{"administrator"}}); err != nil {
		b.Fatal(err)
	}
	const perUser = 20
	users := n / perUser
	for i := 0; i < users; i += 1000 {
		var in []im.AccountInput
		for k := i; k < min(i+1000, users); k++ {
			in = append(in, im.AccountInput{UserID: fmt.Sprint("u", k)})
		}
		if _, err := st.ImportAccounts(ctx, app, in); err != nil {
			b.Fatal(err)
		}
	}
	// The timed registrations are the users' extra devices: no limit.
	d := service.NewDevices(st, func(uint64) int { return 1 << 20 })
	register := func(i int) error {
		_, err := d.RegisterDevice(ctx, app, service.DeviceRequest{Owner: fmt.Sprint("u", i%users),
			Platform: "iPhone", Vendor: im.VendorAPNs, Token: fmt.Sprintf("%064x", i+1)})
		return err
	}
	// Fill with 8 callers, as the kill -9 test does over HTTP.
	next := make(chan int)
	errs := make(chan error, 8)
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if err := register(i); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
fill:
	for i := range n {
		select {
		case next <- i:
		case err := <-errs:
			b.Error(err)
			break fill
		}
	}
	close(next)
	wg.Wait()
	if b.Failed() {
		return
	}
	b.ReportAllocs()
	cpu0 := cpuTime(b)
	i := n
	for b.Loop() {
		if err := register(i); err != nil {
			b.Fatal(err)
		}
		i++
	}
	b.ReportMetric(float64((cpuTime(b)-cpu0).Microseconds())/float64(b.N), "cpu-µs/op")
}
