package main

import (
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestConsole: the debug console in headless Chromium. It logs in with the
// app's id, key and secret (the page signs its requests), watches a
// pusher-js client connect and subscribe, triggers through its event
// creator (the API's own events route), which the client gets; the page
// shows the connection count, the channel and its subscriber, the stream
// of what happened, and a chart; then a presence member and its client
// event. Its screenshot is kept in the test's
// artifacts (go test -artifacts) and must not be blank.
func TestConsole(t *testing.T) {
	t.Parallel()
	needNode(t)
	srv := startServer(t, serverConfig{Args: []string{"--console"}})
	shot := filepath.Join(t.ArtifactDir(), "console.png")
	env := consoleEnv(t, srv, "http://"+srv.apiAddr(), shot)
	checkConsole(t, runNode(t, "console.mjs", env))
	wantNotBlank(t, shot)
}

// consoleEnv is what console.mjs needs to drive the console at base
// (the API port's, or a proxy's) with Chromium, saving its screenshot to
// shot.
func consoleEnv(t *testing.T, srv *server, base, shot string) map[string]string {
	t.Helper()
	env := srv.nodeEnv()
	env["CONSOLE_URL"] = base + "/console"
	env["CHROMIUM"] = needChromium(t)
	env["SCREENSHOT"] = shot
	env["TMPDIR"] = t.TempDir() // Chromium's fresh profile, removed with the test
	env["TIMEOUT_MS"] = "25000"
	return env
}

// checkConsole checks what console.mjs saw the page show.
func checkConsole(t *testing.T, obs map[string]any) {
	t.Helper()

	wantJSON(t, "page errors", at(t, obs, "page_errors"), `[]`)
	wantJSON(t, "the login hidden once live", at(t, obs, "login_hidden"), `true`)
	wantJSON(t, "event creator's answer", at(t, obs, "trigger"), `"200 {}"`)
	wantJSON(t, "the client's events", at(t, obs, "client_events"), `[
		{"channel":"console-demo","event":"pusher:subscription_succeeded","data":{}},
		{"channel":"console-demo","event":"console-event","data":{"from":"the console"}}]`)
	wantJSON(t, "connections shown", at(t, obs, "connections"), `"1"`)
	wantJSON(t, "the channel's row", at(t, obs, "channel"), `["console-demo","1",""]`)
	wantJSON(t, "the stream, oldest first", at(t, obs, "kinds"), `["connected","subscribed console-demo","api_event console-demo"]`)
	row := at(t, obs, "event_row").([]any)
	if row[0] != "api event" || row[2] != "console-demo" || row[3] != "console-event" || !strings.Contains(row[4].(string), `{"from":"the console"}`) {
		t.Errorf("the event's row: %v", row)
	}
	wantJSON(t, "filtered by event", at(t, obs, "filtered"), `["api_event"]`)
	wantJSON(t, "the presence channel's row", at(t, obs, "members"), `["presence-room","1","ada"]`)
	whisper := at(t, obs, "whisper_row").([]any)
	if whisper[0] != "client event" || whisper[2] != "presence-room" || whisper[3] != "client-typing" || !strings.Contains(whisper[4].(string), `{"typing":true}`) {
		t.Errorf("the client event's row: %v", whisper)
	}
}

// wantNotBlank fails unless the PNG at path has pixels of many values: a
// page that drew nothing is one colour.
func wantNotBlank(t *testing.T, path string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("screenshot %s: %v", path, err)
	}
	b := img.Bounds()
	if b.Dx() < 800 || b.Dy() < 600 {
		t.Fatalf("screenshot is %v", b)
	}
	var n, sum, sq float64
	colours := map[[3]uint32]bool{}
	for y := b.Min.Y; y < b.Max.Y; y += 2 {
		for x := b.Min.X; x < b.Max.X; x += 2 {
			r, g, bl, _ := img.At(x, y).RGBA()
			lum := float64(r+g+bl) / 3 / 257
			n, sum, sq = n+1, sum+lum, sq+lum*lum
			colours[[3]uint32{r >> 8, g >> 8, bl >> 8}] = true
		}
	}
	variance := sq/n - (sum/n)*(sum/n)
	if variance < 100 || len(colours) < 50 {
		t.Errorf("screenshot %s looks blank: luminance variance %.1f, %d colours", path, variance, len(colours))
	}
	t.Logf("screenshot %s: %v, luminance variance %.0f, %d colours", path, b, variance, len(colours))
}
