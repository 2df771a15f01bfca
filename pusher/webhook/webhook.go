package webhook

import (
	"context"
	"log/slog"
	"net/http"
	"reflect"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	json "github.com/goccy/go-json"

	"github.com/revurb/revurb/pusher"
)

// Defaults of Config.
const (
	DefaultWindow     = 500 * time.Millisecond
	DefaultDelay      = 3 * time.Second
	DefaultTimeout    = 5 * time.Second
	DefaultRetryFor   = 5 * time.Minute
	DefaultQueue      = 10000
	DefaultQueueBytes = 4 << 20
)

// Config tunes a Dispatcher; zero values are the defaults.
type Config struct {
	Window   time.Duration // how long events gather into one POST
	Delay    time.Duration // how long channel_vacated and member_removed wait
	Timeout  time.Duration // how long a POST may take
	RetryFor time.Duration // how long a batch is retried
	Queue    int           // events waiting, at most, per endpoint
	// QueueBytes is what the events of one endpoint may hold, at most:
	// those waiting and the batch being sent (see newQueued); an event
	// that does not fit is dropped. Once a batch's body is made it counts
	// in place of the batch's events, and may pass the bound by what
	// JSON's escapes add to them.
	QueueBytes int
	Client     *http.Client
	Log        *slog.Logger
}

// Dispatcher is the pusher.Observer that sends webhooks.
type Dispatcher struct {
	cfg   Config
	hooks map[string][]*endpoint // by app id

	mu      sync.Mutex
	pending map[pendingKey]*time.Timer // delayed removals, by what they remove
	closed  bool

	sent, failed, dropped atomic.Uint64
	queued, queuedBytes   atomic.Int64

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
	if cfg.QueueBytes <= 0 {
		cfg.QueueBytes = DefaultQueueBytes
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{Timeout: cfg.Timeout}
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	d := &Dispatcher{cfg: cfg, hooks: map[string][]*endpoint{}, pending: map[pendingKey]*time.Timer{}}
	d.ctx, d.cancel = context.WithCancel(context.Background())
	d.hooks = d.endpoints(apps)
	return d
}

// endpoints makes the endpoints of apps, keeping those of d.hooks whose
// app has the same webhooks, and starts the new ones' senders. The
// caller holds mu, or is New.
func (d *Dispatcher) endpoints(apps []pusher.AppConfig) map[string][]*endpoint {
	hooks := map[string][]*endpoint{}
	for _, app := range apps {
		if old := d.hooks[app.ID]; sameHooks(old, app.Webhooks) {
			if len(old) > 0 {
				hooks[app.ID] = old
			}
			continue
		}
		for _, h := range app.Webhooks {
			e := newEndpoint(d, h)
			hooks[app.ID] = append(hooks[app.ID], e)
			d.wg.Add(1)
			go e.run()
		}
	}
	return hooks
}

func sameHooks(eps []*endpoint, hooks []pusher.Webhook) bool {
	if len(eps) != len(hooks) {
		return false
	}
	for i, e := range eps {
		if !reflect.DeepEqual(e.hook, hooks[i]) {
			return false
		}
	}
	return true
}

// SetApps takes the apps of a reload (pusher.AppSetter): an app whose
// webhooks changed, or that is gone, has its old endpoints finish what
// they hold and stop; new endpoints start.
func (d *Dispatcher) SetApps(apps []pusher.AppConfig) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil
	}
	hooks := d.endpoints(apps)
	for id, eps := range d.hooks {
		if len(hooks[id]) == 0 || hooks[id][0] != eps[0] {
			for _, ep := range eps {
				ep.close()
			}
		}
	}
	d.hooks = hooks
	return nil
}

var _ pusher.AppSetter = (*Dispatcher)(nil)

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

// put queues e on each endpoint of app that wants it; the caller holds mu.
func (d *Dispatcher) put(app *pusher.App, e event) {
	q := newQueued(app, e)
	for _, ep := range d.hooks[app.ID] {
		if ep.want[e.Name] && ep.hook.Filter.Matches(e.Channel) {
			ep.put(q)
		}
	}
}

// Stats reports on the dispatcher.
func (d *Dispatcher) Stats() pusher.WebhookStats {
	return pusher.WebhookStats{Sent: d.sent.Load(), Failed: d.failed.Load(), Dropped: d.dropped.Load(),
		Queue: int(d.queued.Load()), QueueBytes: d.queuedBytes.Load()}
}

// Close stops the senders once they have sent what they hold, retrying
// as usual, or when ctx is done, whichever comes first: then a request in
// flight is abandoned and what is still queued is dropped and counted, so
// Close returns a moment after ctx's deadline at the latest. Removals
// still waiting their delay are queued at once.
func (d *Dispatcher) Close(ctx context.Context) {
	stop := context.AfterFunc(ctx, d.cancel)
	defer stop()
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
	for _, eps := range d.hooks {
		for _, ep := range eps {
			ep.close()
		}
	}
	d.mu.Unlock()
	d.wg.Wait()
	d.cancel()
}

// String names the dispatcher's endpoints, for the start log.
func (d *Dispatcher) String() string {
	n := 0
	for _, eps := range d.hooks {
		n += len(eps)
	}
	return strconv.Itoa(n) + " webhook endpoints"
}
