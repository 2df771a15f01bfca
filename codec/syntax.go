package codec

import (
	"net/url"
	"strings"
)

// The lexical rules of HTTP/1.1 (RFC 7230) and of a URL's query (RFC 3986)
// that the upgrade request is read with.

// hasToken reports whether the comma-separated list v holds token,
// compared case-insensitively (RFC 7230 §7).
func hasToken(v, token string) bool {
	for v != "" {
		var t string
		t, v, _ = strings.Cut(v, ",")
		if strings.EqualFold(trimOWS(t), token) {
			return true
		}
	}
	return false
}

// trimOWS drops optional whitespace, spaces and tabs, around s (RFC 7230 §3.2.3).
func trimOWS(s string) string {
	return strings.Trim(s, " \t")
}

// isToken reports whether s is an RFC 7230 §3.2.6 token.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !tokenChars[s[i]] {
			return false
		}
	}
	return true
}

// isTarget reports whether s holds only visible ASCII, as a request target
// must (RFC 3986 §2, RFC 7230 §3.1.1).
func isTarget(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] >= 0x7f {
			return false
		}
	}
	return true
}

// isFieldValue reports whether s has no control characters other than tab
// (RFC 7230 §3.2). Bytes above 0x7f (obs-text) are allowed.
func isFieldValue(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < ' ' && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}

// tokenChars marks the tchar bytes of RFC 7230 §3.2.6.
var tokenChars = func() (t [256]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
		t[c-'a'+'A'] = true
	}
	for _, c := range "!#$%&'*+-.^_`|~" {
		t[c] = true
	}
	return t
}()

// QueryValue returns the percent-decoded value of the first name parameter in
// rawQuery ("a=1&b=2", RFC 3986 §3.4, with "+" as space), or "" when it is
// absent or its value is not validly escaped.
func QueryValue(rawQuery, name string) string {
	for rawQuery != "" {
		var pair string
		pair, rawQuery, _ = strings.Cut(rawQuery, "&")
		k, v, _ := strings.Cut(pair, "=")
		if strings.ContainsAny(k, "%+") {
			dk, err := url.QueryUnescape(k)
			if err != nil {
				continue
			}
			k = dk
		}
		if k != name {
			continue
		}
		dv, err := url.QueryUnescape(v)
		if err != nil {
			return ""
		}
		return dv
	}
	return ""
}
