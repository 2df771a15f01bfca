package pusher

import "testing"

// TestCloseDuringFanout closes subscribers from inside the fan-out that is
// writing to them, as gnet does when a write fails: every other subscriber
// still gets the event exactly once, and the closed ones leave the channel.
func TestCloseDuringFanout(t *testing.T) {
	for _, from := range []string{"publish", "client event"} {
		t.Run(from, func(t *testing.T) {
			s, app := newServer(t, 1, func(a *App) { a.ClientEventRate = 0 })
			var live []*client
			var dying []*dyingConn
			for i := 0; i < 9; i++ {
				if i%3 != 1 {
					c := dial(t, s, 0)
					c.join("presence-room", `{"user_id":"`+string(rune('a'+i))+`"}`)
					live = append(live, c)
					continue
				}
				d := &dyingConn{s: s}
				sess := &Session{}
				d.sess = sess
				if !s.Open(sess, d, 0, "app-key", "7", "") {
					t.Fatal("open refused")
				}
				cd := `{"user_id":"` + string(rune('a'+i)) + `"}`
				auth := "app-key:" + Sign("app-secret", sess.ID()+":presence-room:"+cd)
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
				s.Publish(app, []string{"presence-room"}, "news", []byte("x"), "")
			} else {
				live[0].send(`{"event":"client-x","channel":"presence-room","data":{}}`)
			}
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

func quote(s string) string { return string(AppendJSONString(nil, s)) }
