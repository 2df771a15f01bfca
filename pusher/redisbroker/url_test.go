package redisbroker

import (
	"slices"
	"testing"
)

// TestParseURL: the URL forms of one Redis, Sentinel and Redis Cluster, as
// rueidis reads them, with TLS and ACL users.
func TestParseURL(t *testing.T) {
	for _, tc := range []struct {
		url          string
		addrs        []string
		user, pass   string
		masterSet    string
		tls          bool
		serverName   string
		sentinelPass string
		db           int
	}{
		{url: "redis://127.0.0.1:6379/2", addrs: []string{"127.0.0.1:6379"}, db: 2},
		{url: "rediss://revurb:s3cret@redis.example.com/0", addrs: []string{"redis.example.com:6379"}, user: "revurb", pass: "s3cret", tls: true, serverName: "redis.example.com"},
		{url: "redis://:pw@s1:26379?addr=s2:26379&addr=s3:26379&master_set=mymaster&sentinel_password=sp",
			addrs: []string{"s1:26379", "s2:26379", "s3:26379"}, pass: "pw", masterSet: "mymaster", sentinelPass: "sp"},
		{url: "rediss://u:p@n1:7000?addr=n2:7001&addr=n3:7002", addrs: []string{"n1:7000", "n2:7001", "n3:7002"}, user: "u", pass: "p", tls: true},
	} {
		t.Run(tc.url, func(t *testing.T) {
			opt, err := ParseURL(tc.url)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(opt.InitAddress, tc.addrs) || opt.Username != tc.user || opt.Password != tc.pass ||
				opt.Sentinel.MasterSet != tc.masterSet || opt.Sentinel.Password != tc.sentinelPass || opt.SelectDB != tc.db {
				t.Fatalf("%+v", opt)
			}
			if (opt.TLSConfig != nil) != tc.tls || tc.tls && opt.TLSConfig.ServerName != tc.serverName {
				t.Fatalf("TLS %+v", opt.TLSConfig)
			}
			if !opt.DisableCache {
				t.Fatal("client-side caching on")
			}
		})
	}
	for _, bad := range []string{"http://h:1", "redis://", "redis://h:1/x", "::"} {
		if _, err := ParseURL(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
