package loop

import (
	"log"
	"os"
)

// gnetLogger sends gnet's warnings and errors to revurb's log and drops its
// chatter (such as the "Launching gnet" banner), so revurb's own start line
// is the one users read.
type gnetLogger struct{ l *log.Logger }

func (gnetLogger) Debugf(string, ...any) {}

func (gnetLogger) Infof(string, ...any) {}

func (g gnetLogger) Warnf(format string, args ...any) { g.l.Printf("gnet: "+format, args...) }

func (g gnetLogger) Errorf(format string, args ...any) { g.l.Printf("gnet: "+format, args...) }

func (g gnetLogger) Fatalf(format string, args ...any) {
	g.l.Printf("gnet: "+format, args...)
	os.Exit(1)
}
