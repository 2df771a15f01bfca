package pusher

import (
	"sort"
	"strings"
	"time"
)

// Publish sends the event name with data (a string, sent JSON-encoded as
// Pusher does) to each of channels of app, except the connection whose
// socket_id is except ("" for none). A cache channel keeps the event as its
// last one, for its TTL, even while nobody is subscribed. Publish is safe
// for concurrent use; the caller validates names and sizes.
func (s *Server) Publish(app *App, channels []string, name string, data []byte, except string) {
	if s.debug {
		s.log.Printf("publish app=%s channels=%v event=%s", app.ID, channels, name)
	}
	for _, ch := range channels {
		f := newFrame()
		f.buf = appendEvent(f.buf, name, ch, data)
		f.seal()
		to := target{except: except}
		if _, cache := ChannelKind(ch); cache {
			to.cacheUntil = time.Now().Add(app.cacheTTL()).UnixNano()
		}
		s.broadcast(app.hub, ch, f, to)
	}
}

// ChannelInfo is what this node knows of one channel.
type ChannelInfo struct {
	Name              string
	Occupied          bool
	SubscriptionCount int // connections subscribed
	UserCount         int // presence channels: distinct users
}

// Channel returns what is known of the channel name of app.
func (s *Server) Channel(app *App, name string) ChannelInfo {
	sh := app.hub.shard(name)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	return info(name, sh.channels[name])
}

func info(name string, ch *channel) ChannelInfo {
	if ch == nil || ch.count == 0 {
		return ChannelInfo{Name: name}
	}
	return ChannelInfo{Name: name, Occupied: true, SubscriptionCount: ch.count, UserCount: len(ch.members)}
}

// Channels returns the occupied channels of app whose names start with
// prefix, sorted by name.
func (s *Server) Channels(app *App, prefix string) []ChannelInfo {
	var out []ChannelInfo
	for i := range app.hub.shards {
		sh := &app.hub.shards[i]
		sh.mu.Lock()
		for name, ch := range sh.channels {
			if ch.count > 0 && strings.HasPrefix(name, prefix) {
				out = append(out, info(name, ch))
			}
		}
		sh.mu.Unlock()
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Users returns the ids of the members of presence channel name, sorted.
func (s *Server) Users(app *App, name string) []string {
	sh := app.hub.shard(name)
	sh.mu.Lock()
	var ids []string
	if ch := sh.channels[name]; ch != nil {
		ids = make([]string, 0, len(ch.members))
		for id := range ch.members {
			ids = append(ids, id)
		}
	}
	sh.mu.Unlock()
	sort.Strings(ids)
	return ids
}

// CachedEvent returns the JSON of the last event of cache channel name and
// how long it is kept still; ok is false when there is none.
func (s *Server) CachedEvent(app *App, name string) (event []byte, ttl time.Duration, ok bool) {
	sh := app.hub.shard(name)
	sh.mu.Lock()
	ev := sh.cache[name]
	sh.mu.Unlock()
	if ev == nil {
		return nil, 0, false
	}
	ttl = time.Duration(ev.expires - time.Now().UnixNano())
	if ttl <= 0 {
		return nil, 0, false
	}
	return frameJSON(ev.frame), ttl, true
}

// frameJSON returns the payload of an unmasked server frame.
func frameJSON(frame []byte) []byte {
	switch n := frame[1] & 0x7f; n {
	case 126:
		return frame[4:]
	case 127:
		return frame[10:]
	}
	return frame[2:]
}

// Expire forgets cache-channel events whose TTL has passed at now (unix
// nanoseconds), so that channels published to once do not hold memory
// forever. Package loop calls it from its ticker.
func (s *Server) Expire(now int64) {
	for _, app := range s.apps {
		for i := range app.hub.shards {
			sh := &app.hub.shards[i]
			sh.mu.Lock()
			for name, ev := range sh.cache {
				if ev.expires <= now {
					delete(sh.cache, name)
				}
			}
			sh.mu.Unlock()
		}
	}
}
