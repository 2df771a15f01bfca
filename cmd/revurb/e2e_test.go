package main

// End-to-end tests: the revurb binary, built once per run, driven by the
// clients users run (pusher-js, Laravel Echo and the pusher server SDK in
// Node, scripts in testdata/) and by hand-made WebSocket bytes (raw_test.go).
// The Node scripts only observe; every assertion is here, on exact values.

import (
	"bytes"
	"cmp"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// raceEnabled is set by race_test.go when the tests run with -race; the
// binary under test is then built with -race too.
var raceEnabled bool

// revurbBin is the binary built by TestMain.
var revurbBin string

func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "revurb-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer os.RemoveAll(dir)

	revurbBin = filepath.Join(dir, "revurb")
	args := []string{"build", "-o", revurbBin}
	if raceEnabled {
		args = append(args, "-race")
	}
	args = append(args, ".")
	out, err := exec.Command(goTool(), args...).CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "e2e: go %s: %v\n%s", strings.Join(args, " "), err, out)
		return 1
	}
	return m.Run()
}

// goTool is the go command that runs the tests: the one on PATH, else the
// one in GOROOT, which go test sets for the tests it runs.
func goTool() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return filepath.Join(os.Getenv("GOROOT"), "bin", "go")
}

// syncBuffer collects a child's output; exec copies into it from its own
// goroutines while a failing test may read it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// server is one running revurb process.
type server struct {
	host    string
	wsPort  int
	apiPort int
	appID   string
	appKey  string
	secret  string

	cmd        *exec.Cmd
	out        *syncBuffer
	exited     chan struct{} // closed when the process has exited
	err        error         // Wait's result, valid after exited is closed
	terminated bool          // the test itself sent SIGTERM
	clientTLS  *tls.Config   // wss://: how the tests' own clients dial it (dialTCP)
}

// serverConfig adjusts how startServer runs the binary.
type serverConfig struct {
	Args []string // after `start --host --port --api-port`
	Env  []string // KEY=VALUE, added to a REVERB_*-free environment
	// App credentials the clients should use; default app-id/app-key/app-secret.
	AppID, AppKey, Secret string
	// Ports, when set, are the WebSocket and API ports to use, such as
	// another server's: both listeners use SO_REUSEPORT, so the two share
	// them, and startServer neither retries nor minds the warning.
	Ports *[2]int
	// Prefix runs the binary under a command, such as prlimit.
	Prefix []string
	// Bin is the binary to run, as the process finds it (inside Attr's
	// Chroot, if any); default the one TestMain built.
	Bin string
	// Attr, when set, replaces childProcAttr() for the process: the image
	// test runs the image's binary chrooted into its filesystem, as its user.
	Attr *syscall.SysProcAttr
}

// sharedWarning is what revurb logs when another process listens on its
// ports too.
const sharedWarning = "another process listens on port"

// startServer runs `revurb start` on two free loopback ports and returns once
// both accept TCP. The process is stopped (SIGTERM, then SIGKILL after 5 s)
// when the test ends; its output is logged if the test failed, and a data
// race or panic in it fails the test.
func startServer(t *testing.T, cfg serverConfig) *server {
	t.Helper()
	const attempts = 3 // free ports are picked then released; another test may race us to them
	var s *server
	for i := 0; i < attempts; i++ {
		s = launch(t, cfg)
		err := s.waitReady(10 * time.Second)
		// With SO_REUSEPORT a port taken meanwhile by another test's server
		// is not "in use": revurb binds it too and says so. Such a start is
		// tried again on other ports, as a refused bind is.
		if err == nil && (cfg.Ports != nil || !strings.Contains(s.out.String(), sharedWarning)) {
			t.Cleanup(func() { s.stop(t) })
			return s
		}
		if err == nil {
			err = errors.New("another process took its ports")
		}
		s.kill()
		if i == attempts-1 || cfg.Ports != nil || !strings.Contains(s.out.String(), "in use") && !strings.Contains(s.out.String(), sharedWarning) {
			t.Fatalf("revurb did not start: %v\nargs: %q\noutput:\n%s", err, s.cmd.Args, s.out.String())
		}
	}
	panic("unreachable")
}

func launch(t *testing.T, cfg serverConfig) *server {
	t.Helper()
	s := &server{
		host:    "127.0.0.1",
		wsPort:  freePort(t),
		apiPort: freePort(t),
		appID:   cmp.Or(cfg.AppID, "app-id"),
		appKey:  cmp.Or(cfg.AppKey, "app-key"),
		secret:  cmp.Or(cfg.Secret, "app-secret"),
		out:     &syncBuffer{},
		exited:  make(chan struct{}),
	}
	if cfg.Ports != nil {
		s.wsPort, s.apiPort = cfg.Ports[0], cfg.Ports[1]
	}
	args := []string{"start", "--host", s.host, "--port", strconv.Itoa(s.wsPort), "--api-port", strconv.Itoa(s.apiPort)}
	args = append(args, cfg.Args...)
	argv := append(append(append([]string(nil), cfg.Prefix...), cmp.Or(cfg.Bin, revurbBin)), args...)
	s.cmd = exec.Command(argv[0], argv[1:]...)
	s.cmd.Env = append(cleanEnv("REVERB_"), "GORACE=halt_on_error=1")
	s.cmd.Env = append(s.cmd.Env, cfg.Env...)
	s.cmd.Stdout = s.out
	s.cmd.Stderr = s.out
	s.cmd.WaitDelay = 2 * time.Second
	s.cmd.SysProcAttr = childProcAttr()
	if cfg.Attr != nil {
		s.cmd.SysProcAttr = cfg.Attr
	}
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("start revurb: %v", err)
	}
	go func() {
		s.err = s.cmd.Wait()
		close(s.exited)
	}()
	return s
}

// cleanEnv is os.Environ without variables starting with prefix.
func cleanEnv(prefix string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, prefix) {
			env = append(env, kv)
		}
	}
	return env
}

// handedOut is every port freePort has returned in this process: none is
// returned twice, so that two of this package's servers never share one.
var handedOut = struct {
	sync.Mutex
	ports map[int]bool
}{ports: map[int]bool{}}

// freePort returns a loopback port that is free now and that no other test
// of this process was given.
func freePort(t *testing.T) int {
	t.Helper()
	handedOut.Lock()
	defer handedOut.Unlock()
	for {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("free port: %v", err)
		}
		port := ln.Addr().(*net.TCPAddr).Port
		ln.Close()
		if !handedOut.ports[port] {
			handedOut.ports[port] = true
			return port
		}
	}
}

func (s *server) wsAddr() string  { return net.JoinHostPort(s.host, strconv.Itoa(s.wsPort)) }
func (s *server) apiAddr() string { return net.JoinHostPort(s.host, strconv.Itoa(s.apiPort)) }

func (s *server) waitReady(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		select {
		case <-s.exited:
			return fmt.Errorf("exited early: %v", s.err)
		default:
		}
		// The start line comes after the check for another process on
		// the ports, so its warning, if any, is in the output by then.
		if strings.Contains(s.out.String(), " listening") && accepts(s.wsAddr()) && accepts(s.apiAddr()) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("ports %d and %d not accepting after %v", s.wsPort, s.apiPort, timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func accepts(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

func (s *server) kill() {
	_ = s.cmd.Process.Kill()
	<-s.exited
}

func (s *server) stop(t *testing.T) {
	t.Helper()
	select {
	case <-s.exited:
		if !s.terminated {
			t.Errorf("revurb exited before the test ended: %v", s.err)
		}
	default:
		_ = s.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-s.exited:
		case <-time.After(5 * time.Second):
			t.Errorf("revurb still running 5 s after SIGTERM; killing it")
			s.kill()
		}
	}
	out := s.out.String()
	if strings.Contains(out, "WARNING: DATA RACE") || strings.Contains(out, "panic:") {
		t.Errorf("revurb output shows a data race or panic")
	}
	if t.Failed() {
		t.Logf("revurb %q output:\n%s", s.cmd.Args[1:], out)
	}
}

// terminate sends SIGTERM and waits up to timeout for the process to exit;
// it returns Wait's error, or an error if the process is still running.
func (s *server) terminate(timeout time.Duration) error {
	s.terminated = true
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
		return s.err
	case <-time.After(timeout):
		return fmt.Errorf("still running %v after SIGTERM", timeout)
	}
}

// nodeEnv is the environment every Node scenario reads.
func (s *server) nodeEnv() map[string]string {
	return map[string]string{
		"WS_HOST":    s.host,
		"WS_PORT":    strconv.Itoa(s.wsPort),
		"API_PORT":   strconv.Itoa(s.apiPort),
		"APP_ID":     s.appID,
		"APP_KEY":    s.appKey,
		"APP_SECRET": s.secret,
	}
}

const nodeModulesHint = "run `make test` (it installs the npm packages)"

// needNode fails the test unless node and the npm packages are installed;
// it returns node's path. Node tests call it before starting a server.
func needNode(t *testing.T) string {
	t.Helper()
	if _, err := os.Stat(filepath.Join("testdata", "node_modules")); err != nil {
		t.Fatalf("testdata/node_modules is missing: %s", nodeModulesHint)
	}
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("node not found in PATH: %v", err)
	}
	return node
}

// runNode runs testdata/script with env added to the environment and returns
// the JSON object it printed as its last stdout line. A non-zero exit (the
// script's own timeout included) fails the test with everything it printed.
func runNode(t *testing.T, script string, env map[string]string) map[string]any {
	t.Helper()
	node := needNode(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, script)
	cmd.Dir = "testdata"
	cmd.Env = os.Environ()
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.SysProcAttr = childProcAttr()
	cmd.WaitDelay = 2 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	runErr := cmd.Run()
	if runErr != nil {
		t.Fatalf("node %s: %v\nstdout:\n%s\nstderr:\n%s", script, runErr, stdout.String(), stderr.String())
	}
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	var obs map[string]any
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &obs); err != nil {
		t.Fatalf("node %s: last stdout line is not a JSON object: %v\nstdout:\n%s\nstderr:\n%s", script, err, stdout.String(), stderr.String())
	}
	if testing.Verbose() {
		t.Logf("node %s observed: %s", script, lines[len(lines)-1])
	}
	return obs
}

// at walks obs along keys (object keys, or decimal indexes into arrays).
func at(t *testing.T, obs any, keys ...string) any {
	t.Helper()
	cur := obs
	for i, k := range keys {
		switch v := cur.(type) {
		case map[string]any:
			next, ok := v[k]
			if !ok {
				t.Fatalf("observation has no %s", strings.Join(keys[:i+1], "."))
			}
			cur = next
		case []any:
			n, err := strconv.Atoi(k)
			if err != nil || n < 0 || n >= len(v) {
				t.Fatalf("observation has no %s", strings.Join(keys[:i+1], "."))
			}
			cur = v[n]
		default:
			t.Fatalf("observation %s is %T, not an object or array", strings.Join(keys[:i], "."), cur)
		}
	}
	return cur
}

// wantJSON fails unless got deep-equals the JSON value want.
func wantJSON(t *testing.T, what string, got any, want string) {
	t.Helper()
	var w any
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("bad expectation for %s: %v", what, err)
	}
	if !reflect.DeepEqual(got, w) {
		g, _ := json.Marshal(got)
		t.Errorf("%s:\n got  %s\n want %s", what, g, want)
	}
}

// eventsOn returns the recorded client events on channel, in arrival order.
func eventsOn(t *testing.T, rec any, channel string) []any {
	t.Helper()
	all, ok := at(t, rec, "events").([]any)
	if !ok {
		t.Fatalf("events is not an array")
	}
	var out []any
	for _, e := range all {
		if m, ok := e.(map[string]any); ok && m["channel"] == channel {
			out = append(out, e)
		}
	}
	return out
}

var socketIDRe = regexp.MustCompile(`^\d+\.\d+$`)

func wantSocketID(t *testing.T, what string, v any) {
	t.Helper()
	s, _ := v.(string)
	if !socketIDRe.MatchString(s) {
		t.Errorf("%s = %#v, want a socket id matching %s", what, v, socketIDRe)
	}
}

// TestPusherJSPublicChannel: pusher-js subscribes to public channels and gets
// the events the pusher SDK triggers, on one channel and on two at once.
func TestPusherJSPublicChannel(t *testing.T) {
	t.Parallel()
	needNode(t)
	srv := startServer(t, serverConfig{})
	checkPublic(t, runNode(t, "public.mjs", srv.nodeEnv()))
}

// checkPublic judges what public.mjs observed.
func checkPublic(t *testing.T, obs map[string]any) {
	t.Helper()
	wantSocketID(t, "socket_id", at(t, obs, "socket_id"))
	wantJSON(t, "trigger my-event reply", at(t, obs, "single"), `{"status":200,"body":"{}","json":{}}`)
	wantJSON(t, "trigger multi-event reply", at(t, obs, "multi"), `{"status":200,"body":"{}","json":{}}`)
	for _, c := range []string{"c1", "c2"} {
		wantJSON(t, c+" states", at(t, obs, c, "states"), `["connecting","connected"]`)
		wantJSON(t, c+" errors", at(t, obs, c, "errors"), `[]`)
	}
	wantJSON(t, "c1 events on my-channel", eventsOn(t, at(t, obs, "c1"), "my-channel"), `[
		{"channel":"my-channel","event":"pusher:subscription_succeeded","data":{}},
		{"channel":"my-channel","event":"my-event","data":{"message":"hello"}}]`)
	wantJSON(t, "c1 events on chan-a", eventsOn(t, at(t, obs, "c1"), "chan-a"), `[
		{"channel":"chan-a","event":"pusher:subscription_succeeded","data":{}},
		{"channel":"chan-a","event":"multi-event","data":{"n":2}}]`)
	wantJSON(t, "c2 events", at(t, obs, "c2", "events"), `[
		{"channel":"chan-b","event":"pusher:subscription_succeeded","data":{}},
		{"channel":"chan-b","event":"multi-event","data":{"n":2}}]`)
}

// TestPusherJSSocketIDExclusion: a trigger carrying socket_id skips exactly
// that connection.
func TestPusherJSSocketIDExclusion(t *testing.T) {
	t.Parallel()
	needNode(t)
	srv := startServer(t, serverConfig{})
	obs := runNode(t, "exclusion.mjs", srv.nodeEnv())

	a, b := at(t, obs, "socket_a"), at(t, obs, "socket_b")
	wantSocketID(t, "socket_a", a)
	wantSocketID(t, "socket_b", b)
	if a == b {
		t.Errorf("two connections share socket_id %v", a)
	}
	wantJSON(t, "excluding trigger reply", at(t, obs, "first"), `{"status":200,"body":"{}","json":{}}`)
	wantJSON(t, "second trigger reply", at(t, obs, "second"), `{"status":200,"body":"{}","json":{}}`)
	wantJSON(t, "A (excluded from first-event) events", at(t, obs, "a", "events"), `[
		{"channel":"excl-channel","event":"pusher:subscription_succeeded","data":{}},
		{"channel":"excl-channel","event":"second-event","data":{"n":2}}]`)
	wantJSON(t, "B events", at(t, obs, "b", "events"), `[
		{"channel":"excl-channel","event":"pusher:subscription_succeeded","data":{}},
		{"channel":"excl-channel","event":"first-event","data":{"n":1}},
		{"channel":"excl-channel","event":"second-event","data":{"n":2}}]`)
}

// TestPusherJSUnknownKey: an unknown app key gets Pusher error 4001, which
// pusher-js treats as final (no reconnect loop).
func TestPusherJSUnknownKey(t *testing.T) {
	t.Parallel()
	needNode(t)
	srv := startServer(t, serverConfig{})
	env := srv.nodeEnv()
	env["BAD_KEY"] = "wrong-key"
	obs := runNode(t, "unknown_key.mjs", env)

	errs, _ := at(t, obs, "errors").([]any)
	var codes []any
	for _, e := range errs {
		if c := at(t, e, "code"); c != nil {
			codes = append(codes, c)
		}
	}
	if len(codes) == 0 || slices.ContainsFunc(codes, func(c any) bool { return c != float64(4001) }) {
		t.Errorf("error codes = %v, want only 4001 (errors: %v)", codes, errs)
	}
	wantJSON(t, "times pusher-js went to connecting", at(t, obs, "connecting"), `1`)
	if st := at(t, obs, "final_state"); !slices.Contains([]any{"disconnected", "failed", "unavailable"}, st) {
		t.Errorf("final state = %v, want disconnected, failed or unavailable", st)
	}
}

// TestSDKBadSignature: the pusher SDK with a wrong secret is refused with 401
// and a JSON error body; with the right secret the same trigger succeeds.
func TestSDKBadSignature(t *testing.T) {
	t.Parallel()
	needNode(t)
	srv := startServer(t, serverConfig{})
	obs := runNode(t, "bad_signature.mjs", srv.nodeEnv())

	wantJSON(t, "wrong secret status", at(t, obs, "bad", "status"), `401`)
	body, _ := at(t, obs, "bad", "json").(map[string]any)
	if msg, ok := body["error"].(string); !ok || msg == "" {
		t.Errorf("wrong secret body = %v, want JSON with a non-empty \"error\" string", at(t, obs, "bad", "body"))
	}
	wantJSON(t, "right secret reply", at(t, obs, "good"), `{"status":200,"body":"{}","json":{}}`)
}

// TestEchoPublicChannel: Laravel Echo with the pusher broadcaster receives
// events by their raw name (".my-event") and by App\Events namespace.
func TestEchoPublicChannel(t *testing.T) {
	t.Parallel()
	needNode(t)
	srv := startServer(t, serverConfig{})
	checkEcho(t, runNode(t, "echo.mjs", srv.nodeEnv()))
}

// checkEcho judges what echo.mjs observed.
func checkEcho(t *testing.T, obs map[string]any) {
	t.Helper()
	wantJSON(t, "subscribed", at(t, obs, "subscribed"), `true`)
	wantSocketID(t, "socket_id", at(t, obs, "socket_id"))
	wantJSON(t, "errors", at(t, obs, "errors"), `[]`)
	wantJSON(t, "trigger my-event reply", at(t, obs, "my"), `{"status":200,"body":"{}","json":{}}`)
	wantJSON(t, "trigger App\\Events\\OrderShipped reply", at(t, obs, "ns"), `{"status":200,"body":"{}","json":{}}`)
	wantJSON(t, "received", at(t, obs, "received"), `[
		{"listener":".my-event","data":{"message":"hello"}},
		{"listener":"OrderShipped","data":{"order":42}}]`)
}

// TestEnvConfig: Laravel's REVERB_* variables configure the default app, and
// --port wins over REVERB_SERVER_PORT.
func TestEnvConfig(t *testing.T) {
	t.Parallel()
	needNode(t)
	srv := startServer(t, serverConfig{
		Env: []string{
			"REVERB_APP_ID=env-id",
			"REVERB_APP_KEY=env-key",
			"REVERB_APP_SECRET=env-secret",
			"REVERB_SERVER_PORT=" + strconv.Itoa(freePort(t)),
		},
		AppID: "env-id", AppKey: "env-key", Secret: "env-secret",
	})
	obs := runNode(t, "public.mjs", srv.nodeEnv())
	wantJSON(t, "trigger with env credentials", at(t, obs, "single"), `{"status":200,"body":"{}","json":{}}`)
	wantJSON(t, "c1 events on my-channel", eventsOn(t, at(t, obs, "c1"), "my-channel"), `[
		{"channel":"my-channel","event":"pusher:subscription_succeeded","data":{}},
		{"channel":"my-channel","event":"my-event","data":{"message":"hello"}}]`)

	// The built-in key is not served when the env names another.
	c := dialWS(t, srv, "/app/app-key?protocol=7&client=js&version=8.4.0&flash=false")
	c.expectErrorThenClose(4001)
}

// TestHealth: GET /up on the API port, unsigned.
func TestHealth(t *testing.T) {
	t.Parallel()
	srv := startServer(t, serverConfig{})
	wantHealthy(t, "GET /up", "http://"+srv.apiAddr()+"/up")
}

// wantHealthy fails t unless url answers 200 with the JSON {"health":"OK"}.
func wantHealthy(t *testing.T, what, url string) {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Errorf("%s: status %d, want 200", what, res.StatusCode)
	}
	if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("%s: Content-Type %q, want application/json", what, ct)
	}
	var got any
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatalf("%s: body %q: %v", what, body, err)
	}
	wantJSON(t, what, got, `{"health":"OK"}`)
}

// TestAPIUnsigned: an unsigned trigger is refused with 401 and a JSON error.
func TestAPIUnsigned(t *testing.T) {
	t.Parallel()
	srv := startServer(t, serverConfig{})
	res, err := http.Post("http://"+srv.apiAddr()+"/apps/app-id/events", "application/json",
		strings.NewReader(`{"name":"my-event","channel":"my-channel","data":"{}"}`))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusUnauthorized {
		t.Errorf("unsigned POST status = %d, want 401 (body %q)", res.StatusCode, body)
	}
	if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("unsigned POST Content-Type = %q, want application/json", ct)
	}
	var got map[string]any
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatalf("unsigned POST body %q: %v", body, err)
	}
	if msg, ok := got["error"].(string); !ok || msg == "" {
		t.Errorf("unsigned POST body = %s, want a non-empty \"error\" string", body)
	}
}

// TestShutdown: SIGTERM tells connected clients to reconnect elsewhere now
// (pusher:error 4200, close 4200) and the process exits 0.
func TestShutdown(t *testing.T) {
	t.Parallel()
	srv := startServer(t, serverConfig{})
	w := dialWS(t, srv, defaultPath)
	w.expectEstablished()
	done := make(chan error, 1)
	go func() { done <- srv.terminate(5 * time.Second) }()
	w.expectErrorThenClose(4200)
	if err := <-done; err != nil {
		t.Errorf("exit after SIGTERM: %v", err)
	}
}
