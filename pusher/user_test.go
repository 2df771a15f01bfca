package pusher

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
)

func (c *client) signin(userData string) {
	c.t.Helper()
	auth := "app-key:" + Sign("app-secret", c.sess.ID().String()+"::user::"+userData)
	c.send(`{"event":"pusher:signin","data":{"auth":"` + auth + `","user_data":` + strconv.Quote(userData) + `}}`)
}

func TestSignin(t *testing.T) {
	s, app := newServer(t, 2)
	a, a2, b := dial(t, s, 0), dial(t, s, 1), dial(t, s, 0)
	a.signin(`{"id":"42","name":"Ann"}`)
	m := a.mustEvent("pusher:signin_success")
	if d := data(t, m); d["user_data"] != `{"id":"42","name":"Ann"}` {
		t.Fatalf("signin_success %v", d)
	}
	a2.signin(`{"id":"42"}`)
	a2.mustEvent("pusher:signin_success")
	// pusher-js subscribes to its own server-to-user channel: allowed.
	a.subscribe("#server-to-user-42")

	publish(s, app, []string{"#server-to-user-42"}, "note", []byte("for 42"), "")
	a.mustEvent("note")
	a2.mustEvent("note")
	b.none()

	// Another user's channel is refused, signed in or not.
	b.send(`{"event":"pusher:subscribe","data":{"channel":"#server-to-user-42"}}`)
	b.mustEvent("pusher:subscription_error")

	// A second signin as someone else is refused.
	a.signin(`{"id":"43"}`)
	if got := a.errorCode(); got != CodeUnauthorized {
		t.Fatalf("code %d", got)
	}
	if n, _ := s.TerminateUser(context.Background(), app, "42"); n != 2 {
		t.Fatalf("terminated %d", n)
	}
	for _, c := range []*client{a, a2} {
		if got := c.errorCode(); got != CodeUnauthorized || c.conn.closeCode != CodeUnauthorized {
			t.Fatalf("terminate: code %d close %d", got, c.conn.closeCode)
		}
	}
}

func TestSigninRefused(t *testing.T) {
	for name, msg := range map[string]func(c *client) string{
		"bad auth": func(c *client) string {
			return `{"event":"pusher:signin","data":{"auth":"app-key:00","user_data":"{\"id\":\"1\"}"}}`
		},
		"no id": func(c *client) string {
			ud := `{"name":"x"}`
			return `{"event":"pusher:signin","data":{"auth":"app-key:` + Sign("app-secret", c.sess.ID().String()+"::user::"+ud) + `","user_data":` + strconv.Quote(ud) + `}}`
		},
		"numeric id": func(c *client) string {
			ud := `{"id":1}`
			return `{"event":"pusher:signin","data":{"auth":"app-key:` + Sign("app-secret", c.sess.ID().String()+"::user::"+ud) + `","user_data":` + strconv.Quote(ud) + `}}`
		},
		"id over 128 characters": func(c *client) string {
			ud := `{"id":"` + strings.Repeat("u", 129) + `"}`
			return `{"event":"pusher:signin","data":{"auth":"app-key:` + Sign("app-secret", c.sess.ID().String()+"::user::"+ud) + `","user_data":` + strconv.Quote(ud) + `}}`
		},
		"watchlist id over 128 characters": func(c *client) string {
			ud := `{"id":"1","watchlist":["` + strings.Repeat("u", 129) + `"]}`
			return `{"event":"pusher:signin","data":{"auth":"app-key:` + Sign("app-secret", c.sess.ID().String()+"::user::"+ud) + `","user_data":` + strconv.Quote(ud) + `}}`
		},
		"user_data object": func(c *client) string {
			return `{"event":"pusher:signin","data":{"auth":"app-key:00","user_data":{"id":"1"}}}`
		},
	} {
		t.Run(name, func(t *testing.T) {
			s, _ := newServer(t, 1)
			c := dial(t, s, 0)
			c.send(msg(c))
			if got := c.errorCode(); got != CodeUnauthorized {
				t.Fatalf("code %d, want 4009", got)
			}
			if c.sess.User() != "" {
				t.Fatal("signed in")
			}
		})
	}
}

func TestWatchlist(t *testing.T) {
	s, _ := newServer(t, 2)
	bob := dial(t, s, 1)
	bob.signin(`{"id":"bob"}`)
	bob.mustEvent("pusher:signin_success")

	ann := dial(t, s, 0)
	ann.signin(`{"id":"ann","watchlist":["bob","cid"]}`)
	ann.mustEvent("pusher:signin_success")
	d := data(t, ann.mustEvent("pusher_internal:watchlist_events"))
	evs := d["events"].([]any)
	first := evs[0].(map[string]any)
	if len(evs) != 1 || first["name"] != "online" || len(first["user_ids"].([]any)) != 1 || first["user_ids"].([]any)[0] != "bob" {
		t.Fatalf("initial watchlist %v", d)
	}

	cid := dial(t, s, 1)
	cid.signin(`{"id":"cid"}`)
	cid.mustEvent("pusher:signin_success")
	d = data(t, ann.mustEvent("pusher_internal:watchlist_events"))
	if ev := d["events"].([]any)[0].(map[string]any); ev["name"] != "online" || ev["user_ids"].([]any)[0] != "cid" {
		t.Fatalf("online %v", d)
	}
	s.Close(&bob.sess)
	d = data(t, ann.mustEvent("pusher_internal:watchlist_events"))
	if ev := d["events"].([]any)[0].(map[string]any); ev["name"] != "offline" || ev["user_ids"].([]any)[0] != "bob" {
		t.Fatalf("offline %v", d)
	}
	ann.none()
}

// TestWatchlistDuplicates: a watchlist naming one user many times hears
// one event per change of that user, and lists it once.
func TestWatchlistDuplicates(t *testing.T) {
	s, _ := newServer(t, 1)
	bob := dial(t, s, 0)
	bob.signin(`{"id":"bob"}`)
	bob.mustEvent("pusher:signin_success")
	ann := dial(t, s, 0)
	ann.signin(`{"id":"ann","watchlist":["bob","cid","bob","bob","cid"]}`)
	ann.mustEvent("pusher:signin_success")
	if d := data(t, ann.mustEvent("pusher_internal:watchlist_events")); fmt.Sprint(d) != "map[events:[map[name:online user_ids:[bob]]]]" {
		t.Fatalf("initial watchlist events %v", d)
	}
	s.Close(&bob.sess)
	if d := data(t, ann.mustEvent("pusher_internal:watchlist_events")); fmt.Sprint(d) != "map[events:[map[name:offline user_ids:[bob]]]]" {
		t.Fatalf("offline %v", d)
	}
	ann.none()
	if got := ann.sess.user.watchlist; fmt.Sprint(got) != "[bob cid]" {
		t.Fatalf("watchlist kept as %v", got)
	}
}

func TestServerToUserAnyID(t *testing.T) {
	s, app := newServer(t, 1)
	c := dial(t, s, 0)
	c.signin(`{"id":"ann:smith 1"}`)
	c.mustEvent("pusher:signin_success")
	c.send(`{"event":"pusher:subscribe","data":{"channel":"#server-to-user-ann:smith 1"}}`)
	c.mustEvent("pusher_internal:subscription_succeeded")
	publish(s, app, []string{"#server-to-user-ann:smith 1"}, "hi", []byte("x"), "")
	c.mustEvent("hi")
	c.none()
}

// moments records what a server reports for webhooks.
type moments struct {
	mu  sync.Mutex
	got []Moment
}

func (m *moments) Observe(e *Moment) {
	m.mu.Lock()
	m.got = append(m.got, *e)
	m.mu.Unlock()
}

// TestServerToUserNotReported: a user's #server-to-user channel is the
// server's own: signing in and leaving report no channel_occupied,
// channel_vacated or subscription_count for it, while an app channel's are
// reported in pairs.
func TestServerToUserNotReported(t *testing.T) {
	app := DefaultApp("app-id", "app-key", "app-secret")
	app.Webhooks = []Webhook{{URL: "http://127.0.0.1:1/hook", EventTypes: []string{"channel_occupied", "channel_vacated", "subscription_count"}}}
	rec := &moments{}
	s, err := NewServer([]AppConfig{app}, Config{Observer: rec})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Attach(syncLoops{n: 1}); err != nil {
		t.Fatal(err)
	}
	a := dial(t, s, 0)
	a.signin(`{"id":"42"}`)
	a.mustEvent("pusher:signin_success")
	a.subscribe("#server-to-user-42") // pusher-js's own subscribe
	a.subscribe("news")
	s.Close(&a.sess)
	var names []string
	for _, m := range rec.got {
		if strings.HasPrefix(m.Channel, "#") {
			t.Errorf("reported %s for %s", m.Name, m.Channel)
		}
		names = append(names, string(m.Name)+" "+m.Channel)
	}
	if want := "channel_occupied news,subscription_count news,channel_vacated news,subscription_count news"; strings.Join(names, ",") != want {
		t.Errorf("reported %q, want %q", strings.Join(names, ","), want)
	}
}
