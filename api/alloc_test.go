//go:build !race

package api

import (
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/revurb/revurb/pusher"
)

// TestAuthenticateAllocs: the signature check every request pays for
// allocates nothing (a path with percent escapes, checked decoded too, is
// the exception).
func TestAuthenticateAllocs(t *testing.T) {
	app := pusher.DefaultApp(testAppID, testKey, testSecret)
	now := time.Now()
	body := []byte(`{"name":"e","channels":["bench"],"data":"{}"}`)
	method := []byte("POST")
	for _, path := range []string{eventsPath, "/apps/" + testAppID + "/channels/presence-a"} {
		q, _ := signQuery("POST", path, map[string]string{"info": "user_count"}, body, signing{}, now)
		var args fasthttp.Args
		args.Parse(q)
		allocs := testing.AllocsPerRun(1000, func() {
			if msg := authenticate(&app, method, path, &args, body, now); msg != "" {
				t.Fatal(msg)
			}
		})
		if allocs != 0 {
			t.Errorf("authenticate %s allocates %.1f times, want 0", path, allocs)
		}
	}
}
