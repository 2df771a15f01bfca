package api

import (
	"bytes"
	"crypto/md5"
	"crypto/subtle"
	"encoding/hex"
	"io"
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

// signedQuery is what authenticate reads of a request's query besides the
// parameters the signature covers: those it checks.
type signedQuery struct {
	key, ts, version, bodyMD5, sig                 []byte
	haveKey, haveTS, haveVersion, haveMD5, haveSig bool
}

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
// It works on the query's bytes in place and streams the signed string
// into a pooled pusher.Signer: every trigger pays for it, so it stays off
// the allocator.
func authenticate(app *pusher.AppConfig, method []byte, path string, args *fasthttp.Args, body []byte, now time.Time) string {
	// The parameters go in a stack buffer while they fit; they are passed
	// along, never stored in q: what is stored through a pointer escapes.
	var pbuf [8]param
	var q signedQuery
	params, msg := q.collect(pbuf[:0], args)
	if msg != "" {
		return msg
	}
	return q.verify(params, app, method, path, body, now)
}

// collect reads args: the parameters the signature covers, appended to
// params and sorted by key, and those it checks, into q. It refuses a
// parameter given twice (keys compared in lower case).
func (q *signedQuery) collect(params []param, args *fasthttp.Args) ([]param, string) {
	for k, v := range args.All() {
		p := param{key: lower(k), value: v}
		switch string(p.key) {
		case "auth_key":
			q.key, q.haveKey = p.value, true
		case "auth_timestamp":
			q.ts, q.haveTS = p.value, true
		case "auth_version":
			q.version, q.haveVersion = p.value, true
		case "body_md5":
			q.bodyMD5, q.haveMD5 = p.value, true
		case "auth_signature":
			if q.haveSig {
				return nil, "Duplicate query parameter auth_signature"
			}
			q.sig, q.haveSig = p.value, true
			continue
		}
		params = append(params, p)
	}
	slices.SortStableFunc(params, func(a, b param) int { return bytes.Compare(a.key, b.key) })
	for i := 1; i < len(params); i++ {
		if bytes.Equal(params[i].key, params[i-1].key) {
			return nil, "Duplicate query parameter " + string(params[i].key)
		}
	}
	return params, ""
}

// verify checks what collect read: the key, the clock, the version, the
// body's MD5, then the signature over params.
func (q *signedQuery) verify(params []param, app *pusher.AppConfig, method []byte, path string, body []byte, now time.Time) string {
	switch {
	case !q.haveKey:
		return "Missing auth_key"
	case subtle.ConstantTimeCompare(q.key, []byte(app.Key)) != 1:
		return "Invalid auth_key"
	case !q.haveTS:
		return "Missing auth_timestamp"
	}
	t, err := strconv.ParseInt(string(q.ts), 10, 64)
	if err != nil {
		return "Invalid auth_timestamp: not an integer"
	}
	if d := now.Unix() - t; d > maxClockSkew || d < -maxClockSkew {
		return "Invalid auth_timestamp: more than 600 seconds from the server clock"
	}
	if q.haveVersion && string(q.version) != "1.0" {
		return "Invalid auth_version: only 1.0 is supported"
	}
	if len(body) > 0 && !q.haveMD5 {
		return "Missing body_md5"
	}
	if q.haveMD5 {
		sum := md5.Sum(body)
		var want [2 * md5.Size]byte
		hex.Encode(want[:], sum[:])
		if !bytes.EqualFold(q.bodyMD5, want[:]) {
			return "Invalid body_md5: it does not match the body"
		}
	}
	if !q.haveSig {
		return "Missing auth_signature"
	}
	s := pusher.AcquireSigner(app.Secret)
	defer pusher.ReleaseSigner(s)
	if q.signs(s, params, method, path) {
		return ""
	}
	if strings.IndexByte(path, '%') >= 0 {
		if dec, err := url.PathUnescape(path); err == nil {
			s.Reset(app.Secret)
			if q.signs(s, params, method, dec) {
				return ""
			}
		}
	}
	// Like Pusher, say what was to be signed: it is public, and it is what a
	// client author needs to find their mistake.
	var query bytes.Buffer
	writeQuery(&query, params)
	return `Invalid signature: expected the hex HMAC-SHA256 of "` + string(method) + `\n` + path + `\n` + query.String() + `"`
}

// signs reports, in constant time, whether q's signature (hex, either
// case) is that of METHOD "\n" PATH "\n" QUERY, QUERY made of params,
// under s, which was reset with the app's secret.
func (q *signedQuery) signs(s *pusher.Signer, params []param, method []byte, path string) bool {
	s.Write(method)
	s.WriteString("\n")
	s.WriteString(path)
	s.WriteString("\n")
	writeQuery(s, params)
	return s.Matches(q.sig)
}

// writeQuery writes QUERY, params as signed: key=value joined with '&'.
func writeQuery(w io.Writer, params []param) {
	for i, p := range params {
		if i > 0 {
			w.Write(ampersand)
		}
		w.Write(p.key)
		w.Write(equals)
		w.Write(p.value)
	}
}

var ampersand, equals = []byte{'&'}, []byte{'='}

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
