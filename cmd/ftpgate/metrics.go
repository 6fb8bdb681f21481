package main

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/ftpgate/ftpgate/audit"
	"github.com/ftpgate/ftpgate/proxy"
	"github.com/ftpgate/ftpgate/translate"
)

// metrics implements proxy.Observer with Prometheus collectors in a
// private registry (never the global default one). Label values are
// route names from the policy and fixed words: no user names, no paths.
type metrics struct {
	reg *prometheus.Registry

	sessions        *prometheus.CounterVec
	loginsFailed    *prometheus.CounterVec
	decisions       *prometheus.CounterVec
	dial            *prometheus.HistogramVec
	transfers       *prometheus.CounterVec
	transferBytes   *prometheus.CounterVec
	transferSeconds *prometheus.HistogramVec
	refused         *prometheus.CounterVec
	reloads         *prometheus.CounterVec
	generation      prometheus.Gauge
}

var _ proxy.Observer = (*metrics)(nil)

// newMetrics registers ftpgate's metrics. active reports the open
// sessions; em is the audit emitter whose write failures are exported.
func newMetrics(active func() int, em *audit.Emitter) *metrics {
	m := &metrics{reg: prometheus.NewRegistry()}
	f := func(c prometheus.Collector) { m.reg.MustRegister(c) }
	f(collectors.NewGoCollector())
	f(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	f(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "ftpgate_sessions_active", Help: "Open FTP control connections."},
		func() float64 { return float64(active()) }))
	m.sessions = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ftpgate_sessions_total", Help: "Ended FTP sessions by result (ok: logged in; refused: never logged in)."}, []string{"result"})
	m.loginsFailed = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ftpgate_logins_failed_total", Help: "Refused logins by route and reason."}, []string{"route", "reason"})
	m.decisions = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ftpgate_policy_decisions_total", Help: "Policy login decisions by route and action."}, []string{"route", "action"})
	m.dial = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "ftpgate_upstream_dial_seconds", Help: "Time to connect, verify and log in to the partner.",
		Buckets: prometheus.ExponentialBuckets(0.005, 2, 12)}, []string{"route", "kind", "result"})
	m.transfers = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ftpgate_transfers_total", Help: "Finished transfers."}, []string{"route", "kind", "direction", "result"})
	m.transferBytes = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ftpgate_transfer_bytes_total", Help: "Bytes on the client side of finished transfers."}, []string{"route", "kind", "direction", "result"})
	m.transferSeconds = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "ftpgate_transfer_duration_seconds", Help: "Transfer duration.",
		Buckets: prometheus.ExponentialBuckets(0.01, 4, 10)}, []string{"route", "kind", "direction"})
	m.refused = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ftpgate_transfers_refused_total", Help: "Transfers refused because the audit trail was unavailable."}, []string{"route"})
	m.reloads = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ftpgate_policy_reloads_total", Help: "Policy reloads by result."}, []string{"result"})
	m.generation = prometheus.NewGauge(prometheus.GaugeOpts{Name: "ftpgate_policy_generation", Help: "Generation of the policy in force; increases with every successful load."})
	for _, c := range []prometheus.Collector{m.sessions, m.loginsFailed, m.decisions, m.dial, m.transfers, m.transferBytes, m.transferSeconds, m.refused, m.reloads, m.generation} {
		f(c)
	}
	if em != nil {
		f(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "ftpgate_audit_write_errors_total", Help: "Failed writes to an audit sink."},
			func() float64 { return float64(em.Failures()) }))
		f(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "ftpgate_audit_records_lost_total", Help: "Records dropped from a full sink backlog."},
			func() float64 { return float64(em.Lost()) }))
	}
	return m
}

// watchPool exports the upstream pool's connections and channels in use.
func (m *metrics) watchPool(p *translate.Pool) {
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "ftpgate_pool_connections", Help: "Open pooled SSH connections to partners."},
		func() float64 { c, _ := p.Stats(); return float64(c) }))
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "ftpgate_pool_channels_in_use", Help: "SFTP sessions open on pooled connections."},
		func() float64 { _, ch := p.Stats(); return float64(ch) }))
}

func (m *metrics) SessionStarted()               { /* sessions_active is a GaugeFunc */ }
func (m *metrics) SessionEnded(result string)    { m.sessions.WithLabelValues(result).Inc() }
func (m *metrics) LoginFailed(route, why string) { m.loginsFailed.WithLabelValues(route, why).Inc() }
func (m *metrics) Decision(route, action string) { m.decisions.WithLabelValues(route, action).Inc() }
func (m *metrics) TransferRefused(route string)  { m.refused.WithLabelValues(route).Inc() }
func (m *metrics) reloaded(ok bool, gen uint64) {
	if ok {
		m.reloads.WithLabelValues("ok").Inc()
		m.generation.Set(float64(gen))
	} else {
		m.reloads.WithLabelValues("error").Inc()
	}
}

func (m *metrics) UpstreamDialed(route, kind string, d time.Duration, ok bool) {
	result := "ok"
	if !ok {
		result = "error"
	}
	m.dial.WithLabelValues(route, kind, result).Observe(d.Seconds())
}

func (m *metrics) TransferDone(route, kind, direction, result string, n int64, d time.Duration) {
	m.transfers.WithLabelValues(route, kind, direction, result).Inc()
	m.transferBytes.WithLabelValues(route, kind, direction, result).Add(float64(n))
	m.transferSeconds.WithLabelValues(route, kind, direction).Observe(d.Seconds())
}
