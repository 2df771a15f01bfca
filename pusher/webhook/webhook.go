// Package webhook sends an app's webhooks (Pusher webhooks): it is the
// pusher.Observer that batches the moments the protocol core reports,
// signs them and POSTs them to the app's endpoints, retrying with back-off,
// all off the event loops.
//
// Each endpoint gets {"time_ms": <unix ms>, "events": [...]} with
// X-Pusher-Key (the app key) and X-Pusher-Signature (hex HMAC-SHA256 of
// the raw body under the app secret), as Pusher sends them, plus the
// endpoint's own headers. Events are batched over Window; an answer other
// than 2xx, or none within Timeout, is retried after 1 s, 2 s, 4 s… for up
// to RetryFor, each failed attempt counted. channel_vacated and
// member_removed wait Delay and are dropped, with the channel_occupied or
// member_added that undoes them, if the channel or member comes back
// meanwhile (as Pusher does, so that a page reload is not a leave).
//
// Nothing here blocks its caller: Observe queues, bounded by Queue; what
// does not fit is dropped and counted.
package webhook

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	json "github.com/goccy/go-json"

	"github.com/revurb/revurb/pusher"
)

// Defaults of Config.
const (
	DefaultWindow   = 500 * time.Millisecond
	DefaultDelay    = 3 * time.Second
	DefaultTimeout  = 5 * time.Second
	DefaultRetryFor = 5 * time.Minute
	DefaultQueue    = 10000
	firstRetry      = time.Second
	maxBatch        = 100 // events in one POST
)

// Config tunes a Dispatcher; zero values are the defaults.
type Config struct {
	Window   time.Duration // how long events gather into one POST
	Delay    time.Duration // how long channel_vacated and member_removed wait
	Timeout  time.Duration // how long a POST may take
	RetryFor time.Duration // how long a batch is retried
	Queue    int           // events waiting, at most, per endpoint
	Client   *http.Client
	Log      *slog.Logger
}

// Dispatcher is the pusher.Observer that sends webhooks.
type Dispatcher struct {
	cfg   Config
	hooks map[string][]*endpoint // by app id

	mu      sync.Mutex
	pending map[pendingKey]*time.Timer // delayed removals, by what they remove
	closed  bool

	sent, failed, dropped atomic.Uint64
	queued                atomic.Int64

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

var _ pusher.Observer = (*Dispatcher)(nil)

// pendingKey names a removal that waits: the vacated channel, or the
// removed member.
type pendingKey struct {
	app           *pusher.App
	channel, user string
}

// endpoint is one webhook of one app, with its queue and sender.
type endpoint struct {
	d    *Dispatcher
	hook pusher.Webhook
	want map[string]bool
	in   chan queued
}

// queued is an event and the app it is of.
type queued struct {
	app *pusher.App
	ev  event
}

// event is one webhook event as Pusher sends it.
type event struct {
	Name              string `json:"name"`
	Channel           string `json:"channel"`
	UserID            string `json:"user_id,omitempty"`
	Event             string `json:"event,omitempty"`
	Data              string `json:"data,omitempty"`
	SocketID          string `json:"socket_id,omitempty"`
	SubscriptionCount *int   `json:"subscription_count,omitempty"`
}

// New returns a dispatcher for the webhooks of apps and starts a sender
// per endpoint.
func New(apps []pusher.AppConfig, cfg Config) *Dispatcher {
	if cfg.Window <= 0 {
		cfg.Window = DefaultWindow
	}
	if cfg.Delay <= 0 {
		cfg.Delay = DefaultDelay
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.RetryFor <= 0 {
		cfg.RetryFor = DefaultRetryFor
	}
	if cfg.Queue <= 0 {
		cfg.Queue = DefaultQueue
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{Timeout: cfg.Timeout}
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	d := &Dispatcher{cfg: cfg, hooks: map[string][]*endpoint{}, pending: map[pendingKey]*time.Timer{}}
	d.ctx, d.cancel = context.WithCancel(context.Background())
	for _, app := range apps {
		for _, h := range app.Webhooks {
			e := &endpoint{d: d, hook: h, want: map[string]bool{}, in: make(chan queued, cfg.Queue)}
			for _, t := range h.EventTypes {
				e.want[t] = true
			}
			d.hooks[app.ID] = append(d.hooks[app.ID], e)
			d.wg.Add(1)
			go e.run()
		}
	}
	return d
}

// Observe takes one moment (pusher.Observer): a removal waits Delay, and
// an addition that comes back meanwhile cancels both.
func (d *Dispatcher) Observe(m *pusher.Moment) {
	switch m.Name {
	case pusher.ChannelVacated, pusher.MemberRemoved:
		key := pendingKey{m.App, m.Channel, m.User}
		e := toEvent(m)
		d.mu.Lock()
		if !d.closed {
			if t := d.pending[key]; t != nil {
				t.Stop()
			}
			var t *time.Timer
			t = time.AfterFunc(d.cfg.Delay, func() {
				// Under mu, and only if still this key's timer: an addition
				// that came back meanwhile took it away (and is not sent),
				// so nothing of the two can go out in the wrong order.
				d.mu.Lock()
				defer d.mu.Unlock()
				if d.pending[key] == t && !d.closed {
					delete(d.pending, key)
					d.put(m.App, e)
				}
			})
			d.pending[key] = t
		}
		d.mu.Unlock()
		return
	case pusher.ChannelOccupied, pusher.MemberAdded:
		key := pendingKey{m.App, m.Channel, m.User}
		d.mu.Lock()
		defer d.mu.Unlock()
		if t := d.pending[key]; t != nil {
			t.Stop()
			delete(d.pending, key)
			return // back within the delay: neither goes, as far as the app can tell
		}
		if !d.closed {
			d.put(m.App, toEvent(m))
		}
		return
	}
	d.enqueue(m.App, toEvent(m))
}

func toEvent(m *pusher.Moment) event {
	e := event{Name: m.Name, Channel: m.Channel, UserID: m.User}
	switch m.Name {
	case pusher.ClientEventHook:
		e.Event, e.SocketID = m.Event, m.SocketID
		// Pusher sends client event data as a string: the client's own
		// string, or its JSON as text.
		var s string
		if json.Unmarshal(m.Data, &s) == nil {
			e.Data = s
		} else {
			e.Data = string(m.Data)
		}
	case pusher.SubscriptionCount:
		n := m.Count
		e.SubscriptionCount = &n
	case pusher.ChannelOccupied, pusher.ChannelVacated, pusher.CacheMiss:
		e.UserID = ""
	}
	return e
}

// enqueue hands e to each endpoint of app that wants it, unless the
// dispatcher is closed.
func (d *Dispatcher) enqueue(app *pusher.App, e event) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.closed {
		d.put(app, e)
	}
}

// put queues e; the caller holds mu.
func (d *Dispatcher) put(app *pusher.App, e event) {
	for _, ep := range d.hooks[app.ID] {
		if !ep.want[e.Name] || !ep.hook.Filter.Matches(e.Channel) {
			continue
		}
		select {
		case ep.in <- queued{app, e}:
			d.queued.Add(1)
		default:
			d.dropped.Add(1)
		}
	}
}

// Stats is what the dispatcher has done.
type Stats struct {
	Sent    uint64 // POSTs answered 2xx
	Failed  uint64 // attempts that failed, each retry counted
	Dropped uint64 // events dropped: the queue was full, or a batch ran out of retries
	Queue   int    // events waiting
}

// Stats reports on the dispatcher.
func (d *Dispatcher) Stats() Stats {
	return Stats{Sent: d.sent.Load(), Failed: d.failed.Load(), Dropped: d.dropped.Load(), Queue: int(d.queued.Load())}
}

// Close stops the senders once they have sent what they hold, retrying
// as usual, or when ctx is done, whichever comes first; removals still
// waiting their delay are sent at once.
func (d *Dispatcher) Close(ctx context.Context) {
	d.mu.Lock()
	for key, t := range d.pending {
		if t.Stop() {
			name := pusher.ChannelVacated
			if key.user != "" {
				name = pusher.MemberRemoved
			}
			d.put(key.app, event{Name: name, Channel: key.channel, UserID: key.user})
		}
	}
	d.pending = map[pendingKey]*time.Timer{}
	d.closed = true
	d.mu.Unlock()
	stop := context.AfterFunc(ctx, d.cancel)
	defer stop()
	d.mu.Lock()
	for _, eps := range d.hooks {
		for _, ep := range eps {
			close(ep.in)
		}
	}
	d.mu.Unlock()
	d.wg.Wait()
	d.cancel()
}

// run gathers the endpoint's events over the window and sends them, in
// order, retrying a batch before the next.
func (e *endpoint) run() {
	defer e.d.wg.Done()
	for {
		first, ok := <-e.in
		if !ok {
			return
		}
		app := first.app
		batch := []event{first.ev}
		timer := time.NewTimer(e.d.cfg.Window)
	gather:
		for len(batch) < maxBatch {
			select {
			case q, ok := <-e.in:
				if !ok {
					break gather
				}
				batch = append(batch, q.ev)
			case <-timer.C:
				break gather
			}
		}
		timer.Stop()
		e.d.queued.Add(-int64(len(batch)))
		e.send(app, batch)
	}
}

// send POSTs batch, retrying with back-off for RetryFor.
func (e *endpoint) send(app *pusher.App, batch []event) {
	body, err := json.Marshal(struct {
		TimeMs int64   `json:"time_ms"`
		Events []event `json:"events"`
	}{time.Now().UnixMilli(), batch})
	if err != nil {
		return
	}
	sig := pusher.Sign(app.Secret, string(body))
	deadline := time.Now().Add(e.d.cfg.RetryFor)
	wait := firstRetry
	for {
		status, err := e.post(app, body, sig)
		if err == nil && status >= 200 && status < 300 {
			e.d.sent.Add(1)
			return
		}
		e.d.failed.Add(1)
		if time.Now().Add(wait).After(deadline) || e.d.ctx.Err() != nil {
			e.d.dropped.Add(uint64(len(batch)))
			e.d.cfg.Log.Warn("webhook: gave up on a batch", "url", e.hook.URL, "events", len(batch), "status", status, "error", err)
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

// String names the dispatcher's endpoints, for the start log.
func (d *Dispatcher) String() string {
	n := 0
	for _, eps := range d.hooks {
		n += len(eps)
	}
	return strconv.Itoa(n) + " webhook endpoints"
}
