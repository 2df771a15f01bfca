package main

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/revurb/revurb/pusher"
)

// signedQuery returns the query string of a signed Pusher HTTP API request
// (Pusher HTTP API: authentication): auth_key, auth_timestamp,
// auth_version and body_md5 sorted by key, then auth_signature =
// hex HMAC-SHA256(secret, METHOD "\n" PATH "\n" QUERY).
func signedQuery(key, secret, method, path string, body []byte, now time.Time) string {
	sum := md5.Sum(body)
	q := "auth_key=" + key +
		"&auth_timestamp=" + strconv.FormatInt(now.Unix(), 10) +
		"&auth_version=1.0" +
		"&body_md5=" + hex.EncodeToString(sum[:])
	return q + "&auth_signature=" + pusher.Sign(secret, method+"\n"+path+"\n"+q)
}

// maxFailedIDs bounds the list of failed trigger ids sent to the workers.
const maxFailedIDs = 1_000_000

// publishResult is what triggering the fanout events gave.
type publishResult struct {
	published  int            // triggers answered 200
	perChannel []int          // of those, by channel index
	failed     []int          // ids of the triggers not answered 200 (at most maxFailedIDs)
	nFailed    int            // how many triggers were not answered 200
	status     map[string]int // HTTP status of every trigger ("200", "503", …; "error" without one)
	errors     map[string]int // why, for those not answered 200
	latency    hist
	start      time.Time
	end        time.Time
}

// apiTransport is the publishers' HTTP transport, one connection per
// publisher, and the scheme of their URLs: https:// with -tls (the roots
// of -ca; the transport verifies each URL's own host, over HTTP/1.1 as
// Laravel's broadcaster speaks it) unless -api-plain.
func apiTransport(cfg *config) (*http.Transport, string) {
	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		MaxIdleConnsPerHost: cfg.publishers,
		MaxConnsPerHost:     cfg.publishers,
		DisableCompression:  true,
	}
	if !cfg.tls || cfg.apiPlain {
		return tr, "http://"
	}
	tc := cfg.tlsConfs[cfg.apiAddrs[0]].Clone()
	tc.ServerName, tc.NextProtos = "", nil
	tr.TLSClientConfig = tc
	return tr, "https://"
}

// publish triggers cfg.events events through POST /apps/{id}/events from
// cfg.publishers publishers, each with one request in flight; publisher p
// triggers on the API of cfg.apiAddrs[p mod len]. Event k goes
// to channel k mod cfg.channels. Open loop, event k is due at start +
// k/rate; with cfg.closed a publisher sends its next event as soon as the
// previous one is answered. Each event's data carries the time taken just
// before its request is signed and written, its id k and its publisher's
// own running number. At ctx's end no new request starts; those in flight
// finish (bounded by the client timeout), since the server may deliver an
// event whose request was abandoned.
func publish(ctx context.Context, cfg *config) *publishResult {
	res := &publishResult{
		perChannel: make([]int, cfg.channels),
		status:     map[string]int{},
		errors:     map[string]int{},
	}
	tr, scheme := apiTransport(cfg)
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	path := "/apps/" + cfg.appID + "/events"
	urls := make([]string, len(cfg.apiAddrs))
	for i, a := range cfg.apiAddrs {
		urls[i] = scheme + a + path + "?"
	}
	var interval time.Duration
	if cfg.rate > 0 && !cfg.closed {
		interval = time.Duration(float64(time.Second) / cfg.rate)
	}
	prefixes := make([]string, cfg.channels)
	for j := range prefixes {
		prefixes[j] = `{"name":"` + fanoutEvent + `","channel":"` + channelName(cfg.channel, j, cfg.channels) + `","data":"`
	}
	var next atomic.Int64
	var mu sync.Mutex
	var wg sync.WaitGroup
	res.start = time.Now()
	for p := range cfg.publishers {
		wg.Add(1)
		url := urls[p%len(urls)]
		go func() {
			defer wg.Done()
			timer := time.NewTimer(time.Hour)
			defer timer.Stop()
			body := make([]byte, 0, 128+cfg.size)
			for seq := int64(0); ; seq++ {
				k := next.Add(1) - 1
				if k >= int64(cfg.events) {
					return
				}
				if !waitUntil(ctx, timer, res.start.Add(time.Duration(k)*interval)) {
					return
				}
				ch := channelOf(k, cfg.channels)
				body = append(body[:0], prefixes[ch]...)
				sent := time.Now()
				body = appendData(body, eventData{t: sent.UnixNano(), id: k, pub: int64(p), seq: seq}, cfg.size)
				body = append(body, `"}`...)
				status, why := postEvent(context.Background(), client, url+signedQuery(cfg.key, cfg.secret, "POST", path, body, sent), body)
				res.latency.record(time.Since(sent))
				mu.Lock()
				res.status[status]++
				if why == "" {
					res.published++
					res.perChannel[ch]++
				} else {
					res.errors[why]++
					res.nFailed++
					if len(res.failed) < maxFailedIDs {
						res.failed = append(res.failed, int(k))
					}
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	res.end = time.Now()
	return res
}

// postEvent sends one trigger and returns its HTTP status ("error" when
// there is none) and "" on 200, else a short reason.
func postEvent(ctx context.Context, client *http.Client, url string, body []byte) (status, why string) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return "error", err.Error()
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return "error", classify(err)
	}
	defer resp.Body.Close()
	reply, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	status = strconv.Itoa(resp.StatusCode)
	if resp.StatusCode != http.StatusOK {
		return status, fmt.Sprintf("HTTP %d %s", resp.StatusCode, truncate(string(bytes.TrimSpace(reply)), 100))
	}
	return status, ""
}
