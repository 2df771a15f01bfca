package main

import (
	"encoding/json"
	"math"
	"math/bits"
	"sync/atomic"
	"time"
)

// Histogram geometry: values are microseconds. Below 2^subBits a bucket holds
// one value; above, every power of two is split into 2^(subBits-1) buckets,
// so a bucket's width is at most 1/64 of its lower bound (≤1.6% error), the
// way HdrHistogram bounds its error.
const (
	subBits  = 7
	subCount = 1 << subBits // 128
	subHalf  = subCount / 2 // 64
	nBuckets = subCount + (64-subBits)*subHalf
)

// hist is a latency histogram safe for concurrent record calls: thousands of
// connection goroutines record into one hist with atomic adds instead of
// keeping a sample slice each. It merges exactly across processes because
// children send their buckets, not their percentiles.
type hist struct {
	counts [nBuckets]atomic.Uint64
	n      atomic.Uint64
	sum    atomic.Uint64 // microseconds
	max    atomic.Uint64 // microseconds
	min    atomic.Uint64 // microseconds + 1; 0 means no sample yet
}

// bucketOf returns the bucket index of v microseconds.
func bucketOf(v uint64) int {
	if v < subCount {
		return int(v)
	}
	shift := bits.Len64(v) - subBits
	return subCount + (shift-1)*subHalf + int(v>>uint(shift)) - subHalf
}

// bucketRange returns the smallest value of bucket i and its width.
func bucketRange(i int) (lo, width uint64) {
	if i < subCount {
		return uint64(i), 1
	}
	shift := uint((i-subCount)/subHalf + 1)
	j := uint64((i-subCount)%subHalf + subHalf)
	return j << shift, 1 << shift
}

// record adds one duration; negative durations (clock steps) count as zero.
func (h *hist) record(d time.Duration) {
	us := uint64(0)
	if d > 0 {
		us = uint64(d / time.Microsecond)
	}
	h.counts[bucketOf(us)].Add(1)
	h.n.Add(1)
	h.sum.Add(us)
	for {
		m := h.max.Load()
		if us <= m || h.max.CompareAndSwap(m, us) {
			break
		}
	}
	for {
		m := h.min.Load()
		if (m != 0 && us+1 >= m) || h.min.CompareAndSwap(m, us+1) {
			break
		}
	}
}

// count returns the number of samples.
func (h *hist) count() uint64 { return h.n.Load() }

// quantile returns the q-quantile (0..1) in microseconds: the middle of the
// bucket holding it, clamped to the exact min and max.
func (h *hist) quantile(q float64) float64 {
	n := h.n.Load()
	if n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(n)))
	if rank < 1 {
		rank = 1
	}
	var seen uint64
	for i := range h.counts {
		seen += h.counts[i].Load()
		if seen >= rank {
			lo, w := bucketRange(i)
			v := float64(lo) + float64(w-1)/2
			if mx := float64(h.max.Load()); v > mx {
				v = mx
			}
			if mn := h.min.Load(); mn > 0 && v < float64(mn-1) {
				v = float64(mn - 1)
			}
			return v
		}
	}
	return float64(h.max.Load())
}

// merge adds o's samples to h.
func (h *hist) merge(o *hist) {
	if o == nil {
		return
	}
	for i := range o.counts {
		if c := o.counts[i].Load(); c != 0 {
			h.counts[i].Add(c)
		}
	}
	h.n.Add(o.n.Load())
	h.sum.Add(o.sum.Load())
	if m := o.max.Load(); m > h.max.Load() {
		h.max.Store(m)
	}
	if m := o.min.Load(); m != 0 && (h.min.Load() == 0 || m < h.min.Load()) {
		h.min.Store(m)
	}
}

// histJSON is the wire form of a hist: a summary in milliseconds for people
// and scripts, and the sparse buckets for merging.
type histJSON struct {
	Count   uint64      `json:"count"`
	MinMs   float64     `json:"min_ms"`
	MeanMs  float64     `json:"mean_ms"`
	P50Ms   float64     `json:"p50_ms"`
	P90Ms   float64     `json:"p90_ms"`
	P99Ms   float64     `json:"p99_ms"`
	P999Ms  float64     `json:"p999_ms"`
	MaxMs   float64     `json:"max_ms"`
	SumUs   uint64      `json:"sum_us"`
	MinUs   uint64      `json:"min_us"`
	MaxUs   uint64      `json:"max_us"`
	Buckets [][2]uint64 `json:"buckets,omitempty"`
}

// MarshalJSON implements json.Marshaler.
func (h *hist) MarshalJSON() ([]byte, error) {
	n := h.n.Load()
	j := histJSON{Count: n, SumUs: h.sum.Load(), MaxUs: h.max.Load()}
	if m := h.min.Load(); m > 0 {
		j.MinUs = m - 1
	}
	if n > 0 {
		j.MinMs = float64(j.MinUs) / 1e3
		j.MeanMs = float64(j.SumUs) / float64(n) / 1e3
		j.P50Ms = h.quantile(0.50) / 1e3
		j.P90Ms = h.quantile(0.90) / 1e3
		j.P99Ms = h.quantile(0.99) / 1e3
		j.P999Ms = h.quantile(0.999) / 1e3
		j.MaxMs = float64(j.MaxUs) / 1e3
	}
	for i := range h.counts {
		if c := h.counts[i].Load(); c != 0 {
			j.Buckets = append(j.Buckets, [2]uint64{uint64(i), c})
		}
	}
	return json.Marshal(j)
}

// UnmarshalJSON implements json.Unmarshaler; only the buckets and exact
// fields are read, the summary is recomputed.
func (h *hist) UnmarshalJSON(b []byte) error {
	var j histJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	for _, bc := range j.Buckets {
		if bc[0] < nBuckets {
			h.counts[bc[0]].Store(bc[1])
		}
	}
	h.n.Store(j.Count)
	h.sum.Store(j.SumUs)
	h.max.Store(j.MaxUs)
	if j.Count > 0 {
		h.min.Store(j.MinUs + 1)
	}
	return nil
}
