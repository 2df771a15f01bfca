package pusher

import (
	"context"
	"errors"
	"reflect"
)

// The apps a server serves, and a new set of them taken while it runs
// (SIGHUP in cmd/revurb): the table is swapped whole, so that a session
// opening, a request of the HTTP API and a message of the broker each see
// one set of apps, the old or the new.

// appTable is the apps served at one time. It is never changed once
// stored: SetApps makes another.
type appTable struct {
	list  []*App
	byKey map[string]*App
	byID  map[string]*App
}

// newTable makes the table of apps, taking the state of an app of old
// with the same id (nil: none). The configurations are copied.
func (s *Server) newTable(apps []AppConfig, old *appTable) (*appTable, error) {
	if len(apps) == 0 {
		return nil, errors.New("pusher: no apps")
	}
	t := &appTable{byKey: make(map[string]*App, len(apps)), byID: make(map[string]*App, len(apps))}
	loops := 0
	if s.loops != nil {
		loops = s.loops.Len()
	}
	for _, cfg := range apps {
		if err := cfg.Validate(); err != nil {
			return nil, err
		}
		if t.byKey[cfg.Key] != nil || t.byID[cfg.ID] != nil {
			return nil, errors.New("pusher: app " + cfg.ID + " repeats an id or key")
		}
		var a *App
		switch prev := old.app(cfg.ID); {
		case prev == nil:
			a = newApp(cfg, nil, s.clustered, loops)
		case reflect.DeepEqual(prev.AppConfig, cfg):
			a = prev
		default:
			a = newApp(cfg, prev.appState, s.clustered, loops)
		}
		t.list = append(t.list, a)
		t.byKey[a.Key], t.byID[a.ID] = a, a
	}
	return t, nil
}

func (t *appTable) app(id string) *App {
	if t == nil {
		return nil
	}
	return t.byID[id]
}

// Reloaded says what a SetApps changed, by app id.
type Reloaded struct {
	Added, Removed, Changed, Disabled []string
}

// AppSetter is what a Broker or an Observer implements when it keeps
// something per app: SetApps hands it the new apps before the server
// serves them.
type AppSetter interface {
	SetApps(apps []AppConfig) error
}

// SetApps serves apps from now on, instead of those the server had: an app
// added serves at once; an app removed has its connections closed with
// 4001 (unknown app), and an app disabled with 4003, so that pusher-js
// does not reconnect (Pusher protocol: 4000-4099); an app changed applies
// its new settings to what comes next — a connection's next message, the
// next request of the HTTP API — keeping its connections, channels and
// members. Apps are matched by id. A set that does not validate is refused
// whole and the old one stays. The broker and the observer, when they keep
// something per app (AppSetter), take the new set first. Safe for
// concurrent use; reloads run one at a time.
func (s *Server) SetApps(apps []AppConfig) (Reloaded, error) {
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	var r Reloaded
	old := s.table.Load()
	t, err := s.newTable(apps, old)
	if err != nil {
		return r, err
	}
	for _, x := range []any{s.broker, s.obs} {
		if as, ok := x.(AppSetter); ok {
			if err := as.SetApps(apps); err != nil {
				return r, err
			}
		}
	}
	s.table.Store(t)
	for _, a := range t.list {
		if old.app(a.ID) == nil {
			r.Added = append(r.Added, a.ID)
		}
	}
	for _, prev := range old.list {
		a := t.app(prev.ID)
		switch {
		case a == nil:
			r.Removed = append(r.Removed, prev.ID)
			s.moveSessions(prev, nil, &Error{Code: CodeUnknownApp, Message: "App " + prev.ID + " was removed"})
		case a == prev:
		case !a.Enabled:
			r.Disabled = append(r.Disabled, a.ID)
			s.moveSessions(prev, a, &Error{Code: CodeAppDisabled, Message: "Application disabled"})
		default:
			r.Changed = append(r.Changed, a.ID)
			s.moveSessions(prev, a, nil)
		}
	}
	return r, nil
}

// moveSessions points the sessions of prev at to, on their loops, and
// closes them with code when code is not nil.
func (s *Server) moveSessions(prev, to *App, code *Error) {
	if s.loops == nil {
		return
	}
	for i := range prev.sessions {
		_ = s.loops.Execute(i, &appTask{s: s, st: prev.appState, loop: i, to: to, close: code})
	}
}

// appTask moves, or closes, the sessions one app has on one loop.
type appTask struct {
	s     *Server
	st    *appState
	loop  int
	to    *App
	close *Error
}

// Run runs on loop t.loop, the owner of t.st.sessions[t.loop].
func (t *appTask) Run(context.Context) error {
	list := t.st.sessions[t.loop]
	if t.to != nil {
		for _, sess := range list {
			sess.app = t.to
		}
	}
	if t.close != nil {
		// Close takes each from the list, after the loop's turn: walk a
		// copy.
		for _, sess := range append([]*Session(nil), list...) {
			if sess.open {
				t.s.fail(sess, t.close)
			}
		}
	}
	return nil
}

// enlist adds sess to its app's sessions on its loop; delist takes it
// out, moving the last one into its place. Both run on sess's loop.
func (st *appState) enlist(sess *Session) {
	sess.appIdx = int32(len(st.sessions[sess.loop]))
	st.sessions[sess.loop] = append(st.sessions[sess.loop], sess)
}

func (st *appState) delist(sess *Session) {
	list := st.sessions[sess.loop]
	last := len(list) - 1
	if k := int(sess.appIdx); k != last {
		list[k] = list[last]
		list[k].appIdx = int32(k)
	}
	list[last] = nil
	st.sessions[sess.loop] = list[:last]
}
