package pusher

import (
	"slices"
	"testing"
)

func TestSetApps(t *testing.T) {
	other := DefaultApp("other-id", "other-key", "other-secret")
	s, _ := newServer(t, 2)
	if _, err := s.SetApps([]AppConfig{DefaultApp("app-id", "app-key", "app-secret"), other}); err != nil {
		t.Fatal(err)
	}
	var cs []*client
	for i := range 4 {
		c := dial(t, s, i%2)
		c.subscribe("private-a")
		cs = append(cs, c)
	}
	// The app's secret is rotated and a limit changed; other is removed;
	// a third app comes.
	rotated := DefaultApp("app-id", "app-key", "new-secret")
	rotated.MaxBackendEventsPerSecond = 50
	added := DefaultApp("added-id", "added-key", "added-secret")
	r, err := s.SetApps([]AppConfig{rotated, added})
	if err != nil {
		t.Fatal(err)
	}
	want := Reloaded{Added: []string{"added-id"}, Removed: []string{"other-id"}, Changed: []string{"app-id"}}
	if !slices.Equal(r.Added, want.Added) || !slices.Equal(r.Removed, want.Removed) || !slices.Equal(r.Changed, want.Changed) || len(r.Disabled) != 0 {
		t.Fatalf("SetApps = %+v, want %+v", r, want)
	}
	app := s.AppByID("app-id")
	if app.Secret != "new-secret" || app.MaxBackendEventsPerSecond != 50 || s.AppByID("other-id") != nil || s.AppByKey("added-key") == nil {
		t.Fatalf("the table was not replaced: %+v", app.AppConfig)
	}
	for _, c := range cs {
		if c.sess.App() != app {
			t.Fatal("a session of the changed app was not moved to its new configuration")
		}
		if c.conn.closeCode != 0 {
			t.Fatalf("a session of a changed app was closed with %d", c.conn.closeCode)
		}
	}
	if app.Connections() != 4 || app.hub.count("private-a") != 4 {
		t.Fatalf("the changed app lost its state: %d connections, %d subscribers", app.Connections(), app.hub.count("private-a"))
	}
	// A new signature needs the new secret.
	c := cs[0]
	c.send(`{"event":"pusher:subscribe","data":{"channel":"private-b","auth":"app-key:` + Sign("app-secret", c.sess.id.String()+":private-b") + `"}}`)
	c.mustEvent("pusher:subscription_error")
	c.send(`{"event":"pusher:subscribe","data":{"channel":"private-b","auth":"app-key:` + Sign("new-secret", c.sess.id.String()+":private-b") + `"}}`)
	c.mustEvent("pusher_internal:subscription_succeeded")

	// Disabled: its sessions are closed with 4003, and closing leaves the
	// app's lists empty.
	disabled := rotated
	disabled.Enabled = false
	if r, err = s.SetApps([]AppConfig{disabled, added}); err != nil || !slices.Equal(r.Disabled, []string{"app-id"}) {
		t.Fatalf("SetApps = %+v, %v", r, err)
	}
	for _, c := range cs {
		if c.conn.closeCode != CodeAppDisabled {
			t.Fatalf("close code %d, want %d", c.conn.closeCode, CodeAppDisabled)
		}
		s.Close(&c.sess)
	}
	app = s.AppByID("app-id")
	if app.Connections() != 0 || len(app.sessions[0])+len(app.sessions[1]) != 0 || app.hub.count("private-a") != 0 {
		t.Fatal("closed sessions are still counted")
	}
}

func TestSetAppsRemovedCloses4001(t *testing.T) {
	s, _ := newServer(t, 3)
	var cs []*client
	for i := range 5 {
		cs = append(cs, dial(t, s, i%3))
	}
	if _, err := s.SetApps([]AppConfig{DefaultApp("b", "b-key", "b-secret")}); err != nil {
		t.Fatal(err)
	}
	for _, c := range cs {
		if code := c.errorCode(); code != CodeUnknownApp || c.conn.closeCode != CodeUnknownApp {
			t.Fatalf("pusher:error %d, close %d; want %d", code, c.conn.closeCode, CodeUnknownApp)
		}
	}
	c := &client{t: t, s: s}
	if s.Open(&c.sess, &c.conn, 0, "app-key", "7", "") {
		t.Fatal("a removed app's key still opens")
	}
}

func TestSetAppsRefusesWhole(t *testing.T) {
	s, app := newServer(t, 1)
	bad := DefaultApp("x", "x-key", "")
	for name, apps := range map[string][]AppConfig{
		"invalid app":  {DefaultApp("app-id", "app-key", "s2"), bad},
		"repeated key": {DefaultApp("app-id", "app-key", "s2"), DefaultApp("y", "app-key", "s")},
		"no apps":      nil,
	} {
		if _, err := s.SetApps(apps); err == nil {
			t.Errorf("%s: accepted", name)
		}
		if s.AppByID("app-id") != app || len(s.Apps()) != 1 {
			t.Errorf("%s: the old apps were not kept", name)
		}
	}
}
