package loop

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"math/big"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/revurb/revurb/pusher"
)

// testCert makes a self-signed certificate for 127.0.0.1, with an ECDSA
// P-256 key or, with rsaKey, an RSA 2048 one.
func testCert(t testing.TB, rsaKey bool) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "revurb test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: []string{"localhost"},
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, BasicConstraintsValid: true, IsCA: true,
	}
	var key, pub any
	if rsaKey {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			t.Fatal(err)
		}
		key, pub = k, &k.PublicKey
	} else {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		key, pub = k, &k.PublicKey
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, pub, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool
}

// dialWSS is dialWS over TLS with cfg.
func dialWSS(t *testing.T, addr string, cfg *tls.Config) *wsClient {
	t.Helper()
	tc, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return upgrade(t, tc)
}

// TestPlainBesideTLS: with PlainAddr, the same loops serve wss:// on Addr
// and plain ws:// on PlainAddr (pusher-js's wssPort and wsPort), and a
// broadcast reaches the clients of both; plain bytes on the TLS port are
// not taken for a WebSocket handshake.
func TestPlainBesideTLS(t *testing.T) {
	cert, pool := testCert(t, false)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	plainAddr := ln.Addr().String()
	ln.Close()
	app := pusher.DefaultApp("app-id", "app-key", "app-secret")
	srv, e := startEngine(t, app, Config{Loops: 2, TLS: &tls.Config{Certificates: []tls.Certificate{cert}}, PlainAddr: plainAddr})
	secure := dialWSS(t, e.cfg.Addr, &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"})
	plain := dialWS(t, plainAddr)
	for _, c := range []*wsClient{secure, plain} {
		c.event("pusher:connection_established", 5*time.Second)
		c.send(`{"event":"pusher:subscribe","data":{"channel":"news"}}`)
		c.event("pusher_internal:subscription_succeeded", 5*time.Second)
	}
	publish(t, srv, "news", "e", []byte("both"))
	for _, c := range []*wsClient{secure, plain} {
		if m := c.event("e", 5*time.Second); m["data"] != "both" {
			t.Fatalf("data %q, want both", m["data"])
		}
	}
	if done := e.tls.done.Load(); done != 1 {
		t.Fatalf("%d handshakes done, want 1 (the plain client's none)", done)
	}
	raw, err := net.DialTimeout("tcp", e.cfg.Addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	_, _ = io.WriteString(raw, "GET /app/app-key HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
	_ = raw.SetReadDeadline(time.Now().Add(5 * time.Second))
	if b, _ := io.ReadAll(raw); bytes.Contains(b, []byte("101 Switching")) {
		t.Fatalf("plain handshake upgraded on the TLS port: %q", b)
	}
	if _, err := New(srv, Config{Addr: "127.0.0.1:1", PlainAddr: "127.0.0.1:2"}); err == nil {
		t.Fatal("a plain address without TLS was accepted")
	}
}

// TestTLS: clients of every version and AEAD suite connect over wss://,
// subscribe, ping, and receive broadcasts — through the record layer the
// loop runs after crypto/tls's handshake — and each gets exactly what it
// should, in order.
func TestTLS(t *testing.T) {
	ecCert, ecPool := testCert(t, false)
	rsaCert, rsaPool := testCert(t, true)
	tests := []struct {
		name  string
		cert  tls.Certificate
		pool  *x509.CertPool
		max   uint16
		suite uint16
	}{
		{name: "TLS 1.3", cert: ecCert, pool: ecPool},
		{name: "TLS 1.3 RSA", cert: rsaCert, pool: rsaPool},
		{name: "TLS 1.2 ECDSA AES-128-GCM", cert: ecCert, pool: ecPool, max: tls.VersionTLS12, suite: tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256},
		{name: "TLS 1.2 ECDSA AES-256-GCM", cert: ecCert, pool: ecPool, max: tls.VersionTLS12, suite: tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384},
		{name: "TLS 1.2 ECDSA ChaCha20", cert: ecCert, pool: ecPool, max: tls.VersionTLS12, suite: tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256},
		{name: "TLS 1.2 RSA AES-128-GCM", cert: rsaCert, pool: rsaPool, max: tls.VersionTLS12, suite: tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256},
		{name: "TLS 1.2 RSA ChaCha20", cert: rsaCert, pool: rsaPool, max: tls.VersionTLS12, suite: tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			app := pusher.DefaultApp("app-id", "app-key", "app-secret")
			srv, e := startEngine(t, app, Config{Loops: 2, TLS: &tls.Config{Certificates: []tls.Certificate{tc.cert}}})
			cfg := &tls.Config{RootCAs: tc.pool, ServerName: "127.0.0.1", MaxVersion: tc.max}
			if tc.suite != 0 {
				cfg.CipherSuites = []uint16{tc.suite}
			}
			c := dialWSS(t, e.cfg.Addr, cfg)
			c.event("pusher:connection_established", 5*time.Second)
			if st := c.c.(*tls.Conn).ConnectionState(); st.NegotiatedProtocol != "" && st.NegotiatedProtocol != "http/1.1" ||
				tc.suite != 0 && st.CipherSuite != tc.suite {
				t.Fatalf("negotiated %q, suite %#x", st.NegotiatedProtocol, st.CipherSuite)
			}
			c.send(`{"event":"pusher:subscribe","data":{"channel":"news"}}`)
			c.event("pusher_internal:subscription_succeeded", 5*time.Second)
			for range 3 {
				c.send(`{"event":"pusher:ping","data":{}}`)
				c.event("pusher:pong", 5*time.Second)
			}
			big := make([]byte, 40<<10) // more than one record's plaintext
			for i := range big {
				big[i] = 'a' + byte(i%26)
			}
			for i := range 20 {
				data := []byte{byte('A' + i)}
				if i == 10 {
					data = big
				}
				publish(t, srv, "news", "e", data)
			}
			for i := range 20 {
				m := c.event("e", 5*time.Second)
				want := string(rune('A' + i))
				if i == 10 {
					want = string(big)
				}
				if m["data"] != want {
					t.Fatalf("event %d: data %.40q, want %.40q", i, m["data"], want)
				}
			}
			if done := e.tls.done.Load(); done != 1 {
				t.Fatalf("%d handshakes done, want 1", done)
			}
		})
	}
}

// clientHello is the first flight of a crypto/tls client, as it writes it.
func clientHello(t testing.TB) []byte {
	t.Helper()
	a, b := net.Pipe()
	defer a.Close()
	go func() { _ = tls.Client(b, &tls.Config{InsecureSkipVerify: true}).Handshake(); b.Close() }()
	buf := make([]byte, 16<<10)
	_ = a.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, err := a.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	return buf[:n]
}

// FuzzTLSHandshake sends arbitrary bytes, in two writes, where a
// ClientHello should be: whatever arrives, the server closes that
// connection or waits, and a well-behaved client completes its handshake
// and is served right after.
func FuzzTLSHandshake(f *testing.F) {
	hello := clientHello(f)
	f.Add(hello, len(hello)/2)
	f.Add(hello[:len(hello)-3], 5)
	f.Add(append(bytes.Clone(hello[:5]), bytes.Repeat([]byte{0}, 40)...), 1)
	f.Add([]byte("GET /app/app-key HTTP/1.1\r\n\r\n"), 3)
	f.Add([]byte{0x16, 3, 1, 0xff, 0xff}, 2)
	f.Add([]byte{0x80, 0x2e, 1, 3, 1}, 1)
	cert, pool := testCert(f, false)
	app := pusher.DefaultApp("app-id", "app-key", "app-secret")
	_, e := startEngine(f, app, Config{Loops: 2, HandshakeTimeout: time.Second, TLS: &tls.Config{Certificates: []tls.Certificate{cert}}})
	good := &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}
	f.Fuzz(func(t *testing.T, b []byte, cut int) {
		c, err := net.Dial("tcp", e.cfg.Addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		cut = max(0, min(cut, len(b)))
		_, _ = c.Write(b[:cut])
		_, _ = c.Write(b[cut:])
		_ = c.(*net.TCPConn).CloseWrite()
		_ = c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		_, _ = io.Copy(io.Discard, c)
		w := dialWSS(t, e.cfg.Addr, good)
		w.event("pusher:connection_established", 5*time.Second)
	})
}

// TestHandshakeWaitingRoom: with one handshake worker, held by a client
// that stalls after its ClientHello, every connection the engine may hold
// waits for the worker rather than being refused (100 clients, more than
// sixteen times MaxHandshakes), and all complete once the stall goes; a
// waiter that sends more than one ClientHello's worth of records is closed
// at once.
func TestHandshakeWaitingRoom(t *testing.T) {
	cert, pool := testCert(t, false)
	app := pusher.DefaultApp("app-id", "app-key", "app-secret")
	_, e := startEngine(t, app, Config{Loops: 2, MaxHandshakes: 1, MaxConns: 300, HandshakeTimeout: 20 * time.Second,
		TLS: &tls.Config{Certificates: []tls.Certificate{cert}}})
	hello := clientHello(t)
	stall, err := net.Dial("tcp", e.cfg.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer stall.Close()
	_, _ = stall.Write(hello)
	waitFor(t, "the stalled handshake to hold the worker", func() bool { return e.tls.running.Load() == 1 && len(e.tls.jobs) == 0 })

	flood, err := net.Dial("tcp", e.cfg.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer flood.Close()
	junk := append([]byte{22, 3, 3, 0x28, 0}, make([]byte, 10<<10)...) // a 10 KiB handshake record
	_, _ = flood.Write(append(append(bytes.Clone(hello), junk...), junk...))
	_ = flood.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.Copy(io.Discard, flood); err != nil && !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("a waiter past one ClientHello's bytes was not closed: %v", err)
	}

	const clients = 100
	errs := make(chan error, clients)
	cfg := &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}
	for range clients {
		go func() {
			c, err := tls.DialWithDialer(&net.Dialer{Timeout: 15 * time.Second}, "tcp", e.cfg.Addr, cfg)
			if err == nil {
				c.Close()
			}
			errs <- err
		}()
	}
	// The flood's closed waiter stays queued until the worker skips it.
	waitFor(t, "every client to wait for the worker", func() bool { return len(e.tls.jobs) == clients+1 })
	stall.Close()
	for range clients {
		if err := <-errs; err != nil {
			t.Fatalf("a waiting client's handshake: %v", err)
		}
	}
	if n := e.tls.refused.Load(); n != 0 {
		t.Fatalf("%d handshakes refused, want none", n)
	}
}

// waitFor polls cond for up to 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("timed out waiting for " + what)
		}
	}
}
