package pusher

import "strconv"

// member is one user of a presence channel (Pusher protocol: presence
// channels). A user with several connections in the channel is one member;
// conns counts them. Guarded by the channel's shard lock; id and info never
// change.
type member struct {
	id    string
	info  []byte // raw JSON of user_info, or nil
	conns int
}

// appendPresence appends {"presence":{"ids":[...],"hash":{...},"count":n}}.
// The caller holds the channel's shard lock.
func appendPresence(dst []byte, members map[string]*member) []byte {
	dst = append(dst, `{"presence":{"ids":[`...)
	first := true
	for id := range members {
		if !first {
			dst = append(dst, ',')
		}
		first = false
		dst = AppendJSONString(dst, id)
	}
	dst = append(dst, `],"hash":{`...)
	first = true
	for id, m := range members {
		if !first {
			dst = append(dst, ',')
		}
		first = false
		dst = AppendJSONString(dst, id)
		dst = append(dst, ':')
		if m.info != nil {
			dst = append(dst, m.info...)
		} else {
			dst = append(dst, "null"...)
		}
	}
	dst = append(dst, `},"count":`...)
	dst = strconv.AppendInt(dst, int64(len(members)), 10)
	return append(dst, "}}"...)
}

// appendMemberAdded appends the data of pusher_internal:member_added.
func appendMemberAdded(dst []byte, m *member) []byte {
	dst = append(dst, `{"user_id":`...)
	dst = AppendJSONString(dst, m.id)
	dst = append(dst, `,"user_info":`...)
	if m.info != nil {
		dst = append(dst, m.info...)
	} else {
		dst = append(dst, "null"...)
	}
	return append(dst, '}')
}

// appendMemberRemoved appends the data of pusher_internal:member_removed.
func appendMemberRemoved(dst []byte, id string) []byte {
	dst = append(dst, `{"user_id":`...)
	dst = AppendJSONString(dst, id)
	return append(dst, '}')
}
