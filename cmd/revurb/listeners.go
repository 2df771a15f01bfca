package main

import (
	"bufio"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// sharedPorts returns those of ports on which a socket that is not this
// process's listens too. Both listeners use SO_REUSEPORT, so a second revurb
// binds the same ports without an error: during a rolling restart that is
// the point, otherwise it is a mistake the operator should hear of, as the
// kernel then shares new connections between the two. It reads
// /proc/net/tcp{,6} and this process's descriptors (Linux).
func sharedPorts(ports []int) ([]int, error) {
	want := map[int]bool{}
	for _, p := range ports {
		want[p] = true
	}
	// The listening sockets first, this process's own after: a listener
	// this process opens meanwhile is then in both, never taken for
	// another process's.
	listening := map[string]int{} // inode → port
	for _, table := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		f, err := os.Open(table)
		if err != nil {
			continue // no IPv6
		}
		sc := bufio.NewScanner(f)
		sc.Scan() // the header line
		for sc.Scan() {
			// sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
			fields := strings.Fields(sc.Text())
			if len(fields) < 10 || fields[3] != "0A" { // 0A: LISTEN
				continue
			}
			i := strings.LastIndexByte(fields[1], ':')
			port, err := strconv.ParseUint(fields[1][i+1:], 16, 16)
			if err != nil || !want[int(port)] {
				continue
			}
			listening[fields[9]] = int(port)
		}
		f.Close()
	}
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return nil, err
	}
	for _, fd := range fds {
		if link, err := os.Readlink(filepath.Join("/proc/self/fd", fd.Name())); err == nil {
			if inode, ok := strings.CutPrefix(link, "socket:["); ok {
				delete(listening, strings.TrimSuffix(inode, "]"))
			}
		}
	}
	shared := map[int]bool{}
	for _, port := range listening {
		shared[port] = true
	}
	var out []int
	for _, p := range ports {
		if shared[p] {
			out = append(out, p)
		}
	}
	return out, nil
}
