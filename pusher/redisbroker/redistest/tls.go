package redistest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// TLS is a redis-server that speaks TLS on one port (and plain TCP on
// another, for the tests' own checks), with a certificate for 127.0.0.1
// from a CA of its own.
type TLS struct {
	*Server
	tlsPort int
	// CAFile is the CA's certificate, PEM: what a client must trust
	// (SSL_CERT_FILE for a process that uses the system's roots).
	CAFile string
}

// StartTLS runs redis-server with TLS.
func StartTLS(t testing.TB) *TLS {
	t.Helper()
	c := newCerts(t)
	tlsPort := freePort(t, 0)
	s := start(t, freePort(t, 0), c.args(tlsPort)...)
	s.tlsPort = tlsPort
	return &TLS{Server: s, tlsPort: tlsPort, CAFile: c.ca}
}

// certs are a CA's certificate and a server certificate for 127.0.0.1 it
// signed, with the key, as PEM files.
type certs struct{ ca, cert, key string }

// args are redis-server's options to serve TLS on port with c.
func (c certs) args(port int) []string {
	return []string{"--tls-port", strconv.Itoa(port), "--tls-cert-file", c.cert, "--tls-key-file", c.key,
		"--tls-ca-cert-file", c.ca, "--tls-auth-clients", "no"}
}

func newCerts(t testing.TB) certs {
	t.Helper()
	dir := t.TempDir()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "redistest CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	// Client auth too: the nodes of a Cluster or a replica present it to
	// their peers.
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	write := func(name, typ string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: b}), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	return certs{ca: write("ca.pem", "CERTIFICATE", caDER), cert: write("cert.pem", "CERTIFICATE", der), key: write("key.pem", "EC PRIVATE KEY", keyDER)}
}

// URLAs is the server's TLS address as a rediss:// URL with user and
// password, database 0.
func (s *TLS) URLAs(user, password string) string {
	return "rediss://" + user + ":" + password + "@127.0.0.1:" + strconv.Itoa(s.tlsPort) + "/0"
}
