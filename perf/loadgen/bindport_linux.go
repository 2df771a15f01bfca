package main

import "syscall"

// ipBindAddressNoPort is IP_BIND_ADDRESS_NO_PORT (linux/in.h): bind(2)
// takes the address only, and connect(2) picks the port, unique for the
// four-tuple only.
const ipBindAddressNoPort = 24

// bindNoPort is the net.Dialer Control of -bind-no-port: it runs before
// the dialer binds the source address.
func bindNoPort(_, _ string, c syscall.RawConn) error {
	var serr error
	if err := c.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_IP, ipBindAddressNoPort, 1)
	}); err != nil {
		return err
	}
	return serr
}
