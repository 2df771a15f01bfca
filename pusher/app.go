package pusher

import (
	"errors"
	"net/url"
	"strconv"
	"sync/atomic"
	"time"
)

// AppConfig is one Pusher application as the config file describes it: its
// credentials and its limits. The zero value is not useful; start from
// DefaultApp and override fields. NewServer copies it: a server never
// changes the configuration it was given.
type AppConfig struct {
	ID     string `json:"id" yaml:"id"`
	Key    string `json:"key" yaml:"key"`
	Secret string `json:"secret" yaml:"secret"`

	// Enabled false refuses every connection with 4003.
	Enabled bool `json:"enabled" yaml:"enabled"`
	// AllowedOrigins lists the Origin hosts that may connect; "*" allows any,
	// "*.example.com" any subdomain of example.com. A refused origin gets 4009.
	AllowedOrigins []string `json:"allowed_origins" yaml:"allowed_origins"`
	// MaxConnections caps the app's open connections (0: no cap), counted
	// cluster-wide when clustered (the other nodes' counts as they last told
	// this one); over it a connection gets 4004.
	MaxConnections int `json:"max_connections" yaml:"max_connections"`
	// MaxMessageSize caps one inbound WebSocket message, in bytes; over it the
	// connection is closed with 1009.
	MaxMessageSize int `json:"max_message_size" yaml:"max_message_size"`
	// MaxEventDataSize caps an event's data, in bytes, for client events and
	// for the HTTP API (413 there).
	MaxEventDataSize int `json:"max_event_data_size" yaml:"max_event_data_size"`
	// MaxEventNameLength caps an event name.
	MaxEventNameLength int `json:"max_event_name_length" yaml:"max_event_name_length"`
	// MaxChannelNameLength caps a channel name.
	MaxChannelNameLength int `json:"max_channel_name_length" yaml:"max_channel_name_length"`
	// MaxChannelsPerEvent caps the channels of one HTTP API trigger.
	MaxChannelsPerEvent int `json:"max_channels_per_event" yaml:"max_channels_per_event"`
	// MaxBatchSize caps the events of one batch_events request.
	MaxBatchSize int `json:"max_batch_size" yaml:"max_batch_size"`
	// ClientEvents allows client-* events on private and presence channels.
	ClientEvents bool `json:"client_events" yaml:"client_events"`
	// ClientEventRate caps client events per second per connection (0: no cap).
	ClientEventRate int `json:"client_event_rate" yaml:"client_event_rate"`
	// MaxPresenceMembers caps the users of one presence channel.
	MaxPresenceMembers int `json:"max_presence_members" yaml:"max_presence_members"`
	// MaxMessageRate is the messages one connection may send per second
	// after a burst of at least the subscription cap (0: no cap). A
	// connection over it is read more slowly, never refused (budget.go).
	MaxMessageRate int `json:"max_messages_per_second" yaml:"max_messages_per_second"`
	// MaxSubscriptions caps the channels one connection may be in (0: no
	// cap; DefaultMaxSubscriptions); one more gets
	// pusher:subscription_error LimitReached for that channel.
	MaxSubscriptions int `json:"max_subscriptions" yaml:"max_subscriptions"`
	// MaxUserInfoSize caps a presence member's user_info, in bytes.
	MaxUserInfoSize int `json:"max_user_info_size" yaml:"max_user_info_size"`
	// SubscriptionCount sends pusher_internal:subscription_count to
	// non-presence channels when their subscriber count changes.
	SubscriptionCount bool `json:"subscription_count" yaml:"subscription_count"`
	// ActivityTimeout is the idle time, in seconds, after which the server
	// pings a connection; it is also told to the client.
	ActivityTimeout int `json:"activity_timeout" yaml:"activity_timeout"`
	// PongTimeout is how long, in seconds, a pinged connection has to answer
	// before it is closed with 4201.
	PongTimeout int `json:"pong_timeout" yaml:"pong_timeout"`
	// CacheTTL is how long, in seconds, a cache channel keeps its last event.
	CacheTTL int `json:"cache_ttl" yaml:"cache_ttl"`
	// UserAuthenticationTimeout, in seconds, closes with 4009 a connection
	// that has not signed in (pusher:signin) in that time (0: off; Pusher:
	// authorized connections).
	UserAuthenticationTimeout int `json:"user_authentication_timeout" yaml:"user_authentication_timeout"`
	// Webhooks are where the app's webhook events go (Pusher webhooks).
	Webhooks []Webhook `json:"webhooks" yaml:"webhooks"`
	// MaxCacheBytes caps what the app's cache channels keep, in bytes (0: no
	// cap). An event triggered on many cache channels counts its data once;
	// past the cap the oldest entries are evicted first.
	MaxCacheBytes int `json:"max_cache_bytes" yaml:"max_cache_bytes"`
	// MaxBackendEventsPerSecond caps the events the app's backend may
	// trigger through the HTTP API per second, a batch counting each of its
	// events (0: no cap; Soketi's name). Past it Publish returns a
	// *RateError and the API answers 429 (limit.go).
	MaxBackendEventsPerSecond int `json:"max_backend_events_per_second" yaml:"max_backend_events_per_second"`
}

// App is an app as a running server holds it: its configuration, read-only,
// and its runtime state on this node (connections, channels, users). Only
// NewServer and SetApps make one. A reload that changes an app's
// configuration makes a new App sharing the old one's state (reload.go):
// the server's table and then, on each loop, the app's sessions move to
// it, so an *App never changes once made.
type App struct {
	AppConfig
	*appState

	hooks map[string]bool // the webhook event types some webhook of the app takes
}

// appState is what an app holds on this node at run time, kept across a
// reload of its configuration.
type appState struct {
	connections atomic.Int64
	sentConns   atomic.Int64 // connections last told the broker, by the ticker or in State
	hub         *hub
	// sessions are the app's open sessions by event loop: sessions[i]
	// belongs to loop i and only code running there touches it (Open,
	// Close, and the reload's tasks).
	sessions [][]*Session
	limit    eventLimit // max_backend_events_per_second (limit.go)
	tap      tap        // the console's viewers (tap.go)
}

// newApp makes the App of cfg with state st (a new one when st is nil,
// for loops event loops; 0 before Attach).
func newApp(cfg AppConfig, st *appState, clustered bool, loops int) *App {
	if st == nil {
		st = &appState{hub: newHub(int64(cfg.MaxCacheBytes), clustered)}
		st.size(loops)
	}
	a := &App{AppConfig: cfg, appState: st, hooks: map[string]bool{}}
	for _, w := range cfg.Webhooks {
		for _, t := range w.EventTypes {
			a.hooks[t] = true
		}
	}
	a.AllowedOrigins = append([]string(nil), cfg.AllowedOrigins...)
	a.Webhooks = append([]Webhook(nil), cfg.Webhooks...)
	return a
}

// size gives the state its per-loop parts once the number of loops is
// known.
func (st *appState) size(loops int) {
	if loops > 0 && st.sessions == nil {
		st.hub.loops = loops
		st.sessions = make([][]*Session, loops)
	}
}

// DefaultApp returns an app with the given credentials and every limit at
// its default.
func DefaultApp(id, key, secret string) AppConfig {
	return AppConfig{
		ID:                   id,
		Key:                  key,
		Secret:               secret,
		Enabled:              true,
		AllowedOrigins:       []string{"*"},
		MaxMessageSize:       64 << 10,
		MaxEventDataSize:     10 << 10,
		MaxEventNameLength:   200,
		MaxChannelNameLength: 164,
		MaxChannelsPerEvent:  100,
		MaxBatchSize:         10,
		ClientEvents:         true,
		ClientEventRate:      10,
		MaxPresenceMembers:   100,
		MaxSubscriptions:     DefaultMaxSubscriptions,
		MaxMessageRate:       100,
		MaxUserInfoSize:      1 << 10,
		ActivityTimeout:      120,
		PongTimeout:          30,
		CacheTTL:             30 * 60,
		MaxCacheBytes:        16 << 20,
	}
}

// Validate reports the first setting of a that cannot work.
func (a *AppConfig) Validate() error {
	switch {
	case a.ID == "" || a.Key == "" || a.Secret == "":
		return errors.New("pusher: app needs id, key and secret")
	case a.MaxMessageSize <= 0:
		return errors.New("pusher: app " + a.ID + ": max_message_size must be positive")
	case a.MaxEventDataSize <= 0 || a.MaxEventNameLength <= 0 || a.MaxChannelNameLength <= 0:
		return errors.New("pusher: app " + a.ID + ": event and channel limits must be positive")
	case a.MaxChannelsPerEvent <= 0 || a.MaxBatchSize <= 0:
		return errors.New("pusher: app " + a.ID + ": max_channels_per_event and max_batch_size must be positive")
	case a.ActivityTimeout <= 0 || a.PongTimeout <= 0:
		return errors.New("pusher: app " + a.ID + ": activity_timeout and pong_timeout must be positive")
	case a.CacheTTL <= 0:
		return errors.New("pusher: app " + a.ID + ": cache_ttl must be positive")
	case a.MaxBackendEventsPerSecond < 0:
		return errors.New("pusher: app " + a.ID + ": max_backend_events_per_second must not be negative")
	}
	for i, w := range a.Webhooks {
		u, err := url.Parse(w.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return errors.New("pusher: app " + a.ID + ": webhook " + strconv.Itoa(i+1) + ": url must be http(s)://host/...")
		}
		if len(w.EventTypes) == 0 {
			return errors.New("pusher: app " + a.ID + ": webhook " + strconv.Itoa(i+1) + ": event_types is empty")
		}
		for _, t := range w.EventTypes {
			switch t {
			case ChannelOccupied, ChannelVacated, MemberAdded, MemberRemoved, ClientEventHook, CacheMiss, SubscriptionCount:
			default:
				return errors.New("pusher: app " + a.ID + ": webhook " + strconv.Itoa(i+1) + ": unknown event type " + strconv.Quote(t))
			}
		}
	}
	return nil
}

// Connections is the number of open connections of the app on this node.
func (a *App) Connections() int { return int(a.connections.Load()) }

func (a *App) activityTimeout() time.Duration {
	return time.Duration(a.ActivityTimeout) * time.Second
}

func (a *App) pongTimeout() time.Duration { return time.Duration(a.PongTimeout) * time.Second }

func (a *App) cacheTTL() time.Duration { return time.Duration(a.CacheTTL) * time.Second }

// OriginAllowed reports whether a browser at origin may connect. An empty
// origin (a server-side client) is always allowed. Patterns match the host
// of the origin: "*" any, "*.example.com" example.com's subdomains,
// "example.com" exactly; a pattern with a scheme matches the whole origin.
func (a *AppConfig) OriginAllowed(origin string) bool {
	if origin == "" {
		return true
	}
	return originAllowed(a.AllowedOrigins, origin)
}
