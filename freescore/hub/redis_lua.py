"""The Lua scripts the Redis hub runs (each one round trip, atomic in Redis); see `freescore.hub.redis`."""

# KEYS: counter, history stream. ARGV: floor id, keep, redis channel, JSON tail.
PUBLISH_LUA = """
local floor = tonumber(ARGV[1])
local id = redis.call('INCR', KEYS[1])
if id < floor then
  redis.call('SET', KEYS[1], ARGV[1])
  id = floor
end
local keep = tonumber(ARGV[2])
if keep > 0 then
  -- the stream may have outlived the counter (a restored dump): go past its top
  local top = redis.call('XREVRANGE', KEYS[2], '+', '-', 'COUNT', 1)
  if top[1] then
    local last = tonumber(string.match(top[1][1], '^(%d+)'))
    if last >= id then
      id = last + 1
      redis.call('SET', KEYS[1], string.format('%d', id))
    end
  end
end
local sid = string.format('%d', id)
local msg = '{"id":' .. sid .. ARGV[4]
if keep > 0 then
  redis.call('XADD', KEYS[2], 'MAXLEN', keep, sid .. '-0', 'm', msg)
end
redis.call('PUBLISH', ARGV[3], msg)
return id
"""

# KEYS: counter. ARGV: floor id. Raises the counter to at least floor - 1.
FLOOR_LUA = """
local cur = tonumber(redis.call('GET', KEYS[1]) or '0')
local want = tonumber(ARGV[1]) - 1
if cur < want then redis.call('SET', KEYS[1], string.format('%d', want)) end
return 1
"""

# KEYS: presence hash. ARGV: heartbeat key prefix. Returns live member/value pairs.
MEMBERS_LUA = """
local all = redis.call('HGETALL', KEYS[1])
local out = {}
local alive = {}
for i = 1, #all, 2 do
  local value = all[i + 1]
  local cut = string.find(value, '\\n', 1, true)
  local ok = false
  if cut then
    local inst = string.sub(value, 1, cut - 1)
    ok = alive[inst]
    if ok == nil then
      ok = redis.call('EXISTS', ARGV[1] .. inst) == 1
      alive[inst] = ok
    end
  end
  if ok then
    out[#out + 1] = all[i]
    out[#out + 1] = value
  else
    redis.call('HDEL', KEYS[1], all[i])
  end
end
return out
"""

# KEYS: presence hash. ARGV: member, heartbeat key prefix. The member's value if its
# instance is alive (nil otherwise, dropping the stale entry as MEMBERS_LUA does).
MEMBER_LUA = """
local value = redis.call('HGET', KEYS[1], ARGV[1])
if not value then return false end
local cut = string.find(value, '\\n', 1, true)
if cut and redis.call('EXISTS', ARGV[2] .. string.sub(value, 1, cut - 1)) == 1 then
  return value
end
redis.call('HDEL', KEYS[1], ARGV[1])
return false
"""

# KEYS: presence hash. ARGV: member, instance. Deletes only this instance's entry.
LEAVE_LUA = """
local v = redis.call('HGET', KEYS[1], ARGV[1])
if v and string.sub(v, 1, #ARGV[2] + 1) == ARGV[2] .. '\\n' then
  redis.call('HDEL', KEYS[1], ARGV[1])
end
return 1
"""

# KEYS: presence hash. ARGV: instance, then member, value pairs: the instance's
# entries become exactly these.
RESYNC_LUA = """
local inst = ARGV[1] .. '\\n'
local keep = {}
for i = 2, #ARGV, 2 do keep[ARGV[i]] = true end
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all, 2 do
  if not keep[all[i]] and string.sub(all[i + 1], 1, #inst) == inst then
    redis.call('HDEL', KEYS[1], all[i])
  end
end
for i = 2, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
return 1
"""
