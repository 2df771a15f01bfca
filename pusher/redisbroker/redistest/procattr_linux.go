package redistest

import "syscall"

// procAttr kills redis-server when the test binary dies, however it dies.
func procAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} }
