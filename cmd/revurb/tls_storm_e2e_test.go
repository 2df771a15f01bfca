package main

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// wssClient is a raw wss:// client that has its connection_established.
type wssClient struct {
	c  *tls.Conn
	br *bufio.Reader
}

// dialEstablished connects to srv over TLS, upgrades and reads
// connection_established, within timeout.
func dialEstablished(srv *server, cfg *tls.Config, timeout time.Duration) (*wssClient, error) {
	d := &net.Dialer{Timeout: timeout}
	c, err := tls.DialWithDialer(d, "tcp", srv.wsAddr(), cfg)
	if err != nil {
		return nil, err
	}
	_ = c.SetDeadline(time.Now().Add(timeout))
	if _, err := io.WriteString(c, handshake(srv.wsAddr(), defaultPath, newKey())); err != nil {
		c.Close()
		return nil, err
	}
	w := &wssClient{c: c, br: bufio.NewReader(c)}
	for {
		line, err := w.br.ReadString('\n')
		if err != nil {
			c.Close()
			return nil, err
		}
		if line == "\r\n" {
			break
		}
	}
	if m, err := w.message(); err != nil || m["event"] != "pusher:connection_established" {
		c.Close()
		return nil, errOr(err, "no connection_established")
	}
	_ = c.SetDeadline(time.Time{})
	return w, nil
}

func errOr(err error, msg string) error {
	if err != nil {
		return err
	}
	return errors.New(msg)
}

// message reads one unmasked text frame and decodes it.
func (w *wssClient) message() (map[string]any, error) {
	var h [2]byte
	if _, err := io.ReadFull(w.br, h[:]); err != nil {
		return nil, err
	}
	n := int(h[1] & 0x7f)
	if n == 126 {
		var b [2]byte
		if _, err := io.ReadFull(w.br, b[:]); err != nil {
			return nil, err
		}
		n = int(b[0])<<8 | int(b[1])
	}
	p := make([]byte, n)
	if _, err := io.ReadFull(w.br, p); err != nil {
		return nil, err
	}
	var m map[string]any
	return m, json.Unmarshal(p, &m)
}

// ping sends pusher:ping and wants the pong within timeout.
func (w *wssClient) ping(timeout time.Duration) error {
	_ = w.c.SetDeadline(time.Now().Add(timeout))
	defer func() { _ = w.c.SetDeadline(time.Time{}) }()
	if _, err := w.c.Write(appendFrame(nil, true, opText, []byte(`{"event":"pusher:ping","data":{}}`), true)); err != nil {
		return err
	}
	m, err := w.message()
	if err == nil && m["event"] != "pusher:pong" {
		err = errOr(nil, "not a pong")
	}
	return err
}

// TestWSSStorms: a storm of TLS handshakes (many clients connecting at
// once, each retrying as pusher-js does) all end established, and 1,000
// handshakes that stall are closed by the handshake timeout; throughout,
// a client connected before keeps its pings answered, and a new client
// connects once the stalls are gone.
func TestWSSStorms(t *testing.T) {
	t.Parallel()
	p := newTestPKI(t)
	b, _ := json.Marshal(map[string]any{"tls_cert": p.cert, "tls_key": p.key, "handshake_timeout": "2s",
		"apps": []any{appConfig(nil)}})
	path := filepath.Join(t.TempDir(), "revurb.json")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	srv := startServer(t, serverConfig{Args: []string{"--config", path}})
	pool := x509.NewCertPool()
	ca, _ := os.ReadFile(p.ca)
	pool.AppendCertsFromPEM(ca)
	cfg := &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}

	by, err := dialEstablished(srv, cfg, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer by.c.Close()
	stop := make(chan struct{})
	var pings, pingFailures atomic.Int64
	var pingErr atomic.Value
	pinged := make(chan struct{})
	go func() {
		defer close(pinged)
		for {
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
			if err := by.ping(10 * time.Second); err != nil {
				pingFailures.Add(1)
				pingErr.Store(err.Error())
				return
			}
			pings.Add(1)
		}
	}()

	// The storm: storm clients, 200 connecting at a time.
	storm := stormSize
	var established atomic.Int64
	var held []*wssClient
	var mu sync.Mutex
	work := make(chan int, storm)
	for i := range storm {
		work <- i
	}
	close(work)
	var wg sync.WaitGroup
	for range 200 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range work {
				for attempt := 0; attempt < 5; attempt++ {
					w, err := dialEstablished(srv, cfg, 30*time.Second)
					if err == nil {
						established.Add(1)
						mu.Lock()
						held = append(held, w)
						mu.Unlock()
						break
					}
					time.Sleep(time.Duration(attempt+1) * 200 * time.Millisecond)
				}
			}
		}()
	}
	wg.Wait()
	if n := established.Load(); n != int64(storm) {
		t.Errorf("%d of %d storm clients established", n, storm)
	}
	for _, w := range held {
		w.c.Close()
	}

	// 1,000 handshakes that send their ClientHello and stall.
	hello := tlsClientHello(t)
	var stalled []net.Conn
	for range 1000 {
		c, err := net.Dial("tcp", srv.wsAddr())
		if err != nil {
			t.Fatal(err)
		}
		stalled = append(stalled, c)
		_, _ = c.Write(hello)
	}
	closed := 0
	for _, c := range stalled {
		_ = c.SetReadDeadline(time.Now().Add(15 * time.Second))
		if _, err := io.Copy(io.Discard, c); err == nil || isReset(err) {
			closed++ // EOF (io.Copy's nil) or a reset: the server closed it
		}
		c.Close()
	}
	if closed != len(stalled) {
		t.Errorf("%d of %d stalled handshakes closed by the server", closed, len(stalled))
	}
	w, err := dialEstablished(srv, cfg, 10*time.Second)
	if err != nil {
		t.Fatalf("a client after the stalls: %v", err)
	}
	w.c.Close()
	close(stop)
	<-pinged
	if pingFailures.Load() > 0 {
		t.Fatalf("the bystander's ping failed: %v", pingErr.Load())
	}
	if pings.Load() == 0 {
		t.Fatal("the bystander pinged nothing")
	}
	t.Logf("%d storm clients established; bystander answered %d pings", established.Load(), pings.Load())
}

// tlsClientHello is a crypto/tls client's ClientHello, as it writes it.
func tlsClientHello(t *testing.T) []byte {
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

func isReset(err error) bool { return errors.Is(err, syscall.ECONNRESET) }

// stormSize is how many clients the handshake storm connects.
const stormSize = 5000

// TestWSSCertReload: with 1,000 clients connected over wss://, the
// certificate's files are replaced and revurb gets SIGHUP: a new client is
// shown the new certificate, every connected client is still answered,
// and a broken pair given next is refused with the new one kept.
func TestWSSCertReload(t *testing.T) {
	t.Parallel()
	p, ca, caKey := newTestPKIWithCA(t)
	srv := startServer(t, serverConfig{Args: []string{"--tls-cert", p.cert, "--tls-key", p.key}})
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	cfg := &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}
	subject := func() string {
		t.Helper()
		w, err := dialEstablished(srv, cfg, 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer w.c.Close()
		return w.c.ConnectionState().PeerCertificates[0].Subject.CommonName
	}
	if got := subject(); got != "revurb test" {
		t.Fatalf("certificate %q before the reload", got)
	}
	clients := make([]*wssClient, 1000)
	var wg sync.WaitGroup
	errs := make(chan error, len(clients))
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w, err := dialEstablished(srv, cfg, 30*time.Second)
			if err != nil {
				errs <- err
				return
			}
			clients[i] = w
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("a client before the reload: %v", err)
	}
	defer func() {
		for _, w := range clients {
			w.c.Close()
		}
	}()

	writeLeaf(t, p, ca, caKey, "revurb test, renewed")
	hup := func() {
		t.Helper()
		if err := srv.cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
	}
	hup()
	waitFor(t, "the reload logged", func() bool { return strings.Contains(srv.out.String(), "certificate reloaded") })
	if got := subject(); got != "revurb test, renewed" {
		t.Fatalf("certificate %q after the reload", got)
	}
	for i, w := range clients {
		if err := w.ping(10 * time.Second); err != nil {
			t.Fatalf("client %d, connected before the reload: %v", i, err)
		}
	}
	// A key that does not go with the certificate: refused, the renewed
	// certificate stays.
	other := newTestPKI(t)
	b, _ := os.ReadFile(other.key)
	if err := os.WriteFile(p.key, b, 0o600); err != nil {
		t.Fatal(err)
	}
	hup()
	waitFor(t, "the refusal logged", func() bool { return strings.Contains(srv.out.String(), "certificate not reloaded") })
	if got := subject(); got != "revurb test, renewed" {
		t.Fatalf("certificate %q after a broken pair", got)
	}
}
