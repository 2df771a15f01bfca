package redisbroker

import (
	"time"

	"github.com/redis/rueidis"
)

// A node that loads an app for the first time says hello on its bus, and
// every other node answers with its full counts of the app. Answers are
// sent by the maintenance, off the bus, at most once per helloGap an app:
// a flood of hellos costs a node a bounded rate of answers.

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
	if len(m.answered) > 2*len(b.appList()) {
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
		a := b.appByID(st.Apps[i].App)
		if a == nil {
			continue // removed by a reload since
		}
		for _, cmd := range b.countsCmds(c, a, &st.Apps[i].Counts) {
			b.queue(op{cmd: cmd}, true)
		}
	}
}
