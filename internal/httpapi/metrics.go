package httpapi

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the REST layer's Prometheus metrics.
type Metrics struct {
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
}

// NewMetrics registers the REST metrics on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "timd_rest_requests_total",
			Help: "REST requests by command and Tencent result code.",
		}, []string{"command", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "timd_rest_request_duration_seconds",
			Help:    "REST request latency by command.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2.5, 14),
		}, []string{"command"}),
	}
	reg.MustRegister(m.requests, m.latency)
	return m
}

func (m *Metrics) observe(command string, code int, d time.Duration) {
	if m == nil {
		return
	}
	m.requests.WithLabelValues(command, strconv.Itoa(code)).Inc()
	m.latency.WithLabelValues(command).Observe(d.Seconds())
}
