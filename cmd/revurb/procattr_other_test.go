//go:build !linux

package main

import "syscall"

// childProcAttr has no parent-death signal outside Linux; t.Cleanup stops
// the children.
func childProcAttr() *syscall.SysProcAttr { return nil }
