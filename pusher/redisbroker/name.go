package redisbroker

import (
	"crypto/rand"
	"encoding/hex"
	"sync"
	"sync/atomic"
)

// A node's name is random, and made again when the others took the node
// for dead while it was alive (reaped): it then rejoins under the new one,
// as at start, while the reaper removes what the old one left. Messages
// under an old name are still the node's own.

// names is this node's name, and the names it had before.
type names struct {
	cur atomic.Pointer[string]
	mu  sync.Mutex
	old []string // newest last, at most maxOldNames
}

const maxOldNames = 8

func (n *names) get() string { return *n.cur.Load() }

func (n *names) set(s string) { n.cur.Store(&s) }

// own reports whether s is this node's name, now or before.
func (n *names) own(s string) bool {
	if s == n.get() {
		return true
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, o := range n.old {
		if o == s {
			return true
		}
	}
	return false
}

// rename gives the node a new name, keeping the old one as its own.
func (n *names) rename() (old, cur string, err error) {
	cur, err = newName()
	if err != nil {
		return "", "", err
	}
	old = n.get()
	n.mu.Lock()
	n.old = append(n.old, old)
	if len(n.old) > maxOldNames {
		n.old = n.old[1:]
	}
	n.mu.Unlock()
	n.set(cur)
	return old, cur, nil
}

// newName makes a node name: random, unique among the nodes at once.
func newName() (string, error) {
	var id [8]byte
	if _, err := rand.Read(id[:]); err != nil {
		return "", err
	}
	return hex.EncodeToString(id[:]), nil
}

// Node is this node's name: random, made at New, and made again when the
// node finds the others took it for dead.
func (b *Broker) Node() string { return b.names.get() }

// reaped asks for this node to rejoin under a new name. It never waits.
func (b *Broker) reaped() {
	select {
	case b.maint.rename <- struct{}{}:
	default:
	}
}

// rename gives the node a new name and rejoins under it: every app is
// resynced as at start. The old name's state is the reaper's.
func (b *Broker) rename() {
	if b.closed.Load() || !b.registered.Swap(false) {
		return // not joined yet, or rejoining already
	}
	old, cur, err := b.names.rename()
	if err != nil {
		b.registered.Store(true)
		return
	}
	b.cfg.Log.Warn("redisbroker: the other nodes took this node for dead (cut off from Redis longer than the node timeout, or Redis lost its state): rejoining under a new name", "old", old, "node", cur)
	b.cmu.Lock()
	clear(b.loaded)
	b.cmu.Unlock()
	b.askResync(b.appList()...)
}
