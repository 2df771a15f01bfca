package pusher

import (
	"strconv"
	"testing"
)

// TestSubscriptionCap: past max_subscriptions a subscribe is refused with
// a clear subscription_error; the connection stays up, and the server's own
// #server-to-user channel does not count.
func TestSubscriptionCap(t *testing.T) {
	s, _ := newServer(t, 1, func(a *AppConfig) { a.MaxSubscriptions = 3 })
	c := dial(t, s, 0)
	c.signin(`{"id":"u"}`)
	c.mustEvent("pusher:signin_success")
	for i := 0; i < 3; i++ {
		c.subscribe("room-" + strconv.Itoa(i))
	}
	c.send(`{"event":"pusher:subscribe","data":{"channel":"room-3"}}`)
	m := c.mustEvent("pusher:subscription_error")
	d := m["data"].(map[string]any)
	if m["channel"] != "room-3" || d["type"] != "LimitReached" || d["status"] != float64(CodeOverCapacity) {
		t.Fatalf("over the cap: %v", m)
	}
	// Subscribing again to one it has is not a new subscription.
	c.subscribe("room-0")
	c.send(`{"event":"pusher:unsubscribe","data":{"channel":"room-1"}}`)
	c.subscribe("room-3")
	c.send(`{"event":"pusher:ping","data":{}}`)
	c.mustEvent("pusher:pong")
}

// TestManySubscriptionsIndexed: past linearSubs a session finds its
// subscriptions through its index, and unsubscribing from anywhere in the
// list keeps both lists consistent.
func TestManySubscriptionsIndexed(t *testing.T) {
	s, app := newServer(t, 1, func(a *AppConfig) { a.MaxSubscriptions = 0; a.MaxMessageRate = 0 })
	a, b := dial(t, s, 0), dial(t, s, 0)
	const n = 50
	for i := 0; i < n; i++ {
		a.subscribe("ch-" + strconv.Itoa(i))
		b.subscribe("ch-" + strconv.Itoa(i))
	}
	if a.sess.byName == nil || len(a.sess.byName) != n {
		t.Fatalf("index has %d entries", len(a.sess.byName))
	}
	for i := 0; i < n; i += 3 {
		a.send(`{"event":"pusher:unsubscribe","data":{"channel":"ch-` + strconv.Itoa(i) + `"}}`)
	}
	for i := 0; i < n; i++ {
		name := "ch-" + strconv.Itoa(i)
		publish(s, app, []string{name}, "e", []byte(name), "")
		b.mustEvent("e")
		if i%3 == 0 {
			a.none()
			continue
		}
		if m := a.mustEvent("e"); m["data"] != name {
			t.Fatalf("%s: %v", name, m)
		}
	}
	// Every subscription points at its subscriber and back.
	for k, sub := range a.sess.subs {
		if got := sub.ch.subs[0][sub.idx]; got.sess != &a.sess || int(got.k) != k {
			t.Fatalf("subscription %d (%s) and its channel entry disagree", k, sub.ch.name)
		}
		if a.sess.byName[sub.ch.name] != int32(k) {
			t.Fatalf("index of %s is %d, want %d", sub.ch.name, a.sess.byName[sub.ch.name], k)
		}
	}
}

// TestMessageBudget: a connection may send a burst of at least the
// subscription cap at once, then max_messages_per_second a second; past
// its budget CanRead says no (the loop then leaves its bytes unread), and
// the budget comes back with time, one message per interval. Nothing is
// refused or answered with an error on the way.
func TestMessageBudget(t *testing.T) {
	for _, tc := range []struct {
		name             string
		rate, subs       int
		wantBurst        int
		wantPerSecondish int
	}{
		{name: "defaults", rate: 100, subs: DefaultMaxSubscriptions, wantBurst: DefaultMaxSubscriptions + 100, wantPerSecondish: 100},
		{name: "low subscription cap still bursts the default", rate: 10, subs: 50, wantBurst: DefaultMaxSubscriptions + 10, wantPerSecondish: 10},
		{name: "high subscription cap bursts it all", rate: 5, subs: 5000, wantBurst: 5005, wantPerSecondish: 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := newServer(t, 1, func(a *AppConfig) { a.MaxMessageRate, a.MaxSubscriptions = tc.rate, tc.subs })
			c := dial(t, s, 0)
			now := int64(1_000_000) * 1e9
			n := 0
			for c.sess.CanRead(now) {
				c.sess.Read(now)
				if n++; n > 100000 {
					t.Fatal("the budget never ran out")
				}
			}
			if n != tc.wantBurst {
				t.Fatalf("burst of %d messages, want %d", n, tc.wantBurst)
			}
			// A second later, a second's worth more, one interval apart.
			got := 0
			for step := int64(0); step <= 1e9; step += 1e6 {
				for c.sess.CanRead(now + step) {
					c.sess.Read(now + step)
					got++
				}
			}
			if got != tc.wantPerSecondish {
				t.Fatalf("%d messages in the next second, want %d", got, tc.wantPerSecondish)
			}
			if c.conn.closeCode != 0 || len(c.conn.frames) != 0 { // dial took connection_established
				t.Fatalf("the budget answered: close %d, %d frames", c.conn.closeCode, len(c.conn.frames))
			}
		})
	}
	t.Run("no cap", func(t *testing.T) {
		s, _ := newServer(t, 1, func(a *AppConfig) { a.MaxMessageRate = 0 })
		c := dial(t, s, 0)
		for i := 0; i < 100000; i++ {
			if !c.sess.CanRead(1) {
				t.Fatalf("message %d refused with no cap", i)
			}
			c.sess.Read(1)
		}
	})
}

// TestSocketIDsUnpredictable: consecutive socket ids share no relation a
// client could use to guess its neighbour's (no common first part, no
// step between the second parts), and none repeats.
func TestSocketIDsUnpredictable(t *testing.T) {
	s, _ := newServer(t, 1)
	seen := map[SocketID]bool{}
	var prev SocketID
	sameHigh, sameStep := 0, 0
	var step int64
	for i := 0; i < 2000; i++ {
		c := dial(t, s, 0)
		id := c.sess.ID()
		if seen[id] {
			t.Fatalf("socket id %s given twice", id)
		}
		seen[id] = true
		if parsed, ok := ParseSocketID(id.String()); !ok || parsed != id {
			t.Fatalf("%s does not read back", id)
		}
		if i > 0 {
			if id>>32 == prev>>32 {
				sameHigh++
			}
			d := int64(uint32(id)) - int64(uint32(prev))
			if d == step {
				sameStep++
			}
			step = d
		}
		prev = id
	}
	// A shared first part or a repeating step would show up in most of
	// 2,000 pairs; chance gives about one in four billion.
	if sameHigh > 2 || sameStep > 2 {
		t.Fatalf("%d consecutive ids share a first part, %d repeat a step", sameHigh, sameStep)
	}
}

// TestSigninAgainReplacesWatchlist: signing in again as the same user
// answers signin_success and watches the new watchlist, not the old one.
func TestSigninAgainReplacesWatchlist(t *testing.T) {
	s, _ := newServer(t, 1)
	ann := dial(t, s, 0)
	ann.signin(`{"id":"ann","watchlist":["bob"]}`)
	ann.mustEvent("pusher:signin_success")
	ann.mustEvent("pusher_internal:watchlist_events")
	ann.signin(`{"id":"ann","watchlist":["cid"]}`)
	ann.mustEvent("pusher:signin_success")
	ann.mustEvent("pusher_internal:watchlist_events")

	bob := dial(t, s, 0)
	bob.signin(`{"id":"bob"}`)
	bob.mustEvent("pusher:signin_success")
	ann.none() // no longer watched
	cid := dial(t, s, 0)
	cid.signin(`{"id":"cid"}`)
	cid.mustEvent("pusher:signin_success")
	d := data(t, ann.mustEvent("pusher_internal:watchlist_events"))
	if ev := d["events"].([]any)[0].(map[string]any); ev["name"] != "online" || ev["user_ids"].([]any)[0] != "cid" {
		t.Fatalf("the new watchlist: %v", d)
	}
}
