package codec

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the current output")

func TestAcceptKey(t *testing.T) {
	if got := AcceptKey(rfcKey); got != rfcAccept {
		t.Errorf("AcceptKey(%q) = %q, want %q (RFC 6455 §1.3)", rfcKey, got, rfcAccept)
	}
	long := strings.Repeat("k", 200)
	if got, want := AcceptKey(long), AcceptKey(long); got != want || len(got) != 28 {
		t.Errorf("AcceptKey of a long key = %q", got)
	}
}

// golden compares got with testdata/name.golden, rewriting it under -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs:\n got %q\nwant %q", path, got, want)
	}
}

func TestAppendUpgradeResponse(t *testing.T) {
	prefix := []byte("kept")
	got := AppendUpgradeResponse(prefix, rfcKey)
	if !bytes.HasPrefix(got, prefix) {
		t.Fatalf("dst prefix lost: %q", got)
	}
	golden(t, "upgrade_response", got[len(prefix):])
	if !bytes.Contains(got, []byte("Sec-WebSocket-Accept: "+rfcAccept+"\r\n")) {
		t.Errorf("no RFC 6455 §1.3 accept value in %q", got)
	}
}

func TestAppendHTTPError(t *testing.T) {
	tests := []struct {
		name   string
		status int
		reason string
	}{
		{name: "400", status: 400, reason: `invalid Sec-WebSocket-Key "abc"`},
		{name: "405", status: 405, reason: `method "POST" not allowed, use GET`},
		{name: "426", status: 426, reason: `unsupported Sec-WebSocket-Version "8", use 13`},
		{name: "431", status: 431, reason: "request header block larger than 8192 bytes"},
		{name: "escaping", status: 400, reason: "quote \" backslash \\ newline \n tab \t nul \x00 del \x7f bad \xff sep \u2028 é"},
		{name: "unknown status", status: 599, reason: "x"},
		{name: "status out of range", status: 42, reason: "x"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := AppendHTTPError(nil, tt.status, tt.reason)
			golden(t, "http_error_"+strings.ReplaceAll(tt.name, " ", "_"), got)

			head, body, ok := bytes.Cut(got, []byte("\r\n\r\n"))
			if !ok {
				t.Fatalf("no header end in %q", got)
			}
			if !bytes.Contains(head, []byte("\r\nContent-Length: "+strconv.Itoa(len(body))+"\r\n")) {
				t.Errorf("Content-Length does not match the %d-byte body: %q", len(body), head)
			}
			var v struct{ Error string }
			if err := json.Unmarshal(body, &v); err != nil {
				t.Fatalf("body %q is not JSON: %v", body, err)
			}
			if want := strings.ToValidUTF8(tt.reason, "\ufffd"); v.Error != want {
				t.Errorf("body error %q, want %q", v.Error, want)
			}
		})
	}
}

func TestAppendHTTPErrorForEveryParseError(t *testing.T) {
	for _, status := range []int{400, 405, 426, 431} {
		got := AppendHTTPError(nil, status, "r")
		line := "HTTP/1.1 " + strconv.Itoa(status) + " " + statusText(status) + "\r\n"
		if !bytes.HasPrefix(got, []byte(line)) || statusText(status) == "" {
			t.Errorf("%d: status line %q", status, got)
		}
		if has := bytes.Contains(got, []byte("\r\nSec-WebSocket-Version: 13\r\n")); has != (status == 426) {
			t.Errorf("%d: Sec-WebSocket-Version header present=%v", status, has)
		}
	}
}

func TestHTTPErrorError(t *testing.T) {
	e := &HTTPError{Status: 426, Reason: "no upgrade"}
	if got, want := e.Error(), "codec: handshake: 426 Upgrade Required: no upgrade"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}
