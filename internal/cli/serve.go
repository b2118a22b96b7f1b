package cli

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"maps"
	"math/big"
	"net"
	"net/http"
	"net/http/pprof"
	"runtime/debug"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	jsclient "timd/clients/js"
	"timd/internal/audience"
	"timd/internal/cluster"
	"timd/internal/config"
	"timd/internal/console"
	"timd/internal/deliver"
	"timd/internal/gcfloor"
	"timd/internal/httpapi"
	"timd/internal/im"
	"timd/internal/offline"
	"timd/internal/pushvendor"
	"timd/internal/relay"
	"timd/internal/service"
	"timd/internal/usersig"
)

// serve runs the server until ctx is done, then shuts down in order:
// stop accepting, drain requests, stop the push background work (progress
// saved), write the index snapshot, close the store. It serves as soon as
// it listens: while the store opens and the audience index loads, /healthz
// answers 503 with the progress and the API "server is starting".
func serve(ctx context.Context, env Env, args []string) error {
	cfg, err := config.Load(args, env.Getenv)
	if errors.Is(err, flag.ErrHelp) {
		printHelp(env.Stdout, config.FlagSet())
		return err
	}
	if err != nil {
		return err
	}
	if err := cfg.CheckRates(httpapi.Commands()); err != nil {
		return err
	}
	level, _ := cfg.Level()
	log := slog.New(slog.NewTextHandler(env.Stderr, &slog.HandlerOptions{Level: level}))
	log.Info("starting timd", "version", buildVersion(), "config", cfg.String())

	// The listener and the TLS files first: a taken port or a bad
	// certificate fails before the store is opened (or created).
	ln, tlsConfig, err := listen(cfg)
	if err != nil {
		return err
	}
	defer ln.Close()
	progress := service.NewStartProgress()
	gate := newStartGate(progress)
	hs := serveHTTP(cfg, ln, tlsConfig, gate)
	defer hs.abandon()
	log.Info("accepting connections while starting", "addr", ln.Addr().String())

	setMemoryLimit(cfg.MemoryLimit)
	defer gcfloor.Start(uint64(cfg.GCHeapFloor)).Stop()
	if cfg.PprofListen != "" {
		stop, err := servePprof(cfg.PprofListen, log)
		if err != nil {
			return err
		}
		defer stop()
	}
	bus, err := cluster.Open(cluster.Options{URL: cfg.NATS, Prefix: cfg.NATSPrefix, Name: "timd " + cfg.Listen}, log)
	if err != nil {
		return err
	}
	defer bus.Close() // last: the hub and the push work publish until they stop
	if bus.Clustered() {
		log.Info("joined the cluster through NATS", "node", bus.Node(), "nats-prefix", cfg.NATSPrefix, "connected", bus.Healthy())
	}
	progress.Phase("opening store", 0)
	store, err := openStore(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer store.close()
	index := audience.New()
	reg := prometheus.NewRegistry()
	src := indexSource(store, index, progress, log)
	// On a store shared with other nodes (PostgreSQL) the index follows
	// the store's change log; on SQLite the index is the sink, as ever.
	follow := newFollower(src, config.IsPostgres(cfg.Store), bus, cfg, reg)
	store.SetChangeSink(follow.sink())

	apps := service.NewApps(store, store)
	if err := ensureApps(ctx, env, cfg, baseURL(cfg, ln.Addr()), apps, log); err != nil {
		return err
	}
	if err := loadIndex(ctx, src, log); err != nil {
		return fmt.Errorf("load audience index: %w", err)
	}
	if err := follow.start(context.WithoutCancel(ctx)); err != nil {
		return fmt.Errorf("cluster: %w", err)
	}
	defer follow.stop() // after the push work stops, before store.Close
	stopTrim := startChangeTrim(context.WithoutCancel(ctx), store, time.Duration(cfg.ChangeRetention), reg, log)
	defer stopTrim() // before store.Close
	snaps := startSnapshotter(src, log)
	defer snaps.close() // after the push work and the hub stop, before store.Close

	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	auth := service.NewAuth(apps, store, nil)
	auth.SetMaxSkew(time.Duration(cfg.UserSigSkew))
	svc := httpapi.Services{
		Auth:     auth,
		Accounts: service.NewAccounts(store, auth, nil),
		Audience: service.NewAudience(store, nil),
	}

	// Pushing: the live hub (WebSocket clients, presence, acks) and the
	// push services with their background work (fan-out, webhooks,
	// scheduler). Deferred stops run after the HTTP drain, push first,
	// then the hub (which flushes acks), then the store.
	// One decoded-audience cache serves live catch-up and /v1/sync.
	audiences := deliver.NewAudienceCache(store, int64(cfg.AudienceCache))
	hub := deliver.NewHub(store, audiences, deliver.Options{Registerer: reg}, log)
	hub.Start(context.WithoutCancel(ctx))
	defer hub.Stop() // after the HTTP drain: closes upgraded connections, flushes acks
	// The relay stands in for the hub where the whole cluster counts:
	// delivery, revokes, kicks and presence reach every node's connections.
	live := relay.New(bus, hub, auth, store, log)
	if err := live.Start(); err != nil {
		return fmt.Errorf("cluster: %w", err)
	}
	defer live.Stop() // before hub.Stop
	svc.Accounts.SetPresence(live)
	svc.Accounts.SetDevices(store)
	vendors, err := pushvendor.NewSet(cfg.Apps)
	if err != nil {
		return fmt.Errorf("vendors: %w", err)
	}
	senders := func(app uint64, kind pushvendor.Kind) pushvendor.Sender {
		x, _ := vendors.Sender(app, kind)
		return x
	}
	push := newPushing(cfg, store, index, live, reg, log, fanoutHold(env, log), leaseOwner(bus.Node()), rateShare(bus),
		follow.syncer(), senders, offline.Options{Pacer: vendors.Pacer, Lease: vendorLease(env, log)})
	svc.Push, svc.Sched, svc.Stats = push.push, push.sched, push.stats
	svc.Insights = service.NewInsights(store, index, push.stats, live, audience.DefaultOptions(), nil)
	push.start(context.WithoutCancel(ctx)) // stopped by push.stop, after the drain
	defer push.stop()                      // after the HTTP drain below, before store.Close

	svc.Hub, svc.Inbox, svc.Devices = hub, service.NewInbox(store, audiences), service.NewDevices(store, devicesPerUser(cfg))
	svc.Devices.SetTargetCheck(func(app uint64, t pushvendor.Target) error { return vendors.CheckTarget(app, t) })
	// One handler serves /v4, /v1, /healthz and /metrics, so that every
	// other path, method or spelling answers the JSON envelope.
	srv := httpapi.New(svc, httpapi.Options{Limits: cfg.Limits, BodyLimit: cfg.BodyLimit, Rate: rateOverrides(cfg),
		RateShare:  rateShare(bus),
		Prometheus: promhttp.HandlerFor(reg, promhttp.HandlerOpts{}), Console: console.New(consoleExtras())}, log, httpapi.NewMetrics(reg))
	gate.ready(srv)
	log.Info("listening", "addr", ln.Addr().String(), "tls", cfg.TLS())
	return hs.wait(ctx, log)
}

// rateShare is the part of every in-memory rate limit this node enforces:
// the N live nodes of a cluster split each evenly, so that together they
// never allow more than the limit (docs/deploy.md).
func rateShare(bus *cluster.Bus) func() float64 {
	return func() float64 { return 1 / float64(bus.Peers()+1) }
}

// setMemoryLimit sets the Go runtime's soft memory limit when the
// configuration has one; 0 leaves the runtime's (GOMEMLIMIT's) limit.
func setMemoryLimit(limit config.Bytes) {
	if limit > 0 {
		debug.SetMemoryLimit(int64(limit))
	}
}

// servePprof serves the runtime profiles (net/http/pprof) on addr until
// the returned stop is called.
func servePprof(addr string, log *slog.Logger) (stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("pprof listener: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	log.Info("serving profiles", "addr", ln.Addr().String())
	return func() { _ = srv.Close() }, nil
}

// listen binds cfg.Listen and, with cfg.TLS, loads the certificate and
// key into the TLS configuration (nil without TLS).
func listen(cfg config.Config) (net.Listener, *tls.Config, error) {
	var tcfg *tls.Config
	if cfg.TLS() {
		cert, err := tls.LoadX509KeyPair(cfg.TLSCert, cfg.TLSKey)
		if err != nil {
			return nil, nil, fmt.Errorf("--tls-cert %s, --tls-key %s: %w", cfg.TLSCert, cfg.TLSKey, err)
		}
		tcfg = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, nil, fmt.Errorf("listen: %w", err)
	}
	return ln, tcfg, nil
}

// baseURL is the URL a client on this machine reaches the listener at:
// its real port (also after --listen :0), and 127.0.0.1 for a wildcard
// host.
func baseURL(cfg config.Config, addr net.Addr) string {
	scheme := "http"
	if cfg.TLS() {
		scheme = "https"
	}
	host, port, err := net.SplitHostPort(addr.String())
	if err != nil {
		return scheme + "://" + addr.String()
	}
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return scheme + "://" + net.JoinHostPort(host, port)
}

// httpServer is the HTTP server on the listener.
type httpServer struct {
	srv  *http.Server
	errc chan error
	shut bool
}

// serveHTTP serves h on ln with cfg's time-outs, so that slow and idle
// clients are disconnected. With tlsConfig it speaks only TLS: HTTPS, and
// WSS on /v1/connect.
//
// ReadHeaderTimeout and reconnect storms: the runtime reports a read
// deadline that has passed as a timeout even when the request's bytes
// arrived in time but the connection's goroutine was scheduled late, so a
// process starved of CPU answers dials with "timeout" before any handler
// runs. It is one timeout for every path (the path is in the header it
// bounds), and it is what frees the connections of clients that send
// their header slowly on purpose, so the default stays 10 s. What starved
// the handshakes in a storm was timd's own work, thousands of runnable
// catch-ups; those are bounded now (deliver.Options.CatchUps), so a
// handshake queues behind a few dozen goroutines. On a host so loaded
// that even that is not enough, raise --read-header-timeout.
func serveHTTP(cfg config.Config, ln net.Listener, tlsConfig *tls.Config, h http.Handler) *httpServer {
	hs := &httpServer{errc: make(chan error, 1), srv: &http.Server{
		TLSConfig:         tlsConfig,
		Handler:           h,
		ReadHeaderTimeout: time.Duration(cfg.ReadHeaderTimeout),
		ReadTimeout:       time.Duration(cfg.ReadTimeout),
		WriteTimeout:      time.Duration(cfg.WriteTimeout),
		IdleTimeout:       time.Duration(cfg.IdleTimeout),
		MaxHeaderBytes:    64 << 10,
	}}
	go func() {
		if tlsConfig != nil {
			hs.errc <- hs.srv.ServeTLS(ln, "", "") // the certificate is in TLSConfig
			return
		}
		hs.errc <- hs.srv.Serve(ln)
	}()
	return hs
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

// abandon closes the server when start-up failed before wait.
func (hs *httpServer) abandon() {
	if !hs.shut {
		_ = hs.srv.Close()
	}
}

// ensureApps stores the configured apps, or creates a development app on
// the first start of an empty store with none configured. It warns, once
// per app, about stored apps the configuration does not name: they keep
// answering requests with their stored key until `timd app remove`.
func ensureApps(ctx context.Context, env Env, cfg config.Config, base string, apps *service.Apps, log *slog.Logger) error {
	configured := map[uint64]bool{}
	for _, a := range cfg.Apps {
		app := im.App{SDKAppID: a.SDKAppID, SecretKey: a.SecretKey, Admins: a.Admins, CallbackURL: a.CallbackURL, CreatedAt: time.Now().Unix()}
		if err := apps.Put(ctx, app); err != nil {
			return err
		}
		configured[a.SDKAppID] = true
	}
	existing, err := apps.List(ctx)
	if err != nil {
		return err
	}
	if cfg.ConfiguredAppsOnly {
		if len(cfg.Apps) == 0 {
			return errors.New("--configured-apps-only needs an app in --app or the config file")
		}
		apps.Only(slices.Collect(maps.Keys(configured)))
	}
	if len(cfg.Apps) > 0 {
		for _, a := range existing {
			switch {
			case configured[a.SDKAppID]:
			case cfg.ConfiguredAppsOnly:
				log.Warn("stored app is not in the configuration and is refused (--configured-apps-only); "+
					"remove it with `timd app remove`", "sdkappid", a.SDKAppID, "store", config.StoreName(cfg.Store))
			default:
				log.Warn("stored app is not in the configuration and still accepts requests with its stored key; "+
					"list apps with `timd app list`, remove it with `timd app remove`, or start with --configured-apps-only on",
					"sdkappid", a.SDKAppID, "store", config.StoreName(cfg.Store))
			}
		}
		return nil
	}
	if len(existing) > 0 {
		return nil
	}
	app, err := devApp()
	if err != nil {
		return err
	}
	if err := apps.Put(ctx, app); err != nil {
		return err
	}
	printDevApp(env, cfg, base, app)
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
// first-time user can call the API at once at base, the server's real
// address.
func printDevApp(env Env, cfg config.Config, base string, app im.App) {
	sig, _ := usersig.Gen(app.SDKAppID, app.SecretKey, app.Admins[0], defaultExpire, time.Now().Unix())
	fmt.Fprintf(env.Stdout, `timd: created a development app (stored in %s; shown only this once)
  SDKAppID:  %d
  SecretKey: %s
  Admin:     %s
  Listening: %s

Try it:
  curl -s -X POST '%s/v4/im_open_login_svc/account_import?sdkappid=%d&identifier=%s&usersig=%s&random=1&contenttype=json' -d '{"UserID":"alice"}'

`, config.StoreName(cfg.Store), app.SDKAppID, app.SecretKey, app.Admins[0], base, base, app.SDKAppID, app.Admins[0], sig)
}

// devicesPerUser returns each app's "devices_per_user" quota (0 when not
// configured: the default).
func devicesPerUser(cfg config.Config) func(uint64) int {
	per := map[uint64]int{}
	for _, a := range cfg.Apps {
		per[a.SDKAppID] = int(min(a.Quotas["devices_per_user"], 1<<20))
	}
	return func(app uint64) int { return per[app] }
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

// consoleExtras are the files the console serves besides its own: the
// JavaScript client (clients/js) for its test-device panel, at lib/timd.js.
func consoleExtras() map[string][]byte {
	return map[string][]byte{"lib/timd.js": jsclient.Module}
}
