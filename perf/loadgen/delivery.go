package main

import (
	"bytes"
	"math/bits"
	"strconv"
)

// eventData is what every load event carries in its data, written by
// appendData as "t=<unix nanos>;i=<id>;pub=<publisher>;seq=<n>" and padded
// with ";p=xxx…":
//   - t: the send time, taken before the request (or client event) is
//     written, so that time spent waiting in the server counts;
//   - i: the event id, unique in the run (fanout: 0..events-1 over all
//     publishers; client-events: 0..events-1 per sender);
//   - pub, seq: the publisher and its own running number, 0, 1, 2, … in the
//     order it sent them. A socket must see each publisher's events in
//     increasing seq; events of different publishers may interleave.
type eventData struct {
	t, id, pub, seq int64
}

// appendData appends d as event data padded to size bytes.
func appendData(dst []byte, d eventData, size int) []byte {
	start := len(dst)
	dst = append(dst, "t="...)
	dst = strconv.AppendInt(dst, d.t, 10)
	dst = append(dst, ";i="...)
	dst = strconv.AppendInt(dst, d.id, 10)
	dst = append(dst, ";pub="...)
	dst = strconv.AppendInt(dst, d.pub, 10)
	dst = append(dst, ";seq="...)
	dst = strconv.AppendInt(dst, d.seq, 10)
	if pad := size - (len(dst) - start); pad > 3 {
		dst = append(dst, ";p="...)
		for range pad - 3 {
			dst = append(dst, 'x')
		}
	}
	return dst
}

// Markers of the data fields, in the order appendData writes them.
var (
	markData = []byte(`"data"`)
	markT    = []byte("t=")
	markID   = []byte(";i=")
	markPub  = []byte(";pub=")
	markSeq  = []byte(";seq=")
)

// parseEventData finds the data of a server message holding a load event
// and reads its fields, scanning forward once: this runs for every
// delivery, so it neither decodes JSON nor allocates.
func parseEventData(p []byte) (eventData, bool) {
	var d eventData
	i := bytes.Index(p, markData)
	if i < 0 {
		return d, false
	}
	p = p[i+len(markData):]
	ok := true
	p, ok = scanField(p, markT, &d.t, ok)
	p, ok = scanField(p, markID, &d.id, ok)
	p, ok = scanField(p, markPub, &d.pub, ok)
	_, ok = scanField(p, markSeq, &d.seq, ok)
	if !ok {
		return d, false
	}
	return d, true
}

// scanField reads the decimal integer after the first mark in p into dst
// and returns the rest of p; once ok is false it does nothing.
func scanField(p, mark []byte, dst *int64, ok bool) ([]byte, bool) {
	if !ok {
		return p, false
	}
	i := bytes.Index(p, mark)
	if i < 0 {
		return p, false
	}
	p = p[i+len(mark):]
	var n int64
	j := 0
	for ; j < len(p) && p[j] >= '0' && p[j] <= '9'; j++ {
		n = n*10 + int64(p[j]-'0')
	}
	*dst = n
	return p[j:], j > 0
}

// outcome is what deliveryLog.observe made of one delivery.
type outcome int

const (
	delivered  outcome = iota // first delivery of a known event
	duplicate                 // an event this socket had already received
	unexpected                // an id or publisher outside the run
)

// deliveryLog is what one socket saw of the load: a bitset of the event
// ids it received (duplicates) and the last seq of each publisher
// (reorderings). It is used by one reader goroutine only.
type deliveryLog struct {
	seen       []uint64 // bit id: event id delivered
	last       []int64  // last seq per publisher; -1 before its first event
	outOfOrder int64    // deliveries with a lower seq than an earlier one of the same publisher
	duplicates int64
	unexpected int64
}

// observe records a delivery of d to a run of events ids from publishers
// publishers. A reordering still counts as delivered: the event arrived,
// only late.
func (l *deliveryLog) observe(d eventData, events, publishers int) outcome {
	if d.id < 0 || d.id >= int64(events) || d.pub < 0 || d.pub >= int64(publishers) {
		l.unexpected++
		return unexpected
	}
	if l.seen == nil {
		l.seen = make([]uint64, (events+63)/64)
		l.last = make([]int64, publishers)
		for i := range l.last {
			l.last[i] = -1
		}
	}
	bit := uint64(1) << (d.id % 64)
	if l.seen[d.id/64]&bit != 0 {
		l.duplicates++
		return duplicate
	}
	l.seen[d.id/64] |= bit
	if d.seq < l.last[d.pub] {
		l.outOfOrder++
	} else {
		l.last[d.pub] = d.seq
	}
	return delivered
}

// has reports whether event id was delivered.
func (l *deliveryLog) has(id int) bool {
	return l.seen != nil && id >= 0 && id/64 < len(l.seen) && l.seen[id/64]&(1<<(id%64)) != 0
}

// countIn returns how many events of set (a bitset of ids) were delivered.
func (l *deliveryLog) countIn(set []uint64) int64 {
	var n int
	for i := range min(len(l.seen), len(set)) {
		n += bits.OnesCount64(l.seen[i] & set[i])
	}
	return int64(n)
}

// bitsetOf returns ids in 0..n-1 as a bitset, nil when there are none.
func bitsetOf(ids []int, n int) []uint64 {
	if len(ids) == 0 {
		return nil
	}
	set := make([]uint64, (n+63)/64)
	for _, id := range ids {
		if id >= 0 && id < n {
			set[id/64] |= 1 << (id % 64)
		}
	}
	return set
}

// channelOf returns the index of the channel that fanout event id goes to:
// publishers cycle over the channels in id order.
func channelOf(id int64, channels int) int { return int(id % int64(channels)) }

// channelName returns the name of fanout channel j of n: the -channel name
// itself when there is one channel, else name-0 … name-(n-1).
func channelName(name string, j, n int) string {
	if n <= 1 {
		return name
	}
	return name + "-" + strconv.Itoa(j)
}

// expectedDeliveries is how many deliveries a set of sockets should get:
// every event answered 200 once per subscriber of its channel.
// subscribers[j] and published[j] count channel j.
func expectedDeliveries(subscribers []int64, published []int) int64 {
	var n int64
	for j, s := range subscribers {
		if j < len(published) {
			n += s * int64(published[j])
		}
	}
	return n
}
