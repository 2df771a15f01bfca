package main

import "syscall"

// childProcAttr makes a child die with the test binary, so a killed `go test`
// leaves no revurb or node process behind.
func childProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
