package codec

import (
	"bytes"
	"encoding/json"
	"math/rand"
	"strings"
	"testing"
	"unicode/utf8"
)

// jsonReference is encoding/json's encoding of s, without HTML escaping.
func jsonReference(t *testing.T, s string) string {
	t.Helper()
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(s); err != nil {
		t.Fatal(err)
	}
	return strings.TrimSuffix(b.String(), "\n")
}

func TestAppendJSONString(t *testing.T) {
	cases := map[string]string{
		"empty":        "",
		"plain":        "hello world",
		"quotes":       `say "hi" \ bye`,
		"controls":     "a\x00b\x01\n\r\t\x1f",
		"del":          "x\x7fy",
		"unicode":      "héllo 世界 🎉",
		"separators":   "a\u2028b\u2029c",
		"invalid utf8": "a\xffb\xc3",
		"html":         "<script>&</script>",
	}
	for name, s := range cases {
		t.Run(name, func(t *testing.T) {
			got := string(AppendJSONString([]byte("x"), s))[1:]
			var back string
			if err := json.Unmarshal([]byte(got), &back); err != nil {
				t.Fatalf("%q is not a JSON string: %v", got, err)
			}
			if utf8.ValidString(s) && back != s {
				t.Fatalf("round trip %q → %q → %q", s, got, back)
			}
			if want := jsonReference(t, s); s != "x\x7fy" && got != want {
				t.Fatalf("AppendJSONString(%q) = %s, encoding/json says %s", s, got, want)
			}
		})
	}
}

func TestAppendJSONStringRandom(t *testing.T) {
	r := rand.New(rand.NewSource(1))
	for i := 0; i < 2000; i++ {
		b := make([]byte, r.Intn(40))
		for j := range b {
			b[j] = byte(r.Intn(256))
		}
		s := string(b)
		got := AppendJSONString(nil, s)
		var back string
		if err := json.Unmarshal(got, &back); err != nil {
			t.Fatalf("%q encoded as %q: %v", s, got, err)
		}
		if want := strings.ToValidUTF8(s, "\ufffd"); utf8.ValidString(s) && back != want {
			t.Fatalf("%q round-tripped to %q", s, back)
		}
	}
}
