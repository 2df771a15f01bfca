// Package webhook sends an app's webhooks (Pusher webhooks): it is the
// pusher.Observer that batches the moments the protocol core reports,
// signs them and POSTs them to the app's endpoints, retrying with back-off,
// all off the event loops.
//
// Each endpoint gets {"time_ms": <unix ms>, "events": [...]} with
// X-Pusher-Key (the app key) and X-Pusher-Signature (hex HMAC-SHA256 of
// the raw body under the app secret), as Pusher sends them, plus the
// endpoint's own headers. Events are batched over Window; an answer other
// than 2xx, or none within Timeout, is retried after 1 s, 2 s, 4 s… for up
// to RetryFor, each failed attempt counted. channel_vacated and
// member_removed wait Delay and are dropped, with the channel_occupied or
// member_added that undoes them, if the channel or member comes back
// meanwhile (as Pusher does, so that a page reload is not a leave).
//
// Events of private-encrypted- channels never share a request with events
// of other channels: the official Go SDK (pusher-http-go v5) decrypts the
// data of every such event in a webhook and rejects the whole request when
// one fails, and channel_occupied, channel_vacated, cache_miss and
// subscription_count carry no data (client events, which would, are
// refused on those channels). An encrypted channel's event with data would
// go alone.
//
// Nothing here blocks its caller: Observe queues, bounded per endpoint by
// Queue events and QueueBytes bytes (what the events waiting and the batch
// being sent hold); what does not fit is dropped and counted, as is a
// batch that runs out of retries or is still unsent when Close's context
// ends.
//
// Observe, Stats and Close are safe from any goroutine. Each endpoint has
// one sender goroutine. Locks: Dispatcher.mu, then endpoint.mu; neither is
// held across a request.
package webhook
