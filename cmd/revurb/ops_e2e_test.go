package main

import (
	"bufio"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/revurb/revurb/pusher"
)

// writeConfig writes a config file with the one app (and extra lines) and
// returns its path.
func writeConfig(t *testing.T, extra string, app string) string {
	t.Helper()
	file := filepath.Join(t.TempDir(), "revurb.yaml")
	body := extra + "\napps:\n  - {id: app-id, key: app-key, secret: app-secret" + app + "}\n"
	if err := os.WriteFile(file, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return file
}

// TestUserAuthenticationTimeout: with user_authentication_timeout, a
// connection that has not signed in by then gets pusher:error 4009 and
// close 4009; one that signed in stays.
func TestUserAuthenticationTimeout(t *testing.T) {
	t.Parallel()
	srv := startServer(t, serverConfig{Args: []string{"--config", writeConfig(t, "", ", user_authentication_timeout: 1")}})
	signed := dialWS(t, srv, defaultPath)
	id := signed.expectEstablished()
	ud := `{"id":"ann"}`
	msg, _ := json.Marshal(map[string]any{"event": "pusher:signin", "data": map[string]string{
		"auth": "app-key:" + pusher.Sign("app-secret", id+"::user::"+ud), "user_data": ud}})
	signed.sendText(string(msg))
	if m := signed.readMessage(); m["event"] != "pusher:signin_success" {
		t.Fatalf("signin: %v", m)
	}
	silent := dialWS(t, srv, defaultPath)
	silent.expectEstablished()
	silent.expectErrorThenClose(4009)
	signed.expectAlive()
}

// TestPathPrefixEndToEnd: --path puts the WebSocket endpoint and the API's
// routes under a prefix, for a proxy that forwards a sub-path.
func TestPathPrefixEndToEnd(t *testing.T) {
	t.Parallel()
	srv := startServer(t, serverConfig{Args: []string{"--path", "/ws"}})
	c := dialWS(t, srv, "/ws/app/app-key?protocol=7")
	c.expectEstablished()
	if code, body := signedGet(t, srv, "/ws/apps/app-id/connections", ""); code != 200 || body != `{"connections":1}` {
		t.Fatalf("connections under the prefix: %d %s", code, body)
	}
	w := dialTCP(t, srv)
	if _, err := w.Write([]byte(handshake(srv.wsAddr(), "/app/app-key", newKey()))); err != nil {
		t.Fatal(err)
	}
	line, _ := bufio.NewReader(w).ReadString('\n')
	if !strings.Contains(line, "404") {
		t.Fatalf("the endpoint without the prefix: %q", line)
	}
}

// TestJSONLogsFatal: with --log-format json, the error a start fails on
// is a JSON record too.
func TestJSONLogsFatal(t *testing.T) {
	t.Parallel()
	held, err := net.Listen("tcp", "127.0.0.1:0") // no SO_REUSEPORT: nobody else binds it
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	cmd := exec.Command(revurbBin, "start", "--host", "127.0.0.1", "--port", strconv.Itoa(freePort(t)), "--api-port", strconv.Itoa(freePort(t)),
		"--log-format", "json", "--metrics-addr", held.Addr().String())
	cmd.Env = cleanEnv("REVERB_")
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("started on a port in use:\n%s", out)
	}
	var sawErr bool
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("a line that is not one JSON object: %q", line)
		}
		e, _ := rec["error"].(string)
		sawErr = sawErr || rec["level"] == "ERROR" && strings.Contains(e, "address already in use")
	}
	if !sawErr {
		t.Fatalf("no error record for the port in use:\n%s", out)
	}
}

// TestJSONLogs: with --log-format json every line the process writes, on
// stdout and stderr, is one JSON object — the start line, debug protocol
// messages, the pprof listener's and Redis's — and an app's secret appears
// in none unless it is the embedded default app's.
func TestJSONLogs(t *testing.T) {
	t.Parallel()
	cfg := writeConfig(t, "", "")
	dead := freePort(t) // no Redis there: the broker logs that it is unreachable
	srv := startServer(t, serverConfig{Args: []string{"--config", cfg, "--log-format", "json", "--debug",
		"--pprof", "127.0.0.1:0", "--redis", "redis://127.0.0.1:" + strconv.Itoa(dead) + "/0"}})
	c := dialWS(t, srv, defaultPath)
	c.expectEstablished()
	c.sendText(`{"event":"pusher:subscribe","data":{"channel":"news"}}`)
	c.readMessage()
	signedPost(t, srv, "/apps/app-id/events", `{"name":"e","channel":"news","data":"x"}`)
	c.readMessage()
	res, err := http.Get("http://" + srv.apiAddr() + "/apps/app-id/events?bad") // unsigned: 401, logged at debug
	if err == nil {
		res.Body.Close()
	}
	waitOutput(t, srv, "unreachable", "the broker's log line")
	if err := srv.terminate(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	out := srv.out.String()
	var sawStart, sawRecv bool
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("a line that is not one JSON object: %q", line)
		}
		if rec["msg"] == nil || rec["level"] == nil || rec["time"] == nil {
			t.Fatalf("a record without time, level or msg: %q", line)
		}
		msg, _ := rec["msg"].(string)
		sawStart = sawStart || strings.Contains(msg, "listening") && rec["websockets"] != nil && rec["pprof"] != nil
		sawRecv = sawRecv || msg == "recv"
	}
	if !sawStart || !sawRecv {
		t.Fatalf("start line %v, debug recv %v in:\n%s", sawStart, sawRecv, out)
	}
	if strings.Contains(out, "app-secret") {
		t.Fatalf("the secret of an app from a config file is in the log:\n%s", out)
	}
}
