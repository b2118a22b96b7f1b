package cli

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"timd/internal/audience"
	"timd/internal/config"
	"timd/internal/deliver"
	"timd/internal/httpapi"
	"timd/internal/im"
	"timd/internal/service"
	"timd/internal/store/sqlite"
	"timd/internal/usersig"
)

// serve runs the server until ctx is done, then shuts down in order:
// stop accepting, drain requests, stop the push background work (progress
// saved), write the index snapshot, close the store. It listens before it
// opens the store: while the store opens and the audience index loads,
// /healthz answers 503 with the progress and the API "server is starting".
func serve(ctx context.Context, env Env, args []string) error {
	cfg, err := config.Load(args, env.Getenv)
	if err != nil {
		return err
	}
	level, _ := cfg.Level()
	log := slog.New(slog.NewTextHandler(env.Stderr, &slog.HandlerOptions{Level: level}))
	log.Info("starting timd", "config", cfg.String())

	progress := service.NewStartProgress()
	gate := newStartGate(progress)
	hs, err := listen(cfg, gate)
	if err != nil {
		return err
	}
	defer hs.close()
	log.Info("accepting connections while starting", "addr", hs.ln.Addr().String())

	progress.Phase("opening store", 0)
	store, err := sqlite.Open(ctx, cfg.Store, log)
	if err != nil {
		return fmt.Errorf("open store: %w", err)
	}
	defer store.Close()
	index := audience.New()
	store.SetChangeSink(index)

	apps := service.NewApps(store)
	if err := ensureApps(ctx, env, cfg, apps); err != nil {
		return err
	}
	src := indexSource(cfg.Store, store, index, progress, log)
	if err := loadIndex(ctx, src, log); err != nil {
		return fmt.Errorf("load audience index: %w", err)
	}
	snaps := startSnapshotter(src, log)
	defer snaps.close() // after the push work and the hub stop, before store.Close

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	auth := service.NewAuth(apps, store, nil)
	svc := httpapi.Services{
		Auth:     auth,
		Accounts: service.NewAccounts(store, auth, nil),
		Audience: service.NewAudience(store, nil),
	}

	// Pushing: the live hub (WebSocket clients, presence, acks) and the
	// push services with their background work (fan-out, webhooks,
	// scheduler). Deferred stops run after the HTTP drain, push first,
	// then the hub (which flushes acks), then the store.
	hub := deliver.NewHub(store, index, deliver.Options{Registerer: reg}, log)
	hub.Start(context.WithoutCancel(ctx))
	defer hub.Stop() // after the HTTP drain: closes upgraded connections, flushes acks
	svc.Accounts.SetPresence(hub)
	push := newPushing(cfg, store, index, hub, reg, log)
	svc.Push, svc.Sched, svc.Stats = push.push, push.sched, push.stats
	push.start(context.WithoutCancel(ctx)) // stopped by push.stop, after the drain
	defer push.stop()                      // after the HTTP drain below, before store.Close

	rest := httpapi.New(svc, httpapi.Options{Limits: cfg.Limits, BodyLimit: cfg.BodyLimit, Rate: rateOverrides(cfg)},
		log, httpapi.NewMetrics(reg))

	mux := http.NewServeMux()
	mux.Handle("/v4/", rest)
	mux.Handle("/v1/", httpapi.NewClientAPI(auth, hub, service.NewInbox(store, index), service.NewDevices(store), log))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	gate.ready(mux)
	log.Info("listening", "addr", hs.ln.Addr().String())
	return hs.wait(ctx, log)
}

// httpServer is the listening HTTP server.
type httpServer struct {
	ln   net.Listener
	srv  *http.Server
	errc chan error
	shut bool
}

// listen serves h on cfg.Listen with cfg's time-outs, so that slow and
// idle clients are disconnected.
func listen(cfg config.Config, h http.Handler) (*httpServer, error) {
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, err
	}
	hs := &httpServer{ln: ln, errc: make(chan error, 1), srv: &http.Server{
		Handler:           h,
		ReadHeaderTimeout: time.Duration(cfg.ReadHeaderTimeout),
		ReadTimeout:       time.Duration(cfg.ReadTimeout),
		WriteTimeout:      time.Duration(cfg.WriteTimeout),
		IdleTimeout:       time.Duration(cfg.IdleTimeout),
		MaxHeaderBytes:    64 << 10,
	}}
	go func() { hs.errc <- hs.srv.Serve(ln) }()
	return hs, nil
}

// wait serves until ctx is done, then drains the requests in flight.
func (hs *httpServer) wait(ctx context.Context, log *slog.Logger) error {
	select {
	case err := <-hs.errc:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down")
	hs.shut = true
	sctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := hs.srv.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// close stops a server that start-up abandoned.
func (hs *httpServer) close() {
	if !hs.shut {
		_ = hs.srv.Close()
	}
}

// ensureApps stores the configured apps, or creates a development app on
// the first start of an empty store with none configured.
func ensureApps(ctx context.Context, env Env, cfg config.Config, apps *service.Apps) error {
	for _, a := range cfg.Apps {
		app := im.App{SDKAppID: a.SDKAppID, SecretKey: a.SecretKey, Admins: a.Admins, CallbackURL: a.CallbackURL, CreatedAt: time.Now().Unix()}
		if err := apps.Put(ctx, app); err != nil {
			return err
		}
	}
	if len(cfg.Apps) > 0 {
		return nil
	}
	existing, err := apps.List(ctx)
	if err != nil || len(existing) > 0 {
		return err
	}
	app, err := devApp()
	if err != nil {
		return err
	}
	if err := apps.Put(ctx, app); err != nil {
		return err
	}
	printDevApp(env, cfg, app)
	return nil
}

func devApp() (im.App, error) {
	n, err := rand.Int(rand.Reader, big.NewInt(100_000_000))
	if err != nil {
		return im.App{}, err
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return im.App{}, err
	}
	return im.App{
		SDKAppID:  1_400_000_000 + n.Uint64(),
		SecretKey: hex.EncodeToString(key),
		Admins:    []string{"administrator"},
		CreatedAt: time.Now().Unix(),
	}, nil
}

// printDevApp shows the new development app once, on stdout, so that a
// first-time user can call the API at once.
func printDevApp(env Env, cfg config.Config, app im.App) {
	sig, _ := usersig.Gen(app.SDKAppID, app.SecretKey, app.Admins[0], defaultExpire, time.Now().Unix())
	fmt.Fprintf(env.Stdout, `timd: created a development app (stored in %s; shown only this once)
  SDKAppID:  %d
  SecretKey: %s
  Admin:     %s

Try it:
  curl -s -X POST 'http://%s/v4/im_open_login_svc/account_import?sdkappid=%d&identifier=%s&usersig=%s&random=1&contenttype=json' -d '{"UserID":"alice"}'

`, cfg.Store, app.SDKAppID, app.SecretKey, app.Admins[0], cfg.Listen, app.SDKAppID, app.Admins[0], sig)
}

// rateOverrides returns the per-app rate overrides of the configuration.
func rateOverrides(cfg config.Config) func(uint64, string) (float64, bool) {
	rates := map[uint64]map[string]float64{}
	for _, a := range cfg.Apps {
		rates[a.SDKAppID] = a.Rates
	}
	return func(app uint64, key string) (float64, bool) {
		v, ok := rates[app][key]
		return v, ok
	}
}
