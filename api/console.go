package api

import (
	"bufio"
	"crypto/subtle"
	"embed"
	"io/fs"
	"strconv"
	"strings"
	"time"

	json "github.com/goccy/go-json"
	"github.com/valyala/fasthttp"

	"github.com/revurb/revurb/pusher"
)

// The debug console (Config.Console): a page at /console that watches one
// app live — its connections, occupied channels and presence members, and
// a stream of what happens to it (pusher's tap) — and triggers events
// through the API's own events handler. Who has an app's secret sees that
// app: the page signs its requests as the Pusher SDKs do (signature.go).
// Who has the operator token (Config.ConsoleToken, sent as "Authorization:
// Bearer") sees every app.
//
//	GET  /console                        the page and its assets (console/)
//	GET  /console/apps                   token: the apps, {"apps":[{id,key,enabled}]}
//	GET  /console/apps/{id}/stream       Server-Sent Events: "state" each second, "tap" per event
//	POST /console/apps/{id}/events       token: a trigger, as POST /apps/{id}/events
//
// The stream costs the event loops nothing they would wait on: the tap
// offers each event to a bounded buffer per viewer and counts what does
// not fit, which the next state reports as skipped. At most
// maxConsoleStreams are open at once, each holding one API connection.

//go:embed console
var consoleFiles embed.FS

// consoleAssets are the page's files by name, with their content types.
var consoleAssets = func() map[string]asset {
	m := map[string]asset{}
	types := map[string]string{".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml"}
	_ = fs.WalkDir(consoleFiles, "console", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := consoleFiles.ReadFile(path)
		if err != nil {
			return err
		}
		name := strings.TrimPrefix(path, "console/")
		m[name] = asset{body: b, typ: types[name[strings.LastIndexByte(name, '.'):]]}
		return nil
	})
	return m
}()

type asset struct {
	body []byte
	typ  string
}

const (
	// maxConsoleStreams caps the consoles watching at once, all apps
	// together: each holds an API connection and a worker.
	maxConsoleStreams = 8
	// consoleBuffer is the events a viewer's feed holds for it.
	consoleBuffer = 1024
	// consoleChannels and consoleMembers cap what a state lists.
	consoleChannels = 200
	consoleMembers  = 50
	// consoleWriteTimeout bounds one write of a stream: a console that
	// stops reading is dropped after it.
	consoleWriteTimeout = 10 * time.Second
)

// SetConsoleToken replaces the operator token (a reload of the config
// file); "" turns token access off.
func (s *Server) SetConsoleToken(token string) { s.consoleToken.Store(&token) }

// console serves the routes under /console; rest is the path after it.
func (s *Server) console(ctx *fasthttp.RequestCtx, signed, rest string) {
	if rest == "" || rest == "/" || !strings.HasPrefix(rest, "/apps") {
		// The page's links are relative: /console/ asks for
		// /console/console/x.
		name := strings.TrimPrefix(strings.TrimPrefix(rest, "/"), "console/")
		if name == "" {
			name = "index.html"
		}
		a, ok := consoleAssets[name]
		if !ok {
			fail(ctx, fasthttp.StatusNotFound, "Not found")
			return
		}
		if !ctx.IsGet() && !ctx.IsHead() {
			ctx.Response.Header.Set(fasthttp.HeaderAllow, "GET, HEAD")
			fail(ctx, fasthttp.StatusMethodNotAllowed, "Method not allowed")
			return
		}
		ctx.SetContentType(a.typ)
		ctx.Response.Header.Set(fasthttp.HeaderCacheControl, "no-cache")
		ctx.SetBody(a.body)
		return
	}
	parts := strings.Split(strings.TrimPrefix(rest, "/apps"), "/")
	switch {
	case len(parts) == 1 && ctx.IsGet():
		if !s.tokenOK(ctx) {
			fail(ctx, fasthttp.StatusUnauthorized, "The app list needs the operator token")
			return
		}
		s.consoleApps(ctx)
		return
	case len(parts) != 3 || (parts[2] != "stream" && parts[2] != "events"):
		fail(ctx, fasthttp.StatusNotFound, "Not found")
		return
	case parts[2] == "stream" && !ctx.IsGet():
		ctx.Response.Header.Set(fasthttp.HeaderAllow, "GET")
		fail(ctx, fasthttp.StatusMethodNotAllowed, "Method not allowed")
		return
	case parts[2] == "events" && !ctx.IsPost():
		ctx.Response.Header.Set(fasthttp.HeaderAllow, "POST")
		fail(ctx, fasthttp.StatusMethodNotAllowed, "Method not allowed")
		return
	}
	app := s.p.AppByID(parts[1])
	if app == nil {
		fail(ctx, fasthttp.StatusNotFound, "Unknown app")
		return
	}
	if !s.tokenOK(ctx) {
		if parts[2] == "events" {
			// With the secret the page triggers through POST
			// /apps/{id}/events itself.
			fail(ctx, fasthttp.StatusUnauthorized, "Triggering here needs the operator token")
			return
		}
		if msg := s.authenticated(ctx, app, signed, "/console"+rest, nil); msg != "" {
			fail(ctx, fasthttp.StatusUnauthorized, msg)
			return
		}
	}
	if parts[2] == "events" {
		body := ctx.PostBody()
		if len(body) > s.maxBody {
			fail(ctx, fasthttp.StatusRequestEntityTooLarge, s.bodyTooLarge)
			return
		}
		s.events(ctx, app, body)
		return
	}
	s.consoleStream(ctx, app)
}

// tokenOK reports whether the request carries the operator token.
func (s *Server) tokenOK(ctx *fasthttp.RequestCtx) bool {
	token := *s.consoleToken.Load()
	got, ok := strings.CutPrefix(string(ctx.Request.Header.Peek(fasthttp.HeaderAuthorization)), "Bearer ")
	return ok && token != "" && subtle.ConstantTimeCompare([]byte(got), []byte(token)) == 1
}

// consoleApps lists the apps, for the token's holder.
func (s *Server) consoleApps(ctx *fasthttp.RequestCtx) {
	type appInfo struct {
		ID      string `json:"id"`
		Key     string `json:"key"`
		Enabled bool   `json:"enabled"`
	}
	var out struct {
		Apps []appInfo `json:"apps"`
	}
	for _, a := range s.p.Apps() {
		out.Apps = append(out.Apps, appInfo{ID: a.ID, Key: a.Key, Enabled: a.Enabled})
	}
	b, _ := json.Marshal(out)
	reply(ctx, fasthttp.StatusOK, b)
}

// consoleState is what a stream's "state" event holds.
type consoleState struct {
	Connections   int              `json:"connections"`
	Messages      uint64           `json:"messages"` // since the stream began
	Skipped       uint64           `json:"skipped"`  // events that did not fit the buffer since the last state
	Channels      []consoleChannel `json:"channels"`
	ChannelsTotal int              `json:"channels_total"`
	Removed       bool             `json:"removed,omitempty"` // the app is gone (a reload): the stream ends
}

type consoleChannel struct {
	Name        string   `json:"name"`
	Subscribers int      `json:"subscribers"`
	Users       []string `json:"users,omitempty"`
	UserCount   int      `json:"user_count,omitempty"`
}

// consoleEvent is a tap event as a stream's "tap" event holds it.
type consoleEvent struct {
	Time     int64  `json:"t"`
	Kind     string `json:"kind"`
	SocketID string `json:"socket_id,omitempty"`
	Channel  string `json:"channel,omitempty"`
	Event    string `json:"event,omitempty"`
	Data     string `json:"data,omitempty"`
	Code     int    `json:"code,omitempty"`
	Detail   string `json:"detail,omitempty"`
}

func newConsoleEvent(e *pusher.TapEvent) consoleEvent {
	return consoleEvent{Time: e.Time, Kind: e.Kind.String(), SocketID: e.SocketID, Channel: e.Channel,
		Event: e.Event, Data: e.Data, Code: e.Code, Detail: e.Detail}
}

// consoleStream streams the app's state and events as Server-Sent Events
// until the client goes, the app is removed, or the server drains.
func (s *Server) consoleStream(ctx *fasthttp.RequestCtx, app *pusher.App) {
	if s.streams.Add(1) > maxConsoleStreams {
		s.streams.Add(-1)
		ctx.Response.Header.Set(fasthttp.HeaderRetryAfter, "5")
		fail(ctx, fasthttp.StatusServiceUnavailable, "Too many consoles open: at most "+strconv.Itoa(maxConsoleStreams))
		return
	}
	ctx.SetContentType("text/event-stream")
	ctx.Response.Header.Set(fasthttp.HeaderCacheControl, "no-cache")
	// nginx passes the stream on as it comes instead of buffering it.
	ctx.Response.Header.Set("X-Accel-Buffering", "no")
	// The app's state outlives a reload that changes it: the feed goes
	// on, and each state reads the app as it is then.
	appID, v := app.ID, app.Watch(consoleBuffer)
	conn := ctx.Conn()
	ctx.SetBodyStreamWriter(func(w *bufio.Writer) {
		defer s.streams.Add(-1)
		defer v.Close()
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		start := v.Messages()
		state := func() bool {
			st := s.consoleState(appID)
			st.Messages, st.Skipped = v.Messages()-start, v.Skipped()
			writeSSE(w, "state", st)
			return !st.Removed
		}
		live := state()
		for live {
			select {
			case e := <-v.Events():
				writeSSE(w, "tap", newConsoleEvent(&e))
				// Whatever else waits goes in the same write.
				for n := 0; n < 64 && len(v.Events()) > 0; n++ {
					e := <-v.Events()
					writeSSE(w, "tap", newConsoleEvent(&e))
				}
			case <-tick.C:
				if s.draining.Load() {
					return
				}
				live = state()
			}
			_ = conn.SetWriteDeadline(time.Now().Add(consoleWriteTimeout))
			if w.Flush() != nil {
				return
			}
		}
	})
}

// consoleState reads what a state event shows of the app with id.
func (s *Server) consoleState(id string) consoleState {
	app := s.p.AppByID(id)
	if app == nil {
		return consoleState{Removed: true}
	}
	st := consoleState{Connections: s.p.Connections(app)}
	chans := s.p.Channels(app, "")
	st.ChannelsTotal = len(chans)
	for _, ci := range chans[:min(len(chans), consoleChannels)] {
		c := consoleChannel{Name: ci.Name, Subscribers: ci.SubscriptionCount, UserCount: ci.UserCount}
		if kind, _ := pusher.ChannelKind(ci.Name); kind == pusher.Presence {
			users := s.p.Users(app, ci.Name)
			c.Users = users[:min(len(users), consoleMembers)]
		}
		st.Channels = append(st.Channels, c)
	}
	return st
}

// writeSSE writes one Server-Sent Event named event with v as JSON data
// (one line: JSON escapes newlines).
func writeSSE(w *bufio.Writer, event string, v any) {
	b, _ := json.Marshal(v)
	w.WriteString("event: ")
	w.WriteString(event)
	w.WriteString("\ndata: ")
	w.Write(b)
	w.WriteString("\n\n")
}
