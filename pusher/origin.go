package pusher

import (
	"net/netip"
	"strconv"
	"strings"
)

// origin is a browser's Origin header (RFC 6455 §10.2), parsed and
// normalised: a serialised origin is scheme "://" host [":" port] and
// nothing else (RFC 6454 §6.2). The opaque origin "null" has no host and is
// not an origin here.
type origin struct {
	// scheme is lowercase.
	scheme string
	// host is a lowercase domain name or IPv4 address without a trailing
	// dot, or an IPv6 address in canonical form within brackets.
	host string
	// port is the port in decimal, "" when absent or the scheme's default.
	port string
}

// parseOrigin parses s as a serialised origin. It refuses anything else: a
// path (even "/"), query, fragment, userinfo, an empty or non-numeric port,
// empty labels, characters outside letters, digits, "-", "_" and "." in a
// host name, and an IPv6 literal that is not one (or has a zone).
func parseOrigin(s string) (o origin, ok bool) {
	scheme, hostport, found := strings.Cut(s, "://")
	if !found || !validScheme(scheme) {
		return origin{}, false
	}
	o.scheme = strings.ToLower(scheme)
	var port string
	hasPort := false
	if strings.HasPrefix(hostport, "[") {
		literal, rest, found := strings.Cut(hostport[1:], "]")
		if !found || !(rest == "" || rest[0] == ':') {
			return origin{}, false
		}
		o.host, ok = normalIPv6(literal)
		port, hasPort = strings.CutPrefix(rest, ":")
	} else {
		var name string
		name, port, hasPort = strings.Cut(hostport, ":")
		o.host, ok = normalHostName(name)
	}
	if !ok {
		return origin{}, false
	}
	if hasPort {
		if o.port, ok = normalPort(o.scheme, port); !ok {
			return origin{}, false
		}
	}
	return o, true
}

// validScheme reports whether s is a URI scheme: a letter, then letters,
// digits, "+", "-" or "." (RFC 3986 §3.1).
func validScheme(s string) bool {
	if s == "" || !isLetter(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		if c := s[i]; !isLetter(c) && !isDigit(c) && c != '+' && c != '-' && c != '.' {
			return false
		}
	}
	return true
}

// normalHostName lowercases a domain name or IPv4 address and drops one
// trailing dot (example.com. is example.com). It refuses empty labels and
// any byte but letters, digits, "-", "_" and "."; browsers send
// internationalised names in their ASCII form.
func normalHostName(s string) (string, bool) {
	s = strings.TrimSuffix(s, ".")
	if s == "" || s[0] == '.' || s[len(s)-1] == '.' || strings.Contains(s, "..") {
		return "", false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !isLetter(c) && !isDigit(c) && c != '-' && c != '_' && c != '.' {
			return "", false
		}
	}
	return strings.ToLower(s), true
}

// normalIPv6 returns the bracketed canonical form of the IPv6 address s,
// as it appears between the brackets of an origin.
func normalIPv6(s string) (string, bool) {
	a, err := netip.ParseAddr(s)
	if err != nil || !a.Is6() || a.Zone() != "" {
		return "", false
	}
	return "[" + a.String() + "]", true
}

// normalPort checks a port of decimal digits, 1..65535, and returns it
// without leading zeros, or "" when it is the default port of scheme
// (browsers leave it out, and https://a.org:443 is https://a.org).
func normalPort(scheme, s string) (string, bool) {
	n := 0
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			return "", false
		}
		if n = n*10 + int(s[i]-'0'); n > 65535 {
			return "", false
		}
	}
	if n == 0 {
		return "", false // also when s is empty
	}
	switch {
	case n == 80 && (scheme == "http" || scheme == "ws"),
		n == 443 && (scheme == "https" || scheme == "wss"):
		return "", true
	}
	return strconv.Itoa(n), true
}

// originAllowed reports whether the Origin header value s matches one of
// patterns (App.AllowedOrigins):
//   - "*" allows any origin, even one that does not parse;
//   - "null" allows the opaque origin "null" (sandboxed frames, file: pages);
//   - "example.com" allows that host, any scheme and port;
//   - "*.example.com" allows the subdomains of example.com at any depth,
//     not example.com itself, and never an IP address;
//   - a pattern with a scheme, "https://exact.org" or "http://[::1]:8080",
//     allows that exact origin, after both are normalised.
//
// Hosts compare in lowercase, without a trailing dot, IPv6 addresses in
// canonical form and default ports left out. An origin that is not a
// serialised origin (a path, query, fragment or userinfo, as in
// "https://evil.com/.example.org") matches nothing but "*". So does a
// pattern that does not parse.
func originAllowed(patterns []string, s string) bool {
	for _, p := range patterns {
		if p == "*" {
			return true
		}
	}
	if s == "null" {
		for _, p := range patterns {
			if p == "null" {
				return true
			}
		}
		return false
	}
	o, ok := parseOrigin(s)
	if !ok {
		return false
	}
	for _, p := range patterns {
		if o.matches(p) {
			return true
		}
	}
	return false
}

// matches reports whether o is allowed by pattern, one that is not "*".
func (o origin) matches(pattern string) bool {
	if pattern == "null" {
		return false // the opaque origin, not a host named null
	}
	if strings.Contains(pattern, "://") {
		po, ok := parseOrigin(pattern)
		return ok && po == o
	}
	if suffix, ok := strings.CutPrefix(pattern, "*."); ok {
		domain, ok := normalHostName(suffix)
		return ok && strings.HasSuffix(o.host, "."+domain) && !isIP(o.host)
	}
	if strings.HasPrefix(pattern, "[") && strings.HasSuffix(pattern, "]") {
		host, ok := normalIPv6(pattern[1 : len(pattern)-1])
		return ok && host == o.host
	}
	host, ok := normalHostName(pattern)
	return ok && host == o.host
}

// isIP reports whether host, as normalised by parseOrigin, is an IP address.
func isIP(host string) bool {
	if strings.HasPrefix(host, "[") {
		return true
	}
	_, err := netip.ParseAddr(host)
	return err == nil
}

func isLetter(c byte) bool { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }

func isDigit(c byte) bool { return '0' <= c && c <= '9' }
