package redisbroker

import (
	"slices"
	"testing"
)

// TestNodeView: a node of the heartbeat set is taken; one gone from it is
// refused; one not in it yet is taken on trust if its message is newer
// than the last read, until reads go on lacking it; an old message of an
// unknown node is refused.
func TestNodeView(t *testing.T) {
	var v nodeView
	v.init()
	const s = 1000 // ms
	if forget := v.update(map[string]int64{"a": 10 * s, "b": 10 * s}, 10*s, 10*s); len(forget) != 0 {
		t.Fatalf("forgot %v", forget)
	}
	for _, tc := range []struct {
		name string
		node string
		at   int64
		want bool
	}{
		{"known", "a", 1, true},
		{"unknown, after the read", "new", 11 * s, true},
		{"the same again", "new", 1, true},
		{"unknown, long before the read", "old", 1 * s, false},
	} {
		if got := v.allow(tc.node, tc.at, 11*s); got != tc.want {
			t.Errorf("%s: allow %v", tc.name, got)
		}
	}
	// b leaves the set; "new" is still not in it a second later.
	if forget := v.update(map[string]int64{"a": 12 * s}, 12*s, 12*s); !slices.Equal(forget, []string{"b"}) {
		t.Fatalf("forgot %v, want b", forget)
	}
	if v.allow("b", 13*s, 13*s) {
		t.Error("a node gone is taken")
	}
	if !v.allow("new", 13*s, 13*s) {
		t.Error("a node on trust refused within pendingFor")
	}
	// Three seconds on, still not in the set: forgotten, not gone.
	if forget := v.update(map[string]int64{"a": 15 * s}, 15*s, 15*s); !slices.Equal(forget, []string{"new"}) {
		t.Fatalf("forgot %v, want new", forget)
	}
	if !v.allow("new", 16*s, 16*s) {
		t.Error("a node forgotten on trust may come back")
	}
	if !v.goodbye("a", 16*s) || v.goodbye("a", 16*s) || v.allow("a", 17*s, 17*s) {
		t.Error("goodbye")
	}
	if dead := v.dead(20 * s); len(dead) != 0 {
		t.Errorf("dead %v after a's goodbye", dead)
	}
}
