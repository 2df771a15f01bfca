// Package pusher is revurb's protocol core: apps, channels, presence,
// cache channels, client events, users, publishing (Pusher protocol 7) and
// the seam to the other nodes of a cluster. It knows nothing of sockets,
// gnet, fasthttp or Redis: it reaches a connection through Conn, the event
// loops through Loops and the other nodes through Broker, small interfaces
// it owns; package loop implements the first two, LocalBroker (here) and
// package pusher/redisbroker the third.
//
// One file per concept. The server: server (construction), reload (the
// apps served, swapped whole by SetApps), lifecycle (a session's life on
// its loop: open, keepalive, close), handle (messages in, replies out),
// session, socketid, app, error, json, origin, signature.
// The channels: hub (an app's channel table and its locks), channel,
// subscribe, presence, cache, client (client events), user (signin,
// watchlists, terminate), budget (a connection's inbound budget). The
// publish path: publish (the HTTP API's entry), limit (an app's
// max_backend_events_per_second), gate (its bound), broadcast (frames and
// fan-out). The cluster: broker (the seam),
// cluster (what the broker tells this node), counts (subscription counts
// across nodes), overload (a node too far behind), query (the API's
// queries, cluster-wide). Observers: observer (webhook moments), tap (an
// app's events for the consoles watching it, nothing made when none
// does), stats, transportstats (the event loops' counters, as api reads
// them).
//
// # The apps, and reloading them
//
// The apps served are one table (reload.go), read with an atomic load and
// replaced whole by SetApps: a session opening, an API request and a
// broker's message each see the old set or the new. An *App never changes;
// an app whose configuration changes becomes a new App sharing its
// appState (connections, channels, sessions), and a task on each loop
// moves the app's sessions to it, or closes them (4001 removed, 4003
// disabled). app.sessions[i], the app's sessions on loop i, is owned by
// loop i like channel.subs[i].
//
// # Set-up order
//
// NewServer (apps, options, the broker), then loop.New, which calls Attach:
// Attach sizes the per-loop state and the publish bound and starts the
// broker, whose messages are delivered through the loops from then on;
// then api.New and serving. Stop takes the node out of its cluster, after
// the loops have closed their connections.
//
// # Ownership and the loop's turn
//
// A Session belongs to one event loop. Server methods that take a Session
// (Open, Handle, Check, Close, Reconnect...) and the Tasks the server
// queues (fanout, sessionTask, overloadTask) run on that loop, in one of
// its turns, which package loop owns: it flushes the turn's writes when
// the turn ends, and a connection that closes during the turn (gnet closes
// a socket inside a write that fails) reaches Close only after it. So
// Close never runs while a fan-out walks the subscriber list it would
// change, and nothing here brackets its own work. Publish, the queries
// (Channel, Channels, Users, Connections, CachedEvent), TerminateUser and
// the Cluster methods are safe for concurrent use from any goroutine.
//
// # The channel table and its locks
//
// Each app's channels live in numShards shards chosen by a hash of the
// channel name (hub.go). Only hub.go takes a shard's locks, through the
// hub's methods (join, leave, route, count, each...); the bodies they run
// under a lock are shard methods in the file of their concept, marked
// "sh.mu is held". hub.go also holds the lock order: a shard's
// announcement lock, then the app's cache accounting, then one shard's
// mutex, and every other lock (users, the other nodes' counts, the publish
// gate) alone; no lock but the announcement lock is held while calling
// Loops.Execute, a Conn method or a Broker method. channel.subs[i], the
// subscribers a channel has on loop i, is owned by loop i: only code
// running on loop i touches it, so fan-out walks it without a lock.
//
// # Broadcasts
//
// A broadcast encodes its event JSON and WebSocket frame once
// (sharedFrame), then sends one Task (fanout) to each loop that has
// subscribers; each task writes the same bytes to that loop's subscribers.
// Every subscription is numbered from its shard's counter, and a broadcast
// fixes, under the shard lock, the highest number it reaches: a subscriber
// that joined after the event (and whose member list or cache replay
// already reflects it) is skipped when the task arrives later on its loop.
// Frames are reference counted and pooled: steady publishing and
// client-event relay allocate nothing on a single node (in a cluster a
// client event also becomes a Broadcast for the broker). Broadcasts from
// other nodes take the same path, and count toward the same bound, as this
// node's.
//
// # The cluster
//
// A Broker calls the Cluster methods one at a time and may hold its own
// lock meanwhile (redisbroker does), so Cluster methods never call back
// into the broker synchronously; they only queue work for it.
package pusher
