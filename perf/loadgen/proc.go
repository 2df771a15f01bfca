package main

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// rssOf reads a memory field ("VmRSS", "VmHWM") of /proc/<pid>/status in
// bytes; pid may be "self".
func rssOf(pid, field string) (int64, error) {
	b, err := os.ReadFile("/proc/" + pid + "/status")
	if err != nil {
		return 0, err
	}
	for line := range bytes.Lines(b) {
		k, v, ok := bytes.Cut(line, []byte(":"))
		if !ok || string(k) != field {
			continue
		}
		f := strings.Fields(string(v))
		if len(f) != 2 || f[1] != "kB" {
			return 0, fmt.Errorf("%s: unexpected %q", field, v)
		}
		kb, err := strconv.ParseInt(f[0], 10, 64)
		return kb * 1024, err
	}
	return 0, fmt.Errorf("/proc/%s/status: no %s", pid, field)
}

// cpuSeconds returns the user+system CPU time of pid from /proc/<pid>/stat,
// assuming the kernel's usual 100 clock ticks per second.
func cpuSeconds(pid int) (float64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	// The command name may hold spaces; fields count from after its ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: no ')'", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	// After ')': state is field 3 of stat(5); utime is 14, stime 15.
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: short", pid)
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("/proc/%d/stat: bad times", pid)
	}
	return float64(ut+st) / 100, nil
}

// serverProbe samples the server process named by -pid.
type serverProbe struct{ pid int }

func (p serverProbe) rss() int64 {
	if p.pid == 0 {
		return 0
	}
	n, _ := rssOf(strconv.Itoa(p.pid), "VmRSS")
	return n
}

func (p serverProbe) cpu() float64 {
	if p.pid == 0 {
		return 0
	}
	s, _ := cpuSeconds(p.pid)
	return s
}
