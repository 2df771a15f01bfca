// Package pusher is revurb's protocol core: apps, channels, presence,
// cache channels, client events, users, and publishing (Pusher protocol 7).
// It knows nothing of sockets, gnet or fasthttp: it reaches a connection
// through Conn and the event loops through Loops, both small interfaces it
// owns and package loop implements.
//
// # Ownership
//
// A Session belongs to one event loop. Server methods that take a Session
// (Open, Handle, Check, Close...) run on that loop, one at a time per
// session. Publish, the queries (Channel, Channels, Users, CachedEvent) and
// TerminateUser are safe for concurrent use from any goroutine.
//
// Each app's channels live in numShards shards chosen by a hash of the
// channel name. A shard's mutex guards its maps and the counters of its
// channels (count, perLoop, members) and is never held across a write to a
// socket. channel.subs[i], the subscribers a channel has on loop i, is owned
// by loop i: only code running on loop i touches it, so fan-out walks it
// without a lock.
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
// nothing.
//
// # Lock order
//
// hub.usersMu and shard.mu are never held together; no lock is held while
// calling Loops.Execute or Conn methods.
package pusher
