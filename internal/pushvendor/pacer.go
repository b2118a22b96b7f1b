package pushvendor

import (
	"context"
	"sync"

	"golang.org/x/time/rate"
)

// DefaultRate is the notifications per second an app may send through
// one vendor when its configuration names no rate.
const DefaultRate = 1000

// Pacer spaces sends per app and per vendor, each (app, vendor) at its
// own rate: a burst to one vendor never starves another, and one app
// never spends another's share.
type Pacer struct {
	mu    sync.Mutex
	rates map[appKind]float64
	lim   map[appKind]*rate.Limiter
	def   float64
}

type appKind struct {
	app  uint64
	kind Kind
}

// NewPacer returns a Pacer whose unconfigured (app, vendor) pairs send at
// def per second (DefaultRate when def <= 0).
func NewPacer(def float64) *Pacer {
	if def <= 0 {
		def = DefaultRate
	}
	return &Pacer{rates: map[appKind]float64{}, lim: map[appKind]*rate.Limiter{}, def: def}
}

// SetRate sets app's rate through kind in notifications per second
// (the default when perSecond <= 0). Call it before sending.
func (p *Pacer) SetRate(app uint64, kind Kind, perSecond float64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	k := appKind{app, kind}
	if perSecond <= 0 {
		delete(p.rates, k)
	} else {
		p.rates[k] = perSecond
	}
	delete(p.lim, k)
}

// Wait blocks until app may send one notification through kind, or ctx
// ends (its error is returned).
func (p *Pacer) Wait(ctx context.Context, app uint64, kind Kind) error {
	return p.limiter(app, kind).Wait(ctx)
}

// Allow reports whether app may send one notification through kind now,
// taking the slot when it may (for a queue that would rather skip than
// block).
func (p *Pacer) Allow(app uint64, kind Kind) bool { return p.limiter(app, kind).Allow() }

func (p *Pacer) limiter(app uint64, kind Kind) *rate.Limiter {
	k := appKind{app, kind}
	p.mu.Lock()
	defer p.mu.Unlock()
	l, ok := p.lim[k]
	if !ok {
		r, set := p.rates[k]
		if !set {
			r = p.def
		}
		// A burst of a tenth of a second's sends (at least one) keeps
		// the vendor-facing rate smooth.
		l = rate.NewLimiter(rate.Limit(r), max(1, int(r/10)))
		p.lim[k] = l
	}
	return l
}
