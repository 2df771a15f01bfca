package pusher

import (
	"context"
	"sync"
	"sync/atomic"

	"github.com/gobwas/ws"

	"github.com/revurb/revurb/codec"
)

// frameHeadroom is room left before an event's JSON for the largest
// WebSocket header, so that a frame is built in one buffer without a copy:
// the JSON is appended first, then the header is written right before it.
const frameHeadroom = codec.MaxFrameHeaderLen

// sharedFrame is one broadcast, encoded once: the JSON event inside one
// unmasked text frame. Every loop that has subscribers writes the same
// bytes; the last one to finish returns the buffer to the pool.
type sharedFrame struct {
	buf  []byte // frameHeadroom bytes, then the event JSON
	off  int    // where the frame starts in buf, once sealed
	refs atomic.Int32
}

var framePool = sync.Pool{New: func() any {
	return &sharedFrame{buf: make([]byte, frameHeadroom, 512)}
}}

// newFrame returns an empty frame with one reference, held by the caller.
func newFrame() *sharedFrame {
	f := framePool.Get().(*sharedFrame)
	f.buf = f.buf[:frameHeadroom]
	f.refs.Store(1)
	return f
}

// seal writes the frame header before the JSON appended to f.buf.
func (f *sharedFrame) seal() {
	n := len(f.buf) - frameHeadroom
	f.off = frameHeadroom - codec.FrameHeaderLen(n)
	codec.AppendFrameHeader(f.buf[f.off:f.off], ws.OpText, n)
}

// eventFrame returns a sealed frame holding the server event
// {"event","channel","data"} (appendEvent), with one reference.
func eventFrame(event, channel string, data []byte) *sharedFrame {
	f := newFrame()
	f.buf = appendEvent(f.buf, event, channel, data)
	f.seal()
	return f
}

// clientEventFrame returns a sealed frame holding a relayed client event
// (appendClientEvent), with one reference.
func clientEventFrame(event []byte, channel string, data []byte, user string) *sharedFrame {
	f := newFrame()
	f.buf = appendClientEvent(f.buf, event, channel, data, user)
	f.seal()
	return f
}

// bytes is the sealed frame.
func (f *sharedFrame) bytes() []byte { return f.buf[f.off:] }

func (f *sharedFrame) release() {
	if f.refs.Add(-1) != 0 {
		return
	}
	if cap(f.buf) <= 64<<10 {
		framePool.Put(f)
	}
}

// fanout writes one broadcast to the subscribers a channel has on one loop.
// It is the Task a broadcast sends to each loop: one per loop, never one per
// subscriber.
type fanout struct {
	s    *Server
	ch   *channel
	loop int
	cost int64 // what the publish bound counted for this task: deliveries
	size int64 // and bytes
	f    *sharedFrame
	to   target
}

var fanoutPool = sync.Pool{New: func() any { return new(fanout) }}

// Run writes the frame on the loop that owns the subscribers. What it
// holds (the publish bound's count, the frame) is given back in a defer,
// so that a panic in a write, which the loop recovers, leaves nothing
// charged.
func (t *fanout) Run(context.Context) error {
	defer t.finish()
	t.ch.write(t.loop, t.f.bytes(), &t.to)
	return nil
}

// finish returns what a fan-out task held.
func (t *fanout) finish() {
	t.s.gate.done(t.loop, t.cost, t.size)
	t.f.release()
	*t = fanout{}
	fanoutPool.Put(t)
}

// write sends frame to the subscribers of c on loop that to reaches. It
// runs on that loop, in one of its turns: a subscriber whose socket fails
// during the walk is closed by the loop after the turn (loop: the turn),
// so the list stays as it is while it is walked.
func (c *channel) write(loop int, frame []byte, to *target) {
	for _, sub := range c.subs[loop] {
		if !to.upto.before(sub.seq) && sub.sess.id != to.except {
			sub.sess.conn.Write(frame)
		}
	}
}

// target says whom a broadcast reaches.
type target struct {
	// except is a socket_id left out (0 for none).
	except SocketID
	// from is the session whose message caused the broadcast, or nil: its
	// own loop is written at once, the other loops get a task each.
	from *Session
	// upto: only subscriptions numbered up to it (shard.seq) are written,
	// so that a subscriber who joined after the event happened, and whose
	// subscription_succeeded or cache replay already covers it, does not
	// get it again. 0 takes the number current when broadcast runs.
	upto seqNum
}

// fanOut sends the sealed frame f to the subscribers of channel name of
// hub h that to reaches. It consumes the caller's reference to f. keep, if
// not nil, becomes the channel's cached event in the same step that fixes
// upto, so that a subscriber gets either the replay or the live event,
// never both and never neither.
func (s *Server) fanOut(h *hub, name string, f *sharedFrame, to target, keep *cachedEvent) {
	r := h.route(name, keep, &to)
	ch := r.ch
	for i, mask := 0, r.mask; mask != 0; i, mask = i+1, mask>>1 {
		if mask&1 == 0 {
			continue
		}
		if to.from != nil && int(to.from.loop) == i {
			ch.write(i, f.bytes(), &to)
			continue
		}
		cost, size := int64(r.counts[i]), int64(len(f.bytes()))
		s.gate.add(i, cost, size)
		t := fanoutPool.Get().(*fanout)
		*t = fanout{s: s, ch: ch, loop: i, cost: cost, size: size, f: f, to: to}
		f.refs.Add(1)
		// An error means the engine is shutting down. gnet may have queued
		// the task all the same, so neither it nor the frame's reference is
		// taken back: the garbage collector has them if it never runs.
		_ = s.loops.Execute(i, t)
	}
	f.release()
}

// routed is whom a broadcast reaches: the channel (nil if it has no
// subscribers here), the loops where it has subscribers (a bit each) and
// how many on each — what the publish bound counts for a loop and
// uncounts when that loop has written.
type routed struct {
	ch     *channel
	mask   uint64
	counts [maxLoops]int32
}

// route fixes whom a broadcast to channel name reaches now: its
// subscribers, and, if to.upto is 0, only the subscriptions numbered so
// far. keep, if not nil, becomes the channel's cached event in the same
// step, so that a subscriber gets either the replay or the live event,
// never both and never neither. sh.mu is held.
func (sh *shard) route(h *hub, name string, keep *cachedEvent, to *target) routed {
	if keep != nil {
		h.cache.keep(sh, keep)
	}
	if to.upto == 0 {
		to.upto = sh.seq
	}
	r := routed{ch: sh.channels[name]}
	r.mask = r.ch.loops(&r.counts)
	return r
}

// loops returns the mask of the loops where c, which may be nil, has
// subscribers, and their number on each in counts if it is not nil. The
// caller holds c's shard lock.
func (c *channel) loops(counts *[maxLoops]int32) uint64 {
	if c == nil {
		return 0
	}
	var mask uint64
	for i, n := range c.perLoop {
		if n > 0 {
			if counts != nil {
				counts[i] = n
			}
			mask |= 1 << i
		}
	}
	return mask
}

// appendEvent appends a server event {"event","channel","data"} whose data
// is the JSON string of data (Pusher protocol: data is JSON-encoded once
// more). channel may be empty.
func appendEvent(dst []byte, event, channel string, data []byte) []byte {
	dst = append(dst, `{"event":`...)
	dst = codec.AppendJSONString(dst, event)
	if channel != "" {
		dst = append(dst, `,"channel":`...)
		dst = codec.AppendJSONString(dst, channel)
	}
	dst = append(dst, `,"data":`...)
	dst = appendJSONBytes(dst, data)
	return append(dst, '}')
}
