package redisbroker

import (
	"github.com/revurb/revurb/pusher"
)

// Reasons a bus message is refused, for metrics.
const (
	refusedSignature = iota
	refusedUnknownNode
	refusedSize
	refusedLimit
	refusedMalformed
	numReasons
)

var reasonNames = [numReasons]string{"signature", "unknown_node", "size", "limit", "malformed"}

// Lost is how much work (broadcasts for other nodes, membership changes)
// could not reach Redis since start; a resync makes up for the membership
// changes, not for the broadcasts.
func (b *Broker) Lost() uint64 { return b.lost.Load() }

// ClusterStats reports, for metrics, the primaries in use, the failovers
// and redirections seen, the bus messages refused and the resyncs.
func (b *Broker) ClusterStats() pusher.ClusterStats {
	var cs pusher.ClusterStats
	b.topo.mu.Lock()
	cs.Masters = append(cs.Masters, b.topo.masters...)
	cs.Failovers, cs.Redirections = b.topo.failovers, b.topo.redirections
	b.topo.mu.Unlock()
	cs.Refused = make(map[string]uint64, numReasons)
	for i := range b.refused {
		cs.Refused[reasonNames[i]] = b.refused[i].Load()
	}
	b.maint.mu.Lock()
	cs.Resyncs, cs.ResyncSeconds = b.maint.stats.resyncs, b.maint.stats.took.Seconds()
	b.maint.mu.Unlock()
	return cs
}
