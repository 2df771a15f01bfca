package main

// End-to-end test of the HTTP API through the pusher server SDK (v5), run
// against channels that pusher-js clients hold (testdata/api_sdk.mjs).

import (
	"slices"
	"strings"
	"testing"
)

// TestSDKHTTPAPI: the SDK's get() on channels, channel and users, triggerBatch
// (with info, too large, one bad event), trigger with info and
// terminateUserConnections, with exact replies and what pusher-js received.
func TestSDKHTTPAPI(t *testing.T) {
	t.Parallel()
	needNode(t)
	srv := startServer(t, serverConfig{})
	obs := runNode(t, "api_sdk.mjs", srv.nodeEnv())

	wantJSON(t, "B signed in as 2", at(t, obs, "b_signed_in"), `true`)
	wantJSON(t, "A errors", at(t, obs, "a", "errors"), `[]`)

	// GET routes, while A ("1") and B ("2") are in presence-room and A is
	// alone on news and private-orders.
	ok := func(json string) string { return `{"status":200,"json":` + json + `}` }
	gets := []struct{ key, what, want string }{
		{"channels", "GET /channels", ok(`{"channels":{"news":{},"presence-room":{},"private-orders":{}}}`)},
		{"presence_user_count", "GET /channels?filter_by_prefix=presence-&info=user_count",
			ok(`{"channels":{"presence-room":{"user_count":2}}}`)},
		{"room", "GET /channels/presence-room?info=user_count,subscription_count",
			ok(`{"occupied":true,"user_count":2,"subscription_count":2}`)},
		{"news", "GET /channels/news?info=subscription_count", ok(`{"occupied":true,"subscription_count":1}`)},
	}
	for _, g := range gets {
		wantJSON(t, g.what, statusJSON(t, at(t, obs, "gets", g.key)), g.want)
	}
	wantStatus(t, "GET /channels/presence-room/users", at(t, obs, "gets", "room_users"), 200)
	wantJSON(t, "GET /channels/presence-room/users ids", userIDs(t, at(t, obs, "gets", "room_users")), `["1","2"]`)
	wantAPIError(t, "GET /channels/news/users", at(t, obs, "gets", "news_users"), 400)
	wantAPIError(t, "GET /channels?info=user_count (no presence- prefix)", at(t, obs, "gets", "user_count_no_prefix"), 400)

	// Batches and triggers.
	wantJSON(t, "triggerBatch b1, b2 (info on b2)", statusJSON(t, at(t, obs, "batch")),
		ok(`{"batch":[{},{"subscription_count":1}]}`))
	wantAPIError(t, "triggerBatch of 11 events", at(t, obs, "batch_too_large"), 400)
	wantAPIError(t, "triggerBatch with one bad channel name", at(t, obs, "batch_bad_channel"), 400)
	wantJSON(t, "trigger with-info on news, info=subscription_count", statusJSON(t, at(t, obs, "with_info")),
		ok(`{"channels":{"news":{"subscription_count":1}}}`))

	// What A received: each accepted event once, nothing of the refused
	// batches (over-*, partial).
	a := at(t, obs, "a")
	wantJSON(t, "A on news", eventsOn(t, a, "news"), `[
		{"channel":"news","event":"pusher:subscription_succeeded","data":{}},
		{"channel":"news","event":"b1","data":{"n":1}},
		{"channel":"news","event":"with-info","data":{"x":1}}]`)
	wantJSON(t, "A on private-orders", eventsOn(t, a, "private-orders"), `[
		{"channel":"private-orders","event":"pusher:subscription_succeeded","data":{}},
		{"channel":"private-orders","event":"b2","data":{"n":2}}]`)
	room := eventsOn(t, a, "presence-room")
	var names []any
	for _, e := range room {
		names = append(names, at(t, e, "event"))
	}
	wantJSON(t, "A's events on presence-room", names,
		`["pusher:subscription_succeeded","pusher:member_added","pusher:member_removed"]`)
	if len(room) == 3 {
		wantJSON(t, "member_added seen by A", at(t, room[1], "data"), `{"id":"2","info":{"name":"B"}}`)
		wantJSON(t, "member_removed seen by A", at(t, room[2], "data", "id"), `"2"`)
	}
	wantJSON(t, "A's states", at(t, obs, "a", "states"), `["connecting","connected"]`)
	wantJSON(t, "A's state at the end", at(t, obs, "a_state_at_end"), `"connected"`)

	// terminateUserConnections("2"): B is closed with 4009 and stays down;
	// presence-room is left to "1".
	wantJSON(t, "terminateUserConnections(2)", statusJSON(t, at(t, obs, "terminate")), ok(`{}`))
	wantJSON(t, "B's states", at(t, obs, "b", "states"), `["connecting","connected","disconnected"]`)
	errs, _ := at(t, obs, "b", "errors").([]any)
	if len(errs) == 0 {
		t.Errorf("B saw no error after terminate_connections")
	}
	for _, e := range errs {
		if code := at(t, e, "code"); code != float64(4009) {
			t.Errorf("B error %v: code = %v, want 4009", e, code)
		}
	}
	var bNames []any
	for _, e := range at(t, obs, "b", "events").([]any) {
		bNames = append(bNames, at(t, e, "event"))
	}
	wantJSON(t, "B's events", bNames, `["pusher:subscription_succeeded"]`)
	wantJSON(t, "GET /channels/presence-room/users after terminate", statusJSON(t, at(t, obs, "users_after")),
		ok(`{"users":[{"id":"1"}]}`))
	wantJSON(t, "GET /channels/presence-room after terminate", statusJSON(t, at(t, obs, "room_after")),
		ok(`{"occupied":true,"user_count":1,"subscription_count":1}`))
}

// statusJSON keeps the status and parsed body of a recorded SDK reply
// ({status, body, json}), failing if the body was not JSON.
func statusJSON(t *testing.T, r any) map[string]any {
	t.Helper()
	j := at(t, r, "json")
	if j == nil {
		t.Errorf("reply %v: body is not JSON", r)
	}
	return map[string]any{"status": at(t, r, "status"), "json": j}
}

func wantStatus(t *testing.T, what string, r any, status int) {
	t.Helper()
	if got := at(t, r, "status"); got != float64(status) {
		t.Errorf("%s: status = %v, want %d (body %v)", what, got, status, at(t, r, "body"))
	}
}

// wantAPIError: the reply has status and a JSON body that is exactly
// {"error": non-empty string}.
func wantAPIError(t *testing.T, what string, r any, status int) {
	t.Helper()
	wantStatus(t, what, r, status)
	body, _ := at(t, r, "json").(map[string]any)
	msg, _ := body["error"].(string)
	if len(body) != 1 || strings.TrimSpace(msg) == "" {
		t.Errorf("%s: body = %v, want {\"error\": non-empty string}", what, at(t, r, "body"))
	}
}

// userIDs returns the sorted ids of a users reply ({"users":[{"id":..}]}),
// checking that each item is exactly {"id": string}. Pusher does not order
// the list.
func userIDs(t *testing.T, r any) []any {
	t.Helper()
	users, ok := at(t, r, "json", "users").([]any)
	if !ok {
		t.Fatalf("users reply %v: users is not an array", at(t, r, "body"))
	}
	var ids []string
	for _, u := range users {
		m, _ := u.(map[string]any)
		id, ok := m["id"].(string)
		if len(m) != 1 || !ok {
			t.Errorf("users reply item %v, want {\"id\": string}", u)
		}
		ids = append(ids, id)
	}
	slices.Sort(ids)
	out := make([]any, len(ids))
	for i, id := range ids {
		out[i] = id
	}
	return out
}

// TestSDKOversizedBatch: the pusher SDK's batch_events holding a 1 MiB
// event, over max_request_body, is answered 413 with a JSON error that the
// SDK reads, 100 times of 100 — never a connection reset while it is still
// sending — and the server goes on answering.
func TestSDKOversizedBatch(t *testing.T) {
	t.Parallel()
	needNode(t)
	srv := startServer(t, serverConfig{})
	env := srv.nodeEnv()
	env["TRIES"] = "100"
	env["TIMEOUT_MS"] = "25000"
	obs := runNode(t, "oversized.mjs", env)

	wantJSON(t, "statuses of 100 tries", at(t, obs, "statuses"), `{"413":100}`)
	wantJSON(t, "failures", at(t, obs, "errors"), `[]`)
	wantAPIError(t, "the first try", at(t, obs, "first"), 413)
	wantJSON(t, "a trigger after them", at(t, obs, "after"), `{"status":200,"body":"{}","json":{}}`)
}
