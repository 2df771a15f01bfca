package main

import (
	"net"
	"syscall"
	"testing"
	"time"
)

// TestBindNoPort: with -bind-no-port a socket still leaves from its source
// address, and the option is set on it, so that connect chose its port.
func TestBindNoPort(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	from := make(chan net.Addr, 1)
	go func() {
		nc, err := ln.Accept()
		if err != nil {
			return
		}
		from <- nc.RemoteAddr()
		nc.Close()
	}()
	d := net.Dialer{LocalAddr: sourceAddr(7, 0), Control: bindNoPort, Timeout: 5 * time.Second}
	nc, err := d.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	raw, err := nc.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var v int
	var gerr error
	_ = raw.Control(func(fd uintptr) { v, gerr = syscall.GetsockoptInt(int(fd), syscall.IPPROTO_IP, ipBindAddressNoPort) })
	if gerr != nil || v != 1 {
		t.Errorf("IP_BIND_ADDRESS_NO_PORT = %d, %v; want 1", v, gerr)
	}
	if a := (<-from).(*net.TCPAddr); !a.IP.Equal(net.IPv4(127, 0, 0, 7)) || a.Port == 0 {
		t.Errorf("the server saw %v, want 127.0.0.7 and a port", a)
	}
}
