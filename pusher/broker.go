package pusher

import (
	"context"
	"errors"
	"time"
)

// Broker joins a Server to the other nodes of its cluster (DESIGN: the
// Broker seam; centrifuge's Broker and PresenceManager are the model). The
// Server keeps every node's own truth — its connections, subscriptions,
// members and users — and tells the broker what changes; the broker makes
// the cluster's view out of every node's and hands what other nodes did to
// the Server through the Cluster it was started with. The default,
// LocalBroker, is a cluster of one: every method does nothing and the
// Server behaves as a single node.
//
// Every method is safe for concurrent use, and none of them may block an
// event loop: Server calls Join, Leave, Counts and, for client events,
// Publish from its event loops. An implementation queues the work, bounded,
// and does it on goroutines of its own.
type Broker interface {
	// Node is this node's name in the cluster, unique among the nodes
	// running at once ("" for LocalBroker). It may change while the node
	// runs: a node the others took for dead rejoins under a new name.
	Node() string

	// Start begins handing what the cluster does to c, one call at a time
	// and in the order it happened, until Close. Server calls it once,
	// from Attach.
	Start(c Cluster) error

	// Publish sends b to every node of the cluster. A broadcast from the
	// HTTP API reaches every node, this one included, through
	// Cluster.Deliver, and every node gets every such broadcast in one
	// order: the cluster's, which is the order Publish returned in, so a
	// publisher that waits for each trigger's answer — on whichever node —
	// has its events delivered in its order everywhere. A client event
	// (b.ClientEvent) is delivered by its own node at once and reaches the
	// other nodes only.
	//
	// Publish returns once the broadcast is on its way, or ErrBrokerDown
	// when the cluster cannot be reached, or not in time: the caller
	// delivers to this node's subscribers itself, the broker never hands
	// this node the broadcast again, and the other nodes get it late or
	// miss it. ErrBrokerFull: the broker's queue had no room in time, and
	// it sent nothing. An event loop passes a ctx that is done already, so
	// that Publish never waits there.
	Publish(ctx context.Context, b *Broadcast) error

	// Join says that m.User's first connection on this node entered a
	// presence channel (m.Channel) or signed in (m.Channel == "").
	// When it is the user's first connection anywhere, the broker
	// announces it: Cluster.Member with Added on every node, this one
	// included, in the same order on every node as every other
	// announcement of that channel. m.Except is the connection that
	// joined, which is not told of itself.
	Join(m *Membership)

	// Leave says that m.User's last connection on this node left; when it
	// was the user's last anywhere, the broker announces it as Join does,
	// with Added false.
	Leave(m *Membership)

	// Occupy says that o.Channel got its first subscriber on this node
	// (o.Occupied) or lost its last one. When that makes it the channel's
	// first node with subscribers anywhere, or its last, the broker
	// announces it: Cluster.Occupancy on every node, with the node whose
	// change it was, so that the channel_occupied and channel_vacated
	// webhooks go out once for the cluster. Server calls it only for the
	// apps whose webhooks want them.
	Occupy(o *Occupancy)

	// Counts sends this node's subscription counts of the channels of c
	// that changed (all of them when c.Full) to every other node.
	Counts(c *Counts)

	// Terminate asks every other node to close the connections of user in
	// app (HTTP API: terminate_connections).
	Terminate(ctx context.Context, app, user string) error

	// Close leaves the cluster: this node's members and users are
	// announced as gone on the other nodes at once, and its counts
	// forgotten. Nothing reaches the Cluster after Close returns.
	Close(ctx context.Context) error
}

// Cluster is what a Broker hands what the other nodes do to; Server
// implements it. Its methods are called one at a time.
type Cluster interface {
	// Deliver delivers an event published on another node, or on this
	// one through the broker (see Broker.Publish).
	Deliver(b *Broadcast)
	// Member announces that a user came into, or left, a presence channel
	// or the app's signed-in users, cluster-wide.
	Member(e *Membership)
	// Occupancy announces that a channel got its first subscriber
	// anywhere in the cluster, or lost its last.
	Occupancy(o *Occupancy)
	// Counts updates another node's subscription counts.
	Counts(c *Counts)
	// Forget drops what is known of a node that left or died.
	Forget(node string)
	// Terminate closes this node's connections of user in app.
	Terminate(app, user string)
	// State is this node's own truth, for a broker that must tell it again
	// (after its store lost it): of the apps named, or of all of them when
	// none is. It is safe to call from any goroutine at any time. The
	// counts it holds are this node's latest, and are not marked changed
	// any more: the broker must send them.
	State(apps ...string) *NodeState
	// Reload replaces what this node knows of the members of one presence
	// channel of app cluster-wide, or of its signed-in users (channel ""),
	// with what the broker holds, when the node starts and after the
	// broker lost touch with the cluster for a while. The differences are
	// announced to this node's subscribers and watchers.
	Reload(app, channel string, members []Member)
}

// Broadcast is one event crossing nodes, in plain values: each node frames
// it once for its own subscribers.
type Broadcast struct {
	Origin   string   // the node that published it
	App      string   // app id
	Channels []string // the channels it goes to
	Event    string
	Data     []byte
	Except   string // a socket_id left out, or ""
	// CacheUntilMs, for cache channels, is when the event stops being their
	// last one (unix milliseconds), so that every node keeps it as long.
	CacheUntilMs int64
	// ClientEvent says Data is the raw JSON a client sent with a client
	// event (Pusher protocol: client events), relayed as it is, with User,
	// the sender's presence user, when not "".
	ClientEvent bool
	User        string
}

// cacheUntil is CacheUntilMs as a time, zero when it is 0 (no cache
// channel: the app's cache_ttl applies).
func (b *Broadcast) cacheUntil() time.Time {
	if b.CacheUntilMs == 0 {
		return time.Time{}
	}
	return time.UnixMilli(b.CacheUntilMs)
}

// Membership is a user coming into, or leaving, a presence channel or an
// app's signed-in users.
type Membership struct {
	App     string
	Channel string // a presence channel, or "" for the signed-in users
	User    string
	Info    []byte // user_info of a presence member, raw JSON, or nil
	Added   bool
	Except  string // the socket_id that joined, not told of itself, or ""
	// Node is the node that made the change: the one whose connection
	// came or went, or which removed a dead node's members. Set by the
	// broker on what it announces.
	Node string
}

// Occupancy is a channel getting its first subscriber on a node, or
// losing its last.
type Occupancy struct {
	App      string
	Channel  string
	Occupied bool
	// Node is the node whose change it was. Set by the broker on what it
	// announces.
	Node string
}

// Member is one member as a broker stores it.
type Member struct {
	User string
	Info []byte
}

// Counts is one node's subscription counts of an app's channels.
type Counts struct {
	Node        string
	App         string
	Full        bool // Channels holds every channel the node has; any other is 0
	Channels    []ChannelCount
	Connections int // the node's open connections of the app
}

// ChannelCount is one channel's subscriptions on one node.
type ChannelCount struct {
	Channel string
	Count   int
}

// NodeState is everything a node holds that the cluster's view is made
// of: for each app its presence members and signed-in users (with info),
// and its subscription counts.
type NodeState struct {
	Apps []AppState
}

// AppState is one app's part of a NodeState.
type AppState struct {
	App      string
	Presence map[string][]Member // presence channel → members with a connection on this node
	Users    []string            // users signed in on this node
	Counts   Counts
	// Rosters are the presence channels this node lists members of,
	// whichever node they are on: what a reload must cover.
	Rosters []string
	// Occupied are the channels with subscribers on this node, when the
	// app's webhooks want occupancy (Broker.Occupy).
	Occupied []string
}

// LocalBroker is the cluster of one node: it connects to nothing, and
// every method does nothing.
type LocalBroker struct{}

var _ Broker = LocalBroker{}

func (LocalBroker) Node() string                                    { return "" }
func (LocalBroker) Start(Cluster) error                             { return nil }
func (LocalBroker) Publish(context.Context, *Broadcast) error       { return nil }
func (LocalBroker) Join(*Membership)                                {}
func (LocalBroker) Occupy(*Occupancy)                               {}
func (LocalBroker) Leave(*Membership)                               {}
func (LocalBroker) Counts(*Counts)                                  {}
func (LocalBroker) Terminate(context.Context, string, string) error { return nil }
func (LocalBroker) Close(context.Context) error                     { return nil }

// Errors of Broker.Publish.
var (
	// ErrBrokerFull: the broker's queue stayed full for as long as the
	// broker waits for room (redisbroker: a second).
	ErrBrokerFull = errors.New("pusher: the cluster is not taking broadcasts as fast as they come")
	// ErrBrokerDown: the other nodes cannot be reached now.
	ErrBrokerDown = errors.New("pusher: the cluster cannot be reached")
)
