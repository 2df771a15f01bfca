package pusher

// Stats is what the protocol core holds and has done, for metrics: read
// at scrape time, never counted on the way of a message but in per-loop or
// per-broadcast counters.
type Stats struct {
	Apps []AppStats
	// Subscriptions and Channels on this node by kind: public, private,
	// presence, encrypted, server (#server-to-user), and cache for cache
	// channels of any kind.
	Subscriptions map[string]int
	Channels      map[string]int
	ClientEvents  uint64 // client events relayed
	Broadcasts    uint64 // events published through the HTTP API (one per event, however many channels)
	Publish       PublishStats
	// OverloadCloses counts subscribers closed with 4100 because this node
	// was too far behind to deliver what other nodes sent.
	OverloadCloses uint64
	// ClientEventsDropped counts client events the broker could not take
	// for the other nodes.
	ClientEventsDropped uint64
	Clustered           bool
	// ClusterUp says whether the broker reaches the other nodes now (when
	// Clustered).
	ClusterUp bool
	// ClusterLost counts the work the broker could not hand to the other
	// nodes (broadcasts, membership changes), if it counts that.
	ClusterLost uint64
	// Cluster is what the broker reports of its store, if it does.
	Cluster ClusterStats
}

// ClusterStats is what a broker reports of the store the nodes meet at,
// for metrics (redisbroker: Redis, Sentinel or Redis Cluster).
type ClusterStats struct {
	// Masters are the addresses of the primaries the broker writes to now.
	Masters []string
	// Failovers counts primaries seen replaced by another (a Sentinel's or
	// a Redis Cluster's failover); Redirections counts apps seen moving to
	// another primary (a Redis Cluster's slot migration or failover).
	Failovers, Redirections uint64
	// Refused counts the messages from other nodes dropped, by reason.
	Refused map[string]uint64
	// Resyncs counts the times the node told the store its state again and
	// reloaded the cluster's; ResyncSeconds is how long the last one took.
	Resyncs       uint64
	ResyncSeconds float64
}

// AppStats is one app's part of Stats.
type AppStats struct {
	ID          string
	Connections int // open on this node
	// EventsOverRate counts the events refused for the app's
	// max_backend_events_per_second on this node.
	EventsOverRate uint64
}

// kindLabel names a channel's kind for metrics.
func kindLabel(ch *channel) string {
	if ch.cache {
		return "cache"
	}
	return ch.kind.String()
}

// Stats walks the apps' shards (one lock at a time) and reads the
// counters.
func (s *Server) Stats() Stats {
	st := Stats{
		Subscriptions: map[string]int{}, Channels: map[string]int{},
		Broadcasts: s.broadcasts.Load(), Publish: s.PublishStats(),
		OverloadCloses: s.overloadCloses.Load(), ClientEventsDropped: s.clientEventsDropped.Load(),
		Clustered: s.clustered,
	}
	for i := range s.loopCounters {
		st.ClientEvents += s.loopCounters[i].clientEvents.Load()
	}
	if up, ok := s.broker.(interface{ Up() bool }); ok {
		st.ClusterUp = up.Up()
	}
	if lost, ok := s.broker.(interface{ Lost() uint64 }); ok {
		st.ClusterLost = lost.Lost()
	}
	if cs, ok := s.broker.(interface{ ClusterStats() ClusterStats }); ok {
		st.Cluster = cs.ClusterStats()
	}
	for _, app := range s.Apps() {
		st.Apps = append(st.Apps, AppStats{ID: app.ID, Connections: app.Connections(), EventsOverRate: app.limit.refused.Load()})
		app.hub.each(func(sh *shard) {
			for _, ch := range sh.channels {
				k := kindLabel(ch)
				st.Channels[k]++
				st.Subscriptions[k] += ch.count
			}
		})
	}
	return st
}
