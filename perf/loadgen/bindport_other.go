//go:build !linux

package main

import (
	"errors"
	"syscall"
)

// bindNoPort fails: IP_BIND_ADDRESS_NO_PORT is Linux's.
func bindNoPort(_, _ string, _ syscall.RawConn) error {
	return errors.New("-bind-no-port needs Linux")
}
