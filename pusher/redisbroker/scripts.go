package redisbroker

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"strings"

	"github.com/redis/rueidis"
)

// The Lua scripts keep the cluster's members exact: each runs atomically in
// Redis, so of two nodes whose users join at the same moment only one sees
// the user's first connection anywhere, and the member message it
// publishes on the app's bus takes its place among every other message
// there — every node sees an app's member events and broadcasts in one
// order. The keys they touch are listed in keys.go.
//
// Every script is given all the keys it touches (so that a Redis Cluster
// runs it where they all are, or redirects or retries it whole while a
// slot migrates), and the messages it may publish, made and signed by the
// node beforehand. Each reads and checks everything it depends on before
// it writes anything: a key of the wrong type or a count that is not a
// number makes it fail with nothing written (Redis does not undo a script
// that fails halfway), and the node's next resync repairs what is wrong.
// A node not registered in the app (K:nodes) — one the others took for
// dead — has its scripts refused (-1): it rejoins under a new name.

// script is a Lua script and its SHA1, for EVALSHA.
type script struct {
	body, sha string
}

func newScript(body string) *script {
	body = luaPrelude + body
	sum := sha1.Sum([]byte(body))
	return &script{body: body, sha: hex.EncodeToString(sum[:])}
}

// luaPrelude is the scripts' common part: wrong(keys, types) names the
// first key of the wrong type, or is false; count(key, user) reads a
// count, nil when it is not a number.
const luaPrelude = `
local function wrong(keys, types)
  for i = 1, #types do
    local t = redis.call('TYPE', keys[i])['ok']
    if t ~= 'none' and t ~= types[i] then return 'WRONGTYPE revurb: ' .. keys[i] .. ' holds a ' .. t end
  end
  return false
end
local function count(key, user)
  local v = redis.call('HGET', key, user)
  if v == false then return 0 end
  return tonumber(v)
end
local memberTypes = {'set', 'set', 'set', 'hash', 'hash', 'set'}
`

// The member scripts' keys, in order: K:nodes, K:k:N, K:n:N:C, K:c:C,
// K:m:C, K:chans.

// luaJoin: ARGV = publish command, bus, N, C, user, info, indexed ("1":
// list C in K:chans), message. Adds user to N's set of C; on its first
// node, lists it and publishes the message (member_added). Returns 1 when
// it was the user's first connection anywhere, -1 when N is not
// registered.
var luaJoin = newScript(`
local pub, bus, node, ch, user, info, indexed, msg = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[8]
local bad = wrong(KEYS, memberTypes)
if bad then return redis.error_reply(bad) end
local n = count(KEYS[4], user)
if n == nil then return redis.error_reply('WRONGTYPE revurb: a count is not a number') end
if redis.call('SISMEMBER', KEYS[1], node) == 0 then return -1 end
if redis.call('SADD', KEYS[3], user) == 0 then return 0 end
redis.call('SADD', KEYS[2], ch)
redis.call('HSET', KEYS[4], user, n + 1)
if n > 0 then return 0 end
redis.call('HSET', KEYS[5], user, info)
if indexed == '1' then redis.call('SADD', KEYS[6], ch) end
redis.call(pub, bus, msg)
return 1
`)

// luaLeave: ARGV = publish command, bus, N, C, user, indexed, message.
// Removes user from N's set of C; on its last node, unlists it and
// publishes the message (member_removed). Returns 1 when that was its
// last connection anywhere, -1 when N is not registered.
var luaLeave = newScript(`
local pub, bus, node, ch, user, indexed, msg = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7]
local bad = wrong(KEYS, memberTypes)
if bad then return redis.error_reply(bad) end
local n = count(KEYS[4], user)
if n == nil then return redis.error_reply('WRONGTYPE revurb: a count is not a number') end
if redis.call('SISMEMBER', KEYS[1], node) == 0 then return -1 end
if redis.call('SREM', KEYS[3], user) == 0 then return 0 end
if redis.call('SCARD', KEYS[3]) == 0 then redis.call('SREM', KEYS[2], ch) end
if n > 1 then
  redis.call('HSET', KEYS[4], user, n - 1)
  return 0
end
redis.call('HDEL', KEYS[4], user)
local listed = redis.call('HDEL', KEYS[5], user)
if indexed == '1' and redis.call('HLEN', KEYS[5]) == 0 then redis.call('SREM', KEYS[6], ch) end
if listed == 0 then return 0 end
redis.call(pub, bus, msg)
return 1
`)

// luaResync: ARGV = publish command, bus, N, C, indexed, then for each
// change "+", user, info, member_added message or "-", user, "",
// member_removed message. Makes N's set of C what the node holds, after
// Redis lost some of it, or lost touch with the node: the node read the
// set and sends what differs, and the script applies each change only
// if it still holds (so it is idempotent). A "+" of a user N's set
// already holds lists it if the cluster does not (repairing K:m:C). Keys
// of the wrong type are deleted first and rebuilt from what follows.
// Returns -1 when N is not registered, 2 when it deleted K:c:C or K:m:C
// or found a count that is not a number (the node then recounts the
// channel from every node's set: luaRecount), 1 when it deleted another
// key, else 0.
var luaResync = newScript(`
local pub, bus, node, ch, indexed = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local repaired = 0
for i = 1, #memberTypes do
  local t = redis.call('TYPE', KEYS[i])['ok']
  if t ~= 'none' and t ~= memberTypes[i] then
    redis.call('DEL', KEYS[i])
    if i == 4 or i == 5 then repaired = 2 elseif repaired == 0 then repaired = 1 end
  end
end
if redis.call('SISMEMBER', KEYS[1], node) == 0 then return -1 end
for i = 6, #ARGV, 4 do
  local op, user, info, msg = ARGV[i], ARGV[i+1], ARGV[i+2], ARGV[i+3]
  local n = count(KEYS[4], user)
  if n == nil then
    repaired = 2
  elseif op == '+' then
    if redis.call('SADD', KEYS[3], user) == 1 then
      n = n + 1
      redis.call('HSET', KEYS[4], user, n)
    elseif n == 0 then
      n = 1
      redis.call('HSET', KEYS[4], user, n)
    end
    if redis.call('HSETNX', KEYS[5], user, info) == 1 then redis.call(pub, bus, msg) end
  elseif redis.call('SREM', KEYS[3], user) == 1 then
    if n > 1 then
      redis.call('HSET', KEYS[4], user, n - 1)
    else
      redis.call('HDEL', KEYS[4], user)
      if redis.call('HDEL', KEYS[5], user) == 1 then redis.call(pub, bus, msg) end
    end
  end
end
if redis.call('SCARD', KEYS[3]) == 0 then redis.call('SREM', KEYS[2], ch) else redis.call('SADD', KEYS[2], ch) end
if indexed == '1' then
  if redis.call('HLEN', KEYS[5]) == 0 then redis.call('SREM', KEYS[6], ch) else redis.call('SADD', KEYS[6], ch) end
end
return repaired
`)

// luaRecount: KEYS = K:nodes, K:c:C, K:m:C, K:chans, then K:n:M:C for
// every node M registered; ARGV = publish command, bus, C, indexed, reset
// message, then the names M. Rebuilds C's counts from every node's set,
// unlists the users no node has, and publishes the reset message, on
// which every node resyncs the app (listing again the users whose
// K:m:C entry was lost) and reloads it. Returns -2, changing nothing,
// when the nodes given are not those registered.
var luaRecount = newScript(`
local pub, bus, ch, indexed, msg = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local reg = redis.call('SMEMBERS', KEYS[1])
if #reg ~= #ARGV - 5 then return -2 end
local given = {}
for i = 6, #ARGV do given[ARGV[i]] = true end
for _, m in ipairs(reg) do if not given[m] then return -2 end end
for i = 2, 3 do
  if redis.call('TYPE', KEYS[i])['ok'] ~= 'hash' then redis.call('DEL', KEYS[i]) end
end
redis.call('DEL', KEYS[2])
for i = 5, #KEYS do
  if redis.call('TYPE', KEYS[i])['ok'] == 'set' then
    for _, u in ipairs(redis.call('SMEMBERS', KEYS[i])) do redis.call('HINCRBY', KEYS[2], u, 1) end
  end
end
for _, u in ipairs(redis.call('HKEYS', KEYS[3])) do
  if redis.call('HEXISTS', KEYS[2], u) == 0 then redis.call('HDEL', KEYS[3], u) end
end
if indexed == '1' then
  if redis.call('TYPE', KEYS[4])['ok'] ~= 'set' then redis.call('DEL', KEYS[4]) end
  if redis.call('HLEN', KEYS[3]) == 0 then redis.call('SREM', KEYS[4], ch) else redis.call('SADD', KEYS[4], ch) end
end
redis.call(pub, bus, msg)
return 0
`)

// luaReap: the member keys of dead (or leaving) node D; ARGV = publish
// command, bus, C, indexed, then user, member_removed message pairs.
// Removes those users from D's set of C, unlisting, with the message,
// those no other node has. The caller takes a few hundred users at a time
// until D's sets are empty. Returns how many it unlisted.
var luaReap = newScript(`
local pub, bus, ch, indexed = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local bad = wrong(KEYS, memberTypes)
if bad then return redis.error_reply(bad) end
local removed = 0
for i = 5, #ARGV, 2 do
  local user, msg = ARGV[i], ARGV[i+1]
  if redis.call('SREM', KEYS[3], user) == 1 then
    local n = count(KEYS[4], user) or 1
    if n > 1 then
      redis.call('HSET', KEYS[4], user, n - 1)
    else
      redis.call('HDEL', KEYS[4], user)
      if redis.call('HDEL', KEYS[5], user) == 1 then
        redis.call(pub, bus, msg)
        removed = removed + 1
      end
    end
  end
end
if redis.call('SCARD', KEYS[3]) == 0 then redis.call('SREM', KEYS[2], ch) end
if indexed == '1' and redis.call('HLEN', KEYS[5]) == 0 then redis.call('SREM', KEYS[6], ch) end
return removed
`)

// luaSnapshot: KEYS = K:m:C, then for the users' snapshot at a node's
// start the K:cache:C of the cache channels K:cachex listed; ARGV =
// publish command, bus, marker message. Returns C's members and the
// cache channels' last events (false where one expired meanwhile), and
// publishes the marker: the members are exactly those of the bus's
// messages before it.
var luaSnapshot = newScript(`
local pub, bus, msg = ARGV[1], ARGV[2], ARGV[3]
local members = {}
if redis.call('TYPE', KEYS[1])['ok'] == 'hash' then members = redis.call('HGETALL', KEYS[1]) end
local cached = {}
for i = 2, #KEYS do cached[i - 1] = redis.call('GET', KEYS[i]) end
redis.call(pub, bus, msg)
return {members, cached}
`)

// scriptOp is the op running s on keys with args, for app a (nil: none),
// by its SHA1: doScripts sends the body along when Redis lacks it.
func scriptOp(c rueidis.Client, s *script, a *app, keys, args []string) op {
	return op{cmd: c.B().Evalsha().Sha1(s.sha).Numkeys(int64(len(keys))).Key(keys...).Arg(args...).Build(),
		script: s, app: a, keys: keys, args: args}
}

// eval builds the command running s, its body sent along.
func eval(c rueidis.Client, s *script, keys, args []string) rueidis.Completed {
	return c.B().Eval().Script(s.body).Numkeys(int64(len(keys))).Key(keys...).Arg(args...).Build()
}

// doScripts runs script commands (made by scriptOp) in one round trip,
// sending again with EVAL those Redis did not have (a new primary after a
// failover has none).
func doScripts(ctx context.Context, c rueidis.Client, ops []op) []rueidis.RedisResult {
	cmds := make(rueidis.Commands, len(ops))
	for i := range ops {
		cmds[i] = ops[i].cmd
	}
	res := c.DoMulti(ctx, cmds...)
	for i := range res {
		if isNoScript(res[i].Error()) && ops[i].script != nil {
			res[i] = c.Do(ctx, eval(c, ops[i].script, ops[i].keys, ops[i].args))
		}
	}
	return res
}

func isNoScript(err error) bool {
	e, ok := rueidis.IsRedisErr(err)
	return ok && strings.HasPrefix(e.Error(), "NOSCRIPT")
}
