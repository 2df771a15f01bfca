package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"testing"
	"time"
)

// scenario is a Node scenario that talks while it runs: it prints a line
// when it reaches a step, the test answers on its stdin once it has done
// its part, and the last line is the observations, as runNode's are.
type scenario struct {
	t      *testing.T
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	lines  chan string
	stderr syncBuffer
	last   string
}

// startScenario runs testdata/script with env added to the environment,
// for at most timeout.
func startScenario(t *testing.T, script string, env map[string]string, timeout time.Duration) *scenario {
	t.Helper()
	node := needNode(t)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	t.Cleanup(cancel)
	s := &scenario{t: t, lines: make(chan string, 1024)}
	s.cmd = exec.CommandContext(ctx, node, script)
	s.cmd.Dir = "testdata"
	s.cmd.Env = os.Environ()
	for k, v := range env {
		s.cmd.Env = append(s.cmd.Env, k+"="+v)
	}
	s.cmd.SysProcAttr = childProcAttr()
	s.cmd.WaitDelay = 2 * time.Second
	var err error
	if s.stdin, err = s.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	stdout, err := s.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	s.cmd.Stderr = &s.stderr
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 1<<20), 16<<20)
		for sc.Scan() {
			s.lines <- sc.Text()
		}
		close(s.lines)
	}()
	t.Cleanup(func() { _ = s.cmd.Process.Kill(); _ = s.cmd.Wait() })
	return s
}

// next returns the scenario's next line, failing the test at its end.
func (s *scenario) next() string {
	s.t.Helper()
	l, ok := <-s.lines
	if !ok {
		s.t.Fatalf("scenario ended early; last line %q; stderr:\n%s", s.last, s.stderr.String())
	}
	s.last = l
	return l
}

// await reads lines until one is step.
func (s *scenario) await(step string) {
	s.t.Helper()
	for s.next() != step {
	}
}

// say writes line on the scenario's stdin.
func (s *scenario) say(line string) {
	s.t.Helper()
	if _, err := io.WriteString(s.stdin, line+"\n"); err != nil {
		s.t.Fatal(err)
	}
}

// result waits for the scenario's end and reads its observations, its
// last line, into obs.
func (s *scenario) result(obs any) {
	s.t.Helper()
	var final string
	for l := range s.lines {
		final = l
	}
	err := s.cmd.Wait()
	if jerr := json.Unmarshal([]byte(final), obs); jerr != nil || err != nil {
		s.t.Fatalf("scenario: %v; last line %q (%v)\nstderr:\n%s", err, final, jerr, s.stderr.String())
	}
	if testing.Verbose() {
		s.t.Logf("observed: %s", final)
	}
}
