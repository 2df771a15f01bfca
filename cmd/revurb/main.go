// Command revurb is a Pusher-protocol WebSocket server.
//
//	revurb start [--host 0.0.0.0] [--port 8080] [--api-port 8081] [--config FILE] [--debug]
//	revurb version
package main

import (
	"context"
	"fmt"
	"log"
	"net"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/revurb/revurb/api"
	"github.com/revurb/revurb/loop"
	"github.com/revurb/revurb/pusher"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "0.1.0-dev"

const usage = `revurb is a Pusher-protocol WebSocket server.

Usage:
  revurb start [--host 0.0.0.0] [--port 8080] [--api-port 8081] [--config FILE] [--debug]
  revurb version
`

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	switch os.Args[1] {
	case "start":
		cfg, err := parseStart(os.Args[2:], os.Getenv)
		if err != nil {
			fmt.Fprintln(os.Stderr, "revurb:", err)
			os.Exit(2)
		}
		if err := run(cfg); err != nil {
			fmt.Fprintln(os.Stderr, "revurb:", err)
			os.Exit(1)
		}
	case "version", "--version", "-v":
		fmt.Println("revurb", version)
	default:
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
}

// run wires the protocol core, the event loops and the HTTP API, and serves
// until SIGINT or SIGTERM.
func run(cfg *config) error {
	// Catch the signals before anything listens: a client that connects at
	// once and a SIGTERM right after must still get the 4200 goodbye.
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	logger := log.New(os.Stderr, "revurb: ", log.LstdFlags)
	srv, err := pusher.NewServer(cfg.Apps, pusher.Options{
		Log: logger, Debug: cfg.Debug,
		PublishQueue: cfg.Server.PublishQueue, PublishWait: cfg.Server.PublishWait, PublishWaiters: cfg.Server.PublishWaiters,
	})
	if err != nil {
		return err
	}
	wsAddr := net.JoinHostPort(cfg.Host, strconv.Itoa(cfg.Port))
	apiAddr := net.JoinHostPort(cfg.Host, strconv.Itoa(cfg.APIPort))
	eng, err := loop.New(srv, loop.Config{Addr: wsAddr, Loops: cfg.Server.EventLoops, MaxOutbound: cfg.Server.MaxOutbound, Log: logger})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", apiAddr)
	if err != nil {
		return err
	}
	httpAPI := api.New(srv, api.Options{MaxBodySize: cfg.Server.MaxRequestBody, Log: logger, Debug: cfg.Debug})
	errc := make(chan error, 2)
	go func() { errc <- eng.Run() }()
	go func() { errc <- httpAPI.Serve(ln) }()
	select {
	case <-eng.Ready():
	case err := <-errc:
		return err
	}
	fmt.Printf("revurb %s listening: WebSockets ws://%s/app/{key}, HTTP API http://%s\n", version, wsAddr, apiAddr)
	for _, a := range cfg.Apps {
		fmt.Printf("  app id=%s key=%s secret=%s\n", a.ID, a.Key, a.Secret)
	}

	select {
	case s := <-sig:
		logger.Printf("%s: telling clients to reconnect, shutting down", s)
	case err := <-errc:
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = httpAPI.Shutdown(ctx)
	return eng.Stop(ctx)
}
