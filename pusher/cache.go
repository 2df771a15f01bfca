package pusher

import (
	"sync"
	"sync/atomic"
	"time"
)

// Cache channels (Pusher protocol: cache channels) keep their last event
// for the app's cache_ttl, even while nobody is subscribed, and replay it to
// each new subscriber; one with nothing kept gets pusher:cache_miss.
//
// What is kept is the event's name and data, not its frame: one event
// triggered on a hundred cache channels keeps its data once, shared by the
// hundred entries, and each replay frames it for its channel. An app's kept
// bytes are capped (max_cache_bytes); past the cap the oldest entries go
// first, and are counted.

// cachedEvent is the last event of one cache channel. Its fields never
// change but gone, which is set under the channel's shard lock.
type cachedEvent struct {
	channel string
	event   string
	data    *cacheData
	expires int64       // unix nanoseconds
	gone    atomic.Bool // replaced, expired or evicted: its bytes are uncounted
}

// cacheData is the data of one published event, shared by the cache
// entries of every channel it went to.
type cacheData struct {
	b    []byte
	refs atomic.Int32
}

// entryOverhead is what one cache entry costs besides its data and names,
// counted against max_cache_bytes.
const entryOverhead = 96

func (ev *cachedEvent) size() int64 {
	return int64(len(ev.channel) + len(ev.event) + entryOverhead)
}

// appendJSON appends ev as an event of its channel.
func (ev *cachedEvent) appendJSON(dst []byte) []byte {
	return appendEvent(dst, ev.event, ev.channel, ev.data.b)
}

// cacheStore is an app's accounting of its cache entries: their bytes, and
// the order they came in, to evict the oldest.
//
// Lock order: mu before any shard's lock; nobody holding a shard lock
// takes mu.
type cacheStore struct {
	max int64

	bytes     atomic.Int64
	evictions atomic.Uint64

	mu   sync.Mutex
	fifo []*cachedEvent // oldest first; entries gone since are skipped
	head int
}

// keep makes ev the last event of its channel in shard sh, whose lock the
// caller holds, and counts its bytes; the entry it replaces is uncounted.
// After unlocking, the caller must call admit(ev).
func (c *cacheStore) keep(sh *shard, ev *cachedEvent) {
	if old := sh.cache[ev.channel]; old != nil {
		c.drop(old)
	}
	sh.cache[ev.channel] = ev
	if ev.data.refs.Add(1) == 1 {
		c.bytes.Add(int64(len(ev.data.b)))
	}
	c.bytes.Add(ev.size())
}

// drop uncounts ev, which leaves its shard's map; the caller holds that
// shard's lock.
func (c *cacheStore) drop(ev *cachedEvent) {
	if ev.gone.Swap(true) {
		return
	}
	c.bytes.Add(-ev.size())
	if ev.data.refs.Add(-1) == 0 {
		c.bytes.Add(-int64(len(ev.data.b)))
	}
}

// admit queues ev, kept in hub h, for eviction in its turn, and evicts the
// oldest entries while the app keeps more than its cap.
func (c *cacheStore) admit(h *hub, ev *cachedEvent) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.fifo = append(c.fifo, ev)
	for c.max > 0 && c.bytes.Load() > c.max && c.head < len(c.fifo) {
		v := c.fifo[c.head]
		c.fifo[c.head] = nil
		c.head++
		sh := h.shard(v.channel)
		sh.mu.Lock()
		if !v.gone.Load() {
			if sh.cache[v.channel] == v {
				delete(sh.cache, v.channel)
			}
			c.drop(v)
			c.evictions.Add(1)
		}
		sh.mu.Unlock()
	}
	if c.head > 1024 && c.head > len(c.fifo)/2 {
		n := copy(c.fifo, c.fifo[c.head:])
		clear(c.fifo[n:])
		c.fifo, c.head = c.fifo[:n], 0
	}
}

// forget drops from the queue the entries gone since they were queued
// (replaced or expired), so that an app that republishes to a few cache
// channels does not grow a long queue. Expire calls it.
func (c *cacheStore) forget() {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := c.fifo[:0]
	for _, ev := range c.fifo[c.head:] {
		if !ev.gone.Load() {
			out = append(out, ev)
		}
	}
	clear(c.fifo[len(out):])
	c.fifo, c.head = out, 0
}

// cached returns the last event of cache channel name in shard sh, whose
// lock the caller holds, if it has not expired at now.
func cached(sh *shard, name string, now int64) *cachedEvent {
	if ev := sh.cache[name]; ev != nil && ev.expires > now {
		return ev
	}
	return nil
}

// CachedEvent returns the JSON of the last event of cache channel name and
// how long it is kept still; ok is false when there is none.
func (s *Server) CachedEvent(app *App, name string) (event []byte, ttl time.Duration, ok bool) {
	sh := app.hub.shard(name)
	now := time.Now().UnixNano()
	sh.mu.Lock()
	ev := cached(sh, name, now)
	sh.mu.Unlock()
	if ev == nil {
		return nil, 0, false
	}
	return ev.appendJSON(nil), time.Duration(ev.expires - now), true
}

// CacheStats is what an app's cache channels hold.
type CacheStats struct {
	Bytes     int64  // kept now, counted against max_cache_bytes
	Evictions uint64 // entries evicted to stay under it
}

// CacheStats reports on app's cache channels.
func (s *Server) CacheStats(app *App) CacheStats {
	c := &app.hub.cache
	return CacheStats{Bytes: c.bytes.Load(), Evictions: c.evictions.Load()}
}

// Expire forgets cache-channel events whose TTL has passed at now (unix
// nanoseconds), so that channels published to once do not hold memory
// forever. Package loop calls it from its ticker.
func (s *Server) Expire(now int64) {
	for _, app := range s.apps {
		h := app.hub
		for i := range h.shards {
			sh := &h.shards[i]
			sh.mu.Lock()
			for name, ev := range sh.cache {
				if ev.expires <= now {
					delete(sh.cache, name)
					h.cache.drop(ev)
				}
			}
			sh.mu.Unlock()
		}
		h.cache.forget()
	}
}
