package main

// The browser test: pusher-js's browser build in headless Chromium, as a
// Laravel app's visitors run it. The test serves the page (testdata/browser/)
// and the app's channel authorization endpoint on loopback; a relay between
// the browser and revurb keeps the handshakes the browser really sent
// (with its Origin and its permessage-deflate offer) and revurb's answers.
// testdata/browser.mjs drives Chromium with playwright-core and prints what
// the pages saw; the assertions are here.

import (
	"bufio"
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// needChromium fails the test unless Debian's chromium is installed and
// returns its path; `make test` installs it.
func needChromium(t *testing.T) string {
	t.Helper()
	for _, p := range []string{"/usr/bin/chromium", "chromium"} {
		if path, err := exec.LookPath(p); err == nil {
			return path
		}
	}
	t.Fatalf("chromium not found: run `make test` (it installs Debian's chromium)")
	return ""
}

// handshakeTap is a TCP relay in front of revurb's WebSocket port that
// keeps, for every connection, the first HTTP message each way: the upgrade
// request as the client sent it and the response as revurb sent it. Bytes
// pass through unchanged.
type handshakeTap struct {
	ln      net.Listener
	backend string

	mu    sync.Mutex
	conns []*tappedConn
}

// tappedConn is one relayed connection's handshake; each side is filled
// once its header block has passed (or the connection ended).
type tappedConn struct {
	request, response bytes.Buffer
	done              sync.WaitGroup
}

func startTap(t *testing.T, backend string) *handshakeTap {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tap := &handshakeTap{ln: ln, backend: backend}
	var open sync.WaitGroup
	var live sync.Map // net.Conn → struct{}: closed at cleanup
	open.Add(1)
	go func() {
		defer open.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			open.Add(1)
			go func() {
				defer open.Done()
				tap.relay(c, &live)
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		live.Range(func(k, _ any) bool { k.(net.Conn).Close(); return true })
		open.Wait()
	})
	return tap
}

func (tap *handshakeTap) port() int { return tap.ln.Addr().(*net.TCPAddr).Port }

func (tap *handshakeTap) relay(client net.Conn, live *sync.Map) {
	live.Store(client, struct{}{})
	defer client.Close()
	server, err := net.DialTimeout("tcp", tap.backend, 2*time.Second)
	if err != nil {
		return
	}
	live.Store(server, struct{}{})
	defer server.Close()
	tc := &tappedConn{}
	tc.done.Add(2)
	tap.mu.Lock()
	tap.conns = append(tap.conns, tc)
	tap.mu.Unlock()
	var both sync.WaitGroup
	both.Add(2)
	pipe := func(dst, src net.Conn, head *bytes.Buffer) {
		defer both.Done()
		copyKeepingHead(dst, src, head, tc.done.Done)
		// One side ended: end the other, as a proxy does.
		dst.Close()
		src.Close()
	}
	go pipe(server, client, &tc.request)
	go pipe(client, server, &tc.response)
	both.Wait()
}

// copyKeepingHead copies src to dst, writing the bytes up to and including
// the first blank line (the HTTP header block, at most 16 KiB) into head too;
// headDone is called once head is complete or src ended.
func copyKeepingHead(dst io.Writer, src io.Reader, head *bytes.Buffer, headDone func()) {
	var once sync.Once
	defer once.Do(headDone)
	buf := make([]byte, 32<<10)
	inHead := true
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if inHead {
				head.Write(buf[:n])
				if i := bytes.Index(head.Bytes(), []byte("\r\n\r\n")); i >= 0 || head.Len() > 16<<10 {
					if i >= 0 {
						head.Truncate(i + 4)
					}
					inHead = false
					once.Do(headDone)
				}
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// tappedHandshake is one relayed upgrade, parsed.
type tappedHandshake struct {
	req *http.Request
	res *http.Response
}

// handshakes returns every relayed connection's upgrade request and
// response, in the order the connections arrived.
func (tap *handshakeTap) handshakes(t *testing.T) []tappedHandshake {
	t.Helper()
	tap.mu.Lock()
	conns := append([]*tappedConn(nil), tap.conns...)
	tap.mu.Unlock()
	var out []tappedHandshake
	for i, tc := range conns {
		tc.done.Wait()
		req, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(tc.request.Bytes())))
		if err != nil {
			t.Fatalf("connection %d: upgrade request %q: %v", i, tc.request.String(), err)
		}
		res, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(tc.response.Bytes())), req)
		if err != nil {
			t.Fatalf("connection %d: upgrade response %q: %v", i, tc.response.String(), err)
		}
		out = append(out, tappedHandshake{req: req, res: res})
	}
	return out
}

// authRequest is one call to the test app's /auth endpoint.
type authRequest struct {
	SocketID, Channel, Origin string
}

// testSite is the web app the pages come from: the page, pusher-js's browser
// build, and the channel authorization endpoint Laravel's
// Broadcast::routes() would serve, signing socket_id:channel with the app
// secret (HMAC-SHA256, hex; PROTOCOL.md, Channels).
type testSite struct {
	*httptest.Server
	mu   sync.Mutex
	auth []authRequest
}

func startSite(t *testing.T, srv *server) *testSite {
	t.Helper()
	site := &testSite{}
	files := map[string]string{
		"/{$}":       filepath.Join("testdata", "browser", "index.html"),
		"/page.js":   filepath.Join("testdata", "browser", "page.js"),
		"/pusher.js": filepath.Join("testdata", "node_modules", "pusher-js", "dist", "web", "pusher.js"),
	}
	for _, f := range files {
		if _, err := os.Stat(f); err != nil {
			t.Fatalf("%v: %s", err, nodeModulesHint)
		}
	}
	mux := http.NewServeMux()
	for route, file := range files {
		mux.HandleFunc("GET "+route, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Cache-Control", "no-store")
			http.ServeFile(w, r, file)
		})
	}
	mux.HandleFunc("POST /auth", func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		socketID, channel := r.PostForm.Get("socket_id"), r.PostForm.Get("channel_name")
		site.mu.Lock()
		site.auth = append(site.auth, authRequest{SocketID: socketID, Channel: channel, Origin: r.Header.Get("Origin")})
		site.mu.Unlock()
		mac := hmac.New(sha256.New, []byte(srv.secret))
		mac.Write([]byte(socketID + ":" + channel))
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]string{"auth": srv.appKey + ":" + hex.EncodeToString(mac.Sum(nil))})
	})
	site.Server = httptest.NewServer(mux)
	t.Cleanup(site.Close)
	return site
}

func (site *testSite) authRequests() []authRequest {
	site.mu.Lock()
	defer site.mu.Unlock()
	return append([]authRequest(nil), site.auth...)
}

// TestBrowser: two Chromium pages (pusher-js's browser build) connect with
// the browser's own handshake, whose permessage-deflate offer revurb
// declines; they subscribe to a public and a private channel (authorized by
// the app's endpoint), receive an event the pusher SDK triggers through the
// HTTP API, and one page's whisper reaches the other. A page from an origin
// the app does not allow is refused with 4009.
func TestBrowser(t *testing.T) {
	t.Parallel()
	needNode(t)
	chromium := needChromium(t)
	// The pages come from 127.0.0.1; the refused one from localhost (the
	// same server, another origin).
	srv := startWithApps(t, appConfig(map[string]any{"allowed_origins": []string{"127.0.0.1"}}))
	tap := startTap(t, srv.wsAddr())
	site := startSite(t, srv)
	sitePort := site.Listener.Addr().(*net.TCPAddr).Port
	allowed := "http://127.0.0.1:" + strconv.Itoa(sitePort)
	refused := "http://localhost:" + strconv.Itoa(sitePort)
	query := url.Values{"key": {srv.appKey}, "host": {"127.0.0.1"}, "port": {strconv.Itoa(tap.port())}}.Encode()

	env := srv.nodeEnv()
	env["PAGE_URL"] = allowed + "/?" + query
	env["PAGE_URL_REFUSED"] = refused + "/?" + query
	env["CHROMIUM"] = chromium
	env["TMPDIR"] = t.TempDir() // Chromium's fresh profile, removed with the test
	env["TIMEOUT_MS"] = "20000"
	obs := runNode(t, "browser.mjs", env)

	wsURL := "ws://127.0.0.1:" + strconv.Itoa(tap.port()) + "/app/" + srv.appKey + "?protocol=7&client=js&version=8.6.0&flash=false"
	checkBrowser(t, obs, site, allowed, wsURL)

	// The handshakes as they crossed the wire: three connections, each with
	// the page's Origin and Chromium's permessage-deflate offer; revurb
	// upgraded each and echoed no extension (RFC 7692 §5: a server that
	// declines an offer leaves Sec-WebSocket-Extensions out).
	origins := map[string]int{}
	for i, h := range tap.handshakes(t) {
		origins[h.req.Header.Get("Origin")]++
		if got := h.req.Header.Get("Sec-WebSocket-Extensions"); !strings.Contains(got, "permessage-deflate") {
			t.Errorf("connection %d: browser's Sec-WebSocket-Extensions = %q, want a permessage-deflate offer", i, got)
		}
		if h.res.StatusCode != http.StatusSwitchingProtocols {
			t.Errorf("connection %d: upgrade status = %d, want 101", i, h.res.StatusCode)
		}
		if got, ok := h.res.Header["Sec-Websocket-Extensions"]; ok {
			t.Errorf("connection %d: revurb answered Sec-WebSocket-Extensions %q, want none", i, got)
		}
	}
	if want := map[string]int{allowed: 2, refused: 1}; !maps.Equal(origins, want) {
		t.Errorf("handshake origins = %v, want %v", origins, want)
	}
}

// checkBrowser judges what browser.mjs observed of pages whose pusher-js
// connected to wsURL, served by site from the origin allowed.
func checkBrowser(t *testing.T, obs map[string]any, site *testSite, allowed, wsURL string) {
	t.Helper()
	wantJSON(t, "uncaught page errors", at(t, obs, "page_errors"), `[]`)
	wantJSON(t, "trigger reply", at(t, obs, "trigger"), `{"status":200,"body":"{}","json":{}}`)
	wantJSON(t, "whisper sent", at(t, obs, "whisper"), `true`)

	for _, name := range []string{"a", "b"} {
		p := at(t, obs, name)
		wantJSON(t, name+" states", at(t, p, "states"), `["initialized","connecting","connected"]`)
		wantJSON(t, name+" errors", at(t, p, "errors"), `[]`)
		wantSocketID(t, name+" socket_id", at(t, p, "socket_id"))
		// What the browser's WebSocket negotiated: no subprotocol, and no
		// extension, though Chromium offered permessage-deflate.
		wantJSON(t, name+" WebSocket", at(t, p, "ws"), `{"url":"`+wsURL+`","protocol":"","extensions":""}`)
	}
	if a, b := at(t, obs, "a", "socket_id"), at(t, obs, "b", "socket_id"); a == b {
		t.Errorf("pages a and b share socket_id %v", a)
	}
	// Per channel, in arrival order: the two channels' events may
	// interleave either way.
	for _, name := range []string{"a", "b"} {
		wantJSON(t, name+" events on browser-public", eventsOn(t, at(t, obs, name), "browser-public"), `[
			{"channel":"browser-public","event":"pusher:subscription_succeeded","data":{}},
			{"channel":"browser-public","event":"server-event","data":{"message":"from the API"}}]`)
	}
	wantJSON(t, "a events on private-browser (no echo of its whisper)", eventsOn(t, at(t, obs, "a"), "private-browser"), `[
		{"channel":"private-browser","event":"pusher:subscription_succeeded","data":{}},
		{"channel":"private-browser","event":"server-event","data":{"message":"from the API"}}]`)
	wantJSON(t, "b events on private-browser", eventsOn(t, at(t, obs, "b"), "private-browser"), `[
		{"channel":"private-browser","event":"pusher:subscription_succeeded","data":{}},
		{"channel":"private-browser","event":"server-event","data":{"message":"from the API"}},
		{"channel":"private-browser","event":"client-typing","data":{"typing":true,"from":"a"}}]`)

	wantJSON(t, "refused page states", at(t, obs, "r", "states"), `["initialized","connecting","disconnected"]`)
	wantJSON(t, "refused page errors", at(t, obs, "r", "errors"), `[{"code":4009,"type":"WebSocketError"}]`)
	wantJSON(t, "refused page events", at(t, obs, "r", "events"), `[]`)

	// The app's endpoint signed each page's private subscription, called
	// from the page's origin.
	gotAuth := map[authRequest]int{}
	for _, r := range site.authRequests() {
		gotAuth[r]++
	}
	wantAuth := map[authRequest]int{}
	for _, name := range []string{"a", "b"} {
		id, _ := at(t, obs, name, "socket_id").(string)
		wantAuth[authRequest{SocketID: id, Channel: "private-browser", Origin: allowed}]++
	}
	if !maps.Equal(gotAuth, wantAuth) {
		t.Errorf("auth requests = %v, want %v", gotAuth, wantAuth)
	}

}
