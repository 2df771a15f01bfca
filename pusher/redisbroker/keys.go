package redisbroker

import "github.com/revurb/revurb/pusher"

// Keys, for prefix P, app A, node N and presence channel C (C is "" for an
// app's signed-in users); K is P:{A}, so that on a Redis Cluster every key
// of an app, and its bus, hash to one slot:
//
//	P:nodes        ZSET  node → its last heartbeat, unix ms
//	P:apps:N       SET   the apps node N registered in
//	K:bus          the app's pub/sub channel (sharded on a Redis Cluster)
//	K:nodes        SET   the nodes registered in the app: may write its keys
//	K:n:N:C        SET   the users node N has connections of in C
//	K:k:N          SET   the channels C whose K:n:N:C holds anyone
//	K:c:C          HASH  user → how many nodes have it in C
//	K:m:C          HASH  user → user_info: C's members, cluster-wide
//	K:chans        SET   the presence channels (and "") whose K:m:C holds anyone
//	K:cache:C      STRING the last event of cache channel C, expiring with it
//	K:cachex       ZSET  cache channel → when its K:cache:C expires, unix ms
//	K:reap:N       STRING a lock: the node removing dead node N from the app
//
// Every structure is bounded by live state: a set or hash entry goes when
// what it stands for goes (K:k:N loses C when K:n:N:C empties; K:chans
// loses C when K:m:C does), and a node's keys go when it leaves or is
// reaped, a few hundred users per script (luaReap), so that no script
// holds Redis for more than a few milliseconds.

// app is one app as the broker sees it.
type app struct {
	id  string
	k   string // P:{A}: every key of the app starts with it
	bus string // its pub/sub channel
	lim limits
	sig *signer
}

// newApp is ac under prefix, its bus signed with the key derived from
// secret (see busKey).
func newApp(prefix, secret string, ac *pusher.AppConfig) *app {
	a := &app{id: ac.ID, k: prefix + ":{" + ac.ID + "}", lim: newLimits(ac), sig: newSigner(busKey(secret, ac))}
	a.bus = a.k + ":bus"
	return a
}

func (b *Broker) nodesKey() string           { return b.p + ":nodes" }
func (b *Broker) appsKey(node string) string { return b.p + ":apps:" + node }
func (a *app) reg() string                   { return a.k + ":nodes" }
func (a *app) kk(node string) string         { return a.k + ":k:" + node }
func (a *app) nk(node, ch string) string     { return a.k + ":n:" + node + ":" + ch }
func (a *app) ck(ch string) string           { return a.k + ":c:" + ch }
func (a *app) mk(ch string) string           { return a.k + ":m:" + ch }
func (a *app) chans() string                 { return a.k + ":chans" }
func (a *app) cache(ch string) string        { return a.k + ":cache:" + ch }
func (a *app) cachex() string                { return a.k + ":cachex" }
func (a *app) reapLock(node string) string   { return a.k + ":reap:" + node }

// memberKeys are the keys of the member scripts, in their order.
func (a *app) memberKeys(node, ch string) []string {
	return []string{a.reg(), a.kk(node), a.nk(node, ch), a.ck(ch), a.mk(ch), a.chans()}
}

// indexed says whether a channel's members are listed in K:chans: every
// presence channel and the users (""), not the occupancy channels, whose
// one member stands for a node with subscribers, which no reload reads.
func indexed(channel string) string {
	if channel != "" && channel[0] == 0 {
		return "0"
	}
	return "1"
}
