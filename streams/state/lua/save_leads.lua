-- save_leads.lua: compare-and-set of ONE lead's state (streams/state/redis_store.py).
-- RedisStore.save sends one EVALSHA of this script per lead, all in one non-transactional
-- pipeline; each call is atomic on its own, which is what "save is atomic per lead" means.
--
-- Key schema (the only key this script touches, and the only writer of it):
--   KEYS[1] = <app_id>:lead:{<lead_id>}            type: hash
--     field `state`  the LeadState JSON (LeadState.to_json: history, fields, campaign
--                    runs, the dedup record `seen`, max_ts)
--     field `ver`    integer generation: 1 after the first save, +1 on every save
--   The braces around the lead id are the Redis Cluster hash tag: the key hashes to the
--   slot of "<lead_id>", so whatever else a lead gets later stays in the same slot. The
--   app id must not contain "{" or "}" (the first brace pair would become the tag).
--   The key expires after ARGV[3] ms without a save (PEXPIRE on every save).
--
-- ARGV[1] = expected generation: the `ver` the caller loaded, "0" if the key did not exist
-- ARGV[2] = the new state JSON
-- ARGV[3] = TTL in milliseconds; "0" = no expiry (PERSIST)
--
-- Returns {1, ver} when the state is stored (ver = the new generation), or {0, ver} on a
-- conflict (ver = the generation found; 0 = the key does not exist): someone else saved
-- the lead since the caller loaded it, and nothing is written.
--
-- A retried call (the client resends a pipeline whose reply it lost) finds
-- ver = expected + 1 holding exactly the state it brings: that is its own write, and it is
-- reported as stored again rather than as a conflict, so retries are idempotent.

local key = KEYS[1]
local expected = tonumber(ARGV[1])
local state = ARGV[2]
local ttl = tonumber(ARGV[3])

local ver = tonumber(redis.call('HGET', key, 'ver') or '0')
if ver == expected then
    ver = ver + 1
    redis.call('HSET', key, 'state', state, 'ver', string.format('%d', ver))
elseif ver ~= expected + 1 or redis.call('HGET', key, 'state') ~= state then
    return {0, ver}
end

if ttl > 0 then
    redis.call('PEXPIRE', key, ttl)
else
    redis.call('PERSIST', key)
end
return {1, ver}
