package main

import (
	"errors"
	"log/slog"
	"os"
	"strings"
)

// newLogger is the process's one logger (DESIGN: logging through one
// slog.Logger handed down): text or JSON on stderr, at level, or at debug
// with --debug. It is made the default too, so that what still writes
// through the log package (a library's message) comes out the same way.
func newLogger(format, level string, debug bool) (*slog.Logger, error) {
	var lv slog.Level
	switch strings.ToLower(level) {
	case "", "info":
		lv = slog.LevelInfo
	case "debug":
		lv = slog.LevelDebug
	case "warn", "warning":
		lv = slog.LevelWarn
	case "error":
		lv = slog.LevelError
	default:
		return nil, errors.New("--log-level must be debug, info, warn or error")
	}
	if debug {
		lv = slog.LevelDebug
	}
	opts := &slog.HandlerOptions{Level: lv}
	var h slog.Handler
	switch format {
	case "", "text":
		h = slog.NewTextHandler(os.Stderr, opts)
	case "json":
		h = slog.NewJSONHandler(os.Stderr, opts)
	default:
		return nil, errors.New("--log-format must be text or json")
	}
	l := slog.New(h)
	slog.SetDefault(l)
	return l, nil
}
