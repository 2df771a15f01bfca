// Package api serves the Pusher Channels HTTP API (Pusher HTTP API:
// events, batch_events, channels, users, terminate_connections) on its own
// port, plus an unsigned health check at GET /up. It is the only package of
// revurb that imports fasthttp.
//
// Every /apps/{id}/... request is authenticated by its signed query
// (signature.go) before anything else looks at it; triggers are validated
// whole, batches all or nothing, and only then handed to pusher.Server.
// Publish, which encodes the event once and queues one task per event loop:
// a handler never waits behind WebSocket traffic or holds a lock across
// I/O. Channel queries read pusher's sharded tables under their shard locks
// only.
//
// Replies are always JSON with Content-Type application/json; errors are
// {"error":"..."} with a 4xx status, never 200. A body over
// Options.MaxBodySize is refused with 413 before the rest of it is read.
//
// A Server is safe for concurrent use: fasthttp runs each request on a
// goroutine of its worker pool, and the handler keeps no state between
// requests. api takes no locks of its own.
package api
