package pusher

import (
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestCacheKeepsDataOnce: a 10 KB event triggered on 100 cache channels
// keeps its data once, not 100 times, and every channel replays it.
func TestCacheKeepsDataOnce(t *testing.T) {
	s, app := newServer(t, 1)
	data := []byte(strings.Repeat("x", 10_000))
	channels := make([]string, 100)
	for i := range channels {
		channels[i] = "cache-" + strconv.Itoa(i)
	}
	publish(s, app, channels, "big", data, "")
	if b := s.CacheStats(app).Bytes; b < 10_000 || b > 10_000+100*(entryOverhead+20) {
		t.Fatalf("kept %d bytes for one 10 KB event on 100 channels", b)
	}
	c := dial(t, s, 0)
	c.subscribe("cache-99")
	if m := c.mustEvent("big"); m["data"] != string(data) || m["channel"] != "cache-99" {
		t.Fatalf("replay %v", m["channel"])
	}
	// Republishing replaces: the first event's data is uncounted.
	publish(s, app, channels, "small", []byte("y"), "")
	if b := s.CacheStats(app).Bytes; b > 100*(entryOverhead+20) {
		t.Fatalf("kept %d bytes after the 10 KB event was replaced", b)
	}
}

// TestCacheCap: past max_cache_bytes the oldest entries are evicted first,
// counted, and what is kept stays under the cap.
func TestCacheCap(t *testing.T) {
	const max = 50_000
	s, app := newServer(t, 1, func(a *AppConfig) { a.MaxCacheBytes = max })
	data := []byte(strings.Repeat("z", 1000))
	for i := 0; i < 200; i++ {
		publish(s, app, []string{"cache-" + strconv.Itoa(i)}, "e", data, "")
		if b := s.CacheStats(app).Bytes; b > max {
			t.Fatalf("after %d events: %d bytes kept, over the cap of %d", i+1, b, max)
		}
	}
	st := s.CacheStats(app)
	if st.Evictions == 0 || st.Evictions > 200 {
		t.Fatalf("stats %+v", st)
	}
	c := dial(t, s, 0)
	c.subscribe("cache-0")
	c.mustEvent("pusher:cache_miss") // the oldest went first
	c.subscribe("cache-199")
	c.mustEvent("e") // the newest is kept
}

// TestCacheExpire: an expired entry is neither replayed nor counted once
// the purge has run.
func TestCacheExpire(t *testing.T) {
	s, app := newServer(t, 1, func(a *AppConfig) { a.CacheTTL = 1 })
	publish(s, app, []string{"cache-a", "cache-b"}, "e", []byte("1"), "")
	if s.CacheStats(app).Bytes == 0 {
		t.Fatal("nothing counted")
	}
	s.Expire(time.Now().Add(2 * time.Second).UnixNano())
	if b := s.CacheStats(app).Bytes; b != 0 {
		t.Fatalf("%d bytes counted after expiry", b)
	}
	if _, _, ok := s.CachedEvent(app, "cache-a"); ok {
		t.Fatal("expired event still there")
	}
}
