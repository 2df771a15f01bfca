package main

import (
	"bytes"
	"crypto/tls"
	"encoding/pem"
	"errors"
	"log/slog"
	"os"
	"strings"
	"sync/atomic"
)

// certStore holds the certificate both ports present, and loads it again
// on SIGHUP: new handshakes get the new one, established connections keep
// theirs.
type certStore struct {
	certFile, keyFile string
	cert              atomic.Pointer[tls.Certificate]
}

// newCertStore loads the pair, or says clearly why it cannot serve it.
func newCertStore(certFile, keyFile string) (*certStore, error) {
	s := &certStore{certFile: certFile, keyFile: keyFile}
	if s.keyFile == "" {
		s.keyFile = certFile // the key may be in the certificate's file
	}
	c, err := loadPair(s.certFile, s.keyFile)
	if err != nil {
		return nil, err
	}
	s.cert.Store(c)
	return s, nil
}

// loadPair reads a certificate (with its chain) and its private key.
func loadPair(certFile, keyFile string) (*tls.Certificate, error) {
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return nil, errors.New("tls: reading the certificate: " + err.Error())
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, errors.New("tls: reading the key: " + err.Error())
	}
	if encryptedKey(keyPEM) {
		return nil, errors.New("tls: the private key in " + keyFile + " is encrypted; revurb needs it unencrypted " +
			"(openssl pkey -in " + keyFile + " -out key.pem), readable by revurb's user alone")
	}
	c, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		msg := err.Error()
		if strings.Contains(msg, "does not match") {
			return nil, errors.New("tls: the private key in " + keyFile + " does not match the certificate in " + certFile)
		}
		return nil, errors.New("tls: " + certFile + ", " + keyFile + ": " + msg)
	}
	return &c, nil
}

// encryptedKey reports whether a PEM private key is encrypted (PKCS#8
// ENCRYPTED PRIVATE KEY, or a legacy Proc-Type header).
func encryptedKey(b []byte) bool {
	for {
		var block *pem.Block
		block, b = pem.Decode(b)
		if block == nil {
			return false
		}
		if block.Type == "ENCRYPTED PRIVATE KEY" || strings.Contains(block.Headers["Proc-Type"], "ENCRYPTED") {
			return true
		}
	}
}

// reload loads the pair again; a pair that does not load leaves the one
// in use, and says why.
func (s *certStore) reload(log *slog.Logger) {
	c, err := loadPair(s.certFile, s.keyFile)
	if err != nil {
		log.Error("SIGHUP: certificate not reloaded; the one in use stays", "error", err.Error())
		return
	}
	if old := s.cert.Load(); old != nil && len(old.Certificate) > 0 && len(c.Certificate) > 0 && bytes.Equal(old.Certificate[0], c.Certificate[0]) {
		log.Info("SIGHUP: certificate unchanged", "cert", s.certFile)
		return
	}
	s.cert.Store(c)
	log.Info("SIGHUP: certificate reloaded; new handshakes present it", "cert", s.certFile, "subject", c.Leaf.Subject.String(), "not_after", c.Leaf.NotAfter)
}

// config is the TLS configuration of both ports.
func (s *certStore) config() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		NextProtos: []string{"http/1.1"},
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			return s.cert.Load(), nil
		},
	}
}
