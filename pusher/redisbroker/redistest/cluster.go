package redistest

import (
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Cluster is a Redis Cluster of three primaries with one replica each,
// built by redis-cli --cluster create, whose nodes take a peer for failed
// after a second.
type Cluster struct {
	t     testing.TB
	Nodes []*Server
	// CAFile is, for a cluster StartClusterTLS made, the CA a client must
	// trust.
	CAFile string
}

// StartCluster starts the six nodes, builds the cluster and returns once
// every node sees it whole (cluster_state:ok, every slot served).
func StartCluster(t testing.TB) *Cluster { return startCluster(t, false) }

// StartClusterTLS is StartCluster with every node speaking TLS on a port
// of its own, to clients, to its peers and to its replicas (tls-cluster,
// tls-replication): a TLS client is told the nodes' TLS ports. The plain
// ports stay, for the tests' own checks.
func StartClusterTLS(t testing.TB) *Cluster { return startCluster(t, true) }

func startCluster(t testing.TB, withTLS bool) *Cluster {
	t.Helper()
	c := &Cluster{t: t}
	dir := t.TempDir()
	var tls certs
	if withTLS {
		tls = newCerts(t)
		c.CAFile = tls.ca
	}
	var addrs []string
	for i := range 6 {
		port := freePort(t, 10000)
		args := []string{"--cluster-enabled", "yes",
			"--cluster-config-file", filepath.Join(dir, "nodes-"+strconv.Itoa(i)+".conf"),
			"--cluster-node-timeout", "1000", "--cluster-replica-validity-factor", "0",
			"--cluster-require-full-coverage", "no", "--cluster-allow-reads-when-down", "yes"}
		tlsPort := 0
		if withTLS {
			tlsPort = freePort(t, 0)
			args = append(append(args, tls.args(tlsPort)...), "--tls-cluster", "yes", "--tls-replication", "yes")
		}
		n := start(t, port, args...)
		n.tlsPort = tlsPort
		c.Nodes = append(c.Nodes, n)
		addrs = append(addrs, n.Addr())
	}
	cli, err := exec.LookPath("redis-cli")
	if err != nil {
		t.Fatal("redis-cli is needed (Debian's redis-tools, with redis-server): ", err)
	}
	args := append([]string{"--cluster", "create"}, addrs...)
	args = append(args, "--cluster-replicas", "1", "--cluster-yes")
	if out, err := exec.Command(cli, args...).CombinedOutput(); err != nil {
		t.Fatalf("redistest: redis-cli --cluster create: %v\n%s", err, out)
	}
	c.WaitOK()
	var replicas []*Server
	for _, n := range c.Nodes {
		if v, err := Do(n.Addr(), "ROLE"); err == nil && v.([]any)[0] == "slave" {
			replicas = append(replicas, n)
		}
	}
	waitSynced(t, replicas)
	return c
}

// URL is the cluster's address as revurb and rueidis read it: three of
// its nodes (one is enough to find the others); rediss:// and their TLS
// ports for a cluster StartClusterTLS made.
func (c *Cluster) URL() string {
	if c.CAFile != "" {
		return "rediss://" + c.Nodes[0].servedAddr() + "?addr=" + c.Nodes[1].servedAddr() + "&addr=" + c.Nodes[2].servedAddr()
	}
	return "redis://" + c.Nodes[0].Addr() + "?addr=" + c.Nodes[1].Addr() + "&addr=" + c.Nodes[2].Addr()
}

// AddUser creates the ACL user (Server.AddUser) on every node.
func (c *Cluster) AddUser(user, password, prefix string) {
	for _, n := range c.Nodes {
		n.AddUser(user, password, prefix)
	}
}

// URLAs is URL with the user and password.
func (c *Cluster) URLAs(user, password string) string {
	u := c.URL()
	scheme, rest, _ := strings.Cut(u, "://")
	return scheme + "://" + user + ":" + password + "@" + rest
}

// WaitOK waits until every live node reports cluster_state:ok and knows
// a primary for every slot.
func (c *Cluster) WaitOK() {
	c.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for _, n := range c.Nodes {
		if !n.Alive() {
			continue
		}
		for {
			v, err := Do(n.Addr(), "CLUSTER", "INFO")
			info, _ := v.(string)
			if err == nil && infoField(info, "cluster_state") == "ok" && infoField(info, "cluster_slots_ok") == "16384" {
				break
			}
			if time.Now().After(deadline) {
				c.t.Fatalf("redistest: cluster not ok on %s: %v %s", n.Addr(), err, info)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

// Slot is the hash slot of key.
func (c *Cluster) Slot(key string) int {
	c.t.Helper()
	v := c.live().Do("CLUSTER", "KEYSLOT", key)
	return int(v.(int64))
}

func (c *Cluster) live() *Server {
	for _, n := range c.Nodes {
		if n.Alive() {
			return n
		}
	}
	c.t.Fatal("redistest: no live cluster node")
	return nil
}

// Owner is the primary serving slot now, as a live node sees it.
func (c *Cluster) Owner(slot int) *Server {
	c.t.Helper()
	for _, r := range c.live().Do("CLUSTER", "SLOTS").([]any) {
		rng := r.([]any)
		if int(rng[0].(int64)) <= slot && slot <= int(rng[1].(int64)) {
			port := int(rng[2].([]any)[1].(int64))
			for _, n := range c.Nodes {
				if n.port == port {
					return n
				}
			}
		}
	}
	c.t.Fatalf("redistest: nobody serves slot %d", slot)
	return nil
}

// Masters are the live primaries.
func (c *Cluster) Masters() []*Server {
	c.t.Helper()
	var out []*Server
	for _, n := range c.Nodes {
		if !n.Alive() {
			continue
		}
		if v, err := Do(n.Addr(), "ROLE"); err == nil && v.([]any)[0] == "master" {
			out = append(out, n)
		}
	}
	return out
}

// KillOwner kills the primary serving slot and returns once its replica
// has taken over and the cluster is whole again.
func (c *Cluster) KillOwner(slot int) (killed, promoted *Server) {
	c.t.Helper()
	killed = c.Owner(slot)
	killed.Kill()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if o := c.ownerOrNil(slot); o != nil && o != killed {
			if v, err := Do(o.Addr(), "ROLE"); err == nil && v.([]any)[0] == "master" {
				c.WaitOK()
				return killed, o
			}
		}
		if time.Now().After(deadline) {
			c.t.Fatal("redistest: no replica took over")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (c *Cluster) ownerOrNil(slot int) *Server {
	v, err := Do(c.live().Addr(), "CLUSTER", "SLOTS")
	if err != nil {
		return nil
	}
	for _, r := range v.([]any) {
		rng := r.([]any)
		if int(rng[0].(int64)) <= slot && slot <= int(rng[1].(int64)) {
			port := int(rng[2].([]any)[1].(int64))
			for _, n := range c.Nodes {
				if n.port == port && n.Alive() {
					return n
				}
			}
		}
	}
	return nil
}

// MoveSlot migrates slot, with its keys, from its primary to another live
// primary (CLUSTER SETSLOT IMPORTING/MIGRATING, MIGRATE, SETSLOT NODE, as
// redis-cli --cluster reshard does) and returns the new owner.
func (c *Cluster) MoveSlot(slot int) *Server {
	c.t.Helper()
	from := c.Owner(slot)
	var to *Server
	for _, m := range c.Masters() {
		if m != from {
			to = m
			break
		}
	}
	fromID, toID := from.Do("CLUSTER", "MYID").(string), to.Do("CLUSTER", "MYID").(string)
	s := strconv.Itoa(slot)
	to.Do("CLUSTER", "SETSLOT", s, "IMPORTING", fromID)
	from.Do("CLUSTER", "SETSLOT", s, "MIGRATING", toID)
	for {
		keys := from.Do("CLUSTER", "GETKEYSINSLOT", s, "100").([]any)
		if len(keys) == 0 {
			break
		}
		args := []string{"MIGRATE", "127.0.0.1", strconv.Itoa(to.port), "", "0", "5000", "KEYS"}
		for _, k := range keys {
			args = append(args, k.(string))
		}
		from.Do(args...)
	}
	to.Do("CLUSTER", "SETSLOT", s, "NODE", toID)
	from.Do("CLUSTER", "SETSLOT", s, "NODE", toID)
	for _, m := range c.Masters() {
		if m != from && m != to {
			m.Do("CLUSTER", "SETSLOT", s, "NODE", toID)
		}
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		agreed := true
		for _, n := range c.Nodes {
			if !n.Alive() {
				continue
			}
			v, err := Do(n.Addr(), "CLUSTER", "NODES")
			if err != nil || !ownsSlot(v.(string), toID, slot) {
				agreed = false
			}
		}
		if agreed {
			return to
		}
		if time.Now().After(deadline) {
			c.t.Fatal("redistest: the nodes do not agree on the moved slot")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// ownsSlot reports whether CLUSTER NODES output lists slot under id.
func ownsSlot(nodes, id string, slot int) bool {
	for _, line := range strings.Split(nodes, "\n") {
		f := strings.Fields(line)
		if len(f) < 9 || f[0] != id {
			continue
		}
		for _, r := range f[8:] {
			lo, hi, ok := strings.Cut(r, "-")
			if !ok {
				hi = lo
			}
			a, err1 := strconv.Atoi(lo)
			b, err2 := strconv.Atoi(hi)
			if err1 == nil && err2 == nil && a <= slot && slot <= b {
				return true
			}
		}
	}
	return false
}
