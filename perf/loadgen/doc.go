// Command loadgen is revurb's load generator: it opens real WebSocket
// connections to a Pusher-protocol server, drives one of three loads and
// reports what it measured, as a table or as JSON.
//
//   - fanout: sockets subscribe to one public channel; events triggered
//     through the signed HTTP API (POST /apps/{id}/events) carry their send
//     time, and every delivery's latency is recorded.
//   - connect: sockets are opened as fast as a bounded number of attempts
//     in flight allows and held; reports connections per second and the
//     time to pusher:connection_established.
//   - client-events: sockets in pairs on private channels (auth signed
//     locally with the app secret) send client events to each other;
//     reports the relay latency.
//
// The client is hand-written on raw TCP: the RFC 6455 opening handshake,
// masked frames from codec.AppendMaskedFrame, and a reader of unmasked
// server frames that checks what the server sends (reserved bits, masking,
// opcodes, minimal lengths, control frame limits). Each socket has one
// reader goroutine and a small read buffer (-readbuf); deliveries are
// recognised without JSON decoding, so that the client stays cheap next to
// the server it measures.
//
// Against a cluster, -ws lists its nodes and socket g of the run goes to
// node g mod N (each child of -procs starts at its own offset, so the
// spread is even over the whole run); -api may list nodes too, publisher p
// triggering on API p mod N.
//
// Sockets are bound to loopback source addresses 127.0.0.x: a socket
// bound before connect takes a local port of its source address whatever
// it connects to, so one address holds only ~28k sockets (the ephemeral
// range) in all; only loopback targets are accepted. With -procs P the command re-executes itself P
// times (-child), each child with its share of the sockets and its own
// source addresses, and speaks to them in JSON lines: the children report
// ready, the parent starts the load (and triggers the fanout events
// itself), then tells them to drain and report, and merges their reports —
// histograms merge exactly because children send buckets, not percentiles.
//
// Every phase is bounded: -duration caps the run, -drain the wait for late
// deliveries, and children are killed if they outlive their cap.
package main
