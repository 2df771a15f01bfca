package redisbroker

import (
	"time"

	"github.com/redis/rueidis"
)

// Bounds of the answers to hellos.
const (
	helloGap   = time.Second // between two answers to hellos of the same app
	helloBatch = 256         // apps whose hellos are answered per maintenance turn
)

// owe notes that a node said hello on app's bus.
func (m *maintenance) owe(app string) {
	m.mu.Lock()
	m.hellos[app] = true
	m.mu.Unlock()
}

// answerHellos sends the full counts of the apps whose bus carried a
// hello, each at most once per helloGap and helloBatch apps per turn:
// however many hellos come, a node answers at a bounded rate.
func (b *Broker) answerHellos(c rueidis.Client) {
	m := &b.maint
	m.mu.Lock()
	var ids []string
	now := time.Now()
	for id := range m.hellos {
		if len(ids) == helloBatch {
			break
		}
		if now.Sub(m.answered[id]) >= helloGap {
			ids = append(ids, id)
			delete(m.hellos, id)
			m.answered[id] = now
		}
	}
	if len(m.answered) > 2*len(b.apps) {
		for id, t := range m.answered {
			if now.Sub(t) >= helloGap {
				delete(m.answered, id)
			}
		}
	}
	m.mu.Unlock()
	if len(ids) == 0 {
		return
	}
	st := b.cluster.State(ids...)
	for i := range st.Apps {
		for _, cmd := range b.countsCmds(c, b.byID[st.Apps[i].App], &st.Apps[i].Counts) {
			b.queue(op{cmd: cmd}, true)
		}
	}
}
