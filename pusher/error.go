package pusher

import (
	"strconv"

	"github.com/revurb/revurb/codec"
)

// Pusher protocol error and close codes (Pusher protocol: error codes).
// 4000-4099: do not reconnect; 4100-4199: reconnect after back-off;
// 4200-4299: reconnect at once. 4301 is sent as an error message only.
const (
	CodeUnknownApp       = 4001
	CodeAppDisabled      = 4003
	CodeOverQuota        = 4004
	CodePathNotFound     = 4005
	CodeBadProtocol      = 4007
	CodeUnauthorized     = 4009
	CodeOverCapacity     = 4100
	CodeReconnect        = 4200
	CodePongNotReceived  = 4201
	CodeClientEventLimit = 4301
)

// Error is a protocol error sent to a client as pusher:error. Code 0 is sent
// as null (a malformed message, which is not one of Pusher's numbered errors).
type Error struct {
	Code    int
	Message string
}

func (e *Error) Error() string {
	return "pusher: " + strconv.Itoa(e.Code) + " " + e.Message
}

// AppendJSON appends the pusher:error event carrying e.
// Pusher protocol: pusher:error data is an object, not a string.
func (e *Error) AppendJSON(dst []byte) []byte {
	dst = append(dst, `{"event":"pusher:error","data":{"code":`...)
	if e.Code == 0 {
		dst = append(dst, "null"...)
	} else {
		dst = strconv.AppendInt(dst, int64(e.Code), 10)
	}
	dst = append(dst, `,"message":`...)
	dst = codec.AppendJSONString(dst, e.Message)
	return append(dst, "}}"...)
}
