package redisbroker

import (
	"errors"
	"net/url"
	"strings"
	"time"

	"github.com/redis/rueidis"
)

// ParseURL reads a Redis URL into client options, as rueidis reads it:
//
//	redis://[[user]:password@]host:port/db      one Redis (rediss:// for TLS)
//	redis://h1:7000?addr=h2:7001&addr=h3:7002   a Redis Cluster (detected)
//	redis://h1:26379?addr=h2:26379&master_set=mymaster
//	                                            Sentinels, and the master set they watch
//
// The user and password are the primaries' (an ACL user works); with
// Sentinels, sentinel_username and sentinel_password are the Sentinels'
// own, if they ask for one.
func ParseURL(raw string) (rueidis.ClientOption, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return rueidis.ClientOption{}, errors.New("redisbroker: bad Redis URL: " + err.Error())
	}
	if u.Scheme != "redis" && u.Scheme != "rediss" {
		return rueidis.ClientOption{}, errors.New("redisbroker: a Redis URL is redis://[[user]:password@]host:port/db, or rediss:// for TLS")
	}
	if u.Hostname() == "" {
		return rueidis.ClientOption{}, errors.New("redisbroker: the Redis URL has no host")
	}
	opt, err := rueidis.ParseURL(raw)
	if err != nil {
		return opt, errors.New("redisbroker: bad Redis URL: " + strings.TrimPrefix(err.Error(), "redis: "))
	}
	q := u.Query()
	if opt.Sentinel.MasterSet != "" {
		opt.Sentinel.Username, opt.Sentinel.Password = q.Get("sentinel_username"), q.Get("sentinel_password")
		opt.Sentinel.Dialer = opt.Dialer
		// Sentinel follows +switch-master; this also mends a missed one.
		opt.Sentinel.TopologyRefreshInterval = 5 * time.Second
	}
	if opt.TLSConfig != nil && len(opt.InitAddress) > 1 {
		// Several servers (a Cluster's nodes, the primary a Sentinel
		// names): each certificate is checked against the address dialed.
		opt.TLSConfig.ServerName = ""
		if opt.Sentinel.MasterSet != "" {
			opt.Sentinel.TLSConfig = opt.TLSConfig.Clone()
		}
	}
	opt.DisableCache = true
	opt.ClusterOption.ShardsRefreshInterval = 5 * time.Second
	// Find out within seconds that Redis is gone (a refused or reset
	// connection is found at once; these bound a silent one), but not so
	// fast that a starved box — a node at full CPU, 100k sockets closing —
	// takes a slow answer for an outage: at 1 s and 2 s it did, once, in
	// the 100k-socket benchmark. Publish has its own deadline (publishWait),
	// so no trigger waits this long.
	if opt.Dialer.Timeout == 0 {
		opt.Dialer.Timeout = 3 * time.Second
	}
	if opt.ConnWriteTimeout == 0 {
		opt.ConnWriteTimeout = 5 * time.Second
	}
	return opt, nil
}
