package codec

import (
	"testing"
)

func TestQueryValue(t *testing.T) {
	tests := []struct {
		name, query, key, want string
	}{
		{name: "first", query: "protocol=7&client=js", key: "protocol", want: "7"},
		{name: "last", query: "protocol=7&client=js", key: "client", want: "js"},
		{name: "absent", query: "protocol=7", key: "client", want: ""},
		{name: "empty query", query: "", key: "a", want: ""},
		{name: "no value", query: "flag&a=1", key: "flag", want: ""},
		{name: "empty value", query: "a=&b=2", key: "a", want: ""},
		{name: "first of repeated", query: "a=1&a=2", key: "a", want: "1"},
		{name: "percent-decoded", query: "v=8.4.0%2Bx%20y", key: "v", want: "8.4.0+x y"},
		{name: "plus is space", query: "q=a+b", key: "q", want: "a b"},
		{name: "encoded key", query: "my%20key=v", key: "my key", want: "v"},
		{name: "equals in value", query: "a=b=c", key: "a", want: "b=c"},
		{name: "empty pairs", query: "&&a=1&", key: "a", want: "1"},
		{name: "prefix is not a match", query: "protocolx=1&protocol=2", key: "protocol", want: "2"},
		{name: "invalid escape", query: "a=%zz", key: "a", want: ""},
		{name: "invalid escape in other key", query: "%zz=1&a=2", key: "a", want: "2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := QueryValue(tt.query, tt.key); got != tt.want {
				t.Errorf("QueryValue(%q, %q) = %q, want %q", tt.query, tt.key, got, tt.want)
			}
		})
	}
}
