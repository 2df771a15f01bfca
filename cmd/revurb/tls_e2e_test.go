package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// testPKI is a test CA and a certificate it signed for 127.0.0.1 and
// localhost, in PEM files.
type testPKI struct {
	ca, cert, key string
}

// newTestPKI writes a CA and a server certificate signed by it into a
// temporary directory.
func newTestPKI(t testing.TB) testPKI {
	t.Helper()
	p, _, _ := newTestPKIWithCA(t)
	return p
}

// newTestPKIWithCA is newTestPKI, returning the CA and its key too, to sign
// another certificate with.
func newTestPKIWithCA(t testing.TB) (testPKI, *x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	dir := t.TempDir()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "revurb test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(48 * time.Hour),
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign, BasicConstraintsValid: true, IsCA: true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	p := testPKI{ca: filepath.Join(dir, "ca.pem"), cert: filepath.Join(dir, "cert.pem"), key: filepath.Join(dir, "key.pem")}
	writePEM(t, p.ca, "CERTIFICATE", caDER)
	writeLeaf(t, p, ca, caKey, "revurb test")
	return p, ca, caKey
}

// writeLeaf writes a certificate for 127.0.0.1 and localhost, signed by
// ca, and its key, into p's files.
func writeLeaf(t testing.TB, p testPKI, ca *x509.Certificate, caKey *ecdsa.PrivateKey, cn string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{
		SerialNumber: serial, Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: []string{"localhost"},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	writePEM(t, p.cert, "CERTIFICATE", der)
	writePEM(t, p.key, "PRIVATE KEY", keyDER)
}

func writePEM(t testing.TB, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// tlsNodeEnv is s.nodeEnv for a server on wss:// and https:// whose
// certificate p's CA signed.
func tlsNodeEnv(s *server, p testPKI) map[string]string {
	env := s.nodeEnv()
	env["TLS"] = "1"
	env["NODE_EXTRA_CA_CERTS"] = p.ca
	return env
}

// TestWSS: with a certificate, the WebSocket port speaks wss:// and the API
// https://; pusher-js, Laravel Echo and the pusher SDK, verifying the test
// CA's certificate, see exactly what they see over plain ws:// and http://.
func TestWSS(t *testing.T) {
	t.Parallel()
	needNode(t)
	p := newTestPKI(t)
	plain := freePort(t)
	srv := startServer(t, serverConfig{Args: []string{"--tls-cert", p.cert, "--tls-key", p.key, "--plain-port", strconv.Itoa(plain)}})
	if want := fmt.Sprintf("WebSockets wss://%s:%d/app/{key} and ws://%s:%d/app/{key}", srv.host, srv.wsPort, srv.host, plain); !containsLine(srv.out.String(), want) {
		t.Fatalf("start line does not say %q:\n%s", want, srv.out.String())
	}
	t.Run("pusher-js", func(t *testing.T) { checkPublic(t, runNode(t, "public.mjs", tlsNodeEnv(srv, p))) })
	t.Run("echo", func(t *testing.T) { checkEcho(t, runNode(t, "echo.mjs", tlsNodeEnv(srv, p))) })
	// --plain-port: pusher-js as a page on http:// has it (wsPort beside
	// wssPort, not forced to TLS) connects over plain ws:// to the same
	// loops; the pusher SDK still triggers over https://.
	// The scenario's two clients make no TLS handshake there.
	t.Run("pusher-js on the plain port", func(t *testing.T) {
		srv.trust(t, p)
		before := handshakesDone(t, srv)
		env := tlsNodeEnv(srv, p)
		env["WS_PORT"], env["WSS_PORT"] = strconv.Itoa(plain), strconv.Itoa(srv.wsPort)
		checkPublic(t, runNode(t, "public.mjs", env))
		if after := handshakesDone(t, srv); after != before {
			t.Fatalf("%v TLS handshakes on the WebSocket port during the plain scenario, want none", after-before)
		}
	})
}

// containsLine reports whether some line of out contains s.
func containsLine(out, s string) bool {
	for _, line := range strings.Split(out, "\n") {
		if strings.Contains(line, s) {
			return true
		}
	}
	return false
}

// TestBrowserWSS is TestBrowser over wss://, with revurb's certificate and
// key named in its config file: Chromium's own TLS stack, trusting the
// test CA (in an NSS database of its own, as a user's browser trusts a
// real CA), connects the pages and runs the same scenario.
func TestBrowserWSS(t *testing.T) {
	t.Parallel()
	needNode(t)
	chromium := needChromium(t)
	certutil, err := exec.LookPath("certutil")
	if err != nil {
		t.Fatal("certutil not found: run `make test` (it installs Debian's libnss3-tools)")
	}
	p := newTestPKI(t)
	b, _ := json.Marshal(map[string]any{"tls_cert": p.cert, "tls_key": p.key,
		"apps": []any{appConfig(map[string]any{"allowed_origins": []string{"127.0.0.1"}})}})
	path := filepath.Join(t.TempDir(), "revurb.json")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	srv := startServer(t, serverConfig{Args: []string{"--config", path}})
	site := startSite(t, srv)
	sitePort := site.Listener.Addr().(*net.TCPAddr).Port
	allowed := "http://127.0.0.1:" + strconv.Itoa(sitePort)
	refused := "http://localhost:" + strconv.Itoa(sitePort)
	query := url.Values{"key": {srv.appKey}, "host": {"127.0.0.1"}, "port": {strconv.Itoa(srv.wsPort)}, "tls": {"1"}}.Encode()

	// Chromium on Linux trusts the CAs of the NSS database in its user's
	// home: this test's home.
	home := t.TempDir()
	nss := "sql:" + filepath.Join(home, ".pki", "nssdb")
	if err := os.MkdirAll(filepath.Join(home, ".pki", "nssdb"), 0o700); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"-d", nss, "-N", "--empty-password"},
		{"-d", nss, "-A", "-t", "C,,", "-n", "revurb test CA", "-i", p.ca},
	} {
		if out, err := exec.Command(certutil, args...).CombinedOutput(); err != nil {
			t.Fatalf("certutil %v: %v\n%s", args, err, out)
		}
	}
	env := tlsNodeEnv(srv, p)
	env["HOME"] = home
	env["PAGE_URL"] = allowed + "/?" + query
	env["PAGE_URL_REFUSED"] = refused + "/?" + query
	env["CHROMIUM"] = chromium
	env["TMPDIR"] = t.TempDir()
	env["TIMEOUT_MS"] = "20000"
	obs := runNode(t, "browser.mjs", env)
	wsURL := "wss://127.0.0.1:" + strconv.Itoa(srv.wsPort) + "/app/" + srv.appKey + "?protocol=7&client=js&version=8.6.0&flash=false"
	checkBrowser(t, obs, site, allowed, wsURL)
}

// startScheme starts revurb with no config, on plain ws:// or, for "wss",
// with a test CA's certificate; the tests' raw clients dial it so.
func startScheme(t *testing.T, scheme string) *server {
	t.Helper()
	if scheme != "wss" {
		return startServer(t, serverConfig{})
	}
	p := newTestPKI(t)
	srv := startServer(t, serverConfig{Args: []string{"--tls-cert", p.cert, "--tls-key", p.key}})
	srv.trust(t, p)
	return srv
}

// trust makes the tests' own clients of s (dialTCP, httpClient) trust p's
// CA.
func (s *server) trust(t *testing.T, p testPKI) {
	t.Helper()
	pool := x509.NewCertPool()
	b, err := os.ReadFile(p.ca)
	if err != nil || !pool.AppendCertsFromPEM(b) {
		t.Fatalf("test CA: %v", err)
	}
	s.clientTLS = &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}
}

// handshakesDone is revurb_tls_handshakes_total{result="done"} of s.
func handshakesDone(t *testing.T, s *server) float64 {
	t.Helper()
	for _, m := range scrapeWith(t, s.httpClient(), s.apiScheme()+"://"+s.apiAddr()+"/metrics")["revurb_tls_handshakes_total"].GetMetric() {
		if hasLabels(m, "result", "done") {
			return m.GetCounter().GetValue()
		}
	}
	t.Fatal("no revurb_tls_handshakes_total{result=\"done\"}")
	return 0
}

// apiScheme is how the tests reach s's API: https when s serves TLS.
func (s *server) apiScheme() string {
	if s.clientTLS != nil {
		return "https"
	}
	return "http"
}

// httpClient is the client the tests' API requests use: one trusting the
// test CA when s serves TLS.
func (s *server) httpClient() *http.Client {
	if s.clientTLS == nil {
		return http.DefaultClient
	}
	return &http.Client{Transport: &http.Transport{TLSClientConfig: s.clientTLS}, Timeout: 10 * time.Second}
}
