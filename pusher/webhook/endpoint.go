package webhook

import (
	"bytes"
	"context"
	"net/http"
	"strconv"
	"sync"
	"time"
	"unsafe"

	json "github.com/goccy/go-json"

	"github.com/revurb/revurb/pusher"
)

const (
	firstRetry    = time.Second
	maxBatch      = 100              // events in one POST
	maxBatchBytes = 1 << 20          // what the events of one POST hold (queued.size), unless one alone holds more
	warnEvery     = 10 * time.Second // an endpoint dropping events says so at most this often
)

// endpoint is one webhook of one app: its queue and its sender.
type endpoint struct {
	d    *Dispatcher
	hook pusher.Webhook
	want map[string]bool

	mu     sync.Mutex
	q      []queued  // waiting, oldest first
	bytes  int       // what q and the batch being sent hold (its events, then its body)
	drops  int       // events dropped since the last warning
	warned time.Time // when that was
	closed bool
	wake   chan struct{} // a token when q or closed changed
}

// queued is an event, the app it is of, and what it holds.
type queued struct {
	app  *pusher.App
	ev   event
	size int
}

// slotSize is what a queued event holds besides its strings: its slot in
// the queue (and then in its batch, while the queue's slot waits to be
// reused).
const slotSize = int(unsafe.Sizeof(queued{}))

func newQueued(app *pusher.App, e event) queued {
	n := slotSize + len(e.Name) + len(e.Channel) + len(e.UserID) + len(e.Event) + len(e.Data) + len(e.SocketID)
	if e.SubscriptionCount != nil {
		n += int(unsafe.Sizeof(*e.SubscriptionCount))
	}
	// Strings the event shares with the protocol core (a live channel's
	// name, a constant event name) are counted as if they were its own:
	// the bound errs on the safe side.
	return queued{app: app, ev: e, size: n}
}

func newEndpoint(d *Dispatcher, h pusher.Webhook) *endpoint {
	e := &endpoint{d: d, hook: h, want: map[string]bool{}, wake: make(chan struct{}, 1)}
	for _, t := range h.EventTypes {
		e.want[t] = true
	}
	return e
}

// put queues q, or drops and counts it if the queue has no room for it in
// events or bytes. It never waits.
func (e *endpoint) put(q queued) {
	e.mu.Lock()
	ok := !e.closed && len(e.q) < e.d.cfg.Queue && e.bytes+q.size <= e.d.cfg.QueueBytes
	if ok {
		e.q = append(e.q, q)
		e.bytes += q.size
		e.mu.Unlock()
		e.d.queued.Add(1)
		e.d.queuedBytes.Add(int64(q.size))
		e.poke()
		return
	}
	e.d.dropped.Add(1)
	e.drops++
	var drops, events, held int
	if now := time.Now(); now.Sub(e.warned) >= warnEvery {
		e.warned = now
		drops, events, held = e.drops, len(e.q), e.bytes
		e.drops = 0
	}
	e.mu.Unlock()
	if drops > 0 {
		e.d.cfg.Log.Warn("webhook: queue full, dropping events", "url", e.hook.URL, "dropped", drops,
			"events", events, "bytes", held, "max_events", e.d.cfg.Queue, "max_bytes", e.d.cfg.QueueBytes)
	}
}

// poke tells the sender that something changed.
func (e *endpoint) poke() {
	select {
	case e.wake <- struct{}{}:
	default:
	}
}

// close lets the sender finish with what is queued.
func (e *endpoint) close() {
	e.mu.Lock()
	e.closed = true
	e.mu.Unlock()
	e.poke()
}

// run gathers the endpoint's events over the window and sends them, in
// order, retrying a batch before the next.
func (e *endpoint) run() {
	defer e.d.wg.Done()
	for {
		app, batch, size, ok := e.next()
		if !ok {
			return
		}
		e.send(app, batch, size)
	}
}

// next waits for the next batch: from the first event, the window, or
// less if the batch is complete sooner. It returns false once the
// endpoint is closed and empty, or the dispatcher's context is done (then
// it drops what is left).
func (e *endpoint) next() (app *pusher.App, batch []event, size int, ok bool) {
	for {
		e.mu.Lock()
		if e.d.ctx.Err() != nil {
			e.dropAll()
			e.mu.Unlock()
			return nil, nil, 0, false
		}
		if len(e.q) > 0 {
			break
		}
		closed := e.closed
		e.mu.Unlock()
		if closed {
			return nil, nil, 0, false
		}
		select {
		case <-e.wake:
		case <-e.d.ctx.Done():
		}
	}
	if !e.complete() {
		e.mu.Unlock()
		timer := time.NewTimer(e.d.cfg.Window)
	gather:
		for {
			select {
			case <-e.wake:
			case <-timer.C:
				break gather
			case <-e.d.ctx.Done():
				break gather
			}
			e.mu.Lock()
			done := e.complete()
			e.mu.Unlock()
			if done {
				break
			}
		}
		timer.Stop()
		e.mu.Lock()
	}
	defer e.mu.Unlock()
	if e.d.ctx.Err() != nil {
		e.dropAll()
		return nil, nil, 0, false
	}
	n, size := e.cut()
	app = e.q[0].app
	batch = make([]event, n)
	for i := range batch {
		batch[i] = e.q[i].ev
	}
	clear(e.q[:n]) // the batch holds them now
	e.q = e.q[n:]
	if len(e.q) == 0 {
		e.q = nil // an idle endpoint keeps no array sized for a burst
	}
	e.d.queued.Add(-int64(n))
	return app, batch, size, true
}

// complete reports whether the next batch can take no more events; the
// caller holds mu and the queue is not empty.
func (e *endpoint) complete() bool {
	n, _ := e.cut()
	return e.closed || n == maxBatch || n < len(e.q) || e.d.ctx.Err() != nil
}

// Batch classes: which events may share a request (see cut).
const (
	plain         = iota // not of an encrypted channel
	encryptedBare        // of a private-encrypted- channel, without data
	encryptedData        // of a private-encrypted- channel, with data: alone
)

func class(e *event) int {
	if k, _ := pusher.ChannelKind(e.Channel); k != pusher.Encrypted {
		return plain
	}
	if e.Data == "" {
		return encryptedBare
	}
	return encryptedData
}

// cut returns how many events at the front of the queue make the next
// batch, and what they hold: at least one, then more while they are of
// the first one's class, at most maxBatch of them and maxBatchBytes.
//
// The classes keep apart what the official Go SDK (pusher-http-go v5,
// Client.Webhook) rejects together: it decrypts the data of every event
// of a private-encrypted- channel in a request and rejects the whole
// request if one fails, as it does for one without data. So events of
// other channels never share a request with them, and one with data (one
// the SDK can decrypt) shares its request with nothing.
func (e *endpoint) cut() (n, size int) {
	c := class(&e.q[0].ev)
	for n < len(e.q) && n < maxBatch {
		q := &e.q[n]
		if n > 0 && (c == encryptedData || class(&q.ev) != c || size+q.size > maxBatchBytes) {
			break
		}
		n++
		size += q.size
	}
	return n, size
}

// dropAll drops and counts what is queued; the caller holds mu.
func (e *endpoint) dropAll() {
	if len(e.q) == 0 {
		return
	}
	n, size := len(e.q), 0
	for i := range e.q {
		size += e.q[i].size
	}
	e.q = nil
	e.bytes -= size
	e.d.queued.Add(-int64(n))
	e.d.queuedBytes.Add(-int64(size))
	e.d.dropped.Add(uint64(n))
	e.d.cfg.Log.Warn("webhook: stopping with events unsent", "url", e.hook.URL, "events", n)
}

// release gives back what a batch held once it is done with.
func (e *endpoint) release(size int) {
	e.mu.Lock()
	e.bytes -= size
	e.mu.Unlock()
	e.d.queuedBytes.Add(-int64(size))
}

// send POSTs batch, retrying with back-off for RetryFor. Once the body is
// made it stands for the batch: the events are let go, and the bound
// counts the body instead of them (size) until it is done with.
func (e *endpoint) send(app *pusher.App, batch []event, size int) {
	n := len(batch)
	body, err := json.Marshal(struct {
		TimeMs int64   `json:"time_ms"`
		Events []event `json:"events"`
	}{time.Now().UnixMilli(), batch})
	var told string // what the console is told the batch held
	if app.Watched() {
		told = e.hook.URL + ":"
		for i := range min(n, 5) {
			told += " " + batch[i].Name
		}
		if n > 5 {
			told += " and " + strconv.Itoa(n-5) + " more"
		}
	}
	clear(batch)
	if err != nil {
		e.release(size)
		e.d.dropped.Add(uint64(n))
		e.d.cfg.Log.Error("webhook: could not encode a batch", "url", e.hook.URL, "events", n, "error", err)
		return
	}
	e.mu.Lock()
	e.bytes += len(body) - size
	e.mu.Unlock()
	e.d.queuedBytes.Add(int64(len(body) - size))
	defer e.release(len(body))

	sig := pusher.Sign(app.Secret, string(body))
	deadline := time.Now().Add(e.d.cfg.RetryFor)
	wait := firstRetry
	for {
		status, err := e.post(app, body, sig)
		if told != "" {
			answer := " → " + strconv.Itoa(status)
			if err != nil {
				answer = " → " + err.Error()
			}
			app.Tell(pusher.TapEvent{Kind: pusher.TapWebhook, Code: status, Detail: told + answer})
		}
		if err == nil && status >= 200 && status < 300 {
			e.d.sent.Add(1)
			return
		}
		e.d.failed.Add(1)
		if time.Now().Add(wait).After(deadline) || e.d.ctx.Err() != nil {
			e.d.dropped.Add(uint64(n))
			e.d.cfg.Log.Warn("webhook: gave up on a batch", "url", e.hook.URL, "events", n, "status", status, "error", err)
			return
		}
		select {
		case <-time.After(wait):
		case <-e.d.ctx.Done():
		}
		wait *= 2
	}
}

// post makes one attempt.
func (e *endpoint) post(app *pusher.App, body []byte, sig string) (int, error) {
	ctx, cancel := context.WithTimeout(e.d.ctx, e.d.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.hook.URL, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Pusher-Key", app.Key)
	req.Header.Set("X-Pusher-Signature", sig)
	for k, v := range e.hook.Headers {
		req.Header.Set(k, v)
	}
	res, err := e.d.cfg.Client.Do(req)
	if err != nil {
		return 0, err
	}
	res.Body.Close()
	return res.StatusCode, nil
}
