package main

// The README's nginx example, run: the test takes the fenced block between
// <!-- nginx-example:begin --> and <!-- nginx-example:end --> in README.md,
// rewrites only what a test must (see nginxTestRewrites), and starts
// Debian's nginx on it in a temporary prefix, in front of a real revurb.
// pusher-js and the pusher SDK (testdata/nginx.mjs) then reach revurb only
// through nginx, on one port, as Laravel's REVERB_HOST:REVERB_PORT does.

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// needNginx fails the test unless Debian's nginx is installed and returns
// its path; `make test` installs it.
func needNginx(t *testing.T) string {
	t.Helper()
	for _, p := range []string{"nginx", "/usr/sbin/nginx"} {
		if path, err := exec.LookPath(p); err == nil {
			return path
		}
	}
	t.Fatalf("nginx not found: run `make test` (it installs Debian's nginx)")
	return ""
}

// readmeExample returns the one fenced code block between
// <!-- NAME:begin --> and <!-- NAME:end --> in the repository's README.md.
func readmeExample(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	begin, end := "<!-- "+name+":begin -->", "<!-- "+name+":end -->"
	s := string(b)
	i, j := strings.Index(s, begin), strings.Index(s, end)
	if i < 0 || j < i || strings.Count(s, begin) != 1 || strings.Count(s, end) != 1 {
		t.Fatalf("README.md needs exactly one %s … %s pair", begin, end)
	}
	between := s[i+len(begin) : j]
	fence := regexp.MustCompile("(?s)^\\s*```[a-z]*\\n(.*?)```\\s*$")
	m := fence.FindStringSubmatch(between)
	if m == nil {
		t.Fatalf("README.md: between %s and %s there must be one fenced code block and nothing else", begin, end)
	}
	return m[1]
}

// lineRewrite replaces every line of a config matching re with repl
// (regexp.ReplaceAllString syntax; "" deletes the line), and must match
// exactly want lines.
type lineRewrite struct {
	what string
	re   *regexp.Regexp
	repl string
	want int
}

// rewriteLines applies rewrites to conf line by line; a rewrite that does
// not match its count of lines fails the test, so an edited README cannot
// silently leave a line (a public listen, a TLS file) the test did not mean
// to keep.
func rewriteLines(t *testing.T, conf string, rewrites []lineRewrite) string {
	t.Helper()
	lines := strings.Split(conf, "\n")
	var out []string
	count := make([]int, len(rewrites))
	for _, line := range lines {
		keep := true
		for i, rw := range rewrites {
			if !rw.re.MatchString(line) {
				continue
			}
			count[i]++
			line = rw.re.ReplaceAllString(line, rw.repl)
			if rw.repl == "" {
				keep = false
			}
			break
		}
		if keep {
			out = append(out, line)
		}
	}
	for i, rw := range rewrites {
		if count[i] != rw.want {
			t.Fatalf("README nginx example: %s matched %d lines, want %d (pattern %s)", rw.what, count[i], rw.want, rw.re)
		}
	}
	return strings.Join(out, "\n")
}

// nginxTestRewrites are the only changes the test makes to the README's
// nginx block, for the plain-HTTP run:
//   - `listen 443 ssl;` becomes `listen 127.0.0.1:PORT;` (a free loopback
//     port, no TLS);
//   - `listen [::]:443 ssl;` is dropped (only loopback takes test traffic);
//   - the `ssl_certificate` and `ssl_certificate_key` lines are dropped;
//   - the upstreams' `server 127.0.0.1:8080;` and `server 127.0.0.1:8081;`
//     point at the revurb under test.
//
// Everything else (locations, headers, timeouts, keepalive) runs as written.
func nginxTestRewrites(port int, srv *server) []lineRewrite {
	return []lineRewrite{
		{what: "the TLS listen", re: regexp.MustCompile(`^(\s*)listen 443 ssl;\s*$`), repl: "${1}listen 127.0.0.1:" + strconv.Itoa(port) + ";", want: 1},
		{what: "the IPv6 TLS listen", re: regexp.MustCompile(`^\s*listen \[::\]:443 ssl;\s*$`), want: 1},
		{what: "ssl_certificate", re: regexp.MustCompile(`^\s*ssl_certificate\s+\S+;\s*$`), want: 1},
		{what: "ssl_certificate_key", re: regexp.MustCompile(`^\s*ssl_certificate_key\s+\S+;\s*$`), want: 1},
		{what: "the WebSocket upstream", re: regexp.MustCompile(`^(\s*)server 127\.0\.0\.1:8080;\s*$`), repl: "${1}server 127.0.0.1:" + strconv.Itoa(srv.wsPort) + ";", want: 1},
		{what: "the API upstream", re: regexp.MustCompile(`^(\s*)server 127\.0\.0\.1:8081;\s*$`), repl: "${1}server 127.0.0.1:" + strconv.Itoa(srv.apiPort) + ";", want: 1},
	}
}

// nginxTLSCheckRewrites keep TLS for `nginx -t`: the listen moves to a
// loopback port, the IPv6 listen goes, and the certificate lines name a
// self-signed pair made for the test.
func nginxTLSCheckRewrites(port int, cert, key string) []lineRewrite {
	return []lineRewrite{
		{what: "the TLS listen", re: regexp.MustCompile(`^(\s*)listen 443 ssl;\s*$`), repl: "${1}listen 127.0.0.1:" + strconv.Itoa(port) + " ssl;", want: 1},
		{what: "the IPv6 TLS listen", re: regexp.MustCompile(`^\s*listen \[::\]:443 ssl;\s*$`), want: 1},
		{what: "ssl_certificate", re: regexp.MustCompile(`^(\s*)ssl_certificate(\s+)\S+;\s*$`), repl: "${1}ssl_certificate${2}" + cert + ";", want: 1},
		{what: "ssl_certificate_key", re: regexp.MustCompile(`^(\s*)ssl_certificate_key(\s+)\S+;\s*$`), repl: "${1}ssl_certificate_key${2}" + key + ";", want: 1},
	}
}

var listenLine = regexp.MustCompile(`(?m)^\s*listen\s+(.*);`)

// onlyLoopbackListens fails unless every listen of conf is 127.0.0.1:PORT.
func onlyLoopbackListens(t *testing.T, conf string) {
	t.Helper()
	for _, m := range listenLine.FindAllStringSubmatch(conf, -1) {
		if !regexp.MustCompile(`^127\.0\.0\.1:\d+( ssl)?$`).MatchString(m[1]) {
			t.Fatalf("rewritten nginx config still listens on %q; the test listens on loopback only", m[1])
		}
	}
}

// nginxProcess is one nginx run in its own prefix directory.
type nginxProcess struct {
	dir    string
	port   int
	cmd    *exec.Cmd
	out    *syncBuffer
	exited chan struct{}
	err    error
}

// nginxConf wraps http-context directives (the README block) in a complete
// nginx.conf whose logs, pid and temporary files are all under dir.
// master_process off: one process, which dies with the test binary
// (childProcAttr) even when cleanups cannot run; workers would outlive it.
func nginxConf(dir, httpBlock string) string {
	return fmt.Sprintf(`master_process off;
error_log %[1]s/error.log info;

events {
    worker_connections 512;
}

http {
    access_log %[1]s/access.log;
    client_body_temp_path %[1]s/client_body_temp;
    proxy_temp_path %[1]s/proxy_temp;
    fastcgi_temp_path %[1]s/fastcgi_temp;
    uwsgi_temp_path %[1]s/uwsgi_temp;
    scgi_temp_path %[1]s/scgi_temp;

%[2]s
}
`, dir, httpBlock)
}

// nginxDir makes the prefix directory, readable by nginx's worker user
// should nginx run as root and switch users.
func nginxDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "revurb-nginx-")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// startNginx runs nginx on the README block, rewritten for a free loopback
// port, and returns once GET /up through it answers. nginx is stopped when
// the test ends, and its logs are shown if the test failed.
func startNginx(t *testing.T, bin string, block string, srv *server) *nginxProcess {
	t.Helper()
	const attempts = 3 // the free port is released before nginx binds it
	for i := 0; ; i++ {
		dir := nginxDir(t)
		port := freePort(t)
		httpBlock := rewriteLines(t, block, nginxTestRewrites(port, srv))
		onlyLoopbackListens(t, httpBlock)
		conf := filepath.Join(dir, "nginx.conf")
		if err := os.WriteFile(conf, []byte(nginxConf(dir, httpBlock)), 0o644); err != nil {
			t.Fatal(err)
		}
		n := &nginxProcess{dir: dir, port: port, out: &syncBuffer{}, exited: make(chan struct{})}
		n.cmd = exec.Command(bin, "-p", dir+"/", "-e", dir+"/error.log", "-c", conf, "-g", "daemon off; pid "+dir+"/nginx.pid;")
		n.cmd.Stdout = n.out
		n.cmd.Stderr = n.out
		n.cmd.SysProcAttr = childProcAttr()
		n.cmd.WaitDelay = 2 * time.Second
		if err := n.cmd.Start(); err != nil {
			t.Fatalf("start nginx: %v", err)
		}
		go func() {
			n.err = n.cmd.Wait()
			close(n.exited)
		}()
		err := n.waitReady(10 * time.Second)
		if err == nil {
			t.Cleanup(func() { n.stop(t) })
			return n
		}
		n.stop(t)
		if i == attempts-1 || !strings.Contains(n.logs(), "in use") {
			t.Fatalf("nginx did not start: %v\n%s", err, n.logs())
		}
	}
}

func (n *nginxProcess) url(path string) string {
	return "http://127.0.0.1:" + strconv.Itoa(n.port) + path
}

// waitReady waits until GET /up through nginx gets revurb's 200.
func (n *nginxProcess) waitReady(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	client := &http.Client{Timeout: time.Second}
	for {
		select {
		case <-n.exited:
			return fmt.Errorf("nginx exited: %v", n.err)
		default:
		}
		res, err := client.Get(n.url("/up"))
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("GET /up through nginx not 200 after %v (last: %v)", timeout, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stop ends nginx (SIGTERM: fast shutdown; SIGKILL after 5 s) and logs
// what it wrote if the test failed. Calling it again does nothing.
func (n *nginxProcess) stop(t *testing.T) {
	t.Helper()
	select {
	case <-n.exited:
	default:
		_ = n.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-n.exited:
		case <-time.After(5 * time.Second):
			t.Errorf("nginx still running 5 s after SIGTERM; killing it")
			_ = n.cmd.Process.Kill()
			<-n.exited
		}
	}
	if t.Failed() {
		t.Logf("nginx in %s:\n%s", n.dir, n.logs())
	}
}

// accessLogOnce returns nginx's access log once done(log) holds, or as it
// is after timeout.
func (n *nginxProcess) accessLogOnce(t *testing.T, done func([]byte) bool, timeout time.Duration) []byte {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		b, err := os.ReadFile(filepath.Join(n.dir, "access.log"))
		if err != nil {
			t.Fatal(err)
		}
		if done(b) || time.Now().After(deadline) {
			return b
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// logs is nginx's output, error log and access log.
func (n *nginxProcess) logs() string {
	var b strings.Builder
	b.WriteString("output:\n" + n.out.String())
	for _, f := range []string{"nginx.conf", "error.log", "access.log"} {
		data, err := os.ReadFile(filepath.Join(n.dir, f))
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			data = []byte(err.Error())
		}
		b.WriteString("\n" + f + ":\n" + string(data))
	}
	return b.String()
}

// selfSignedCert writes a P-256 certificate for name and its key as PEM
// files in dir.
func selfSignedCert(t *testing.T, dir, name string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: name},
		DNSNames:     []string{name},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

// locationBlock returns the body of `location PATH { ... }` in conf (the
// README's locations hold no nested blocks).
func locationBlock(t *testing.T, conf, path string) string {
	t.Helper()
	m := regexp.MustCompile(`(?s)location\s+` + regexp.QuoteMeta(path) + `\s*\{([^{}]*)\}`).FindStringSubmatch(conf)
	if m == nil {
		t.Fatalf("README nginx example has no `location %s { ... }`", path)
	}
	return m[1]
}

// TestREADMENginxExample: the README's nginx block, in front of revurb,
// carries pusher-js's WebSocket (subscriptions, a triggered event, a
// whisper between two clients), the SDK's signed triggers and queries, and
// GET /up, all on nginx's one port. Its TLS lines pass `nginx -t` with a
// real certificate, and its WebSocket read timeout outlasts an idle
// client's ping round.
func TestREADMENginxExample(t *testing.T) {
	t.Parallel()
	needNode(t)
	bin := needNginx(t)
	block := readmeExample(t, "nginx-example")

	// What running it cannot show in a test's time: an idle connection
	// sees traffic only every activity_timeout (120 s) plus up to
	// pong_timeout (30 s), and nginx closes a proxied connection that
	// reads nothing for proxy_read_timeout (60 s by default).
	ws := locationBlock(t, block, "/app/")
	m := regexp.MustCompile(`proxy_read_timeout\s+(\d+)(s|m)?;`).FindStringSubmatch(ws)
	if m == nil {
		t.Errorf("location /app/ sets no proxy_read_timeout; nginx's 60 s default cuts idle WebSockets")
	} else {
		secs, _ := strconv.Atoi(m[1])
		if m[2] == "m" {
			secs *= 60
		}
		if secs <= 150 {
			t.Errorf("location /app/ proxy_read_timeout = %ds, want more than activity_timeout + pong_timeout (150 s)", secs)
		}
	}

	t.Run("tls-syntax", func(t *testing.T) {
		dir := nginxDir(t)
		cert, key := selfSignedCert(t, dir, "ws.example.com")
		httpBlock := rewriteLines(t, block, nginxTLSCheckRewrites(freePort(t), cert, key))
		onlyLoopbackListens(t, httpBlock)
		conf := filepath.Join(dir, "nginx.conf")
		if err := os.WriteFile(conf, []byte(nginxConf(dir, httpBlock)), 0o644); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(bin, "-t", "-q", "-p", dir+"/", "-e", dir+"/error.log", "-c", conf, "-g", "pid "+dir+"/nginx.pid;").CombinedOutput()
		if err != nil {
			t.Errorf("nginx -t on the README block with TLS: %v\n%s", err, out)
		}
	})

	// The console's page and its stream of Server-Sent Events, which
	// nginx must pass on as they come (X-Accel-Buffering: no), and the
	// pusher-js client and the SDK it watches, all through nginx.
	t.Run("console", func(t *testing.T) {
		srv := startServer(t, serverConfig{Args: []string{"--console"}})
		ngx := startNginx(t, bin, block, srv)
		env := consoleEnv(t, srv, strings.TrimSuffix(ngx.url("/"), "/"), filepath.Join(t.TempDir(), "console.png"))
		env["WS_PORT"] = strconv.Itoa(ngx.port)
		env["API_PORT"] = strconv.Itoa(ngx.port)
		checkConsole(t, runNode(t, "console.mjs", env))
		stream := regexp.MustCompile(`"GET /console/apps/` + regexp.QuoteMeta(srv.appID) + `/stream\?[^"]*" 200 `)
		access := ngx.accessLogOnce(t, func(b []byte) bool { return stream.Match(b) }, 5*time.Second)
		if !stream.Match(access) {
			t.Errorf("nginx access log has no console stream:\n%s", access)
		}
	})

	t.Run("proxy", func(t *testing.T) {
		srv := startServer(t, serverConfig{})
		ngx := startNginx(t, bin, block, srv)

		wantHealthy(t, "GET /up through nginx", ngx.url("/up"))

		env := srv.nodeEnv()
		env["WS_PORT"] = strconv.Itoa(ngx.port)
		env["API_PORT"] = strconv.Itoa(ngx.port)
		obs := runNode(t, "nginx.mjs", env)

		for _, c := range []string{"c1", "c2"} {
			wantJSON(t, c+" states", at(t, obs, c, "states"), `["connecting","connected"]`)
			wantJSON(t, c+" errors", at(t, obs, c, "errors"), `[]`)
			wantSocketID(t, "socket_"+c, at(t, obs, "socket_"+c))
		}
		wantJSON(t, "trigger through nginx", at(t, obs, "trigger"), `{"status":200,"body":"{}","json":{}}`)
		wantJSON(t, "whisper sent", at(t, obs, "whisper"), `true`)
		wantJSON(t, "c1 events on via-nginx", eventsOn(t, at(t, obs, "c1"), "via-nginx"), `[
			{"channel":"via-nginx","event":"pusher:subscription_succeeded","data":{}},
			{"channel":"via-nginx","event":"proxied-event","data":{"n":1}}]`)
		wantJSON(t, "c1 events on private-via-nginx", eventsOn(t, at(t, obs, "c1"), "private-via-nginx"), `[
			{"channel":"private-via-nginx","event":"pusher:subscription_succeeded","data":{}},
			{"channel":"private-via-nginx","event":"proxied-event","data":{"n":1}},
			{"channel":"private-via-nginx","event":"client-hello","data":{"from":"c2"}}]`)
		wantJSON(t, "c2 events (no echo of its whisper)", at(t, obs, "c2", "events"), `[
			{"channel":"private-via-nginx","event":"pusher:subscription_succeeded","data":{}},
			{"channel":"private-via-nginx","event":"proxied-event","data":{"n":1}}]`)
		wantJSON(t, "GET /channels status through nginx", at(t, obs, "channels", "status"), `200`)
		wantJSON(t, "GET /channels through nginx", at(t, obs, "channels", "json"), `{"channels":{"via-nginx":{},"private-via-nginx":{}}}`)

		// The traffic did cross nginx: its access log has the upgrades
		// (logged as each WebSocket closes, which may be a moment after
		// the clients left) and the API calls.
		upgrades := regexp.MustCompile(`"GET /app/[^"]*" 101 `)
		access := ngx.accessLogOnce(t, func(b []byte) bool { return len(upgrades.FindAll(b, -1)) >= 2 }, 5*time.Second)
		for _, want := range []*regexp.Regexp{
			regexp.MustCompile(`"GET /app/` + regexp.QuoteMeta(srv.appKey) + `\?[^"]*" 101 `),
			regexp.MustCompile(`"POST /apps/` + regexp.QuoteMeta(srv.appID) + `/events\?[^"]*" 200 `),
			regexp.MustCompile(`"GET /apps/` + regexp.QuoteMeta(srv.appID) + `/channels\?[^"]*" 200 `),
			regexp.MustCompile(`"GET /up HTTP/1\.1" 200 `),
		} {
			if n := len(want.FindAll(access, -1)); n == 0 {
				t.Errorf("nginx access log has no line matching %s", want)
			}
		}
		if n := len(upgrades.FindAll(access, -1)); n != 2 {
			t.Errorf("nginx access log: %d WebSocket upgrades, want 2 (one per client)", n)
		}
	})
}
