package api

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/revurb/revurb/pusher"
)

// serveListen serves a fresh API on a Listen listener on a free loopback
// port and returns its address.
func serveListen(t *testing.T, opts Config) (*Server, string) {
	t.Helper()
	return serveListenLoops(t, opts, &syncLoops{}, pusher.Config{})
}

// serveListenLoops is serveListen with the given loops and pusher options.
func serveListenLoops(t *testing.T, opts Config, loops pusher.Loops, popts pusher.Config) (*Server, string) {
	t.Helper()
	p, err := pusher.NewServer([]pusher.AppConfig{pusher.DefaultApp(testAppID, testKey, testSecret)}, popts)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Attach(loops); err != nil {
		t.Fatal(err)
	}
	s := New(p, opts)
	ln, err := s.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve(ln) }()
	t.Cleanup(func() {
		_ = s.Shutdown(shutdownCtx(t))
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return s, ln.Addr().String()
}

// keepAlive is a raw HTTP/1.1 connection that sends GET /up and reads the
// answer, keeping the connection.
type keepAlive struct {
	t  *testing.T
	c  net.Conn
	br *bufio.Reader
}

func dialKeepAlive(t *testing.T, addr string) *keepAlive {
	t.Helper()
	return dialKeepAliveFrom(t, "127.0.0.1", addr)
}

// dialKeepAliveFrom dials addr from the loopback address local.
func dialKeepAliveFrom(t *testing.T, local, addr string) *keepAlive {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &keepAlive{t: t, c: c, br: bufio.NewReader(c)}
}

func (k *keepAlive) send() {
	k.t.Helper()
	k.write("GET /up HTTP/1.1\r\nHost: x\r\n\r\n")
}

func (k *keepAlive) write(s string) {
	k.t.Helper()
	if _, err := k.c.Write([]byte(s)); err != nil {
		k.t.Fatal(err)
	}
}

// read returns the next response, with its body, or an error if none
// comes in wait.
func (k *keepAlive) read(wait time.Duration) (*http.Response, string, error) {
	_ = k.c.SetReadDeadline(time.Now().Add(wait))
	res, err := http.ReadResponse(k.br, nil)
	if err != nil {
		return nil, "", err
	}
	body, err := io.ReadAll(res.Body)
	res.Body.Close()
	return res, string(body), err
}

// up sends GET /up and fails unless it is answered 200.
func (k *keepAlive) up(what string) {
	k.t.Helper()
	k.send()
	if res, _, err := k.read(5 * time.Second); err != nil || res.StatusCode != 200 {
		k.t.Fatalf("%s: GET /up: %v %v", what, res, err)
	}
}

// closed fails unless the server closes the connection within wait,
// having sent nothing more than an answer of status (0: nothing).
func (k *keepAlive) closed(what string, status int, wait time.Duration) {
	k.t.Helper()
	if status != 0 {
		res, body, err := k.read(wait)
		if err != nil || res.StatusCode != status {
			k.t.Fatalf("%s: %v %v, want %d", what, res, err, status)
		}
		wantErrorBody(k.t, what, body)
	}
	_ = k.c.SetReadDeadline(time.Now().Add(wait))
	if n, err := k.br.ReadByte(); err != io.EOF {
		k.t.Fatalf("%s: read %q %v, want the connection closed", what, n, err)
	}
}

// wantErrorBody fails unless body is {"error": a non-empty string}.
func wantErrorBody(t *testing.T, what, body string) {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(body), &m); err != nil || len(m) != 1 || m["error"] == "" || m["error"] == nil {
		t.Errorf("%s: body %q, want {\"error\": ...}", what, body)
	}
}

// TestListenSlots: with two slots, both taken by one address, a third
// connection from another address holding two fewer is served at once
// when the older one is idle (it is closed) or has sent nothing (it is
// answered 408 and closed); while both are reading a request it waits
// until the older one has been reading for slowGreedy (slowRequest for a
// third from the same address), which is then answered 408. From the same
// address, with both idle, it waits for the
// older to have idled idleGrace: its client may be about to reuse it. The
// younger one is untouched.
func TestListenSlots(t *testing.T) {
	t.Parallel()
	reading := func(k *keepAlive) { k.write("GET /up HTTP/1.1\r\n") }
	idle := func(k *keepAlive) { k.up("older") }
	tests := []struct {
		name           string
		older, younger func(k *keepAlive) // younger: reading when nil
		from           string
		ended          int           // the answer the older one gets as it is ended (0: none)
		waits          time.Duration // the third is served no sooner after the older began
	}{
		{name: "idle", older: idle, from: "127.0.0.2"},
		{name: "silent", older: func(*keepAlive) {}, from: "127.0.0.2", ended: 408},
		{name: "reading", older: reading, from: "127.0.0.2", ended: 408, waits: slowGreedy},
		{name: "reading_same_address", older: reading, from: "127.0.0.1", ended: 408, waits: slowRequest},
		{name: "idle_same_address", older: idle, younger: idle, from: "127.0.0.1", waits: idleGrace},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s, addr := serveListen(t, Config{Concurrency: 2, ConnsPerAddress: -1, ReadTimeout: time.Minute})
			a := dialKeepAlive(t, addr)
			tc.older(a)
			since := time.Now()
			time.Sleep(newGrace)
			b := dialKeepAlive(t, addr)
			younger := tc.younger
			if younger == nil {
				younger = reading
			}
			younger(b)
			silent := 0
			if tc.name == "silent" {
				silent = 1
			}
			waitUntil(t, "both served", func() bool {
				st := s.connStats()
				return st.open[connNew] == silent && st.open[connReading]+st.open[connIdle]+st.open[connNew] == 2
			})
			c := dialKeepAliveFrom(t, tc.from, addr)
			c.send()
			if res, _, err := c.read(5 * time.Second); err != nil || res.StatusCode != 200 {
				t.Fatalf("third: %v %v", res, err)
			}
			if took := time.Since(since); took < tc.waits {
				t.Errorf("third served %v after the older began, before %v", took, tc.waits)
			}
			a.closed("the older", tc.ended, 5*time.Second)
			if tc.younger != nil {
				b.up("the younger")
				return
			}
			b.write("Host: x\r\n\r\n")
			if res, _, err := b.read(5 * time.Second); err != nil || res.StatusCode != 200 {
				t.Fatalf("the younger: %v %v", res, err)
			}
		})
	}
}

// TestListenWaitsForServing: with one slot, taken by a request in the
// handler (held by a trigger waiting for the event loops), a second
// connection waits, however long the first is served, and is served as
// soon as the first is done.
func TestListenWaitsForServing(t *testing.T) {
	t.Parallel()
	loops := &heldLoops{release: make(chan struct{})}
	s, addr := serveListenLoops(t, Config{Concurrency: 1, ConnsPerAddress: -1}, loops, pusher.Config{PublishQueue: 1, PublishWait: 10 * time.Second})
	sess := &session{}
	if !s.p.Open(&sess.sess, &sess.conn, 0, testKey, "7", "") {
		t.Fatal("Open failed")
	}
	s.p.Handle(&sess.sess, []byte(`{"event":"pusher:subscribe","data":{"channel":"c"}}`))
	// The first two triggers fill the queue (their tasks wait in
	// heldLoops; the second is let in behind one of its size); the third
	// waits in the handler for room.
	post := func(k *keepAlive) {
		body := `{"name":"e","channel":"c","data":"x"}`
		q, _ := signQuery("POST", eventsPath, nil, []byte(body), signing{}, time.Now())
		k.write("POST " + eventsPath + "?" + q + " HTTP/1.1\r\nHost: x\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body)
	}
	a := dialKeepAlive(t, addr)
	for i := range 2 {
		post(a)
		if res, _, err := a.read(5 * time.Second); err != nil || res.StatusCode != 200 {
			t.Fatalf("trigger %d: %v %v", i, res, err)
		}
	}
	post(a)
	waitUntil(t, "a trigger waiting", func() bool { return s.p.PublishStats().Waits == 1 })
	b := dialKeepAlive(t, addr)
	b.send()
	if res, _, err := b.read(slowRequest + 500*time.Millisecond); err == nil {
		t.Fatalf("second connection served while the first is in the handler: %v", res.Status)
	}
	close(loops.release)
	if res, _, err := a.read(5 * time.Second); err != nil || res.StatusCode != 200 {
		t.Fatalf("waiting trigger: %v %v", res, err)
	}
	a.c.Close()
	if res, _, err := b.read(5 * time.Second); err != nil || res.StatusCode != 200 {
		t.Fatalf("second connection once the first closed: %v %v", res, err)
	}
}

// TestListenQueue: connections beyond the slots wait in the listener's
// queue; when it is full, one more from the address holding the most is
// answered 503, and one from an address holding none takes the place of
// that address's newest waiting one; and the next slot freed goes to it,
// before the connections of the address that holds slots already.
func TestListenQueue(t *testing.T) {
	t.Parallel()
	s, addr := serveListen(t, Config{Concurrency: 2, ConnsPerAddress: -1, ReadTimeout: time.Minute})
	stats := func() connStats { return s.connStats() }
	for range 2 { // the slots, held by requests being read
		dialKeepAlive(t, addr).write("GET /up HTTP/1.1\r\n")
	}
	waitUntil(t, "two reading", func() bool { return stats().open[connReading] == 2 })
	queued := make([]*keepAlive, 4) // the queue's length with two slots
	for i := range queued {
		queued[i] = dialKeepAlive(t, addr)
		queued[i].send()
		waitUntil(t, "queued", func() bool { return stats().open[connWaiting] == i+1 })
	}
	greedy := dialKeepAlive(t, addr)
	greedy.send()
	greedy.closed("one more from the same address", 503, 5*time.Second)

	type answer struct {
		who    string
		status int
	}
	answers := make(chan answer, 8)
	read := func(who string, k *keepAlive) {
		res, _, err := k.read(10 * time.Second)
		if err != nil {
			answers <- answer{who, 0}
			return
		}
		answers <- answer{who, res.StatusCode}
	}
	other := dialKeepAliveFrom(t, "127.0.0.2", addr)
	other.send()
	go read("other", other)
	for i, k := range queued {
		go read("queued "+strconv.Itoa(i), k)
	}
	want := []answer{{"queued 3", 503}, {"other", 200}}
	for _, w := range want {
		if got := <-answers; got != w {
			t.Fatalf("answer %v, want %v", got, w)
		}
	}
	for range 3 {
		if got := <-answers; got.status != 200 {
			t.Errorf("then %v, want 200", got)
		}
	}
	if got := stats().refused; got != 2 {
		t.Errorf("refused %d, want 2", got)
	}
}

// TestListenPerAddress: with two connections per address, a third from
// the same address is answered 503 with Retry-After while the two are
// busy, and served once one of them has been idle for idleGrace (that one
// is closed); another address is served all along.
func TestListenPerAddress(t *testing.T) {
	t.Parallel()
	s, addr := serveListen(t, Config{Concurrency: 16, ConnsPerAddress: 2, ReadTimeout: time.Minute})
	a, b := dialKeepAlive(t, addr), dialKeepAlive(t, addr)
	a.write("GET /up HTTP/1.1\r\n") // reading
	b.up("second")
	b.write("GET /up HTTP/1.1\r\n")
	for i := range 3 {
		c := dialKeepAlive(t, addr)
		c.send()
		res, body, err := c.read(5 * time.Second)
		if err != nil || res.StatusCode != 503 || res.Header.Get("Retry-After") != "1" || !res.Close {
			t.Fatalf("over the cap, try %d: %v %v, want 503 with Retry-After: 1 and Connection: close", i, res, err)
		}
		wantErrorBody(t, "over the cap", body)
	}
	dialKeepAliveFrom(t, "127.0.0.2", addr).up("another address")
	if got := s.connStats().refused; got != 3 {
		t.Errorf("refused %d, want 3", got)
	}
	// b finishes its request and idles: the next one from this address
	// takes its place once it has idled for idleGrace.
	b.write("Host: x\r\n\r\n")
	if res, _, err := b.read(5 * time.Second); err != nil || res.StatusCode != 200 {
		t.Fatalf("second's request: %v %v", res, err)
	}
	time.Sleep(idleGrace)
	dialKeepAlive(t, addr).up("once one is idle")
	b.closed("the idle one", 0, 5*time.Second)
}

// TestDrain: after Drain a keep-alive client's next request is answered,
// with Connection: close; /up says 503; and the listener is closed, so new
// connections go elsewhere.
func TestDrain(t *testing.T) {
	s, addr := serveListen(t, Config{})
	k := dialKeepAlive(t, addr)
	k.send()
	if res, _, err := k.read(5 * time.Second); err != nil || res.StatusCode != 200 || res.Close {
		t.Fatalf("before Drain: %v %v", res, err)
	}
	s.Drain()
	k.send()
	res, _, err := k.read(5 * time.Second)
	if err != nil || res.StatusCode != 503 || !res.Close {
		t.Fatalf("after Drain: %v %v, want 503 with Connection: close", res, err)
	}
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c.Close()
		t.Fatal("still accepting after Drain")
	}
}

// TestDrainAnswersWaiting: a connection still waiting for a slot when
// the listener closes is answered 503, to try again on the next process.
func TestDrainAnswersWaiting(t *testing.T) {
	t.Parallel()
	s, addr := serveListen(t, Config{Concurrency: 1, ConnsPerAddress: -1, ReadTimeout: time.Minute})
	dialKeepAlive(t, addr).write("GET /up HTTP/1.1\r\n") // holds the slot
	waiting := dialKeepAlive(t, addr)
	waiting.send()
	waitUntil(t, "one waiting", func() bool { return s.connStats().open[connWaiting] == 1 })
	s.Drain()
	waiting.closed("waiting when the listener closed", 503, 5*time.Second)
}

// heldLoops is a one-loop pusher.Loops whose tasks run once release is
// closed, each on a goroutine of its own: its queue stays full until then.
type heldLoops struct {
	release chan struct{}
	mu      sync.Mutex
}

func (l *heldLoops) Len() int { return 1 }

func (l *heldLoops) Execute(_ int, t pusher.Task) error {
	go func() {
		<-l.release
		l.mu.Lock()
		defer l.mu.Unlock()
		_ = t.Run(context.Background())
	}()
	return nil
}

// waitUntil polls cond for up to 5 s.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 5 s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
