package pusher

import (
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
)

func TestParseOrigin(t *testing.T) {
	tests := []struct {
		in   string
		want origin // zero: refused
	}{
		{in: "https://app.example.org", want: origin{scheme: "https", host: "app.example.org"}},
		{in: "HTTPS://App.Example.ORG", want: origin{scheme: "https", host: "app.example.org"}},
		{in: "http://localhost:3000", want: origin{scheme: "http", host: "localhost", port: "3000"}},
		{in: "https://a.org:443", want: origin{scheme: "https", host: "a.org"}},
		{in: "http://a.org:80", want: origin{scheme: "http", host: "a.org"}},
		{in: "wss://a.org:443", want: origin{scheme: "wss", host: "a.org"}},
		{in: "http://a.org:443", want: origin{scheme: "http", host: "a.org", port: "443"}},
		{in: "http://a.org:08080", want: origin{scheme: "http", host: "a.org", port: "8080"}},
		{in: "https://a.org.", want: origin{scheme: "https", host: "a.org"}},
		{in: "https://1.2.3.4:8443", want: origin{scheme: "https", host: "1.2.3.4", port: "8443"}},
		{in: "http://[::1]:8080", want: origin{scheme: "http", host: "[::1]", port: "8080"}},
		{in: "http://[0:0:0::0001]", want: origin{scheme: "http", host: "[::1]"}},
		{in: "http://[2001:DB8::A]", want: origin{scheme: "http", host: "[2001:db8::a]"}},
		{in: "http://[::ffff:1.2.3.4]", want: origin{scheme: "http", host: "[::ffff:1.2.3.4]"}},
		{in: "https://xn--bcher-kva.example", want: origin{scheme: "https", host: "xn--bcher-kva.example"}},
		{in: "chrome-extension://abcdef", want: origin{scheme: "chrome-extension", host: "abcdef"}},
		{in: "https://under_score.example", want: origin{scheme: "https", host: "under_score.example"}},

		{in: "https://evil.com/.example.org"},
		{in: "https://evil.com?.example.org"},
		{in: "https://evil.com#.example.org"},
		{in: "https://evil.com\\.example.org"},
		{in: "https://evil.com/"},
		{in: "https://evil.com@app.example.org"},
		{in: "https://@app.example.org"},
		{in: "https://user:pass@app.example.org"},
		{in: "https://app.example.org:"},
		{in: "https://app.example.org:0"},
		{in: "https://app.example.org:65536"},
		{in: "https://app.example.org:99999999999999999999"},
		{in: "https://app.example.org:8a"},
		{in: "https://app.example.org:+80"},
		{in: "https://app.example.org:80:80"},
		{in: "https://app.example.org.."},
		{in: "https://.example.org"},
		{in: "https://a..example.org"},
		{in: "https://."},
		{in: "https://"},
		{in: "https://%61pp.example.org"},
		{in: "https://app .example.org"},
		{in: "https://app.example.org "},
		{in: "https://app.example.org\x00"},
		{in: "https://bücher.example"},
		{in: "https://*.example.org"},
		{in: "http://[::1"},
		{in: "http://[::1]x"},
		{in: "http://[::1]:"},
		{in: "http://::1:8080"},
		{in: "http://[1.2.3.4]"},
		{in: "http://[::1%25eth0]"},
		{in: "http://[fe80::1%eth0]"},
		{in: "http://[]"},
		{in: "app.example.org"},
		{in: "//app.example.org"},
		{in: "https:app.example.org"},
		{in: "https:/app.example.org"},
		{in: "1https://app.example.org"},
		{in: "ht tp://app.example.org"},
		{in: "://app.example.org"},
		{in: "null"},
		{in: ""},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, ok := parseOrigin(tt.in)
			if ok != (tt.want != origin{}) || got != tt.want {
				t.Errorf("parseOrigin(%q) = %+v, %v; want %+v", tt.in, got, ok, tt.want)
			}
		})
	}
}

func TestOriginAllowedPatterns(t *testing.T) {
	tests := []struct {
		name     string
		patterns []string
		allowed  []string
		refused  []string
	}{
		{
			name:     "subdomain wildcard",
			patterns: []string{"*.example.org"},
			allowed: []string{
				"https://app.example.org", "http://app.example.org:8000", "https://a.b.c.example.org",
				"https://APP.Example.Org", "https://app.example.org.", "https://app.example.org:443", "ws://app.example.org",
			},
			refused: []string{
				"https://evil.com/.example.org", "https://evil.com?.example.org", "https://evil.com#.example.org",
				"https://evil.com\\.example.org", "https://evil.com@app.example.org", "https://app.example.org/",
				"https://example.org", "https://evil-example.org", "https://evilexample.org", "https://example.org.evil.com",
				"https://app.example.org..", "https://.example.org", "https://app.example.org:", "null", "app.example.org",
			},
		},
		{
			name:     "exact host, any scheme and port",
			patterns: []string{"localhost", "Example.NET."},
			allowed:  []string{"http://localhost", "http://localhost:3000", "HTTP://LOCALHOST", "https://example.net", "https://example.net.:8443"},
			refused:  []string{"http://localhost.evil.com", "http://evil.localhost", "http://localhost/x", "https://www.example.net"},
		},
		{
			name:     "exact origin",
			patterns: []string{"https://exact.org", "http://[::1]:8080", "HTTP://Dev.Local:8080"},
			allowed: []string{
				"https://exact.org", "https://EXACT.org", "https://exact.org:443", "https://exact.org.",
				"http://[::1]:8080", "http://[0::1]:8080", "http://dev.local:8080",
			},
			refused: []string{
				"http://exact.org", "https://exact.org:8443", "https://notexact.org", "https://sub.exact.org", "https://exact.org/",
				"http://[::1]", "http://[::1]:8081", "https://[::1]:8080", "http://dev.local", "http://dev.local:80",
			},
		},
		{
			name:     "IP addresses",
			patterns: []string{"127.0.0.1", "*.0.0.1", "[::1]"},
			allowed:  []string{"http://127.0.0.1:8080", "http://[::1]", "http://[0:0::1]:3000"},
			refused:  []string{"http://10.0.0.1", "http://[::2]", "http://127.0.0.1/"},
		},
		{
			name:     "null only when listed",
			patterns: []string{"null"},
			allowed:  []string{"null"},
			refused:  []string{"https://null", "NULL", "null/"},
		},
		{
			name:     "star allows anything, even what does not parse",
			patterns: []string{"https://exact.org", "*"},
			allowed:  []string{"https://a.org", "null", "https://evil.com/.example.org", "junk"},
		},
		{
			name:     "patterns that do not parse match nothing",
			patterns: []string{"*.", "*.*.example.org", "https://*.example.org", "https://exact.org/", "exa mple.org", "[::1", "example.org:8080", ""},
			refused:  []string{"https://a.example.org", "https://exact.org", "https://exa mple.org", "http://[::1]", "http://example.org:8080", "http://example.org"},
		},
		{
			name:    "no patterns",
			refused: []string{"https://a.org", "null"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, o := range tt.allowed {
				if !originAllowed(tt.patterns, o) {
					t.Errorf("origin %q refused by %q, want allowed", o, tt.patterns)
				}
			}
			for _, o := range tt.refused {
				if originAllowed(tt.patterns, o) {
					t.Errorf("origin %q allowed by %q, want refused", o, tt.patterns)
				}
			}
		})
	}
}

func TestAppOriginAllowedRefusesTextTricks(t *testing.T) {
	app := DefaultApp("a", "k", "s")
	app.AllowedOrigins = []string{"*.example.org", "exact.org"}
	for _, o := range []string{
		"https://evil.com/.example.org",
		"https://evil.com?.example.org",
		"https://evil.com#.example.org",
		"https://evil.com/exact.org",
		"https://exact.org@evil.com",
		"https://evil.com:x@exact.org",
	} {
		if app.OriginAllowed(o) {
			t.Errorf("OriginAllowed(%q) = true, want false", o)
		}
	}
	if !app.OriginAllowed("") || !app.OriginAllowed("https://a.example.org") || !app.OriginAllowed("https://exact.org:8443") {
		t.Error("a server-side client or an allowed origin refused")
	}
}

// naiveOrigin is the reference parse of an origin, built on net/url: the
// URL must be exactly scheme://host[:port] as url.Parse reads it back.
type naiveOrigin struct {
	scheme, host, port string
	ip                 bool
}

func naiveParseOrigin(s string) (naiveOrigin, bool) {
	u, err := url.Parse(s)
	if err != nil || u.Scheme == "" || u.Opaque != "" || u.User != nil || u.Path != "" || u.RawQuery != "" || u.ForceQuery || u.Fragment != "" {
		return naiveOrigin{}, false
	}
	// Nothing url.Parse dropped or unescaped: s is scheme://Host.
	if !strings.EqualFold(s, u.Scheme+"://"+u.Host) || strings.HasSuffix(u.Host, ":") {
		return naiveOrigin{}, false
	}
	o := naiveOrigin{scheme: u.Scheme}
	name := u.Hostname()
	if strings.HasPrefix(u.Host, "[") {
		a, err := netip.ParseAddr(name)
		if err != nil || !a.Is6() || a.Zone() != "" {
			return naiveOrigin{}, false
		}
		o.host, o.ip = "["+a.String()+"]", true
	} else {
		h, ok := naiveHost(name)
		if !ok {
			return naiveOrigin{}, false
		}
		_, err := netip.ParseAddr(h)
		o.host, o.ip = h, err == nil
	}
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return naiveOrigin{}, false
		}
		defaults := map[string]int{"http": 80, "ws": 80, "https": 443, "wss": 443}
		if defaults[o.scheme] != n {
			o.port = strconv.Itoa(n)
		}
	}
	return o, true
}

// naiveHost is a host name split into labels, each non-empty and made of
// letters, digits, "-" and "_", after dropping one trailing dot.
func naiveHost(s string) (string, bool) {
	labels := strings.Split(strings.TrimSuffix(s, "."), ".")
	for _, l := range labels {
		if l == "" {
			return "", false
		}
		for _, c := range l {
			if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
				return "", false
			}
		}
	}
	return strings.ToLower(strings.Join(labels, ".")), true
}

// naiveOriginAllowed is the reference for originAllowed.
func naiveOriginAllowed(patterns []string, s string) bool {
	if slices.Contains(patterns, "*") {
		return true
	}
	if s == "null" {
		return slices.Contains(patterns, "null")
	}
	o, ok := naiveParseOrigin(s)
	if !ok {
		return false
	}
	for _, p := range patterns {
		switch {
		case p == "null":
		case strings.Contains(p, "://"):
			if po, ok := naiveParseOrigin(p); ok && po == o {
				return true
			}
		case strings.HasPrefix(p, "*."):
			if d, ok := naiveHost(p[2:]); ok && !o.ip && strings.HasSuffix(o.host, "."+d) {
				return true
			}
		case strings.HasPrefix(p, "[") && strings.HasSuffix(p, "]"):
			if a, err := netip.ParseAddr(p[1 : len(p)-1]); err == nil && a.Is6() && a.Zone() == "" && "["+a.String()+"]" == o.host {
				return true
			}
		default:
			if h, ok := naiveHost(p); ok && h == o.host {
				return true
			}
		}
	}
	return false
}

var originSeeds = []string{
	"https://app.example.org", "http://localhost:3000", "https://evil.com/.example.org", "https://evil.com?.example.org",
	"https://evil.com#.example.org", "https://a.example.org.", "http://[::1]:8080", "http://[fe80::1%25eth0]", "null",
	"https://exact.org:443", "https://u@exact.org", "https://%65xact.org", "HTTPS://EXACT.ORG", "https://exact.org:0443",
	"http://1.2.3.4", "https://bücher.example", "https://a.org:", "https://a.org:65536", "ws://a.b.example.org:80",
}

var originPatterns = []string{"*.example.org", "localhost", "https://exact.org", "http://[::1]:8080", "1.2.3.4", "null", "*.3.4"}

func TestOriginAllowedMatchesNaive(t *testing.T) {
	for _, s := range append(slices.Clone(originSeeds), "", "junk", "https://", "https://.", "http://[]") {
		if got, want := originAllowed(originPatterns, s), naiveOriginAllowed(originPatterns, s); got != want {
			t.Errorf("originAllowed(%q) = %v, naive reference %v", s, got, want)
		}
	}
}

// FuzzOrigin compares originAllowed with the naive reference on net/url,
// for the fuzzed origin against the fuzzed pattern and a fixed list; and
// an accepted origin, written back in its normal form, parses to itself.
func FuzzOrigin(f *testing.F) {
	for i, s := range originSeeds {
		f.Add(s, originPatterns[i%len(originPatterns)])
	}
	f.Add("https://A.Example.Org:443", "HTTPS://a.example.org.")
	f.Add("http://[::ffff:1.2.3.4]:80", "[::ffff:1.2.3.4]")
	f.Fuzz(func(t *testing.T, s, pattern string) {
		for _, patterns := range [][]string{{pattern}, originPatterns} {
			if got, want := originAllowed(patterns, s), naiveOriginAllowed(patterns, s); got != want {
				t.Fatalf("originAllowed(%q, %q) = %v, naive reference %v", patterns, s, got, want)
			}
		}
		o, ok := parseOrigin(s)
		if _, nok := naiveParseOrigin(s); ok != nok {
			t.Fatalf("parseOrigin(%q) ok = %v, naive reference %v", s, ok, nok)
		}
		if !ok {
			return
		}
		again := o.scheme + "://" + o.host
		if o.port != "" {
			again += ":" + o.port
		}
		if o2, ok := parseOrigin(again); !ok || o2 != o {
			t.Fatalf("%q parsed to %+v, written back as %q, which parses to %+v, %v", s, o, again, o2, ok)
		}
	})
}
