package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	randv2 "math/rand/v2"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/gobwas/ws"

	"github.com/revurb/revurb/pusher"
)

// Event names the tool sends and recognises on the fast path.
const (
	fanoutEvent = "perf-event"
	clientEvent = "client-perf"
)

// setupTimeout bounds dial, handshake, connection_established and the
// subscription reply of one connection.
const setupTimeout = 15 * time.Second

// Errors that end a reader.
var (
	// errServerClosed: the server sent a close frame.
	errServerClosed = errors.New("closed by server")
	// errRefused: a setup step was refused and already counted.
	errRefused = errors.New("refused")
)

// conn is one client socket and what it saw. Fields without atomics are
// written by its reader goroutine only and read by the worker after that
// goroutine has ended (readersWG).
type conn struct {
	w       *worker
	index   int
	channel string
	chanIdx int     // fanout: index of channel among -channels
	target  int     // index of its server among -ws's targets
	ws      *wsConn // set under w.mu once the handshake is done

	dialStart time.Time
	subSent   time.Time
	socketID  string

	established atomic.Bool
	subscribed  atomic.Bool
	setupDone   atomic.Bool
	timedOut    atomic.Bool  // closed by the worker at the end of setup
	received    atomic.Int64 // distinct expected events delivered
	sent        atomic.Int64 // client events sent

	log          deliveryLog
	lastAt       int64 // unix nanos of the last delivery
	wrongChannel int64 // fanout events of another channel than c's
	closeCode    int
}

// finishSetup marks the connection's setup over (success or not) once.
func (c *conn) finishSetup() {
	if c.setupDone.CompareAndSwap(false, true) {
		c.w.setupWG.Done()
	}
}

// run dials, upgrades, subscribes and then reads until the socket closes.
// release frees the caller's connection-attempt slot; it is called once
// connection_established has arrived or the attempt failed.
func (c *conn) run(ctx context.Context, release func()) {
	w := c.w
	defer w.readersWG.Done()
	defer c.finishSetup()
	released := false
	rel := func() {
		if !released {
			released = true
			release()
		}
	}
	defer rel()

	c.dialStart = time.Now()
	w.noteDial(c.dialStart)
	src := sourceAddr(w.sourceFirst, c.index%w.cfg.sources)
	addr := w.cfg.wsAddrs[c.target]
	var wc *wsConn
	var deadline time.Time
	for {
		deadline = time.Now().Add(setupTimeout)
		var err error
		wc, err = dialWS(ctx, src, addr, w.path, w.cfg.readBuf, w.cfg.tlsConfs[addr], w.cfg.bindNoPort, deadline)
		if err == nil {
			break
		}
		if !c.retryAfter(ctx, err) {
			w.count(&w.failures, classify(err))
			return
		}
	}
	if s := wc.tlsState(); s != "" {
		w.count(&w.tlsSessions, s)
	}
	if !w.register(c, wc) {
		return
	}
	_ = wc.nc.SetReadDeadline(deadline)
	for {
		op, p, err := wc.readMessage()
		if err == nil {
			err = c.onMessage(op, p, rel)
		}
		if err != nil {
			c.end(err)
			return
		}
	}
}

// retryAfter waits -retry (between half and one and a half times it, so
// that a storm's retries spread) before c dials again after err, as a
// browser's client does when its connection is refused; false without
// -retry, or when the run ends first. The time to connection_established
// counts from the first dial.
func (c *conn) retryAfter(ctx context.Context, err error) bool {
	w := c.w
	if w.cfg.retry <= 0 || ctx.Err() != nil {
		return false
	}
	w.count(&w.retries, classify(err))
	d := w.cfg.retry/2 + time.Duration(randv2.Int64N(int64(w.cfg.retry)))
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// end records why the reader stopped, unless the worker is closing
// connections itself: as a setup failure when the socket never became
// ready, else as a drop.
func (c *conn) end(err error) {
	w := c.w
	if w.stopping.Load() {
		return
	}
	var reason string
	var fe errFrame
	switch {
	case errors.Is(err, errRefused):
		c.ws.abort()
		return
	case c.timedOut.Load():
		w.count(&w.failures, "setup: not ready in time")
		return
	case errors.As(err, &fe):
		w.count(&w.frameErrors, fe.Error())
		reason = "frame error"
	case errors.Is(err, errServerClosed):
		reason = "server sent close " + strconv.Itoa(c.closeCode)
	default:
		reason = classify(err)
	}
	if c.ready() {
		w.count(&w.drops, reason)
	} else {
		w.count(&w.failures, "setup: "+reason)
	}
	c.ws.abort()
}

// ready reports whether the socket got connection_established and, unless
// in connect mode, its subscription.
func (c *conn) ready() bool {
	return c.established.Load() && (c.w.cfg.mode == modeConnect || c.subscribed.Load())
}

// onMessage handles one server message. Event deliveries take the fast
// path: no JSON decoding, only a scan for the send time and id.
func (c *conn) onMessage(op ws.OpCode, p []byte, release func()) error {
	switch op {
	case ws.OpText:
	case ws.OpPing:
		return c.ws.write(ws.OpPong, p)
	case ws.OpPong:
		return nil
	case ws.OpClose:
		c.closeCode = closeCode(p)
		c.w.count(&c.w.closes, strconv.Itoa(c.closeCode))
		_ = c.ws.write(ws.OpClose, p[:min(len(p), 2)])
		return errServerClosed
	default:
		c.w.count(&c.w.other, "binary frame")
		return nil
	}
	if bytes.Contains(p, c.w.eventQuoted) {
		c.onEvent(p)
		return nil
	}
	return c.onControl(p, release)
}

// onEvent records one delivery of a load event (data as appendData
// writes it): duplicates, reorderings per publisher, events of another
// channel, and the latency from the send time it carries.
func (c *conn) onEvent(p []byte) {
	now := time.Now()
	w := c.w
	d, ok := parseEventData(p)
	if !ok {
		w.count(&w.frameErrors, "event data not t=..;i=..;pub=..;seq=..: "+snippet(p))
		return
	}
	if w.cfg.mode == modeFanout && channelOf(d.id, w.cfg.channels) != c.chanIdx {
		c.wrongChannel++
		return
	}
	if c.log.observe(d, w.cfg.events, w.publishers) != delivered {
		return
	}
	c.lastAt = now.UnixNano()
	lat := time.Duration(c.lastAt - d.t)
	w.latency.record(lat)
	if w.targetLat != nil {
		w.targetLat[c.target].record(lat)
	}
	c.received.Add(1)
	w.delivered.Add(1)
}

// pusherMessage is the envelope of every Pusher protocol message.
type pusherMessage struct {
	Event   string          `json:"event"`
	Channel string          `json:"channel"`
	Data    json.RawMessage `json:"data"`
}

// innerData decodes data that is a JSON string holding JSON (server
// events) or plain JSON, into v.
func innerData(raw json.RawMessage, v any) error {
	var s string
	if len(raw) > 0 && raw[0] == '"' {
		if err := json.Unmarshal(raw, &s); err != nil {
			return err
		}
		raw = []byte(s)
	}
	return json.Unmarshal(raw, v)
}

// onControl handles the protocol messages around the load: connection
// established, subscription replies, errors and pings.
func (c *conn) onControl(p []byte, release func()) error {
	w := c.w
	var m pusherMessage
	if err := json.Unmarshal(p, &m); err != nil {
		w.count(&w.frameErrors, "text frame is not JSON: "+snippet(p))
		return nil
	}
	now := time.Now()
	switch m.Event {
	case "pusher:connection_established":
		var d struct {
			SocketID        string `json:"socket_id"`
			ActivityTimeout int    `json:"activity_timeout"`
		}
		if err := innerData(m.Data, &d); err != nil || d.SocketID == "" {
			w.count(&w.failures, "bad connection_established: "+snippet(p))
			return errRefused
		}
		if c.established.Swap(true) {
			w.count(&w.other, "second connection_established")
			return nil
		}
		c.socketID = d.SocketID
		w.established.Add(1)
		w.connectLat.record(now.Sub(c.dialStart))
		w.noteEstablished(now)
		release()
		if w.cfg.mode == modeConnect {
			_ = c.ws.nc.SetReadDeadline(time.Time{})
			c.finishSetup()
			return nil
		}
		c.subSent = now
		return c.ws.writeText(c.subscribeMessage())
	case "pusher_internal:subscription_succeeded":
		if m.Channel != c.channel {
			w.count(&w.other, "subscription_succeeded for another channel")
			return nil
		}
		if c.subscribed.Swap(true) {
			w.count(&w.other, "second subscription_succeeded")
			return nil
		}
		w.subscribed.Add(1)
		w.subscribeLat.record(now.Sub(c.subSent))
		_ = c.ws.nc.SetReadDeadline(time.Time{})
		c.finishSetup()
	case "pusher:subscription_error":
		w.count(&w.failures, "subscription_error: "+snippet(m.Data))
		c.finishSetup()
		return errRefused
	case "pusher:error":
		var d struct {
			Code    *int   `json:"code"`
			Message string `json:"message"`
		}
		_ = innerData(m.Data, &d)
		code := "null"
		if d.Code != nil {
			code = strconv.Itoa(*d.Code)
		}
		w.count(&w.serverErrors, code+" "+truncate(d.Message, 80))
	case "pusher:ping":
		return c.ws.writeText([]byte(`{"event":"pusher:pong","data":{}}`))
	case "pusher:pong":
	case w.eventName:
		c.onEvent(p)
	default:
		w.count(&w.other, truncate(m.Event, 80))
	}
	return nil
}

// subscribeMessage builds pusher:subscribe for c's channel, signing
// private channels with the app secret (Pusher protocol: private channel
// auth, HMAC-SHA256 over "socket_id:channel").
func (c *conn) subscribeMessage() []byte {
	data := map[string]string{"channel": c.channel}
	if bytes.HasPrefix([]byte(c.channel), []byte("private-")) {
		data["auth"] = c.w.cfg.key + ":" + pusher.Sign(c.w.cfg.secret, c.socketID+":"+c.channel)
	}
	b, _ := json.Marshal(map[string]any{"event": "pusher:subscribe", "data": data})
	return b
}

// sendClientEvents sends cfg.events client events on c's channel at
// cfg.rate per second, the first after offset, stopping early when ctx ends
// or the socket fails.
func (c *conn) sendClientEvents(ctx context.Context, start time.Time, offset time.Duration) {
	w := c.w
	if !c.subscribed.Load() {
		return
	}
	interval := time.Duration(float64(time.Second) / w.cfg.rate)
	prefix := `{"event":"` + clientEvent + `","channel":"` + c.channel + `","data":"`
	buf := make([]byte, 0, len(prefix)+64+w.cfg.size)
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for k := 0; k < w.cfg.events; k++ {
		if !waitUntil(ctx, timer, start.Add(offset+time.Duration(k)*interval)) {
			return
		}
		buf = append(buf[:0], prefix...)
		// Each sender is the only publisher its partner hears from.
		buf = appendData(buf, eventData{t: time.Now().UnixNano(), id: int64(k), seq: int64(k)}, w.cfg.size)
		buf = append(buf, `"}`...)
		if err := c.ws.writeText(buf); err != nil {
			return
		}
		c.sent.Add(1)
		w.sent.Add(1)
	}
}

func snippet(p []byte) string { return truncate(string(p), 120) }

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// waitUntil sleeps on timer until t and reports whether ctx is still live:
// the pacing of every timed send in loadgen.
func waitUntil(ctx context.Context, timer *time.Timer, t time.Time) bool {
	if d := time.Until(t); d > 0 {
		timer.Reset(d)
		select {
		case <-ctx.Done():
			return false
		case <-timer.C:
		}
	}
	return ctx.Err() == nil
}
