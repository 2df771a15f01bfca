package loop

import (
	"bytes"
	"unsafe"
)

// A loop turn is one callback of gnet on the loop's goroutine: the traffic
// of one connection, one batch of queued tasks (broadcasts, keepalive
// sweeps), a close. Every frame written in a turn is staged, not sent, and
// when the turn ends each connection's frames leave in one write system
// call, in the order they were written. On loopback here one small write
// costs about 9 µs of server CPU, and sixteen frames in one write about
// 0.7 µs each, so a connection that several broadcasts reach while its loop
// was busy costs one system call, not one per broadcast.
//
// Staging keeps nothing per connection but three numbers: the frames are
// copied into one arena per loop, a frame that several connections get in
// a row (a broadcast's fan-out) only once, and each connection's writes are
// a chain of segments of that arena.

// segment is one frame staged for one connection: arena[off:off+n], then
// the segment numbered next (0: the last).
type segment struct {
	off, n, next int32
}

// Bounds of one turn's staging. Past them the loop flushes what it has
// staged and goes on, so that a huge turn costs a few more writes rather
// than unbounded memory.
const (
	maxArena    = 4 << 20
	maxSegments = 1 << 18
	// keepArena is the arena kept for the next turn; a larger one is given
	// back to the garbage collector.
	keepArena = 256 << 10
)

// stager is the write staging of one loop. Only the loop touches it.
type stager struct {
	arena   []byte
	segs    []segment // segs[0] is unused, so that 0 means none
	dirty   []*conn   // connections with staged frames, in the order they got their first
	scratch []byte    // one connection's frames laid end to end for its write

	// The last frame copied into the arena, to copy a fan-out's frame once.
	last    unsafe.Pointer
	lastLen int
	lastOff int32

	flushing bool
}

func newStager() *stager {
	return &stager{segs: make([]segment, 1, 64)}
}

// stage queues frame for c, after what c already has queued.
func (st *stager) stage(c *conn, frame []byte) {
	if len(frame) == 0 {
		return
	}
	if !st.flushing && (len(st.segs) >= maxSegments || (len(st.arena) > 0 && len(st.arena)+len(frame) > maxArena)) {
		st.flush()
	}
	off := st.lastOff
	// The same bytes at the same place as the frame copied last: a
	// broadcast going to the next subscriber. The comparison guards
	// against a buffer reused for other bytes of the same length.
	if unsafe.Pointer(unsafe.SliceData(frame)) != st.last || len(frame) != st.lastLen ||
		!bytes.Equal(st.arena[off:int(off)+len(frame)], frame) {
		off = int32(len(st.arena))
		st.arena = append(st.arena, frame...)
		st.last, st.lastLen, st.lastOff = unsafe.Pointer(unsafe.SliceData(frame)), len(frame), off
	}
	k := int32(len(st.segs))
	st.segs = append(st.segs, segment{off: off, n: int32(len(frame))})
	if c.tail == 0 {
		c.head = k
		st.dirty = append(st.dirty, c)
	} else {
		st.segs[c.tail].next = k
	}
	c.tail = k
	c.staged += int32(len(frame))
}

// take returns c's staged frames as one slice, valid until the next stage
// or flush, and forgets them.
func (st *stager) take(c *conn) []byte {
	k := c.head
	c.head, c.tail, c.staged = 0, 0, 0
	s := st.segs[k]
	if s.next == 0 {
		return st.arena[s.off : s.off+s.n]
	}
	b := st.scratch[:0]
	for ; k != 0; k = st.segs[k].next {
		s := st.segs[k]
		b = append(b, st.arena[s.off:s.off+s.n]...)
	}
	st.scratch = b
	return b
}

// flushConn writes what is staged for c now, ahead of the turn's end.
func (st *stager) flushConn(c *conn) {
	if c.head != 0 {
		c.write(st.take(c))
	}
}

// forget drops what is staged for c.
func (st *stager) forget(c *conn) {
	c.head, c.tail, c.staged = 0, 0, 0
}

// reset drops everything staged, for every connection.
func (st *stager) reset() {
	for _, c := range st.dirty {
		if c != nil {
			st.forget(c)
		}
	}
	clear(st.dirty)
	st.dirty = st.dirty[:0]
	st.segs = st.segs[:1]
	st.arena = st.arena[:0]
	st.last, st.lastLen, st.lastOff = nil, 0, 0
}

// flush writes every connection's staged frames, one write each, and
// empties the staging. A write that fails closes its connection at once,
// inside gnet, and what that close stages is flushed in the same pass: a
// flush asked for meanwhile (by OnClose, or by stage at its bounds) is
// this one. A write that panics leaves the connections already written as
// nil entries, which a flush or reset after the panic passes over.
func (st *stager) flush() {
	if st.flushing {
		return
	}
	st.flushing = true
	defer func() { st.flushing = false }()
	for i := 0; i < len(st.dirty); i++ {
		c := st.dirty[i]
		st.dirty[i] = nil
		if c != nil && c.head != 0 {
			c.write(st.take(c))
		}
	}
	st.dirty = st.dirty[:0]
	st.segs = st.segs[:1]
	st.last, st.lastLen, st.lastOff = nil, 0, 0
	if cap(st.arena) > keepArena {
		st.arena = nil
	} else {
		st.arena = st.arena[:0]
	}
	if cap(st.scratch) > keepArena {
		st.scratch = nil
	}
}
