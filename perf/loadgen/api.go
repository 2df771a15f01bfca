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
	return q + "&auth_signature=" + sign(secret, method+"\n"+path+"\n"+q)
}

// publishResult is what triggering the fanout events gave.
type publishResult struct {
	published int
	errors    map[string]int
	latency   hist
	start     time.Time
	end       time.Time
}

// publish triggers cfg.events events on cfg.channel through POST
// /apps/{id}/events, event k due at start + k/rate, with cfg.publishers
// requests in flight at most. Each event's data is "t=<unix nanos>;i=<k>",
// the time taken just before the request is written. At ctx's end no new
// request starts; those in flight finish (bounded by the client timeout),
// since the server may deliver an event whose request was abandoned.
func publish(ctx context.Context, cfg *config) *publishResult {
	res := &publishResult{errors: map[string]int{}}
	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		MaxIdleConnsPerHost: cfg.publishers,
		MaxConnsPerHost:     cfg.publishers,
		DisableCompression:  true,
	}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	path := "/apps/" + cfg.appID + "/events"
	url := "http://" + cfg.apiAddr + path + "?"
	var interval time.Duration
	if cfg.rate > 0 {
		interval = time.Duration(float64(time.Second) / cfg.rate)
	}
	var next atomic.Int64
	var ok atomic.Int64
	var mu sync.Mutex
	var wg sync.WaitGroup
	res.start = time.Now()
	for range cfg.publishers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			timer := time.NewTimer(time.Hour)
			defer timer.Stop()
			body := make([]byte, 0, 128+cfg.size)
			for {
				k := int(next.Add(1) - 1)
				if k >= cfg.events {
					return
				}
				if !waitUntil(ctx, timer, res.start.Add(time.Duration(k)*interval)) {
					return
				}
				body = append(body[:0], `{"name":"`+fanoutEvent+`","channel":"`+cfg.channel+`","data":"`...)
				sent := time.Now()
				body = appendData(body, sent.UnixNano(), k, cfg.size)
				body = append(body, `"}`...)
				errKey := postEvent(context.Background(), client, url+signedQuery(cfg.key, cfg.secret, "POST", path, body, sent), body)
				res.latency.record(time.Since(sent))
				if errKey != "" {
					mu.Lock()
					res.errors[errKey]++
					mu.Unlock()
					continue
				}
				ok.Add(1)
			}
		}()
	}
	wg.Wait()
	res.end = time.Now()
	res.published = int(ok.Load())
	return res
}

// postEvent sends one trigger and returns "" on 200, else a short reason.
func postEvent(ctx context.Context, client *http.Client, url string, body []byte) string {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return err.Error()
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return classify(err)
	}
	defer resp.Body.Close()
	reply, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode != http.StatusOK {
		return fmt.Sprintf("HTTP %d %s", resp.StatusCode, truncate(string(bytes.TrimSpace(reply)), 100))
	}
	return ""
}
