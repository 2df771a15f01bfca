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
// After unlocking, the caller must call hub.admit(ev).
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

// evict drops v, the oldest entry of the app's cache, from its channel
// unless it is gone already, to keep the app under its cap. sh.mu, of v's
// channel, and c.mu are held.
func (sh *shard) evict(c *cacheStore, v *cachedEvent) {
	if v.gone.Load() {
		return
	}
	if sh.cache[v.channel] == v {
		delete(sh.cache, v.channel)
	}
	c.drop(v)
	c.evictions.Add(1)
}

// compact gives back the queue's slots of the entries evicted, once they
// are many. c.mu is held.
func (c *cacheStore) compact() {
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

// cached returns the last event of cache channel name, if it has not
// expired at now. sh.mu is held.
func (sh *shard) cached(name string, now int64) *cachedEvent {
	if ev := sh.cache[name]; ev != nil && ev.expires > now {
		return ev
	}
	return nil
}

// CachedEvent returns the JSON of the last event of cache channel name and
// how long it is kept still; ok is false when there is none.
func (s *Server) CachedEvent(app *App, name string) (event []byte, ttl time.Duration, ok bool) {
	now := time.Now().UnixNano()
	ev := app.hub.cached(name, now)
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
	for _, app := range s.Apps() {
		h := app.hub
		h.each(func(sh *shard) {
			for name, ev := range sh.cache {
				if ev.expires <= now {
					delete(sh.cache, name)
					h.cache.drop(ev)
				}
			}
		})
		h.cache.forget()
	}
}
