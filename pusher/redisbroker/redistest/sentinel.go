package redistest

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// MasterSet is the name the Sentinels of StartSentinel know the primary by.
const MasterSet = "mymaster"

// Sentinel is a primary with two replicas, watched by three Sentinels
// (Debian's redis-server --sentinel) that fail over within a couple of
// seconds of the primary going away.
type Sentinel struct {
	t         testing.TB
	Servers   []*Server // the primary first, then its replicas; a failover changes which is which
	Sentinels []*Server
	// CAFile is, for a set StartSentinelTLS made, the CA a client must
	// trust.
	CAFile string
}

// StartSentinel starts the set and returns once every Sentinel knows the
// two replicas and the other two Sentinels, so that a failover can start
// at once.
func StartSentinel(t testing.TB) *Sentinel { return startSentinel(t, false) }

// StartSentinelTLS is StartSentinel with every server and Sentinel
// speaking TLS on a port of its own, the replicas and the Sentinels to the
// primary too (tls-replication): the Sentinels name the TLS ports. The
// plain ports stay, for the tests' own checks.
func StartSentinelTLS(t testing.TB) *Sentinel { return startSentinel(t, true) }

func startSentinel(t testing.TB, withTLS bool) *Sentinel {
	t.Helper()
	s := &Sentinel{t: t}
	var tls certs
	serve := func(args ...string) *Server {
		if !withTLS {
			return start(t, freePort(t, 0), args...)
		}
		tp := freePort(t, 0)
		srv := start(t, freePort(t, 0), append(append(args, tls.args(tp)...), "--tls-replication", "yes")...)
		srv.tlsPort = tp
		return srv
	}
	if withTLS {
		tls = newCerts(t)
		s.CAFile = tls.ca
	}
	primary := serve()
	s.Servers = append(s.Servers, primary)
	for range 2 {
		s.Servers = append(s.Servers, serve("--replicaof", "127.0.0.1", strconv.Itoa(primary.servedPort())))
	}
	dir := t.TempDir()
	for i := range 3 {
		port := freePort(t, 0)
		conf := filepath.Join(dir, "sentinel-"+strconv.Itoa(i)+".conf")
		body := "sentinel monitor " + MasterSet + " 127.0.0.1 " + strconv.Itoa(primary.servedPort()) + " 2\n" +
			"sentinel down-after-milliseconds " + MasterSet + " 1000\n" +
			"sentinel failover-timeout " + MasterSet + " 4000\n" +
			"sentinel parallel-syncs " + MasterSet + " 2\n" +
			"dir " + dir + "\n"
		if err := os.WriteFile(conf, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		sn := &Server{t: t, port: port, conf: conf, sentinel: true}
		if withTLS {
			sn.tlsPort = freePort(t, 0)
			sn.args = append(tls.args(sn.tlsPort), "--tls-replication", "yes")
		}
		sn.Restart()
		t.Cleanup(sn.Kill)
		s.Sentinels = append(s.Sentinels, sn)
	}
	waitSynced(t, s.Servers[1:])
	s.waitKnown(20 * time.Second)
	return s
}

// waitSynced waits until every replica's link to its primary is up.
func waitSynced(t testing.TB, replicas []*Server) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for _, r := range replicas {
		for {
			v, err := Do(r.Addr(), "INFO", "replication")
			info, _ := v.(string)
			if err == nil && infoField(info, "master_link_status") == "up" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("redistest: replica %s not in sync: %v %s", r.Addr(), err, info)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// waitKnown waits until every Sentinel sees two replicas and two other
// Sentinels.
func (s *Sentinel) waitKnown(within time.Duration) {
	s.t.Helper()
	deadline := time.Now().Add(within)
	for _, sn := range s.Sentinels {
		for {
			v, err := Do(sn.Addr(), "SENTINEL", "MASTER", MasterSet)
			info := fields(v)
			if err == nil && info["num-slaves"] == "2" && info["num-other-sentinels"] == "2" {
				break
			}
			if time.Now().After(deadline) {
				s.t.Fatalf("redistest: sentinel %s does not know the set: %v %v", sn.Addr(), info, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
}

// fields reads a flat RESP array of name, value pairs.
func fields(v any) map[string]string {
	out := map[string]string{}
	a, _ := v.([]any)
	for i := 0; i+1 < len(a); i += 2 {
		k, _ := a[i].(string)
		val, _ := a[i+1].(string)
		out[k] = val
	}
	return out
}

// URL is the set's address as revurb and rueidis read it: every Sentinel,
// and the master set's name; rediss:// and the TLS ports for a set
// StartSentinelTLS made.
func (s *Sentinel) URL() string {
	scheme := "redis://"
	if s.CAFile != "" {
		scheme = "rediss://"
	}
	u := scheme + s.Sentinels[0].servedAddr() + "?"
	for _, sn := range s.Sentinels[1:] {
		u += "addr=" + sn.servedAddr() + "&"
	}
	return u + "master_set=" + MasterSet
}

// AddUser creates the ACL user (Server.AddUser) on the primary and the
// replicas: a replica promoted knows it too.
func (s *Sentinel) AddUser(user, password, prefix string) {
	for _, srv := range s.Servers {
		srv.AddUser(user, password, prefix)
	}
}

// URLAs is URL with the primaries' user and password.
func (s *Sentinel) URLAs(user, password string) string {
	scheme, rest, _ := strings.Cut(s.URL(), "://")
	return scheme + "://" + user + ":" + password + "@" + rest
}

// Master is the server the Sentinels name as the primary now.
func (s *Sentinel) Master() *Server {
	s.t.Helper()
	addr := s.masterAddr()
	for _, srv := range s.Servers {
		if srv.Addr() == addr || srv.servedAddr() == addr {
			return srv
		}
	}
	s.t.Fatalf("redistest: the Sentinels name %q, none of the set", addr)
	return nil
}

func (s *Sentinel) masterAddr() string {
	for _, sn := range s.Sentinels {
		if !sn.Alive() {
			continue
		}
		v, err := Do(sn.Addr(), "SENTINEL", "GET-MASTER-ADDR-BY-NAME", MasterSet)
		if a, ok := v.([]any); err == nil && ok && len(a) == 2 {
			return a[0].(string) + ":" + a[1].(string)
		}
	}
	return ""
}

// KillMaster kills the primary and returns once the Sentinels have
// promoted a replica and it answers as a primary.
func (s *Sentinel) KillMaster() (killed, promoted *Server) {
	s.t.Helper()
	killed = s.Master()
	killed.Kill()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if addr := s.masterAddr(); addr != "" && addr != killed.servedAddr() {
			if v, err := Do(addr, "ROLE"); err == nil {
				if a, ok := v.([]any); ok && len(a) > 0 && a[0] == "master" {
					return killed, s.Master()
				}
			}
		}
		if time.Now().After(deadline) {
			s.t.Fatal("redistest: the Sentinels did not fail over")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// infoField reads one field of an INFO reply.
func infoField(info, name string) string {
	for _, line := range strings.Split(info, "\r\n") {
		if v, ok := strings.CutPrefix(line, name+":"); ok {
			return v
		}
	}
	return ""
}
