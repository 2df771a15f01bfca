package pusher

import (
	"sort"
	"strings"
)

// The HTTP API's queries. Every node answers them for the whole cluster
// from what it holds: its own channels, its copy of every presence roster
// and of the signed-in users (kept by the broker's announcements), and the
// other nodes' subscription counts (counts.go). A query never waits for
// another node.

// ChannelInfo is what the cluster knows of one channel.
type ChannelInfo struct {
	Name              string
	Occupied          bool
	SubscriptionCount int // connections subscribed
	UserCount         int // presence channels: distinct users
}

// Channel returns what is known of the channel name of app, cluster-wide.
func (s *Server) Channel(app *App, name string) ChannelInfo {
	n, users := app.hub.info(name)
	if s.clustered {
		n += app.hub.remote.count(name)
	}
	return ChannelInfo{Name: name, Occupied: n > 0, SubscriptionCount: n, UserCount: users}
}

// Channels returns the occupied channels of app whose names start with
// prefix, cluster-wide, sorted by name.
func (s *Server) Channels(app *App, prefix string) []ChannelInfo {
	counts := map[string]int{}
	app.hub.each(func(sh *shard) {
		for name, ch := range sh.channels {
			if ch.count > 0 && strings.HasPrefix(name, prefix) {
				counts[name] += ch.count
			}
		}
	})
	if s.clustered {
		r := &app.hub.remote
		r.mu.Lock()
		for name, byNode := range r.channels {
			if strings.HasPrefix(name, prefix) {
				for _, n := range byNode {
					counts[name] += n
				}
			}
		}
		r.mu.Unlock()
	}
	out := make([]ChannelInfo, 0, len(counts))
	for name, n := range counts {
		ci := ChannelInfo{Name: name, Occupied: true, SubscriptionCount: n}
		if kind, _ := ChannelKind(name); kind == Presence {
			_, ci.UserCount = app.hub.info(name)
		}
		out = append(out, ci)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Connections is the open connections of app, cluster-wide.
func (s *Server) Connections(app *App) int {
	return app.Connections() + s.remoteConnections(app)
}

// remoteConnections is the open connections of app on the other nodes, as
// they last told this one; 0 on a single node.
func (s *Server) remoteConnections(app *App) int {
	if !s.clustered {
		return 0
	}
	return app.hub.remote.connections()
}
