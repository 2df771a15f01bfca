package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// profiler takes the server's profiles from its net/http/pprof listener
// (revurb start --pprof ADDR): a CPU profile that starts with the load, and
// once the deliveries are in, heap and allocs profiles while the sockets
// are still open.
type profiler struct {
	base   string // http://ADDR/debug/pprof/
	dir    string
	secs   int
	cpu    chan error // the CPU profile's result
	client *http.Client
}

// startProfile starts the CPU profile of secs seconds into dir/cpu.pprof.
func startProfile(addr, dir string, secs int) (*profiler, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	p := &profiler{
		base:   "http://" + addr + "/debug/pprof/",
		dir:    dir,
		secs:   secs,
		cpu:    make(chan error, 1),
		client: &http.Client{Timeout: time.Duration(secs)*time.Second + 30*time.Second},
	}
	go func() { p.cpu <- p.fetch("profile?seconds="+strconv.Itoa(secs), "cpu.pprof") }()
	return p, nil
}

// finish waits for the CPU profile (it ends secs seconds after it
// started, which may be after the load), then takes the heap profile
// (after a GC, so in-use figures are live memory) and the allocs profile.
// It returns the files written and what went wrong.
func (p *profiler) finish() (files, problems []string) {
	timer := time.NewTimer(time.Duration(p.secs)*time.Second + 40*time.Second)
	defer timer.Stop()
	select {
	case err := <-p.cpu:
		if err != nil {
			problems = append(problems, err.Error())
		} else {
			files = append(files, filepath.Join(p.dir, "cpu.pprof"))
		}
	case <-timer.C:
		problems = append(problems, "CPU profile did not arrive in time")
	}
	for _, f := range []struct{ query, file string }{
		{"heap?gc=1", "heap.pprof"},
		{"allocs", "allocs.pprof"},
	} {
		if err := p.fetch(f.query, f.file); err != nil {
			problems = append(problems, err.Error())
		} else {
			files = append(files, filepath.Join(p.dir, f.file))
		}
	}
	return files, problems
}

// fetch GETs base+query into dir/file.
func (p *profiler) fetch(query, file string) error {
	req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, p.base+query, nil)
	if err != nil {
		return err
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return fmt.Errorf("pprof %s: %v", query, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 256<<20))
	if err != nil {
		return fmt.Errorf("pprof %s: %v", query, err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("pprof %s: HTTP %d %s", query, resp.StatusCode, truncate(string(body), 100))
	}
	return os.WriteFile(filepath.Join(p.dir, file), body, 0o644)
}
