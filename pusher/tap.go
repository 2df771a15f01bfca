package pusher

import (
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// The tap: what happens to an app, told to the consoles watching it (the
// HTTP API's /console). An app nobody watches pays one atomic load where
// something happens (App.Watched) and nothing else: no event is made. A
// watched app makes a TapEvent and offers it to each viewer's bounded
// queue without waiting; a viewer that does not keep up misses events,
// and counts them (Viewer.Skipped). Nothing a viewer does slows a loop.

// TapKind says what a TapEvent is.
type TapKind uint8

const (
	TapConnected    TapKind = iota + 1 // a connection opened (SocketID, Detail: origin)
	TapDisconnected                    // a connection closed (Code: the close code revurb sent, 0 if the client or the network closed it)
	TapSubscribed                      // a subscription succeeded (Channel; Detail: the presence user)
	TapUnsubscribed                    // a subscription ended (Channel)
	TapAPIEvent                        // an event triggered through the HTTP API (Channel, Event, Data; Detail: "batch of N" for a batch)
	TapClientEvent                     // a client event relayed (SocketID, Channel, Event, Data)
	TapError                           // an error sent to a client (SocketID, Code, Detail: the message; Channel for a subscription error)
	TapWebhook                         // a webhook request sent (Detail: URL and events; Code: the HTTP status, 0 if none came)
)

var tapKindNames = [...]string{
	TapConnected: "connected", TapDisconnected: "disconnected", TapSubscribed: "subscribed",
	TapUnsubscribed: "unsubscribed", TapAPIEvent: "api_event", TapClientEvent: "client_event",
	TapError: "error", TapWebhook: "webhook",
}

func (k TapKind) String() string {
	if int(k) < len(tapKindNames) && tapKindNames[k] != "" {
		return tapKindNames[k]
	}
	return "TapKind(" + strconv.Itoa(int(k)) + ")"
}

// TapEvent is one thing that happened to an app, in plain values.
type TapEvent struct {
	Time     int64 // unix milliseconds
	Kind     TapKind
	SocketID string
	Channel  string
	Event    string
	Data     string // the event's data, cut at TapDataMax bytes
	Code     int
	Detail   string
}

// TapDataMax is how much of an event's data a TapEvent keeps.
const TapDataMax = 1024

// tapData is data as a TapEvent keeps it.
func tapData(data []byte) string {
	if len(data) > TapDataMax {
		return string(data[:TapDataMax]) + "…"
	}
	return string(data)
}

// tap is an app's viewers. The slice is replaced, never changed, so that
// Tell reads it with one atomic load.
type tap struct {
	mu       sync.Mutex // Watch and Viewer.Close, one at a time
	viewers  atomic.Pointer[[]*Viewer]
	messages atomic.Uint64 // events triggered and client events relayed while watched
}

// Viewer is one console's feed of an app's events.
type Viewer struct {
	t       *tap
	c       chan TapEvent
	skipped atomic.Uint64
	closed  bool // under t.mu
}

// Watch starts a feed of a's events, holding up to buffer of them for
// the viewer to take; Close ends it.
func (a *App) Watch(buffer int) *Viewer {
	t := &a.tap
	v := &Viewer{t: t, c: make(chan TapEvent, max(buffer, 1))}
	t.mu.Lock()
	defer t.mu.Unlock()
	var list []*Viewer
	if p := t.viewers.Load(); p != nil {
		list = append(list, *p...)
	}
	list = append(list, v)
	t.viewers.Store(&list)
	return v
}

// Events is where the viewer takes the app's events from.
func (v *Viewer) Events() <-chan TapEvent { return v.c }

// Skipped returns how many events did not fit the viewer's buffer since
// the last call.
func (v *Viewer) Skipped() uint64 { return v.skipped.Swap(0) }

// Messages is how many events were triggered through the HTTP API or
// relayed from clients while someone watched the app; per second, it is
// the console's message rate.
func (v *Viewer) Messages() uint64 { return v.t.messages.Load() }

// Close ends the feed. The events still in it are left to the garbage
// collector.
func (v *Viewer) Close() {
	t := v.t
	t.mu.Lock()
	defer t.mu.Unlock()
	if v.closed {
		return
	}
	v.closed = true
	var list []*Viewer
	for _, x := range *t.viewers.Load() {
		if x != v {
			list = append(list, x)
		}
	}
	if len(list) == 0 {
		t.viewers.Store(nil)
		return
	}
	t.viewers.Store(&list)
}

// Watched reports whether a console watches the app: only then is a
// TapEvent worth making.
func (a *App) Watched() bool { return a.tap.viewers.Load() != nil }

// Tell offers e to each viewer of a, stamped with the time, without
// waiting: a viewer whose buffer is full misses it.
func (a *App) Tell(e TapEvent) {
	p := a.tap.viewers.Load()
	if p == nil {
		return
	}
	if e.Kind == TapAPIEvent || e.Kind == TapClientEvent {
		a.tap.messages.Add(1)
	}
	e.Time = time.Now().UnixMilli()
	for _, v := range *p {
		select {
		case v.c <- e:
		default:
			v.skipped.Add(1)
		}
	}
}

// tell tells the viewers of s's app of what happened to s; Watched has
// been checked.
func (s *Session) tell(kind TapKind, channel string, code int, detail string) {
	s.app.Tell(TapEvent{Kind: kind, SocketID: s.id.String(), Channel: channel, Code: code, Detail: detail})
}
