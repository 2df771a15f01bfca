package loop

import (
	"context"
	"fmt"
	"log/slog"
	"os"
)

// gnetLogger sends gnet's warnings and errors to revurb's log and drops its
// chatter (such as the "Launching gnet" banner), so revurb's own start line
// is the one users read.
type gnetLogger struct{ l *slog.Logger }

func (gnetLogger) Debugf(string, ...any) {}

func (gnetLogger) Infof(string, ...any) {}

func (g gnetLogger) Warnf(format string, args ...any) { g.log(slog.LevelWarn, format, args) }

func (g gnetLogger) Errorf(format string, args ...any) { g.log(slog.LevelError, format, args) }

func (g gnetLogger) Fatalf(format string, args ...any) {
	g.log(slog.LevelError, format, args)
	os.Exit(1)
}

func (g gnetLogger) log(level slog.Level, format string, args []any) {
	if ctx := context.Background(); g.l.Enabled(ctx, level) {
		g.l.Log(ctx, level, "gnet: "+fmt.Sprintf(format, args...))
	}
}
