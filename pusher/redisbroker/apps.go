package redisbroker

import (
	"bytes"
	"context"
	"errors"

	"github.com/redis/rueidis"

	"github.com/revurb/revurb/pusher"
)

// The apps a node serves, swapped whole when its config is reloaded
// (pusher.AppSetter): each node reloads its own file, and an app added
// here is read from its bus, and resynced, at once. An app removed is no
// longer read (its subscription ends with the bus's connection); an app
// changed keeps its keys, with its new limits and bus key.

// appSet is the apps at one time; never changed once stored.
type appSet struct {
	list  []*app
	byID  map[string]*app
	byBus map[string]*app
}

// newSet makes the set of apps, keeping the *app of the set now for an
// app whose bus key and limits did not change; added are the apps not in
// it.
func (b *Broker) newSet(apps []pusher.AppConfig) (set *appSet, added []*app, err error) {
	old := b.apps.Load()
	set = &appSet{byID: map[string]*app{}, byBus: map[string]*app{}}
	for i := range apps {
		ac := &apps[i]
		if ac.ID == "" {
			return nil, nil, errors.New("redisbroker: an app without an id")
		}
		if set.byID[ac.ID] != nil {
			continue
		}
		a := newApp(b.cfg.Prefix, b.cfg.Secret, ac)
		switch prev := old.app(ac.ID); {
		case prev == nil:
			added = append(added, a)
		case prev.lim == a.lim && bytes.Equal(prev.sig.key, a.sig.key):
			a = prev
		}
		set.list = append(set.list, a)
		set.byID[a.id], set.byBus[a.bus] = a, a
	}
	return set, added, nil
}

func (s *appSet) app(id string) *app {
	if s == nil {
		return nil
	}
	return s.byID[id]
}

// SetApps serves apps from now on (pusher.AppSetter): the added ones'
// buses are subscribed to, and their state told to Redis, at once if
// Redis is reached, else when it is.
func (b *Broker) SetApps(apps []pusher.AppConfig) error {
	added, err := b.swapApps(apps)
	if err != nil || len(added) == 0 || !b.registered.Load() {
		return err
	}
	// This node's name goes into the added apps' K:nodes, ahead of any
	// join of theirs in the worker's order. Not done (Redis away, the
	// queue full): the node registers again whole at its next resync,
	// which the added apps' subscriptions ask for.
	if !b.queue(op{fn: func(c rueidis.Client) error {
		ctx, cancel := context.WithTimeout(b.ctx, callTimeout)
		defer cancel()
		node := b.names.get()
		cmds := rueidis.Commands{}
		for _, a := range added {
			cmds = append(cmds, c.B().Sadd().Key(a.reg()).Member(node).Build(),
				c.B().Sadd().Key(b.appsKey(node)).Member(a.id).Build())
		}
		err := firstErr(c.DoMulti(ctx, cmds...))
		if err != nil {
			b.registered.Store(false)
		}
		return err
	}}, true) {
		b.registered.Store(false)
	}
	return nil
}

// swapApps stores the set of apps and starts reading the added ones'
// buses, if the bus is connected (else connect will); it returns them.
func (b *Broker) swapApps(apps []pusher.AppConfig) ([]*app, error) {
	b.appsMu.Lock()
	defer b.appsMu.Unlock()
	set, added, err := b.newSet(apps)
	if err != nil {
		return nil, err
	}
	b.apps.Store(set)
	if bus := b.busClient(); bus != nil && len(added) > 0 {
		for _, g := range b.groups(bus, added) {
			b.wg.Add(1)
			go b.runGroup(g)
		}
	}
	return added, nil
}

// appList is the apps served now.
func (b *Broker) appList() []*app { return b.apps.Load().list }

// appByID is the app served now with id, or nil.
func (b *Broker) appByID(id string) *app { return b.apps.Load().byID[id] }

// current maps apps, perhaps of an earlier set, to those of the set now,
// leaving out the ones removed since.
func (b *Broker) current(apps []*app) []*app {
	set := b.apps.Load()
	out := make([]*app, 0, len(apps))
	for _, a := range apps {
		if c := set.byID[a.id]; c != nil {
			out = append(out, c)
		}
	}
	return out
}

var _ pusher.AppSetter = (*Broker)(nil)
