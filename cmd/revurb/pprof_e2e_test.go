package main

import (
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestPprof: --pprof serves net/http/pprof on its own listener, and the
// API port does not serve it.
func TestPprof(t *testing.T) {
	t.Parallel()
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(t)))
	srv := startServer(t, serverConfig{Args: []string{"--pprof", addr}})
	client := &http.Client{Timeout: 10 * time.Second}
	get := func(url string) (int, string) {
		t.Helper()
		res, err := client.Get(url)
		if err != nil {
			t.Fatalf("GET %s: %v", url, err)
		}
		defer res.Body.Close()
		body, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(body)
	}
	// The listener opens just before the server reports ready; wait for it.
	deadline := time.Now().Add(5 * time.Second)
	for !accepts(addr) {
		if time.Now().After(deadline) {
			t.Fatalf("nothing listens on --pprof %s", addr)
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, tc := range []struct {
		path, want string
	}{
		{path: "/debug/pprof/", want: "goroutine"},
		{path: "/debug/pprof/heap?debug=1", want: "heap profile"},
		{path: "/debug/pprof/cmdline", want: "--pprof"},
	} {
		status, body := get("http://" + addr + tc.path)
		if status != http.StatusOK || !strings.Contains(body, tc.want) {
			t.Errorf("GET %s: %d, body %q; want 200 with %q", tc.path, status, truncateBody(body), tc.want)
		}
	}
	if status, body := get("http://" + srv.apiAddr() + "/debug/pprof/"); status == http.StatusOK {
		t.Errorf("the API port serves /debug/pprof/: %d %q", status, truncateBody(body))
	}
}

func truncateBody(s string) string {
	if len(s) > 200 {
		return s[:200] + "…"
	}
	return s
}
