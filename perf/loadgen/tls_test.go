package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// testCA is a certificate authority made for one test, and a server
// certificate it signed for 127.0.0.1 and localhost.
type testCA struct {
	pemFile string // the CA certificate, PEM, for -ca
	server  *tls.Config
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "loadgen test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	leafTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: []string{"localhost"},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leafTmpl, caCert, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(file, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o644); err != nil {
		t.Fatal(err)
	}
	return &testCA{pemFile: file, server: &tls.Config{
		Certificates: []tls.Certificate{{Certificate: [][]byte{leafDER}, PrivateKey: key}},
		NextProtos:   []string{"http/1.1"},
	}}
}

// TestFanoutTLS runs fanout over wss:// and https:// against real TLS
// listeners: every socket's handshake verified against the test CA and
// counted by what it settled on, every event delivered through the
// records, triggers answered over https.
func TestFanoutTLS(t *testing.T) {
	ca := newTestCA(t)
	srv := startFakeNodes(t, fakeHooks{}, 1, ca.server)
	for _, tc := range []struct {
		name, groups, want string
	}{
		{name: "default groups", want: "TLS 1.3 TLS_AES_128_GCM_SHA256 X25519MLKEM768"},
		{name: "X25519", groups: "X25519", want: "TLS 1.3 TLS_AES_128_GCM_SHA256 X25519"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := []string{"-ws", srv.wsAddr, "-api", srv.apiAddr, "-tls", "-ca", ca.pemFile,
				"-conns", "12", "-channels", "3", "-closed", "-events", "40", "-quiet", "-duration", "20s", "-drain", "1s"}
			if tc.groups != "" {
				args = append(args, "-tls-groups", tc.groups)
			}
			fanoutTLS(t, args, tc.want)
		})
	}
}

// fanoutTLS runs fanout with args (12 sockets, 40 events) and checks every
// delivery and that each handshake settled on want.
func fanoutTLS(t *testing.T, args []string, want string) {
	t.Helper()
	cfg, err := parseFlags(args)
	if err != nil {
		t.Fatal(err)
	}
	rep := coordinate(cfg)
	if rep.Subscribed != 12 || rep.Delivered != 160 || rep.Lost != 0 || rep.PublishStatus["200"] != 40 {
		t.Errorf("subscribed %d, delivered %d, lost %d, triggers %v; want 12, 160, 0, 200 × 40",
			rep.Subscribed, rep.Delivered, rep.Lost, rep.PublishStatus)
	}
	if len(rep.TLS) != 1 || rep.TLS[want] != 12 {
		t.Errorf("TLS sessions %v, want 12 × %s", rep.TLS, want)
	}
}

// TestTLSVerifies: a server whose certificate the -ca does not sign gets
// no socket, and the report says why; a plain server spoken to with -tls
// neither.
func TestTLSVerifies(t *testing.T) {
	ca, other := newTestCA(t), newTestCA(t)
	for _, tc := range []struct {
		name      string
		serverTLS *tls.Config
		why       string
	}{
		{name: "another CA", serverTLS: ca.server, why: "tls handshake: failed to verify certificate"},
		{name: "plain server", serverTLS: nil, why: "tls handshake: "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := startFakeNodes(t, fakeHooks{}, 1, tc.serverTLS)
			cfg, err := parseFlags([]string{"-mode", "connect", "-ws", srv.wsAddr, "-api", srv.apiAddr, "-tls",
				"-ca", other.pemFile, "-conns", "3", "-hold", "0s", "-quiet", "-duration", "10s"})
			if err != nil {
				t.Fatal(err)
			}
			rep := coordinate(cfg)
			if rep.Connected != 0 || len(rep.TLS) != 0 {
				t.Errorf("connected %d, TLS sessions %v; want none", rep.Connected, rep.TLS)
			}
			n := 0
			for k, v := range rep.Failures {
				if strings.HasPrefix(k, tc.why) {
					n += v
				}
			}
			if n != 3 {
				t.Errorf("failures %v, want 3 × %q…", rep.Failures, tc.why)
			}
		})
	}
}

// TestTLSFlags: -tls and its companions (and -bind-no-port) reach the
// children of -procs, and
// -ca or -api-plain without -tls is refused.
func TestTLSFlags(t *testing.T) {
	ca := newTestCA(t)
	cfg, err := parseFlags([]string{"-ws", "127.0.0.1:1", "-api", "127.0.0.1:2", "-tls", "-api-plain", "-ca", ca.pemFile, "-tls-groups", "X25519,P256", "-bind-no-port"})
	if err != nil {
		t.Fatal(err)
	}
	child, err := parseFlags(cfg.childArgs(1, 10, 10, 5, time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if !child.tls || !child.apiPlain || !child.bindNoPort || child.caFile != ca.pemFile || child.tlsConfs["127.0.0.1:1"] == nil || child.tlsConfs["127.0.0.1:2"] != nil {
		t.Errorf("child: tls %v, api-plain %v, ca %q, configurations %v", child.tls, child.apiPlain, child.caFile, child.tlsConfs)
	}
	if g := child.tlsConfs["127.0.0.1:1"].CurvePreferences; len(g) != 2 || g[0] != tls.X25519 || g[1] != tls.CurveP256 {
		t.Errorf("child's groups %v, want X25519, P256", g)
	}
	for _, args := range [][]string{{"-ca", ca.pemFile}, {"-api-plain"}, {"-tls", "-ca", filepath.Join(t.TempDir(), "none.pem")},
		{"-tls-groups", "X25519"}, {"-tls", "-tls-groups", "X448"}} {
		if _, err := parseFlags(args); err == nil {
			t.Errorf("parseFlags(%q) accepted", args)
		}
	}
}

// TestRetry: with -retry, sockets the server refused (closed during the
// TLS handshake, as revurb does past its handshake bound) dial again until
// every one is connected, and the report counts the retries; without it
// they are failures.
func TestRetry(t *testing.T) {
	ca := newTestCA(t)
	for _, tc := range []struct {
		name               string
		retry              string
		connected, retries int
	}{
		// Accepts 3, 6, 9 and 12 are refused: the sockets dial one at a
		// time, so 14 accepts for 10 sockets.
		{name: "retry", retry: "20ms", connected: 10, retries: 4},
		{name: "no retry", retry: "0s", connected: 7},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := startFakeNodes(t, fakeHooks{refuse: func(n int64) bool { return n%3 == 0 && n <= 12 }}, 1, ca.server)
			cfg, err := parseFlags([]string{"-mode", "connect", "-ws", srv.wsAddr, "-api", srv.apiAddr, "-tls", "-ca", ca.pemFile,
				"-conns", "10", "-concurrency", "1", "-retry", tc.retry, "-hold", "0s", "-quiet", "-duration", "10s"})
			if err != nil {
				t.Fatal(err)
			}
			rep := coordinate(cfg)
			n := 0
			for _, v := range rep.Retries {
				n += v
			}
			if rep.Connected != int64(tc.connected) || n != tc.retries {
				t.Errorf("connected %d, retries %v; want %d and %d in all (failures %v)", rep.Connected, rep.Retries, tc.connected, tc.retries, rep.Failures)
			}
		})
	}
}
