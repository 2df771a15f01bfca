package redisbroker

// The Lua scripts keep the cluster's members exact: each runs atomically in
// Redis, so of two nodes whose users join at the same moment only one sees
// the user's first connection anywhere, and the member event it publishes
// on the bus takes its place among every other message there — every node
// sees member events and broadcasts in one order.
//
// Keys, for prefix P, node N, app A and presence channel C (C is "" for an
// app's signed-in users):
//
//	P:nodes          ZSET  node → its last heartbeat, unix ms
//	P:bus            the pub/sub channel every node subscribes to
//	P:n:N:A:C        SET   the users node N has connections of in C
//	P:k:N            SET   "A\nC" for every P:n:N:A:C node N wrote
//	P:c:A:C          HASH  user → how many nodes have it in C
//	P:m:A:C          HASH  user → user_info: C's members, cluster-wide
//	P:cache:A:C      STRING the last event of cache channel C, expiring with it
//	P:reap:N         STRING a lock: the node removing dead node N's members
//
// Every script takes ARGV[1] = P and builds its keys from it, so all of
// them are in one Redis (a standalone server or a primary with replicas,
// not Redis Cluster).

// luaJoin: ARGV = P, N, A, C, user, info, except. Adds user to N's set of
// C; on its first node, lists it in C and publishes member_added. Returns 1
// when it was the user's first connection anywhere.
const luaJoin = `
local p, node, app, ch, user, info, except = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7]
if redis.call('SADD', p..':n:'..node..':'..app..':'..ch, user) == 0 then return 0 end
redis.call('SADD', p..':k:'..node, app..'\n'..ch)
if redis.call('HINCRBY', p..':c:'..app..':'..ch, user, 1) == 1 then
  redis.call('HSET', p..':m:'..app..':'..ch, user, info)
  redis.call('PUBLISH', p..':bus', cjson.encode({k='m', a=app, c=ch, u=user, i=info, x=except, d=1, n=node}))
  return 1
end
return 0
`

// luaLeave: ARGV = P, N, A, C, user. Removes user from N's set of C; on
// its last node, unlists it and publishes member_removed. Returns 1 when
// that was its last connection anywhere.
const luaLeave = `
local p, node, app, ch, user = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
if redis.call('SREM', p..':n:'..node..':'..app..':'..ch, user) == 0 then return 0 end
local ck = p..':c:'..app..':'..ch
if redis.call('HINCRBY', ck, user, -1) <= 0 then
  redis.call('HDEL', ck, user)
  redis.call('HDEL', p..':m:'..app..':'..ch, user)
  redis.call('PUBLISH', p..':bus', cjson.encode({k='m', a=app, c=ch, u=user, d=0, n=node}))
  return 1
end
return 0
`

// luaResync: ARGV = P, N, A, C, then user, info pairs. Makes N's set of C
// exactly those users — after Redis lost it, or lost touch with N — with
// the member events that changes; with no users, N no longer lists C in
// P:k:N. Idempotent.
const luaResync = `
local p, node, app, ch = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local nk, ck, mk, bus = p..':n:'..node..':'..app..':'..ch, p..':c:'..app..':'..ch, p..':m:'..app..':'..ch, p..':bus'
local want = {}
for i = 5, #ARGV, 2 do want[ARGV[i]] = ARGV[i+1] end
for _, u in ipairs(redis.call('SMEMBERS', nk)) do
  if want[u] == nil then
    redis.call('SREM', nk, u)
    if redis.call('HINCRBY', ck, u, -1) <= 0 then
      redis.call('HDEL', ck, u)
      redis.call('HDEL', mk, u)
      redis.call('PUBLISH', bus, cjson.encode({k='m', a=app, c=ch, u=u, d=0, n=node}))
    end
  end
end
for u, info in pairs(want) do
  if redis.call('SADD', nk, u) == 1 then
    redis.call('SADD', p..':k:'..node, app..'\n'..ch)
    if redis.call('HINCRBY', ck, u, 1) == 1 then
      redis.call('HSET', mk, u, info)
      redis.call('PUBLISH', bus, cjson.encode({k='m', a=app, c=ch, u=u, i=info, d=1, n=node}))
    end
  end
end
if next(want) == nil then redis.call('SREM', p..':k:'..node, app..'\n'..ch) end
return 0
`

// luaReap: ARGV = P, N, R: R is the node reaping (N itself when it leaves).
// Takes node N out of the cluster — it died, or it
// is leaving — publishing member_removed for every user that was only on
// it, then a goodbye in its name so that every node forgets its counts.
// Returns how many members it removed.
const luaReap = `
local p, node, reaper = ARGV[1], ARGV[2], ARGV[3]
local bus, kk, removed = p..':bus', p..':k:'..node, 0
for _, key in ipairs(redis.call('SMEMBERS', kk)) do
  local nl = string.find(key, '\n', 1, true)
  local app, ch = string.sub(key, 1, nl - 1), string.sub(key, nl + 1)
  local nk, ck, mk = p..':n:'..node..':'..app..':'..ch, p..':c:'..app..':'..ch, p..':m:'..app..':'..ch
  for _, u in ipairs(redis.call('SMEMBERS', nk)) do
    if redis.call('HINCRBY', ck, u, -1) <= 0 then
      redis.call('HDEL', ck, u)
      redis.call('HDEL', mk, u)
      redis.call('PUBLISH', bus, cjson.encode({k='m', a=app, c=ch, u=u, d=0, n=reaper}))
      removed = removed + 1
    end
  end
  redis.call('DEL', nk)
end
redis.call('DEL', kk)
redis.call('ZREM', p..':nodes', node)
redis.call('PUBLISH', bus, cjson.encode({k='g', n=node}))
return removed
`
