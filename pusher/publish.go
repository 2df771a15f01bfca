package pusher

import (
	"context"
	"sort"
	"strings"
	"time"
)

// Event is one event to publish, described by plain values (as it would
// cross to another node): each node frames it once for its own subscribers.
type Event struct {
	// Channels the event goes to.
	Channels []string
	// Name is the event name.
	Name string
	// Data is the event's data, a string that is sent JSON-encoded as
	// Pusher does.
	Data []byte
	// Except is the socket_id of a connection left out ("" for none).
	Except string
}

// Publish sends events to the subscribers of app, in order. A cache
// channel keeps an event as its last one, for its TTL, even while nobody is
// subscribed.
//
// Publish first waits for room in the publish bound: it returns ErrBusy,
// having sent nothing, if the event loops stay too far behind for longer
// than Options.PublishWait or ctx ends first. Once it returns nil every
// subscriber gets every event. Publish is safe for concurrent use; the
// caller validates names and sizes.
func (s *Server) Publish(ctx context.Context, app *App, events []Event) error {
	var cost int64
	for i := range events {
		for _, ch := range events[i].Channels {
			cost += int64(s.subscribers(app, ch))
		}
	}
	if err := s.gate.admit(ctx, cost); err != nil {
		return err
	}
	for i := range events {
		s.deliver(app, &events[i])
	}
	return nil
}

// deliver frames the event once per channel and fans it out to this node's
// subscribers.
func (s *Server) deliver(app *App, e *Event) {
	if s.debug {
		s.log.Printf("publish app=%s channels=%v event=%s", app.ID, e.Channels, e.Name)
	}
	to := target{}
	if e.Except != "" {
		// An id that does not parse is no session's here: nobody is left out.
		to.except, _ = ParseSocketID(e.Except)
	}
	var data *cacheData // the event's data, once for all its cache channels
	var expires int64
	for _, ch := range e.Channels {
		f := newFrame()
		f.buf = appendEvent(f.buf, e.Name, ch, e.Data)
		f.seal()
		var keep *cachedEvent
		if _, cache := ChannelKind(ch); cache {
			if data == nil {
				data = &cacheData{b: append([]byte(nil), e.Data...)}
				expires = time.Now().Add(app.cacheTTL()).UnixNano()
			}
			keep = &cachedEvent{channel: ch, event: e.Name, data: data, expires: expires}
		}
		s.broadcast(app.hub, ch, f, to, keep)
	}
}

// subscribers is how many connections of this node are in channel name.
func (s *Server) subscribers(app *App, name string) int {
	sh := app.hub.shard(name)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if ch := sh.channels[name]; ch != nil {
		return ch.count
	}
	return 0
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
