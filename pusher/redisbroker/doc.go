// Package redisbroker is the pusher.Broker on Redis: the nodes of a
// revurb cluster meet at one Redis, a primary watched by Sentinels, or a
// Redis Cluster — one Broker for the three, told apart by the URL
// (ParseURL) and, for a Cluster, by asking it. It is the only package that
// imports a Redis client, github.com/redis/rueidis, chosen for its
// auto-pipelining and RESP3 (centrifuge moved its Redis engine to it for
// throughput and allocations); rueidis follows a Sentinel's failover and a
// Cluster's redirections and slot moves by itself.
//
// # What crosses Redis
//
// Each app has one pub/sub channel, its bus (scripts.go lists every key).
// It carries everything the nodes tell each other about the app:
// broadcasts and client events (once per broadcast, however many channels
// or subscribers: every node frames it for its own), subscription counts,
// terminate requests, and the member events the Lua scripts publish. Every
// node subscribes to each app's bus, so every node sees an app's messages
// in one order — Redis's order of execution — and a node that publishes a
// broadcast sees it after its own earlier ones. A node ignores what it
// published itself, except member events and the HTTP API's broadcasts,
// which reach every node, its own included, only through the bus. On a
// Redis Cluster an app's keys and its bus share a hash tag, {app id}:
// every script touches one slot, and the bus is sharded pub/sub
// (SPUBLISH/SSUBSCRIBE), so that apps spread over the primaries and a
// message crosses only its own shard.
//
// The bus is authenticated and bounded (message.go): every message carries
// an HMAC-SHA256 under the app's bus key, derived from Config.Secret, or
// by default from the app's own id, key and secret, so that nodes with the
// same config agree. A message whose MAC fails, that breaks the app's
// limits (event data and name, channels per event, user_info) or the
// bus's (counts per message), or that comes from a node not in the
// heartbeat set, is dropped and counted by reason (ClusterStats). Anyone
// who can write to Redis but lacks the key steers nothing.
//
// # Presence and users, exact
//
// A user's first connection on a node in a presence channel (or its first
// signed-in connection) runs luaJoin, its last luaLeave. Each node's set
// of users per channel is in Redis, with a count per user of the nodes
// that have it; the script that takes a user's count from 0 to 1
// publishes member_added, the one that takes it back to 0 member_removed.
// Scripts run atomically, so two nodes never both announce one user, and
// each checks every key it reads before it writes anything. Every node
// keeps its copy of each roster from the bus (pusher: Cluster.Member).
//
// # Joining, resyncing, and Redis going away
//
// A node registers its name (P:nodes, K:nodes of every app), subscribes
// to every app's bus, and then resyncs each app: it tells Redis its own
// state (luaResync: only what differs from what Redis holds of the node)
// and reads the cluster's, channel by channel (luaSnapshot). A snapshot
// publishes a marker on the bus as it reads, and the bus reloads the
// channel at the marker: every member event before it is in the snapshot,
// every one after it is applied over it, and nothing waits — neither the
// bus for the snapshot nor the snapshot for the bus. All of it costs in
// proportion to the node's own apps, channels and members: what a node
// reads is indexed per app (K:k:N, K:chans, K:cachex), and nothing scans
// the keyspace of a Redis it may share.
//
// The same resync runs whenever the node may have missed something: a
// bus subscription made again (Redis gone, a failover, a slot moved), a
// command lost with its connection, a membership change dropped on a full
// queue, a script that found a key of the wrong type (luaResync repairs
// it). Resyncs are coalesced, at most one a second but for an app's first.
// While Redis is away a node serves its own clients alone: it delivers its
// own broadcasts, answers the HTTP API at once (what other nodes would
// have received is counted as lost) and keeps trying to reconnect, backing
// off to 2 s. Each transition is logged once.
//
// # Dead nodes
//
// Each node beats every second (P:nodes, a sorted set by time). A node
// whose beat is older than the node timeout is dead: for each app, one of
// the others, holding a lock, unregisters it and removes its users a few
// hundred per script (luaReap), publishing member_removed for those only
// it had, then its goodbye, on which every node forgets its counts. A node
// that stops cleanly does the same for itself. A node that has just come
// back to Redis waits a node timeout before reaping anyone, as the others
// may not have beaten since either. A node that finds itself gone from
// P:nodes, or its scripts refused, was taken for dead while alive: it
// rejoins under a new name and resyncs everything, as at start.
//
// # Goroutines
//
// A broker runs: the worker, which does the queued work (Publish, Join,
// Leave, Counts...) in order, a batch per round trip, and the resyncs as
// jobs between batches, so that a resync sees every change queued before
// it and none after; the heartbeat, which connects, beats and reads the
// heartbeat set, and does nothing else; the maintenance, which runs the
// resyncs asked for, answers other nodes' hellos at a bounded rate and
// reaps the dead; and one goroutine per bus subscription (one, or one per
// slot on a Redis Cluster), reading with a client of its own whose
// connections carry no command. The bus hands messages to the
// pusher.Cluster one at a time, under cmu, which nothing holds across a
// round trip. Close waits for all of them, so nothing reaches the Cluster
// after it returns. Nothing the Server's event loops call waits: the
// queue is bounded and a full one drops, counts and, for membership, is
// made up for by a resync.
package redisbroker
