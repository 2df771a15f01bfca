package pusher

import (
	"context"
	"strconv"
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
// than Config.PublishWait or ctx ends first. Once it returns nil every
// subscriber of this node gets every event. In a cluster the others' get
// them through the broker, in the one order every node delivers in, except
// while the broker cannot take them: an event it refuses is delivered here
// alone, possibly ahead of earlier events of the batch still on their way
// back from Redis, and the broker counts what the other nodes miss (if the
// first event is refused the call returns ErrBusy, having sent nothing).
// Before all that, the events count toward the app's
// max_backend_events_per_second: past it Publish returns a *RateError,
// having sent nothing. Publish is safe for concurrent use; the caller
// validates names and sizes.
func (s *Server) Publish(ctx context.Context, app *App, events []Event) error {
	if err := app.admit(len(events)); err != nil {
		return err
	}
	err := s.publish(ctx, app, events)
	if err != nil && app.MaxBackendEventsPerSecond > 0 {
		app.limit.give(app.MaxBackendEventsPerSecond, len(events))
	}
	if err == nil && app.Watched() {
		tellPublished(app, events)
	}
	return err
}

// tellPublished tells app's viewers of events triggered through the HTTP
// API, one TapEvent per channel.
func tellPublished(app *App, events []Event) {
	var detail string
	if len(events) > 1 {
		detail = "batch of " + strconv.Itoa(len(events))
	}
	for i := range events {
		e := &events[i]
		for _, ch := range e.Channels {
			app.Tell(TapEvent{Kind: TapAPIEvent, Channel: ch, Event: e.Name, Data: tapData(e.Data), SocketID: e.Except, Detail: detail})
		}
	}
}

// publish is Publish past the app's rate.
func (s *Server) publish(ctx context.Context, app *App, events []Event) error {
	// Below the bound a publisher is admitted whatever its cost, so its
	// deliveries are counted (a shard lock per channel) only when the loops
	// are behind.
	if s.gate.pending() >= s.gate.limit {
		var cost int64
		for i := range events {
			for _, ch := range events[i].Channels {
				cost += int64(s.subscribers(app, ch))
			}
		}
		if err := s.gate.admit(ctx, cost); err != nil {
			return err
		}
	}
	if !s.clustered {
		for i := range events {
			s.deliverHere(app, &events[i], time.Time{})
		}
		s.broadcasts.Add(uint64(len(events)))
		return nil
	}
	// Through the cluster, this node included, so that every node
	// delivers every broadcast in one order.
	cacheUntil := time.UnixMilli(time.Now().Add(app.cacheTTL()).UnixMilli()) // what the other nodes get
	for i := range events {
		e := &events[i]
		b := &Broadcast{Origin: s.broker.Node(), App: app.ID, Channels: e.Channels, Event: e.Name, Data: e.Data, Except: e.Except}
		if hasCacheChannel(e.Channels) {
			b.CacheUntilMs = cacheUntil.UnixMilli()
		}
		switch err := s.broker.Publish(ctx, b); err {
		case nil:
		case ErrBrokerDown:
			s.deliverHere(app, e, cacheUntil)
		default:
			if i == 0 {
				return ErrBusy
			}
			// Some of the batch went out: the rest still goes, here.
			s.deliverHere(app, e, cacheUntil)
		}
		s.broadcasts.Add(1)
	}
	return nil
}

func hasCacheChannel(channels []string) bool {
	for _, ch := range channels {
		if _, cache := ChannelKind(ch); cache {
			return true
		}
	}
	return false
}

// deliverHere frames the event once per channel and fans it out to this node's
// subscribers. A cache channel keeps it until cacheUntil, or for the app's
// cache_ttl from now when that is zero.
func (s *Server) deliverHere(app *App, e *Event, cacheUntil time.Time) {
	if s.debug {
		s.log.Debug("publish", "app", app.ID, "channels", e.Channels, "event", e.Name)
	}
	to := target{}
	if e.Except != "" {
		// An id that does not parse is no session's here: nobody is left out.
		to.except, _ = ParseSocketID(e.Except)
	}
	ec := eventCache{until: cacheUntil}
	for _, ch := range e.Channels {
		s.fanOut(app.hub, ch, eventFrame(e.Name, ch, e.Data), to, ec.entry(app, e, ch))
	}
}

// eventCache makes what an event's cache channels keep of it, sharing one
// copy of its data.
type eventCache struct {
	data  *cacheData
	until time.Time // zero: the app's cache_ttl from the first entry
}

// entry is what channel ch keeps of e: nil unless it is a cache channel.
func (c *eventCache) entry(app *App, e *Event, ch string) *cachedEvent {
	if _, cache := ChannelKind(ch); !cache {
		return nil
	}
	if c.data == nil {
		c.data = &cacheData{b: append([]byte(nil), e.Data...)}
		if c.until.IsZero() {
			c.until = time.Now().Add(app.cacheTTL())
		}
	}
	return &cachedEvent{channel: ch, event: e.Name, data: c.data, expires: c.until.UnixNano()}
}

// subscribers is how many connections of this node are in channel name.
func (s *Server) subscribers(app *App, name string) int {
	return app.hub.count(name)
}
