package api

import (
	"strconv"
	"strings"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/revurb/revurb/codec"
	"github.com/revurb/revurb/pusher"
)

// infoMask is a set of channel attributes asked for with info=.
type infoMask uint8

const (
	infoUserCount infoMask = 1 << iota
	infoSubscriptionCount
	infoCache
)

var infoNames = [...]struct {
	name string
	bit  infoMask
}{
	{"user_count", infoUserCount},
	{"subscription_count", infoSubscriptionCount},
	{"cache", infoCache},
}

// parseInfo reads a comma-separated list of attributes; empty items are
// skipped, and an attribute outside allowed is a 400.
func parseInfo(list string, allowed infoMask) (infoMask, *apiError) {
	var m infoMask
	for list != "" {
		var item string
		item, list, _ = strings.Cut(list, ",")
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		found := false
		for _, n := range infoNames {
			if n.name == item && allowed&n.bit != 0 {
				m, found = m|n.bit, true
				break
			}
		}
		if !found {
			return 0, badRequest("Unknown info attribute " + strconv.Quote(item))
		}
	}
	return m, nil
}

// appendInfo appends {"user_count":n,"subscription_count":n} with the
// attributes in info.
func appendInfo(dst []byte, ci pusher.ChannelInfo, info infoMask) []byte {
	dst = append(dst, '{')
	sep := false
	if info&infoUserCount != 0 {
		dst = append(dst, `"user_count":`...)
		dst = strconv.AppendInt(dst, int64(ci.UserCount), 10)
		sep = true
	}
	if info&infoSubscriptionCount != 0 {
		if sep {
			dst = append(dst, ',')
		}
		dst = append(dst, `"subscription_count":`...)
		dst = strconv.AppendInt(dst, int64(ci.SubscriptionCount), 10)
	}
	return append(dst, '}')
}

// channels lists the occupied channels of app (GET /apps/{id}/channels),
// optionally those whose name starts with filter_by_prefix. user_count is
// only given for presence channels, so it needs a presence- prefix.
func (s *Server) channels(ctx *fasthttp.RequestCtx, app *pusher.App) {
	args := ctx.QueryArgs()
	prefix := string(args.Peek("filter_by_prefix"))
	info, e := parseInfo(string(args.Peek("info")), infoUserCount|infoSubscriptionCount)
	if e != nil {
		e.write(ctx)
		return
	}
	if info&infoUserCount != 0 && !strings.HasPrefix(prefix, "presence-") {
		badRequest("info=user_count needs filter_by_prefix=presence-").write(ctx)
		return
	}
	b := append(make([]byte, 0, 256), `{"channels":{`...)
	// Server-only channels (#server-to-user-{id}, one per signed-in user)
	// are revurb's plumbing for users, not channels an app made: like
	// Pusher, the list leaves them out unless the prefix asks for them.
	hideServer := !strings.HasPrefix(prefix, "#")
	n := 0
	for _, ci := range s.p.Channels(app, prefix) {
		if hideServer && strings.HasPrefix(ci.Name, "#") {
			continue
		}
		if n > 0 {
			b = append(b, ',')
		}
		n++
		b = codec.AppendJSONString(b, ci.Name)
		b = append(b, ':')
		b = appendInfo(b, ci, info)
	}
	reply(ctx, fasthttp.StatusOK, append(b, "}}"...))
}

// channel describes one channel (GET /apps/{id}/channels/{name}):
// {"occupied":bool} plus the attributes asked with info. user_count is
// for presence channels only (else 400), as in Pusher.
//
// info=cache is revurb's own (Pusher has no such attribute): for a cache
// channel it adds "cache":{"data":<the cached event, as sent to
// subscribers: {"event","channel","data"}>,"ttl":<seconds left, rounded
// up>} while an event is cached, and nothing when none is. Asking it of a
// channel that is not a cache channel is a 400.
func (s *Server) channel(ctx *fasthttp.RequestCtx, app *pusher.App, name string) {
	if !pusher.ValidChannelName(name, app.MaxChannelNameLength) {
		badRequest("Invalid channel name " + strconv.Quote(name)).write(ctx)
		return
	}
	info, e := parseInfo(string(ctx.QueryArgs().Peek("info")), infoUserCount|infoSubscriptionCount|infoCache)
	if e != nil {
		e.write(ctx)
		return
	}
	kind, cache := pusher.ChannelKind(name)
	if info&infoUserCount != 0 && kind != pusher.Presence {
		badRequest("user_count is only available for presence channels").write(ctx)
		return
	}
	if info&infoCache != 0 && !cache {
		badRequest("cache is only available for cache channels").write(ctx)
		return
	}
	ci := s.p.Channel(app, name)
	b := append(make([]byte, 0, 128), `{"occupied":`...)
	b = strconv.AppendBool(b, ci.Occupied)
	if info&(infoUserCount|infoSubscriptionCount) != 0 {
		// Splice the counts into the object: drop appendInfo's braces.
		counts := appendInfo(nil, ci, info)
		b = append(b, ',')
		b = append(b, counts[1:len(counts)-1]...)
	}
	if info&infoCache != 0 {
		if ev, ttl, ok := s.p.CachedEvent(app, name); ok {
			b = append(b, `,"cache":{"data":`...)
			b = append(b, ev...)
			b = append(b, `,"ttl":`...)
			b = strconv.AppendInt(b, int64((ttl+time.Second-1)/time.Second), 10)
			b = append(b, '}')
		}
	}
	reply(ctx, fasthttp.StatusOK, append(b, '}'))
}

// users lists the users of a presence channel (GET
// /apps/{id}/channels/{name}/users): {"users":[{"id":"..."}]}.
func (s *Server) users(ctx *fasthttp.RequestCtx, app *pusher.App, name string) {
	if !pusher.ValidChannelName(name, app.MaxChannelNameLength) {
		badRequest("Invalid channel name " + strconv.Quote(name)).write(ctx)
		return
	}
	if kind, _ := pusher.ChannelKind(name); kind != pusher.Presence {
		badRequest("Users are only available for presence channels").write(ctx)
		return
	}
	b := append(make([]byte, 0, 128), `{"users":[`...)
	for i, id := range s.p.Users(app, name) {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"id":`...)
		b = codec.AppendJSONString(b, id)
		b = append(b, '}')
	}
	reply(ctx, fasthttp.StatusOK, append(b, "]}"...))
}

// terminate closes every connection signed in as user_id (POST
// /apps/{id}/users/{user_id}/terminate_connections). The body is not
// read beyond its signature. The reply is {} whether or not the user had
// connections, as in Pusher.
func (s *Server) terminate(ctx *fasthttp.RequestCtx, app *pusher.App, user string) {
	if user == "" {
		badRequest("Missing user id").write(ctx)
		return
	}
	if _, err := s.p.TerminateUser(ctx, app, user); err != nil {
		// This node's connections are closed; the other nodes could not
		// be asked.
		fail(ctx, fasthttp.StatusServiceUnavailable, "Could not reach every node of the cluster: "+err.Error())
		return
	}
	reply(ctx, fasthttp.StatusOK, emptyObject)
}

// connections answers the app's open connections, cluster-wide (GET
// /apps/{id}/connections, as Reverb answers it: what Laravel Pulse's
// Reverb card polls).
func (s *Server) connections(ctx *fasthttp.RequestCtx, app *pusher.App) {
	b := append(make([]byte, 0, 32), `{"connections":`...)
	b = strconv.AppendInt(b, int64(s.p.Connections(app)), 10)
	reply(ctx, fasthttp.StatusOK, append(b, '}'))
}
