package main

import (
	"strconv"
	"syscall"

	"github.com/revurb/revurb/api"
)

// fdBudget is how the process spends its file descriptors (RLIMIT_NOFILE).
// gnet's acceptor stops the whole engine when accept fails for want of a
// descriptor, and fasthttp stops serving, so the process must never run
// out: the WebSocket connections are capped below the limit, with a reserve
// for everything else — the API's connections, the listeners, Redis,
// webhook requests, the profiling listener, logs.
type fdBudget struct {
	limit   int // RLIMIT_NOFILE, its soft value after raising it to the hard one
	reserve int // kept for everything but WebSocket connections
	conns   int // WebSocket connections held at once, at most
	api     int // HTTP API connections open at once, at most
}

// raiseFDLimit raises the soft RLIMIT_NOFILE to the hard one and returns
// the new soft limit.
func raiseFDLimit() (int, error) {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return 0, err
	}
	if rl.Cur < rl.Max {
		raised := rl
		raised.Cur = rl.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &raised); err == nil {
			rl = raised
		}
	}
	return int(min(rl.Cur, 1<<30)), nil
}

// newFDBudget splits limit descriptors. The reserve is a sixteenth of the
// limit, at least 64 and at most 256 — so that 19,500 connections fit under
// a limit of 20,000 and 1,000 under one of 1,200 — or more if the API is
// given more connections than half of it. The API serves half the reserve
// by default and holds a quarter more at most (api.Descriptors: those
// waiting for a slot or being refused). maxConns and apiConns, when not 0,
// are the settings: maxConns is lowered to what the limit allows.
func newFDBudget(limit, maxConns, apiConns int) fdBudget {
	b := fdBudget{limit: limit, reserve: min(max(limit/16, 64), 256)}
	b.api = b.reserve / 2
	if apiConns > 0 {
		b.api = apiConns
		b.reserve = max(b.reserve, api.Descriptors(apiConns)+32)
	}
	b.conns = max(limit-b.reserve, 0)
	if maxConns > 0 && maxConns < b.conns {
		b.conns = maxConns
	}
	return b
}

func (b fdBudget) String() string {
	return "at most " + strconv.Itoa(b.conns) + " WebSocket and " + strconv.Itoa(b.api) +
		" HTTP API connections (RLIMIT_NOFILE " + strconv.Itoa(b.limit) + ", " +
		strconv.Itoa(b.reserve) + " kept for the API, Redis, webhooks and logs)"
}

// apiPerAddress is the cap on the API connections of one client address
// as api.Config takes it: the setting (0: no cap, given as -1), or by
// default an eighth of the API's connections and at most half the
// waiting triggers, so that one address holds neither every connection
// nor every waiter.
func apiPerAddress(setting *int, api, waiters int) int {
	switch {
	case setting == nil:
		return max(min(api/8, waiters/2), 1)
	case *setting <= 0:
		return -1
	}
	return *setting
}

// perAddrString says the per-address cap for the start log.
func perAddrString(perAddr int) string {
	if perAddr < 0 {
		return "; no cap on HTTP API connections per client address"
	}
	return "; at most " + strconv.Itoa(perAddr) + " HTTP API connections per client address"
}
