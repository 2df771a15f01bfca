package api

import (
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttpadaptor"

	"github.com/revurb/revurb/pusher"
)

// Metrics are Prometheus's view of the process (DESIGN: observers): GET
// /metrics on the API port, unsigned, or on a listener of its own. Nothing
// is counted here on the way of a message: the protocol core, the event
// loops and the webhook dispatcher keep their own counters (per loop, per
// broadcast) and a collector reads them at scrape time. Labels are only
// those whose values are few: app ids, close codes, routes, statuses and
// channel kinds, never channels or users.

// Sources are the counters of the parts of the process outside the
// protocol core, read at scrape time; a nil func is left out.
type Sources struct {
	Transport func() pusher.TransportStats // the event loops
	Webhooks  func() pusher.WebhookStats   // the webhook dispatcher
}

// metrics is the API's registry and its own request counters.
type metrics struct {
	reg      *prometheus.Registry
	requests *prometheus.CounterVec
	took     [routeCount]prometheus.Observer
	handler  fasthttp.RequestHandler
}

// routeStatuses are the statuses each route can answer, whose series
// exist from the start (with 0) so that a dashboard or an alert on one
// has a series on a fresh node. The error answers of a request that was
// never read whole (limits.go), and 404 for an unknown path, count as
// route "other".
var routeStatuses = [...][]int{
	routeNone:         {400, 404, 408, 413, 414, 431},
	routeEvents:       {200, 400, 401, 403, 404, 405, 413, 414, 429, 431, 503},
	routeBatchEvents:  {200, 400, 401, 403, 404, 405, 413, 414, 429, 431, 503},
	routeChannels:     {200, 400, 401, 403, 404, 405, 413, 414, 431},
	routeChannel:      {200, 400, 401, 403, 404, 405, 413, 414, 431},
	routeChannelUsers: {200, 400, 401, 403, 404, 405, 413, 414, 431},
	routeTerminate:    {200, 400, 401, 403, 404, 405, 413, 414, 431},
	routeConnections:  {200, 400, 401, 403, 404, 405, 413, 414, 431},
	routeUp:           {200, 405, 503},
	routeMetrics:      {200, 405},
	routeConsole:      {200, 401, 404, 405, 429, 503},
}

// routeNames label the API's requests.
var routeNames = [...]string{
	routeNone:         "other",
	routeEvents:       "events",
	routeBatchEvents:  "batch_events",
	routeChannels:     "channels",
	routeChannel:      "channel",
	routeChannelUsers: "channel_users",
	routeTerminate:    "terminate_connections",
	routeConnections:  "connections",
	routeUp:           "up",
	routeMetrics:      "metrics",
	routeConsole:      "console",
}

func newMetrics(p *pusher.Server, src Sources, conns func() connStats) *metrics {
	m := &metrics{reg: prometheus.NewRegistry()}
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "revurb_api_requests_total", Help: "HTTP API requests answered, by route and status.",
	}, []string{"route", "status"})
	for r, statuses := range routeStatuses {
		for _, st := range statuses {
			m.requests.WithLabelValues(routeNames[r], strconv.Itoa(st))
		}
	}
	took := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "revurb_api_request_duration_seconds", Help: "How long the HTTP API took to answer, by route.",
		Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
	}, []string{"route"})
	for r, name := range routeNames {
		m.took[r] = took.WithLabelValues(name)
	}
	m.reg.MustRegister(m.requests, took, &collector{p: p, src: src, conns: conns},
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m.handler = fasthttpadaptor.NewFastHTTPHandler(m.http())
	return m
}

func (m *metrics) http() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// observe counts one request of route answered with status after took.
func (m *metrics) observe(r route, status int, took time.Duration) {
	m.count(r, status)
	m.took[r].Observe(took.Seconds())
}

// count counts one request of route answered with status.
func (m *metrics) count(r route, status int) {
	m.requests.WithLabelValues(routeNames[r], strconv.Itoa(status)).Inc()
}

// MetricsHandler serves the metrics over net/http, for a listener of their
// own (--metrics-addr).
func (s *Server) MetricsHandler() http.Handler { return s.metrics.http() }

// collector reads the counters of the process at scrape time.
type collector struct {
	p     *pusher.Server
	src   Sources
	conns func() connStats
}

// closeCodes label revurb_connections_closed_total: the close codes the
// event loops count apart (loop's closeCodes) and "other". Each has a
// series from the start; a code the loops report that is not here gets
// one too.
var closeCodes = []string{"1000", "1001", "1002", "1003", "1006", "1007", "1008", "1009", "1011",
	strconv.Itoa(pusher.CodeUnknownApp), strconv.Itoa(pusher.CodeAppDisabled), strconv.Itoa(pusher.CodeOverQuota),
	strconv.Itoa(pusher.CodePathNotFound), strconv.Itoa(pusher.CodeBadProtocol), strconv.Itoa(pusher.CodeUnauthorized),
	strconv.Itoa(pusher.CodeOverCapacity), strconv.Itoa(pusher.CodeReconnect), strconv.Itoa(pusher.CodePongNotReceived),
	"other"}

// channelKinds label revurb_subscriptions and revurb_channels.
var channelKinds = []string{"public", "private", "presence", "encrypted", "server", "cache"}

var (
	descConnections    = prometheus.NewDesc("revurb_connections", "WebSocket connections open on this node, by app.", []string{"app"}, nil)
	descOpened         = prometheus.NewDesc("revurb_connections_opened_total", "WebSocket connections opened (handshake done).", nil, nil)
	descRefused        = prometheus.NewDesc("revurb_connections_refused_total", "WebSocket connections refused: over the connection cap (4100, or closed at once in a storm), or while draining (4200).", nil, nil)
	descClosed         = prometheus.NewDesc("revurb_connections_closed_total", "WebSocket connections closed, by close code (1006: without a close frame).", []string{"code"}, nil)
	descMsgsIn         = prometheus.NewDesc("revurb_messages_received_total", "WebSocket messages received.", nil, nil)
	descMsgsOut        = prometheus.NewDesc("revurb_messages_sent_total", "WebSocket messages sent.", nil, nil)
	descBytesIn        = prometheus.NewDesc("revurb_bytes_received_total", "Bytes of WebSocket messages received.", nil, nil)
	descBytesOut       = prometheus.NewDesc("revurb_bytes_sent_total", "Bytes of WebSocket messages sent.", nil, nil)
	descSubscriptions  = prometheus.NewDesc("revurb_subscriptions", "Subscriptions on this node, by channel kind.", []string{"kind"}, nil)
	descChannels       = prometheus.NewDesc("revurb_channels", "Occupied channels on this node, by kind.", []string{"kind"}, nil)
	descClientEvents   = prometheus.NewDesc("revurb_client_events_total", "Client events relayed.", nil, nil)
	descBroadcasts     = prometheus.NewDesc("revurb_broadcasts_total", "Events published through the HTTP API.", nil, nil)
	descSlow           = prometheus.NewDesc("revurb_slow_consumer_closes_total", "Connections closed with 4100 for their unsent backlog (max_outbound).", nil, nil)
	descThrottles      = prometheus.NewDesc("revurb_throttles_total", "Times a connection sent faster than its message budget and was read more slowly (max_messages_per_second).", nil, nil)
	descTLSHandshakes  = prometheus.NewDesc("revurb_tls_handshakes_total", "TLS handshakes on the WebSocket port, by result: done, failed (a bad client, a timeout, a close), refused (every worker busy and as many waiting).", []string{"result"}, nil)
	descTLSSeconds     = prometheus.NewDesc("revurb_tls_handshake_seconds", "How long the done TLS handshakes on the WebSocket port took, from their first record to their keys.", nil, nil)
	descInboundCloses  = prometheus.NewDesc("revurb_inbound_closes_total", "Connections closed with 4100 for what they sent unread past max_inbound.", nil, nil)
	descWebhookBytes   = prometheus.NewDesc("revurb_webhook_queue_bytes", "Bytes the waiting webhook events hold (webhook_queue_bytes bounds them per endpoint).", nil, nil)
	descWaits          = prometheus.NewDesc("revurb_backpressure_waits_total", "Triggers that waited for room in the publish bound.", nil, nil)
	descRejections     = prometheus.NewDesc("revurb_backpressure_rejections_total", "Triggers answered 503 by the publish bound.", nil, nil)
	descOverRate       = prometheus.NewDesc("revurb_api_events_over_rate_total", "Events of triggers answered 429 for their app's max_backend_events_per_second (a batch counts each event), by app.", []string{"app"}, nil)
	descQueued         = prometheus.NewDesc("revurb_publish_queue_deliveries", "Deliveries waiting for the event loops now.", nil, nil)
	descWebhooksSent   = prometheus.NewDesc("revurb_webhooks_sent_total", "Webhook POSTs answered 2xx.", nil, nil)
	descWebhooksFailed = prometheus.NewDesc("revurb_webhooks_failed_total", "Webhook attempts that failed (non-2xx or no answer), each retry counted.", nil, nil)
	descWebhooksDrop   = prometheus.NewDesc("revurb_webhooks_dropped_total", "Webhook events dropped because the queue was full or their batch ran out of retries.", nil, nil)
	descWebhookQueue   = prometheus.NewDesc("revurb_webhook_queue_depth", "Webhook events waiting to be sent.", nil, nil)
	descRedisUp        = prometheus.NewDesc("revurb_cluster_redis_up", "1 while this node reaches the cluster's Redis, else 0.", nil, nil)
	descOverload       = prometheus.NewDesc("revurb_cluster_overload_closes_total", "Subscribers closed with 4100 because this node was too far behind what other nodes sent.", nil, nil)
	descClusterLost    = prometheus.NewDesc("revurb_cluster_lost_total", "Broadcasts and membership changes that could not reach Redis (Redis away, or the broker's queue full); a resync makes up for the membership changes.", nil, nil)
	descClientDropped  = prometheus.NewDesc("revurb_cluster_client_events_dropped_total", "Client events not sent to the other nodes because the broker's queue was full.", nil, nil)
	descAPIConns       = prometheus.NewDesc("revurb_api_connections", "HTTP API connections, by state: waiting (for a slot), new (nothing sent yet), reading (a request), serving, idle (keep-alive), closing (draining after an error answer).", []string{"state"}, nil)
	descAPIRefused     = prometheus.NewDesc("revurb_api_connections_refused_total", "HTTP API connections answered 503 before they were served: over api_connections_per_address, the newest waiting one of the client holding the most when the queue was full, or waiting when the process stopped.", nil, nil)
	descAPIEnded       = prometheus.NewDesc("revurb_api_connections_ended_total", "HTTP API connections closed to make room for another, by the state they were in.", []string{"state"}, nil)
	descMaster         = prometheus.NewDesc("revurb_cluster_redis_master", "1 for each Redis primary this node writes to now (a Sentinel's current master; a Redis Cluster's primaries).", []string{"addr"}, nil)
	descFailovers      = prometheus.NewDesc("revurb_cluster_redis_failovers_total", "Redis primaries seen replaced by another (Sentinel or Redis Cluster failovers).", nil, nil)
	descRedirections   = prometheus.NewDesc("revurb_cluster_redis_redirections_total", "Apps seen moving to another Redis Cluster primary (slot migrations and failovers).", nil, nil)
	descBusRefused     = prometheus.NewDesc("revurb_cluster_bus_refused_total", "Messages from the bus dropped, by reason: signature (no valid HMAC), unknown_node (a node not in the heartbeat set), size, limit (too many channels or counts), malformed.", []string{"reason"}, nil)
	descResyncs        = prometheus.NewDesc("revurb_cluster_resyncs_total", "Times this node told Redis its state again and reloaded the cluster's (at start, after Redis came back, after a failover).", nil, nil)
	descResyncSeconds  = prometheus.NewDesc("revurb_cluster_resync_seconds", "How long this node's last resync took.", nil, nil)
)

// refusedReasons are the reasons revurb_cluster_bus_refused_total always
// shows, at 0 until something is refused.
var refusedReasons = []string{"signature", "unknown_node", "size", "limit", "malformed"}

// descs are every family the collector makes.
var descs = []*prometheus.Desc{descConnections, descOpened, descRefused, descClosed, descMsgsIn, descMsgsOut, descBytesIn,
	descBytesOut, descSubscriptions, descChannels, descClientEvents, descBroadcasts, descSlow, descThrottles, descInboundCloses, descTLSHandshakes, descTLSSeconds, descWaits,
	descRejections, descOverRate, descQueued, descWebhooksSent, descWebhooksFailed, descWebhooksDrop, descWebhookQueue, descWebhookBytes,
	descRedisUp, descOverload, descClientDropped, descClusterLost, descAPIConns, descAPIRefused, descAPIEnded,
	descMaster, descFailovers, descRedirections, descBusRefused, descResyncs, descResyncSeconds}

// Describe implements prometheus.Collector.
func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range descs {
		ch <- d
	}
}

// Collect implements prometheus.Collector: the protocol core's counters,
// the cluster's, the event loops', the webhook dispatcher's and the API's
// own connections, read now.
func (c *collector) Collect(ch chan<- prometheus.Metric) {
	st := c.p.Stats()
	collectCore(ch, &st)
	if st.Clustered {
		collectCluster(ch, &st)
	}
	// Without a source (no webhooks configured, say) its families are
	// still there, at 0.
	var t pusher.TransportStats
	if c.src.Transport != nil {
		t = c.src.Transport()
	}
	collectTransport(ch, &t)
	var w pusher.WebhookStats
	if c.src.Webhooks != nil {
		w = c.src.Webhooks()
	}
	collectWebhooks(ch, &w)
	collectAPIConns(ch, c.conns())
}

// gauge and counter send one sample of d to ch.
func gauge(ch chan<- prometheus.Metric, d *prometheus.Desc, v float64, labels ...string) {
	ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
}

func counter(ch chan<- prometheus.Metric, d *prometheus.Desc, v uint64, labels ...string) {
	ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
}

// collectCore reports the protocol core: connections, subscriptions and
// channels, events, the publish bound.
func collectCore(ch chan<- prometheus.Metric, st *pusher.Stats) {
	for _, a := range st.Apps {
		gauge(ch, descConnections, float64(a.Connections), a.ID)
		counter(ch, descOverRate, a.EventsOverRate, a.ID)
	}
	for _, kind := range channelKinds {
		gauge(ch, descSubscriptions, float64(st.Subscriptions[kind]), kind)
		gauge(ch, descChannels, float64(st.Channels[kind]), kind)
	}
	counter(ch, descClientEvents, st.ClientEvents)
	counter(ch, descBroadcasts, st.Broadcasts)
	counter(ch, descWaits, st.Publish.Waits)
	counter(ch, descRejections, st.Publish.Rejections)
	gauge(ch, descQueued, float64(st.Publish.Queued))
}

// collectCluster reports the broker and the store the nodes meet at.
func collectCluster(ch chan<- prometheus.Metric, st *pusher.Stats) {
	up := 0.0
	if st.ClusterUp {
		up = 1
	}
	gauge(ch, descRedisUp, up)
	counter(ch, descOverload, st.OverloadCloses)
	counter(ch, descClientDropped, st.ClientEventsDropped)
	counter(ch, descClusterLost, st.ClusterLost)
	cs := st.Cluster
	for _, addr := range cs.Masters {
		gauge(ch, descMaster, 1, addr)
	}
	counter(ch, descFailovers, cs.Failovers)
	counter(ch, descRedirections, cs.Redirections)
	for _, r := range refusedReasons {
		counter(ch, descBusRefused, cs.Refused[r], r)
	}
	counter(ch, descResyncs, cs.Resyncs)
	gauge(ch, descResyncSeconds, cs.ResyncSeconds)
}

// collectTransport reports the event loops: every known close code, and
// any other they counted.
func collectTransport(ch chan<- prometheus.Metric, t *pusher.TransportStats) {
	counter(ch, descOpened, t.Opened)
	counter(ch, descRefused, t.Refused)
	for _, code := range closeCodes {
		counter(ch, descClosed, t.Closed[code], code)
	}
	for code, n := range t.Closed {
		if !slices.Contains(closeCodes, code) {
			counter(ch, descClosed, n, code)
		}
	}
	counter(ch, descMsgsIn, t.MessagesIn)
	counter(ch, descMsgsOut, t.MessagesOut)
	counter(ch, descBytesIn, t.BytesIn)
	counter(ch, descBytesOut, t.BytesOut)
	counter(ch, descSlow, t.SlowConsumers)
	counter(ch, descThrottles, t.Throttles)
	counter(ch, descInboundCloses, t.InboundCloses)
	counter(ch, descTLSHandshakes, t.TLSHandshakes, "done")
	counter(ch, descTLSHandshakes, t.TLSHandshakesFailed, "failed")
	counter(ch, descTLSHandshakes, t.TLSHandshakesRefused, "refused")
	buckets := make(map[float64]uint64, len(pusher.TLSHandshakeBuckets))
	var n uint64
	for i, le := range pusher.TLSHandshakeBuckets {
		if i < len(t.TLSHandshakeSeconds) {
			n += t.TLSHandshakeSeconds[i]
		}
		buckets[le] = n
	}
	if k := len(pusher.TLSHandshakeBuckets); k < len(t.TLSHandshakeSeconds) {
		n += t.TLSHandshakeSeconds[k]
	}
	ch <- prometheus.MustNewConstHistogram(descTLSSeconds, n, t.TLSHandshakeSecondsSum, buckets)
}

// collectWebhooks reports the webhook dispatcher.
func collectWebhooks(ch chan<- prometheus.Metric, w *pusher.WebhookStats) {
	counter(ch, descWebhooksSent, w.Sent)
	counter(ch, descWebhooksFailed, w.Failed)
	counter(ch, descWebhooksDrop, w.Dropped)
	gauge(ch, descWebhookQueue, float64(w.Queue))
	gauge(ch, descWebhookBytes, float64(w.QueueBytes))
}

// collectAPIConns reports the API's connections by state.
func collectAPIConns(ch chan<- prometheus.Metric, a connStats) {
	for s := range connStates {
		gauge(ch, descAPIConns, float64(a.open[s]), s.String())
		if s != connServing && s != connWaiting { // never ended
			counter(ch, descAPIEnded, a.ended[s], s.String())
		}
	}
	counter(ch, descAPIRefused, a.refused)
}

// connStats sums the connection tables of the listeners Listen made.
func (s *Server) connStats() connStats {
	s.mu.Lock()
	tables := s.tables
	s.mu.Unlock()
	var sum connStats
	for _, t := range tables {
		st := t.stats()
		sum.refused += st.refused
		for i := range sum.open {
			sum.open[i] += st.open[i]
			sum.ended[i] += st.ended[i]
		}
	}
	return sum
}
