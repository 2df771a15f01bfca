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
}

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
