// Package pusher is revurb's protocol core: apps, channels, presence,
// cache channels, client events, users, publishing (Pusher protocol 7) and
// the seam to the other nodes of a cluster. It knows nothing of sockets,
// gnet, fasthttp or Redis: it reaches a connection through Conn, the event
// loops through Loops and the other nodes through Broker, small interfaces
// it owns; package loop implements the first two, LocalBroker (here) and
// package pusher/redisbroker the third.
//
// One file per concept: app (configuration and runtime apps), server
// (sessions' life, keepalive), session, socketid, subscribe, presence,
// cache, client (client events), user (signin, watchlists, terminate),
// publish (the HTTP API's entry), gate (the publish bound), broadcast
// (frames and fan-out), hub (an app's shards), channel, broker and
// cluster (the Server's side of a cluster).
//
// # Set-up order
//
// NewServer (apps, options, the broker), then loop.New, which calls Attach:
// Attach sizes the per-loop state and the publish bound and starts the
// broker, whose messages are delivered through the loops from then on;
// then api.New and serving. Stop takes the node out of its cluster, after
// the loops have closed their connections.
//
// # Ownership
//
// A Session belongs to one event loop. Server methods that take a Session
// (Open, Handle, Check, Close...) run on that loop, one at a time per
// session. Publish, the queries (Channel, Channels, Users, Connections,
// CachedEvent), TerminateUser and the Cluster methods are safe for
// concurrent use from any goroutine.
//
// Each app's channels live in numShards shards chosen by a hash of the
// channel name. A shard's mutex guards its maps (channels, presence
// rosters, cache entries, counts marked dirty) and the counters of its
// channels (count, perLoop) and is never held across a write to a socket
// or a call to the broker. channel.subs[i], the subscribers a channel has
// on loop i, is owned by loop i: only code running on loop i touches it, so
// fan-out walks it without a lock.
//
// # The loop's turn
//
// Server calls that take a Session (Open, Handle, Check, Close, Reconnect...)
// and the Tasks the server queues (fanout, sessionTask, overloadTask) run
// in a turn of their loop, which package loop owns: it flushes the turn's
// writes when the turn ends, and a connection that closes during the turn
// (gnet closes a socket inside a write that fails) reaches Close only
// after it. So Close never runs while a fan-out walks the subscriber list
// it would change, and nothing here brackets its own work.
//
// # Broadcasts
//
// A broadcast encodes its event JSON and WebSocket frame once (sharedFrame),
// then sends one Task (fanout) to each loop that has subscribers; each task
// writes the same bytes to that loop's subscribers. Every subscription is
// numbered from its shard's counter, and a broadcast fixes, under the shard
// lock, the highest number it reaches: a subscriber that joined after the
// event (and whose member list or cache replay already reflects it) is
// skipped when the task arrives later on its loop. Frames are reference
// counted and pooled: steady publishing and client-event relay allocate
// nothing on a single node (in a cluster a client event also becomes a
// Broadcast for the broker). Broadcasts from other nodes take the same path, and count
// toward the same bound, as this node's.
//
// # Lock order
//
// Locks are taken in this order, and a lock is never taken while one later
// in it is held: shard.tell, then shard.mu (a presence announcement is
// decided under both and queued under tell alone); cacheStore.mu, then
// shard.mu (eviction); hub.usersMu and shard.mu are never held together;
// remoteCounts.mu is taken alone; the gate's mutex alone. No lock is held
// while calling Loops.Execute, a Conn method or a Broker method, but
// shard.tell, which only orders announcements and is never taken by a
// loop's task. A Broker calls the Cluster methods one at a time and may
// hold its own lock meanwhile (redisbroker does), so Cluster methods never
// call back into the broker synchronously; they only queue work for it.
package pusher
