// Package redisbroker is the pusher.Broker on Redis: the nodes of a
// revurb cluster meet at one Redis, a primary watched by Sentinels, or a
// Redis Cluster — one Broker for the three, told apart by the URL
// (ParseURL) and, for a Cluster, by asking it. It is the only package that
// imports a Redis client, github.com/redis/rueidis, chosen for its
// auto-pipelining and RESP3 (centrifuge moved its Redis engine to it for
// throughput and allocations); rueidis follows a Sentinel's failover and a
// Cluster's redirections and slot moves by itself.
//
// # Concepts, a file each
//
//	broker.go       Config, New, Start, Close: the Broker and its lifetime
//	apps.go         the apps served, and SetApps: a reload's added apps read at once
//	url.go          ParseURL: the URL forms of one Redis, Sentinels, a Cluster
//	topology.go     the primaries reached (one, a Sentinel's, a Cluster's), for metrics
//	keys.go         every key in Redis, per app and node
//	message.go      the bus's binary messages, and the limits they are read within
//	sign.go         their HMAC, under a bus key derived per app
//	scripts.go      the Lua scripts that keep members exact
//	worker.go       the queue to Redis, done in order, a batch per round trip
//	publish.go      Publish, Terminate: what a node puts on the bus
//	member.go       Join, Leave: a user's first and last connection here
//	counts.go       subscription counts, sent and taken in parts
//	connection.go   the two clients, a sharded bus on a Cluster; Redis away and back
//	heartbeat.go    the beat, and the heartbeat set read back
//	nodeview.go     which nodes a bus message may come from
//	name.go         this node's name, and rejoining under a new one
//	bus.go          reading the bus, checking each message, acting on it
//	maintenance.go  the goroutine that resyncs, answers hellos and reaps
//	resync.go       telling Redis this node's state again
//	snapshot.go     reading the cluster's members, in step with the bus
//	hello.go        answering a new node's hello, at a bounded rate
//	reap.go         removing a dead node's state (or this one's, at Close)
//	stats.go        ClusterStats and Lost, for metrics
//
// # What crosses Redis
//
// Each app has one pub/sub channel, its bus. It carries everything the
// nodes tell each other about the app: broadcasts and client events (once
// per broadcast, however many channels or subscribers: every node frames
// it for its own), subscription counts, terminate requests, and the
// member events the Lua scripts publish. Every node subscribes to each
// app's bus, so every node sees an app's messages in one order — Redis's
// order of execution. A node ignores what it published itself, except
// member events and the HTTP API's broadcasts, which reach every node, its
// own included, only through the bus. On a Redis Cluster an app's keys
// and its bus share a hash tag, {app id}: every script touches one slot,
// and the bus is sharded pub/sub (SPUBLISH/SSUBSCRIBE), so that apps
// spread over the primaries and a message crosses only its own shard.
//
// The bus is authenticated and bounded: every message carries an
// HMAC-SHA256 under the app's bus key (from Config.Secret, or by default
// from the app's own id, key and secret, so that nodes with the same
// config agree). A message whose MAC fails, that breaks the app's limits
// or the bus's, or that comes from a node not in the heartbeat set, is
// dropped and counted by reason (ClusterStats). Anyone who can write to
// Redis but lacks the key steers nothing.
//
// # Presence and users, exact
//
// A user's first connection on a node in a presence channel (or its first
// signed-in connection) runs luaJoin, its last luaLeave. Redis holds each
// node's users per channel and a count per user of the nodes that have
// it; the script that takes a count from 0 to 1 publishes member_added,
// the one that takes it back to 0 member_removed. Scripts run atomically,
// so two nodes never both announce one user, and each checks every key it
// reads before it writes anything. Every node keeps its copy of each
// roster from the bus (pusher: Cluster.Member).
//
// # Joining, resyncing, and Redis going away
//
// A node registers its name, subscribes to every app's bus, and resyncs
// each app: it tells Redis what differs from its own state (luaResync)
// and reads the cluster's, channel by channel (luaSnapshot, which puts a
// marker on the bus as it reads: events before the marker are in the
// snapshot, those after are applied over it). The same resync runs
// whenever the node may have missed something — a bus subscription made
// again, a command lost with its connection, a membership change dropped
// on a full queue, a script that found a key of the wrong type — at most
// one a second but for an app's first. What it costs is in proportion to
// the node's own apps, channels and members: nothing scans the keyspace of
// a Redis it may share. While Redis is away a node serves its own clients
// alone, answers the HTTP API at once (what the others would have
// received is counted as lost) and keeps trying, backing off to 2 s; each
// transition is logged once.
//
// # Dead nodes
//
// Each node beats every second. A node whose beat is older than the node
// timeout is dead: for each app, one of the others, holding a lock,
// unregisters it and removes its users a few hundred per script,
// publishing member_removed for those only it had, then its goodbye. A
// node that stops cleanly does the same for itself. A node back from an
// outage waits a node timeout before reaping anyone; a node that finds
// itself reaped while alive rejoins under a new name and resyncs
// everything.
//
// # Goroutines, and what is safe across them
//
// A broker runs the worker (the queued work in order, and each resync as
// a job between two batches, so that it sees every change queued before
// it and none after); the heartbeat (connects, beats, reads the heartbeat
// set, nothing else); the maintenance (resyncs, hellos, reaping, the
// topology); and one goroutine per bus subscription (one, or one per slot
// on a Redis Cluster), reading with a client of its own whose connections
// carry no command. Close waits for all of them: nothing reaches the
// pusher.Cluster after it returns, so its caller must not hold a lock the
// Cluster's methods take.
//
// Start is called once; every other method of the pusher.Broker seam, and
// ClusterStats, is safe from any goroutine, and none waits on Redis but
// Close, and Publish and Terminate called with a live context (the HTTP
// API), each step for at most publishWait: the queue is bounded, and a
// full one drops, counts and, for membership, is made up for by a
// resync. The calls into the pusher.Cluster are made one at a
// time, under cmu. What several goroutines share is atomic (the clients,
// up, registered, ready, the name, the counters) or under one of these
// mutexes:
//
//	cmu         the calls into the Cluster; the snapshots and the loaded apps; counts in parts
//	maint.mu    the resyncs and hellos asked for; the resync stats
//	skipMu      this node's broadcasts waiting for Redis, or delivered here already
//	view.mu     the heartbeat set as last read, and the nodes gone
//	names.mu    the names this node had
//	topo.mu     the primaries, failovers and redirections
//	appsMu      a reload's new apps and connect's subscriptions, so that each app is read once
//
// # Lock order
//
// cmu comes first: under it, the bus takes maint.mu, skipMu, view.mu and
// names.mu, and the Cluster's methods take their own locks. Every other
// mutex is a leaf: nothing is locked while one is held. The methods pusher
// calls never take cmu, so pusher may hold its own locks when it calls
// them. No lock is held across a round trip to Redis or a send that may
// block.
package redisbroker
