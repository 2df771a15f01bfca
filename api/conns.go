package api

import (
	"bytes"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
)

// A connection of the API port and the states it goes through, as the
// listener made by Listen holds them; admission.go says who gets a slot.

// connState is where a connection of the API is: waiting → new → reading
// → serving → idle → reading …; any served state → closing once an error
// answer was written; then gone.
type connState uint8

const (
	connWaiting connState = iota // accepted, waiting for a slot
	connNew                      // served; no byte of a request yet
	connReading                  // reading a request: headers, then body
	connServing                  // its request in the handler, then its response
	connIdle                     // keep-alive, waiting for the next request
	connClosing                  // draining what the client still sends after an error answer
	connStates
)

var connStateNames = [connStates]string{"waiting", "new", "reading", "serving", "idle", "closing"}

func (s connState) String() string { return connStateNames[s] }

// conn is one connection of the API port. Its state fields are guarded
// by its table's mu.
type conn struct {
	net.Conn
	t    *connTable
	addr *addrCount

	state      connState
	since      time.Time // when it entered state
	reclaiming bool      // its read deadline was set to end it, in this state
	reclaimAt  time.Time
	gone       bool

	linger atomic.Int64 // bytes to drain before the close; 0: close at once
	once   sync.Once

	// line is the length of the request line being read, up to its line
	// end, and method that of its method; lineDone once the line end was
	// read. A request over the read buffer is told apart by them
	// (readError): fasthttp forgets the request line it parsed when the
	// header block does not fit. Only fasthttp's goroutine for the
	// connection touches them; the idle hook resets them.
	line, method int
	lineDone     bool
}

// Close drains what the client still sends if an error answer asked for
// it (limits.go), closes, and gives the slot back.
func (c *conn) Close() error {
	var err error
	c.once.Do(func() {
		if n := c.linger.Load(); n > 0 {
			c.t.lingering(c)
			drain(c.Conn, n)
		}
		err = c.Conn.Close()
		c.t.remove(c)
	})
	return err
}

// Read measures the request line of each request.
func (c *conn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if !c.lineDone && n > 0 {
		b := p[:n]
		if c.line == 0 {
			c.method = bytes.IndexByte(b, ' ')
		}
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			c.line += i
			c.lineDone = true
		} else {
			c.line += n
		}
	}
	return n, err
}

// urlSize is the length of the URL of the request line read so far, or
// -1 if the line has not ended yet.
func (c *conn) urlSize() int {
	if !c.lineDone {
		return -1
	}
	return c.line - c.method - len(" HTTP/1.1\r") - 1
}

// addrCount is what one client address holds.
type addrCount struct {
	key           netip.Prefix
	open, waiting int
}

func (a *addrCount) total() int { return a.open + a.waiting }

// connTable holds the connections of one listener.
type connTable struct {
	slots   int
	perAddr int // 0: no cap per address

	mu      sync.Mutex
	open    map[*conn]struct{}
	waiting []*conn // at most cap(waiting), oldest first
	addrs   map[netip.Prefix]*addrCount
	counts  [connStates]int

	arrived  chan struct{} // a connection is waiting
	freed    chan struct{} // a slot was given back
	room     chan struct{} // a waiting connection was served or refused
	refusers chan struct{} // refusals under way
	refused  atomic.Uint64
	ended    [connStates]atomic.Uint64 // connections ended to make room, by the state they were in
}

// newConnTable makes the table of a listener serving slots connections
// at once, perAddr of one address (0: no cap).
func newConnTable(slots, perAddr int) *connTable {
	return &connTable{
		slots: slots, perAddr: perAddr,
		open: map[*conn]struct{}{}, waiting: make([]*conn, 0, extraConns(slots)), addrs: map[netip.Prefix]*addrCount{},
		arrived: make(chan struct{}, 1), freed: make(chan struct{}, 1), room: make(chan struct{}, 1),
		refusers: make(chan struct{}, extraConns(slots)),
	}
}

// extraConns is how many connections a listener serving slots at once
// holds at most waiting for a slot, and as many being refused: an eighth
// of slots, at least 4.
func extraConns(slots int) int { return max(slots/8, 4) }

// Descriptors is the most descriptors a listener made by Listen holds
// when it serves concurrency connections at once (Config.Concurrency):
// those, the ones waiting for a slot or being refused, and one the
// kernel has just handed over.
func Descriptors(concurrency int) int { return concurrency + 2*extraConns(concurrency) + 1 }

// setState moves c to s, unless it is gone or already closing.
func (t *connTable) setState(c *conn, s connState) {
	t.mu.Lock()
	if !c.gone && c.state != connClosing {
		t.moveLocked(c, s)
	}
	t.mu.Unlock()
}

func (t *connTable) moveLocked(c *conn, s connState) {
	t.counts[c.state]--
	t.counts[s]++
	c.state, c.since, c.reclaiming = s, time.Now(), false
}

// lingering moves c to closing and gives it the drain's deadline, both
// under mu, so that a victim search sees either the old state or the
// closing one with its deadline already set.
func (t *connTable) lingering(c *conn) {
	t.mu.Lock()
	t.moveLocked(c, connClosing)
	_ = c.Conn.SetReadDeadline(c.since.Add(lingerTime))
	t.mu.Unlock()
}

// remove gives c's slot back.
func (t *connTable) remove(c *conn) {
	t.mu.Lock()
	if !c.gone {
		c.gone = true
		delete(t.open, c)
		if c.addr.open--; c.addr.total() == 0 {
			delete(t.addrs, c.addr.key)
		}
		t.counts[c.state]--
	}
	t.mu.Unlock()
	signal(t.freed)
}

// connStats is what a table holds now and has done.
type connStats struct {
	open    [connStates]int
	refused uint64
	ended   [connStates]uint64
}

func (t *connTable) stats() connStats {
	var st connStats
	t.mu.Lock()
	st.open = t.counts
	t.mu.Unlock()
	st.refused = t.refused.Load()
	for i := range st.ended {
		st.ended[i] = t.ended[i].Load()
	}
	return st
}

// connStateHook follows fasthttp's view of a connection.
func connStateHook(nc net.Conn, st fasthttp.ConnState) {
	c, ok := nc.(*conn)
	if !ok {
		return
	}
	switch st {
	case fasthttp.StateActive:
		c.t.setState(c, connReading)
	case fasthttp.StateIdle:
		c.line, c.method, c.lineDone = 0, 0, false
		c.t.setState(c, connIdle)
	}
}

// serving marks the connection of ctx as in the handler, where it is
// never ended to make room.
func serving(ctx *fasthttp.RequestCtx) {
	if c, ok := ctx.Conn().(*conn); ok {
		c.t.setState(c, connServing)
	}
}
