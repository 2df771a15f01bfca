package pusher

import "context"

// Conn is the socket under a Session, as the pusher package needs it. It is
// implemented by package loop. Every method is called only on the event loop
// that owns the connection.
type Conn interface {
	// Write queues one complete WebSocket frame. It must not retain frame
	// after it returns.
	Write(frame []byte)
	// Close sends a close frame with code and reason, flushes what is queued
	// and closes the socket. The session's OnClose follows.
	Close(code int, reason string)
}

// Task is work to run on one event loop. Its method set matches gnet's
// Runnable so that package loop hands it over without wrapping.
type Task interface {
	Run(ctx context.Context) error
}

// Loops runs tasks on the event loops that own connections. It is
// implemented by package loop and safe for concurrent use.
type Loops interface {
	// Len is the number of event loops; loop indexes are 0..Len()-1.
	Len() int
	// Execute runs t on loop i, later, in order with that loop's other work.
	Execute(i int, t Task) error
}
