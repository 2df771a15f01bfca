// Package redisbroker is the pusher.Broker on Redis: the nodes of a
// revurb cluster meet at one Redis (a standalone server, or a primary with
// replicas; not Redis Cluster). It is the only package that imports a
// Redis client, github.com/redis/rueidis, chosen for its auto-pipelining
// and RESP3 (centrifuge moved its Redis engine to it for throughput and
// allocations).
//
// # What crosses Redis
//
// One pub/sub channel, the bus (PREFIX:bus), carries everything nodes tell
// each other: broadcasts and client events (once per broadcast, however
// many channels or subscribers: every node frames it for its own),
// subscription counts, terminate requests, and the member events the Lua
// scripts publish. Every node subscribes to it on one connection, so every
// node sees the bus in one order — Redis's order of execution — and a node
// that publishes a broadcast sees it after its own earlier ones. A node
// ignores what it published itself, except member events and the HTTP
// API's broadcasts, which reach every node, its own included, only through
// the bus.
//
// # Presence and users, exact
//
// A user's first connection on a node in a presence channel (or its first
// signed-in connection) runs luaJoin, its last luaLeave (scripts.go). Each
// node's set of users per channel is in Redis, with a count per user of
// the nodes that have it; the script that takes a user's count from 0 to 1
// publishes member_added, the one that takes it back to 0 member_removed.
// Scripts run atomically, so two nodes never both announce one user.
// Every node keeps its copy of each roster from the bus (pusher:
// Cluster.Member).
//
// # Dead nodes, and Redis going away
//
// Each node beats every second (PREFIX:nodes, a sorted set by time). A
// node whose beat is older than the node timeout is dead: one of the
// others, holding a lock, runs luaReap, which removes the dead node's
// users and publishes member_removed for those only it had, then the dead
// node's goodbye, on which every node forgets its counts. A node that
// stops cleanly runs luaReap for itself. A node that has just come back to
// Redis waits a node timeout before reaping anyone, as the others may not
// have beaten yet either.
//
// While Redis is away a node serves its own clients alone: it delivers its
// own broadcasts, answers the HTTP API at once (what other nodes would
// have received is counted as lost) and keeps trying to reconnect, backing
// off to 2 s. When Redis answers again, the node tells it its whole state
// once more (luaResync, idempotent; a Redis that restarted empty is filled
// again by every node), and a few seconds later reloads the cluster's
// members from Redis, announcing to its subscribers what changed. Each
// transition is logged once.
//
// # Goroutines
//
// A broker runs three: the worker, which does the queued work (Publish,
// Join, Leave, Counts...) in order, a batch per round trip; the heartbeat,
// which connects, beats, resyncs and reaps; and the bus, which hands
// messages to the pusher.Cluster one at a time (under cmu, which resync's
// reload also holds, so that a reload and the bus never interleave). Two
// short-lived ones join them: the reload a few seconds after a resync, and
// the answer of counts to a new node's hello. Close waits for all of them,
// so nothing reaches the Cluster after it returns.
// Nothing the Server's event loops call waits: the queue is bounded and a
// full one drops, counts and, for membership, is made up for by the next
// resync.
package redisbroker
