package api

import (
	"errors"
	"strconv"
	"strings"

	json "github.com/goccy/go-json"
	"github.com/valyala/fasthttp"

	"github.com/revurb/revurb/codec"
	"github.com/revurb/revurb/pusher"
)

// eventRequest is one event to trigger: the body of POST events, or one
// item of a batch (Pusher HTTP API: trigger events). Data is a pointer to
// tell a missing data from an empty string.
type eventRequest struct {
	Name     string   `json:"name"`
	Data     *string  `json:"data"`
	Channels []string `json:"channels"`
	Channel  string   `json:"channel"`
	SocketID *string  `json:"socket_id"`
	Info     string   `json:"info"`
}

// batchRequest is the body of POST batch_events.
type batchRequest struct {
	Batch []eventRequest `json:"batch"`
}

// trigger is a validated event, ready to publish.
type trigger struct {
	name     string
	data     string
	channels []string
	except   string
	info     infoMask
}

// event is t as the protocol core publishes it.
func (t *trigger) event() pusher.Event {
	return pusher.Event{Channels: t.channels, Name: t.name, Data: []byte(t.data), Except: t.except}
}

// published answers a trigger that Publish turned away (err not nil):
// 429 over the app's max_backend_events_per_second, else 503 from the
// publish bound; both say when to retry. It reports whether the trigger
// was published.
func published(ctx *fasthttp.RequestCtx, err error) bool {
	if err == nil {
		return true
	}
	if re, ok := err.(*pusher.RateError); ok {
		ctx.Response.Header.Set(fasthttp.HeaderRetryAfter, re.RetryAfterSeconds())
		fail(ctx, fasthttp.StatusTooManyRequests, "Too many events: over the app's max_backend_events_per_second; retry after "+re.RetryAfterSeconds()+" s")
		return false
	}
	ctx.Response.Header.Set(fasthttp.HeaderRetryAfter, "1")
	fail(ctx, fasthttp.StatusServiceUnavailable, "Server is busy delivering earlier events; retry shortly")
	return false
}

// events triggers one event on one or more channels (POST
// /apps/{id}/events).
func (s *Server) events(ctx *fasthttp.RequestCtx, app *pusher.App, body []byte) {
	var req eventRequest
	if err := json.Unmarshal(body, &req); err != nil {
		decodeError(err).write(ctx)
		return
	}
	t, e := validateEvent(app, &req, false)
	if e != nil {
		e.write(ctx)
		return
	}
	ev := [1]pusher.Event{t.event()}
	if !published(ctx, s.p.Publish(ctx, app, ev[:])) {
		return
	}
	if t.info == 0 {
		reply(ctx, fasthttp.StatusOK, emptyObject)
		return
	}
	// {"channels":{name:{attributes}}}, in the order the channels came.
	b := append(make([]byte, 0, 64), `{"channels":{`...)
	for i, ch := range t.channels {
		if i > 0 {
			b = append(b, ',')
		}
		b = codec.AppendJSONString(b, ch)
		b = append(b, ':')
		b = s.appendTriggerInfo(b, app, ch, t.info)
	}
	reply(ctx, fasthttp.StatusOK, append(b, "}}"...))
}

// batchEvents triggers up to MaxBatchSize events, each on one channel
// (POST /apps/{id}/batch_events). Every event is validated before any is
// published: a batch is published whole or not at all.
func (s *Server) batchEvents(ctx *fasthttp.RequestCtx, app *pusher.App, body []byte) {
	var req batchRequest
	if err := json.Unmarshal(body, &req); err != nil {
		decodeError(err).write(ctx)
		return
	}
	switch {
	case req.Batch == nil:
		badRequest("Missing batch: the body must be {\"batch\":[...]}").write(ctx)
		return
	case len(req.Batch) > app.MaxBatchSize:
		badRequest("Batch too large: more than " + strconv.Itoa(app.MaxBatchSize) + " events").write(ctx)
		return
	}
	ts := make([]trigger, len(req.Batch))
	var info infoMask
	for i := range req.Batch {
		t, e := validateEvent(app, &req.Batch[i], true)
		if e != nil {
			e.msg = "batch[" + strconv.Itoa(i) + "]: " + e.msg
			e.write(ctx)
			return
		}
		ts[i] = t
		info |= t.info
	}
	events := make([]pusher.Event, len(ts))
	for i := range ts {
		events[i] = ts[i].event()
	}
	if !published(ctx, s.p.Publish(ctx, app, events)) {
		return
	}
	if info == 0 {
		reply(ctx, fasthttp.StatusOK, emptyObject)
		return
	}
	// {"batch":[{attributes} per event, {} where none were asked]}.
	b := append(make([]byte, 0, 64), `{"batch":[`...)
	for i, t := range ts {
		if i > 0 {
			b = append(b, ',')
		}
		b = s.appendTriggerInfo(b, app, t.channels[0], t.info)
	}
	reply(ctx, fasthttp.StatusOK, append(b, "]}"...))
}

// appendTriggerInfo appends the attributes asked of channel ch after a
// trigger: subscription_count for any channel, user_count for presence
// channels only. Pusher documents user_count as a presence attribute; a
// trigger may name channels of several kinds at once, so asking it is not
// an error here, it is just left out where it has no meaning.
func (s *Server) appendTriggerInfo(dst []byte, app *pusher.App, ch string, info infoMask) []byte {
	if kind, _ := pusher.ChannelKind(ch); kind != pusher.Presence {
		info &^= infoUserCount
	}
	return appendInfo(dst, s.p.Channel(app, ch), info)
}

// validateEvent checks one event against app's limits. In a batch an event
// names exactly one channel, as channel.
func validateEvent(app *pusher.App, req *eventRequest, batch bool) (trigger, *apiError) {
	var t trigger
	switch {
	case req.Name == "":
		return t, badRequest("Missing event name")
	case len(req.Name) > app.MaxEventNameLength:
		return t, badRequest("Event name is longer than " + strconv.Itoa(app.MaxEventNameLength) + " characters")
	}
	switch {
	case batch && len(req.Channels) > 0:
		return t, badRequest("A batch event names one channel, as channel, not channels")
	case batch && req.Channel == "":
		return t, badRequest("Missing channel")
	case len(req.Channels) > 0 && req.Channel != "":
		return t, badRequest("Give channels or channel, not both")
	case len(req.Channels) > app.MaxChannelsPerEvent:
		return t, badRequest("Too many channels: more than " + strconv.Itoa(app.MaxChannelsPerEvent))
	case len(req.Channels) > 0:
		t.channels = dedupe(req.Channels)
	case req.Channel != "":
		t.channels = []string{req.Channel}
	default:
		return t, badRequest("Missing channels: give channels (an array) or channel")
	}
	for _, ch := range t.channels {
		if !pusher.ValidChannelName(ch, app.MaxChannelNameLength) {
			return t, badRequest("Invalid channel name " + strconv.Quote(ch) +
				": 1 to " + strconv.Itoa(app.MaxChannelNameLength) + " characters of A-Z a-z 0-9 _ - = @ , . ;")
		}
	}
	if req.Data == nil {
		return t, badRequest("Missing data")
	}
	if req.SocketID != nil {
		if !validSocketID(*req.SocketID) {
			return t, badRequest("Invalid socket_id " + strconv.Quote(*req.SocketID))
		}
		t.except = *req.SocketID
	}
	info, e := parseInfo(req.Info, infoUserCount|infoSubscriptionCount)
	if e != nil {
		return t, e
	}
	if len(*req.Data) > app.MaxEventDataSize {
		return t, &apiError{status: fasthttp.StatusRequestEntityTooLarge,
			msg: "Event data is larger than " + strconv.Itoa(app.MaxEventDataSize) + " bytes"}
	}
	t.name, t.data, t.info = req.Name, *req.Data, info
	return t, nil
}

// dedupe drops repeated channel names, keeping the first of each, so that
// a channel named twice gets the event once. It reuses list.
func dedupe(list []string) []string {
	out := list[:0]
outer:
	for _, ch := range list {
		for _, seen := range out {
			if seen == ch {
				continue outer
			}
		}
		out = append(out, ch)
	}
	return out
}

// validSocketID reports whether id is two decimal integers joined by a dot
// (Pusher protocol: socket_id).
func validSocketID(id string) bool {
	a, b, ok := strings.Cut(id, ".")
	return ok && digits(a) && digits(b)
}

func digits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// decodeError turns a JSON decoding error into a 400 that names the field
// when the JSON was valid but a field had the wrong type.
func decodeError(err error) *apiError {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) && te.Field != "" {
		return badRequest("Invalid JSON body: " + te.Field + " has the wrong type")
	}
	return badRequest("Invalid JSON body")
}
