package webhook

import (
	"context"
	"testing"
	"time"

	"github.com/revurb/revurb/pusher"
)

// TestSetApps: an app added by a reload sends its webhooks; an app whose
// webhook moved sends to the new URL only; a console watching the app is
// told of each request and its answer.
func TestSetApps(t *testing.T) {
	r1, r2 := newReceiver(t), newReceiver(t)
	d := New(nil, Config{Window: 20 * time.Millisecond})
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		d.Close(ctx)
	})
	cfg := pusher.DefaultApp("app-id", "app-key", "app-secret")
	cfg.Webhooks = []pusher.Webhook{{URL: r1.srv.URL + "/hook", EventTypes: []string{pusher.ChannelOccupied}}}
	s, err := pusher.NewServer([]pusher.AppConfig{cfg}, pusher.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.SetApps([]pusher.AppConfig{cfg}); err != nil {
		t.Fatal(err)
	}
	app := s.AppByID("app-id")
	v := app.Watch(16)
	defer v.Close()
	d.Observe(&pusher.Moment{App: app, Name: pusher.ChannelOccupied, Channel: "a"})
	waitFor(t, "the first endpoint", func() bool { return len(r1.requests()) == 1 })
	select {
	case e := <-v.Events():
		if e.Kind != pusher.TapWebhook || e.Code != 200 {
			t.Fatalf("the console was told %+v", e)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the console was not told of the webhook")
	}

	cfg.Webhooks[0].URL = r2.srv.URL + "/hook"
	if err := d.SetApps([]pusher.AppConfig{cfg}); err != nil {
		t.Fatal(err)
	}
	d.Observe(&pusher.Moment{App: app, Name: pusher.ChannelOccupied, Channel: "b"})
	waitFor(t, "the new endpoint", func() bool { return len(r2.requests()) == 1 })
	if n := len(r1.requests()); n != 1 {
		t.Fatalf("the old endpoint got %d requests after the reload", n-1)
	}
}
