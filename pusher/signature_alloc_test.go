//go:build !race

package pusher

import "testing"

// TestSignerAllocs: signing and checking a signature allocate nothing, so
// that the API's check of every trigger stays off the allocator.
func TestSignerAllocs(t *testing.T) {
	msg := []byte("POST\n/apps/app-id/events\nauth_key=app-key&auth_timestamp=1353088179&auth_version=1.0")
	sig := []byte(Sign("app-secret", string(msg)))
	var buf [SignatureLen]byte
	allocs := testing.AllocsPerRun(1000, func() {
		s := AcquireSigner("app-secret")
		s.Write(msg)
		s.AppendSum(buf[:0])
		s.Reset("app-secret")
		s.Write(msg)
		if !s.Matches(sig) {
			t.Fatal("no match")
		}
		ReleaseSigner(s)
	})
	if allocs != 0 {
		t.Fatalf("a signature allocates %.1f times, want 0", allocs)
	}
}
