package pusher

import "strings"

// Observer hears of the moments Pusher's webhooks are made of (DESIGN:
// observers): a channel occupied or vacated, a presence member added or
// removed, a client event, a cache miss, a channel's subscription count.
// The Server calls it from its event loops and the broker's goroutine, so
// an implementation must not block: package pusher/webhook queues, batches,
// signs and retries off them.
//
// In a cluster each moment is reported once for the cluster, by one node:
// occupied and vacated when the channel's first subscriber anywhere comes
// and its last anywhere goes, members as the broker announces them (by the
// node whose connection made the change, or which removed a dead node's),
// a client event by its sender's node, a cache miss by the subscriber's,
// and a subscription count, with the cluster's count, by the node where
// it changed.
type Observer interface {
	Observe(e *Moment)
}

// Moment is one webhook event, in plain values (Pusher webhooks: events).
type Moment struct {
	App     *App
	Name    string // channel_occupied, channel_vacated, member_added, member_removed, client_event, cache_miss, subscription_count
	Channel string
	User    string // member events; client events on presence channels
	// Client events.
	Event    string
	Data     []byte // raw JSON the client sent
	SocketID string
	// subscription_count.
	Count int
}

// Webhook moment names, as Pusher sends them.
const (
	ChannelOccupied   = "channel_occupied"
	ChannelVacated    = "channel_vacated"
	MemberAdded       = "member_added"
	MemberRemoved     = "member_removed"
	ClientEventHook   = "client_event"
	CacheMiss         = "cache_miss"
	SubscriptionCount = "subscription_count"
)

// Webhook is one endpoint an app's webhooks go to, as the config file
// holds it (Soketi's shape).
type Webhook struct {
	URL        string            `json:"url" yaml:"url"`
	EventTypes []string          `json:"event_types" yaml:"event_types"`
	Filter     WebhookFilter     `json:"filter" yaml:"filter"`
	Headers    map[string]string `json:"headers" yaml:"headers"`
}

// WebhookFilter limits a webhook to channels whose names match.
type WebhookFilter struct {
	StartsWith string `json:"channel_name_starts_with" yaml:"channel_name_starts_with"`
	EndsWith   string `json:"channel_name_ends_with" yaml:"channel_name_ends_with"`
}

// Matches reports whether channel passes the filter.
func (f WebhookFilter) Matches(channel string) bool {
	return strings.HasPrefix(channel, f.StartsWith) && strings.HasSuffix(channel, f.EndsWith)
}

// wants reports whether any of the app's webhooks takes moments named
// name: nothing is reported, nor done for it, otherwise.
func (a *App) wants(name string) bool { return a.hooks[name] }

// observe reports e if the server has an observer and the app a webhook
// for it.
func (s *Server) observe(e *Moment) {
	if s.obs != nil && e.App.wants(e.Name) {
		s.obs.Observe(e)
	}
}
