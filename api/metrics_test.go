package api

import (
	"testing"

	"github.com/revurb/revurb/pusher"
)

// TestMetricsKnownLabels: before anything happened, every close code has
// a series at 0, without a transport source too, and a code the loops
// report that is not among the known ones gets a series as well.
func TestMetricsKnownLabels(t *testing.T) {
	tests := []struct {
		name string
		src  Sources
		want map[string]float64 // code → value; the other known codes 0
	}{
		{name: "no_source", want: map[string]float64{}},
		{name: "counted", src: Sources{Transport: func() pusher.TransportStats {
			return pusher.TransportStats{Closed: map[string]uint64{"4200": 3, "4999": 1}}
		}}, want: map[string]float64{"4200": 3, "4999": 1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, Config{Sources: tc.src})
			families, err := f.api.metrics.reg.Gather()
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]float64{}
			for _, fam := range families {
				if fam.GetName() != "revurb_connections_closed_total" {
					continue
				}
				for _, m := range fam.GetMetric() {
					got[m.GetLabel()[0].GetValue()] = m.GetCounter().GetValue()
				}
			}
			want := map[string]float64{}
			for _, code := range closeCodes {
				want[code] = 0
			}
			for code, v := range tc.want {
				want[code] = v
			}
			if len(got) != len(want) {
				t.Errorf("series %v, want %v", got, want)
			}
			for code, v := range want {
				if g, ok := got[code]; !ok || g != v {
					t.Errorf("code %s: %v (present %v), want %v", code, g, ok, v)
				}
			}
		})
	}
}
