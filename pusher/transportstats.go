package pusher

// TransportStats is what the event loops that carry the WebSocket
// connections have seen since they started, for metrics. The loops count
// it and api reports it: the type lives here, where both can name it.
type TransportStats struct {
	Opened        uint64 // WebSocket connections opened (handshake done)
	Refused       uint64 // connections refused: over the connection cap, or while stopping
	SlowConsumers uint64 // connections closed with 4100 for their unsent backlog
	InboundCloses uint64 // connections closed with 4100 for what they sent unread past max_inbound
	Throttles     uint64 // times a connection went over its message budget and was read more slowly
	// Closed counts WebSocket connections closed, by close code: the code
	// of the close frame sent (the client's own, echoed), 1006 for one gone
	// without a close frame; "other" for codes the loops do not count apart.
	Closed            map[string]uint64
	MessagesIn        uint64 // WebSocket messages received (data and control; a fragmented one once)
	MessagesOut       uint64 // WebSocket messages sent
	BytesIn, BytesOut uint64
	// TLS handshakes on the WebSocket port: done, failed (bad client,
	// timeout, closed) and refused (every worker busy and as many waiting).
	TLSHandshakes, TLSHandshakesFailed, TLSHandshakesRefused uint64
	// TLSHandshakeSeconds counts the done handshakes' times, from their
	// first record to their keys, by upper bound (TLSHandshakeBuckets, then
	// one over all of them), and sums them.
	TLSHandshakeSeconds    []uint64
	TLSHandshakeSecondsSum float64
}

// TLSHandshakeBuckets are the upper bounds, in seconds, of
// TransportStats.TLSHandshakeSeconds.
var TLSHandshakeBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

// WebhookStats is what the webhook dispatcher (package pusher/webhook) has
// done since it started, for metrics; it lives here for the same reason.
type WebhookStats struct {
	Sent    uint64 // POSTs answered 2xx
	Failed  uint64 // attempts that failed, each retry counted
	Dropped uint64 // events dropped: a queue was full, a batch ran out of retries, or Close's context ended first
	Queue   int    // events waiting
	// QueueBytes is what the events waiting and the batches being sent
	// hold, over all endpoints.
	QueueBytes int64
}
