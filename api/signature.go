package api

import (
	"bytes"
	"crypto/hmac"
	"crypto/md5"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"hash"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/revurb/revurb/pusher"
)

// maxClockSkew is how far auth_timestamp may be from the server's clock
// (Pusher HTTP API: authentication, "within 600 seconds").
const maxClockSkew = 600

// param is one query parameter: its key lower-cased, its value
// unescaped. Both alias the request's query args or a lower-cased copy.
type param struct{ key, value []byte }

// authenticate checks the signed query of an HTTP API request for app
// (Pusher HTTP API: generating authentication signatures). It returns ""
// when the request is authentic, else the reason to answer 401 with.
//
// The signature is hex HMAC-SHA256, with the app secret, of
// METHOD "\n" PATH "\n" QUERY, where QUERY is every parameter but
// auth_signature, keys lower-cased, sorted by key, joined k=v with '&' and
// values unescaped, as the Pusher server SDKs build it. PATH is the path as
// sent; when it holds percent escapes, the decoded path is accepted too,
// since SDKs sign the path before their HTTP client escapes it.
//
// It works on the query's bytes in place and builds the signed string in a
// stack buffer: every trigger pays for it, so it stays off the allocator.
func authenticate(app *pusher.AppConfig, method []byte, path string, args *fasthttp.Args, body []byte, now time.Time) string {
	var pbuf [8]param
	params := pbuf[:0]
	var key, ts, version, bodyMD5, sig []byte
	var haveKey, haveTS, haveVersion, haveMD5, haveSig bool
	for k, v := range args.All() {
		p := param{key: lower(k), value: v}
		switch string(p.key) {
		case "auth_key":
			key, haveKey = p.value, true
		case "auth_timestamp":
			ts, haveTS = p.value, true
		case "auth_version":
			version, haveVersion = p.value, true
		case "body_md5":
			bodyMD5, haveMD5 = p.value, true
		case "auth_signature":
			if haveSig {
				return "Duplicate query parameter auth_signature"
			}
			sig, haveSig = p.value, true
			continue
		}
		params = append(params, p)
	}
	slices.SortStableFunc(params, func(a, b param) int { return bytes.Compare(a.key, b.key) })
	for i := 1; i < len(params); i++ {
		if bytes.Equal(params[i].key, params[i-1].key) {
			return "Duplicate query parameter " + string(params[i].key)
		}
	}

	switch {
	case !haveKey:
		return "Missing auth_key"
	case subtle.ConstantTimeCompare(key, []byte(app.Key)) != 1:
		return "Invalid auth_key"
	case !haveTS:
		return "Missing auth_timestamp"
	}
	t, err := strconv.ParseInt(string(ts), 10, 64)
	if err != nil {
		return "Invalid auth_timestamp: not an integer"
	}
	if d := now.Unix() - t; d > maxClockSkew || d < -maxClockSkew {
		return "Invalid auth_timestamp: more than 600 seconds from the server clock"
	}
	if haveVersion && string(version) != "1.0" {
		return "Invalid auth_version: only 1.0 is supported"
	}
	if len(body) > 0 && !haveMD5 {
		return "Missing body_md5"
	}
	if haveMD5 {
		sum := md5.Sum(body)
		var want [2 * md5.Size]byte
		hex.Encode(want[:], sum[:])
		if !bytes.EqualFold(bodyMD5, want[:]) {
			return "Invalid body_md5: it does not match the body"
		}
	}
	if !haveSig {
		return "Missing auth_signature"
	}

	var qbuf [512]byte
	query := qbuf[:0]
	for i, p := range params {
		if i > 0 {
			query = append(query, '&')
		}
		query = append(query, p.key...)
		query = append(query, '=')
		query = append(query, p.value...)
	}
	mac := hmac.New(sha256.New, []byte(app.Secret))
	if signatureMatches(mac, sig, method, path, query) {
		return ""
	}
	if strings.IndexByte(path, '%') >= 0 {
		if dec, err := url.PathUnescape(path); err == nil && signatureMatches(mac, sig, method, dec, query) {
			return ""
		}
	}
	// Like Pusher, say what was to be signed: it is public, and it is what a
	// client author needs to find their mistake.
	return `Invalid signature: expected the hex HMAC-SHA256 of "` + string(method) + `\n` + path + `\n` + string(query) + `"`
}

// signatureMatches reports, in constant time, whether sig (hex, either
// case) is the HMAC of METHOD "\n" PATH "\n" QUERY under mac.
func signatureMatches(mac hash.Hash, sig, method []byte, path string, query []byte) bool {
	mac.Reset()
	mac.Write(method)
	mac.Write(newline)
	mac.Write([]byte(path))
	mac.Write(newline)
	mac.Write(query)
	var sum [sha256.Size]byte
	var want [2 * sha256.Size]byte
	hex.Encode(want[:], mac.Sum(sum[:0]))
	if len(sig) != len(want) {
		return false
	}
	var got [2 * sha256.Size]byte
	for i, c := range sig {
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		got[i] = c
	}
	return subtle.ConstantTimeCompare(got[:], want[:]) == 1
}

var newline = []byte{'\n'}

// lower returns k in lower case, copying only when it has upper-case
// letters.
func lower(k []byte) []byte {
	for i, c := range k {
		if c >= 'A' && c <= 'Z' {
			out := append([]byte(nil), k...)
			for j := i; j < len(out); j++ {
				if c := out[j]; c >= 'A' && c <= 'Z' {
					out[j] = c + 'a' - 'A'
				}
			}
			return out
		}
	}
	return k
}
