// Package api serves the Pusher Channels HTTP API (Pusher HTTP API:
// events, batch_events, channels, users, terminate_connections) on its own
// port, plus an unsigned health check at GET /up. It is the only package of
// revurb that imports fasthttp. It imports pusher, and codec for its JSON
// string encoder (codec.AppendJSONString), the one every reply and event
// is written with.
//
// With Config.Console, /console serves the debug console (console.go): a
// page embedded from console/, and a Server-Sent Events stream of an app's
// state and of pusher's tap, for a viewer holding the app's secret or the
// operator token.
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
// {"error":"..."} with a 4xx or 5xx status, never 200. A request over a
// limit — its body, URL, header block, or the time it takes to arrive —
// gets its status (413, 414, 431, 408) before the rest of it is read, and
// the connection lingers so that the client reads it (limits.go).
//
// The listener made by Listen decides which connections are served
// (admission.go): at most Config.Concurrency at once and
// Config.ConnsPerAddress of one client address, the others waiting in a
// queue of its own where a freed slot goes to the client holding the
// fewest, and making room, when they wait, by closing connections that are
// not being served. A connection's state (conns.go) follows fasthttp's
// ConnState hook and the handler.
//
// A Server is safe for concurrent use: fasthttp runs each request on a
// goroutine of its worker pool, and the handler keeps no state between
// requests but the count of console streams and the console token, both
// atomic. api's one lock is a listener's connTable.mu, which guards its
// connections' states, its queue and its counts per address; it is never
// held across I/O (setting a read deadline does none) and nests no other
// lock.
package api
