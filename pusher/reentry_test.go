package pusher

import (
	"context"
	"testing"

	"github.com/revurb/revurb/codec"
)

// TestCloseDuringFanout: subscribers whose sockets fail while the
// fan-out writes to them (closed by the loop once its turn has ended):
// every other subscriber still gets the event exactly once, and the closed
// ones leave the channel, their members announced gone.
func TestCloseDuringFanout(t *testing.T) {
	for _, from := range []string{"publish", "client event"} {
		t.Run(from, func(t *testing.T) {
			s, app := newServer(t, 1, func(a *AppConfig) { a.ClientEventRate = 0; a.MaxMessageRate = 0 })
			var live []*client
			var dying []*dyingConn
			for i := 0; i < 9; i++ {
				if i%3 != 1 {
					c := dial(t, s, 0)
					c.join("presence-room", `{"user_id":"`+string(rune('a'+i))+`"}`)
					live = append(live, c)
					continue
				}
				d := &dyingConn{}
				sess := &Session{}
				d.sess = sess
				if !s.Open(sess, d, 0, "app-key", "7", "") {
					t.Fatal("open refused")
				}
				cd := `{"user_id":"` + string(rune('a'+i)) + `"}`
				auth := "app-key:" + Sign("app-secret", sess.ID().String()+":presence-room:"+cd)
				s.Handle(sess, []byte(`{"event":"pusher:subscribe","data":{"channel":"presence-room","auth":"`+auth+`","channel_data":`+quote(cd)+`}}`))
				dying = append(dying, d)
			}
			for _, c := range live {
				c.conn.frames = nil
			}
			for _, d := range dying {
				d.armed = true
			}
			if from == "publish" {
				publish(s, app, []string{"presence-room"}, "news", []byte("x"), "")
			} else {
				live[0].send(`{"event":"client-x","channel":"presence-room","data":{}}`)
			}
			closeDead(s, dying)
			for i, c := range live {
				if from == "publish" || i > 0 {
					c.next() // the event, exactly once
				}
				for range dying {
					if m := c.mustEvent("pusher_internal:member_removed"); m["channel"] != "presence-room" {
						t.Fatalf("member_removed %v", m)
					}
				}
				c.none()
			}
			if got := s.Channel(app, "presence-room"); got.SubscriptionCount != len(live) || got.UserCount != len(live) {
				t.Fatalf("after the closes: %+v, want %d", got, len(live))
			}
		})
	}
}

func quote(s string) string { return string(codec.AppendJSONString(nil, s)) }

// queueLoops holds every task until run: the loops are busy, so the tests
// can interleave a subscription between an event and its delivery.
type queueLoops struct {
	n     int
	tasks []Task
}

func (l *queueLoops) Len() int { return l.n }

func (l *queueLoops) Execute(_ int, t Task) error {
	l.tasks = append(l.tasks, t)
	return nil
}

func (l *queueLoops) run() {
	for len(l.tasks) > 0 {
		t := l.tasks[0]
		l.tasks = l.tasks[1:]
		_ = t.Run(context.Background())
	}
}

// TestLateSubscriberSkipsEarlierEvents: an event that happened before a
// subscription, but reaches the subscriber's loop after it, is not
// delivered to it — its subscription_succeeded (the member list) or its
// cache replay already covers that event.
func TestLateSubscriberSkipsEarlierEvents(t *testing.T) {
	loops := &queueLoops{n: 2}
	cfg := DefaultApp("app-id", "app-key", "app-secret")
	cfg.SubscriptionCount = true
	s, err := NewServer([]AppConfig{cfg}, Config{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Attach(loops); err != nil {
		t.Fatal(err)
	}
	app := s.AppByID(cfg.ID)
	early, late, joiner := dial(t, s, 1), dial(t, s, 1), dial(t, s, 0)

	// Presence: late joins on loop 1 after joiner's member_added is queued
	// for loop 1; late's member list already has joiner.
	early.join("presence-room", `{"user_id":"early"}`)
	joiner.join("presence-room", `{"user_id":"joiner"}`)
	d := late.join("presence-room", `{"user_id":"late"}`)
	if d["presence"].(map[string]any)["count"] != float64(3) {
		t.Fatalf("late's member list %v", d)
	}
	loops.run()
	// early hears of both (late's own loop is written at once, so late
	// comes first here).
	added := map[any]bool{}
	for range 2 {
		added[data(t, early.mustEvent("pusher_internal:member_added"))["user_id"]] = true
	}
	if !added["joiner"] || !added["late"] {
		t.Fatalf("early heard of %v", added)
	}
	joiner.mustEvent("pusher_internal:member_added") // late
	late.none()

	// Cache: late subscribes after the publish, while its delivery waits.
	early.subscribe("cache-news")
	early.mustEvent("pusher:cache_miss")
	early.mustEvent("pusher_internal:subscription_count")
	publish(s, app, []string{"cache-news"}, "headline", []byte("one"), "")
	late.subscribe("cache-news")
	if m := late.mustEvent("headline"); m["data"] != "one" {
		t.Fatalf("replay %v", m)
	}
	if c := data(t, late.mustEvent("pusher_internal:subscription_count")); c["subscription_count"] != float64(2) {
		t.Fatalf("count %v", c)
	}
	early.mustEvent("pusher_internal:subscription_count") // late's, same loop: at once
	loops.run()
	if m := early.mustEvent("headline"); m["data"] != "one" {
		t.Fatalf("live %v", m)
	}
	late.none() // not the live copy of the event it was replayed
}
