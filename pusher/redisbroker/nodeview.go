package redisbroker

import (
	"sync"
	"time"
)

// nodeView is what this node knows of the others: the heartbeat set, as
// the heartbeat last read it, the nodes seen on the bus since that read
// (a node writes its beat before it publishes anything, so a node that
// joined after the read is taken on trust until the reads show it), and
// the nodes gone (left the set, or said goodbye). A message from a node
// gone, or from one unknown and older than the last read, is refused, and
// a node taken on trust that no read shows for pendingFor is forgotten:
// nothing is kept of a node that is not in the heartbeat set.
type nodeView struct {
	mu      sync.Mutex
	known   map[string]int64 // node → last beat, unix ms
	readAt  int64            // unix ms when the last read started; 0 before the first
	pending map[string]int64 // node → when first seen, not in the last read
	gone    map[string]int64 // node → when found gone
}

// Bounds of the node view.
const (
	maxPending = 1024
	maxGone    = 4096
	goneFor    = 10 * time.Minute
	clockSkew  = 5 * time.Second // between nodes' clocks, taken on trust
	pendingFor = 3 * time.Second // a node taken on trust must be in a read started this long after
)

func (v *nodeView) init() {
	v.known, v.pending, v.gone = map[string]int64{}, map[string]int64{}, map[string]int64{}
}

// allow reports whether a message node made at time at (its clock) may
// be taken.
func (v *nodeView) allow(node string, at, now int64) bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	if _, ok := v.known[node]; ok {
		return true
	}
	if _, ok := v.gone[node]; ok {
		return false
	}
	if _, ok := v.pending[node]; ok {
		return true
	}
	if at < v.readAt-clockSkew.Milliseconds() || len(v.pending) >= maxPending {
		return false
	}
	v.pending[node] = now
	return true
}

// update takes a new read of the heartbeat set, started at readAt, and
// returns the nodes to forget: those known before that it lacks (gone),
// and those taken on trust that it still lacks long after.
func (v *nodeView) update(nodes map[string]int64, readAt, now int64) (forget []string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	for n := range v.known {
		if _, ok := nodes[n]; !ok {
			forget = append(forget, n)
			v.markGone(n, now)
		}
	}
	for n, first := range v.pending {
		if _, ok := nodes[n]; ok {
			delete(v.pending, n)
		} else if readAt-first >= pendingFor.Milliseconds() {
			delete(v.pending, n)
			forget = append(forget, n)
		}
	}
	v.known, v.readAt = nodes, readAt
	return forget
}

// goodbye records node gone, reporting whether it was not already.
func (v *nodeView) goodbye(node string, now int64) bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	if _, ok := v.gone[node]; ok {
		return false
	}
	delete(v.known, node)
	delete(v.pending, node)
	v.markGone(node, now)
	return true
}

// markGone notes node gone, forgetting the oldest gone beyond the bounds.
// The caller holds mu.
func (v *nodeView) markGone(node string, now int64) {
	v.gone[node] = now
	if len(v.gone) <= maxGone/2 {
		return
	}
	for n, t := range v.gone {
		if now-t > goneFor.Milliseconds() || len(v.gone) > maxGone {
			delete(v.gone, n)
		}
	}
}

// dead returns the nodes whose last beat is older than cutoff.
func (v *nodeView) dead(cutoff int64) []string {
	v.mu.Lock()
	defer v.mu.Unlock()
	var out []string
	for n, t := range v.known {
		if t < cutoff {
			out = append(out, n)
		}
	}
	return out
}

// forget drops what is known of a node gone. The caller holds cmu.
func (b *Broker) forget(node string) {
	for k := range b.partials {
		if len(k) > len(node) && k[:len(node)] == node && k[len(node)] == 0 {
			delete(b.partials, k)
		}
	}
	b.cluster.Forget(node)
}
