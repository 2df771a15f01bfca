package main

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"os"
	"strings"
)

// wss:// and https:// (-tls): the sockets speak TLS through crypto/tls's
// client, as a browser's would, verifying the server's certificate against
// -ca (or the system's roots) for the host of -ws. Every socket makes a
// full handshake: no session cache, so a reconnect storm costs the server
// what fresh browsers cost it. The handshake is part of the time to
// connection_established.
//
// Memory: a tls.Conn kept per socket holds its record buffers (a few KiB
// once the handshake is over, up to one 16 KiB record when the server
// sends big records), on top of the socket's -readbuf.

// tlsClients is one client configuration per host:port of a target list,
// each verifying that host's name (an IP address or a DNS name): shared by
// every socket of the target, never cloned per socket.
type tlsClients map[string]*tls.Config

// newTLSClients builds the client configurations of addrs, verifying
// against the CA certificates in the PEM file caFile ("" : the system's
// roots), with ALPN http/1.1 as browsers offer on a WebSocket.
func newTLSClients(caFile string, groups []tls.CurveID, addrs ...[]string) (tlsClients, error) {
	var roots *x509.CertPool
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("-ca: %w", err)
		}
		roots = x509.NewCertPool()
		if !roots.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("-ca %s: no PEM certificate in it", caFile)
		}
	}
	out := tlsClients{}
	for _, list := range addrs {
		for _, a := range list {
			host, _, err := net.SplitHostPort(a)
			if err != nil {
				return nil, err
			}
			out[a] = &tls.Config{
				RootCAs:    roots,
				ServerName: host,
				NextProtos: []string{"http/1.1"},
				MinVersion: tls.VersionTLS12,
				// nil: Go's default offer, as a browser's (X25519MLKEM768
				// first, then X25519).
				CurvePreferences: groups,
			}
		}
	}
	return out, nil
}

// tlsGroups is the flag.Value of -tls-groups: the key exchange groups
// the client offers, in order of preference, by crypto/tls's names.
type tlsGroups []tls.CurveID

var groupNames = map[string]tls.CurveID{
	"X25519MLKEM768": tls.X25519MLKEM768, "X25519": tls.X25519,
	"P256": tls.CurveP256, "P384": tls.CurveP384, "P521": tls.CurveP521,
}

func (g *tlsGroups) String() string {
	if g == nil {
		return ""
	}
	s := make([]string, len(*g))
	for i, id := range *g {
		for name, n := range groupNames {
			if n == id {
				s[i] = name
			}
		}
	}
	return strings.Join(s, ",")
}

// Set implements flag.Value.
func (g *tlsGroups) Set(v string) error {
	*g = nil
	for name := range strings.SplitSeq(v, ",") {
		id, ok := groupNames[strings.TrimSpace(name)]
		if !ok {
			return fmt.Errorf("unknown key exchange group %q (X25519MLKEM768, X25519, P256, P384, P521)", name)
		}
		*g = append(*g, id)
	}
	return nil
}

// tlsSession names what a handshake settled on, as the report counts it:
// "TLS 1.3 TLS_AES_128_GCM_SHA256 X25519MLKEM768".
func tlsSession(st tls.ConnectionState) string {
	s := tls.VersionName(st.Version) + " " + tls.CipherSuiteName(st.CipherSuite)
	if st.CurveID != 0 {
		s += " " + st.CurveID.String()
	}
	return s
}

// tlsError is a failed TLS handshake; the report counts it as "tls
// handshake: " and why.
type tlsError struct{ err error }

func (e tlsError) Error() string { return "tls handshake: " + e.err.Error() }
func (e tlsError) Unwrap() error { return e.err }
