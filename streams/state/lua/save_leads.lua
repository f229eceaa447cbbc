-- save_leads.lua: compare-and-set of each lead's state (streams/state/redis_store.py).
-- RedisStore.save sends, in one non-transactional pipeline, one EVALSHA of this script per
-- group of leads: on one Redis a group is up to `SAVE_GROUP` leads, on a Redis Cluster one
-- lead (a script's keys must share a slot, and only a lead's two keys do). Each call is
-- atomic on its own, so each lead is, which is what "save is atomic per lead" means; a
-- lead's outcome never depends on another's.
--
-- Key schema (the only keys this script touches, and the only writer of them):
--   <app_id>:lead:{<lead_id>}            type: hash
--     field `state`  a snapshot: the LeadState as `streams.state.codec` encodes it
--                    (history, fields, campaign runs, the dedup record `seen`, max_ts)
--     field `ver`    integer generation: 1 after the first save, +1 on every save
--   <app_id>:journal:{<lead_id>}         type: list
--     deltas (`streams.state.journal`) to replay on the snapshot, oldest first; only
--     meaningful while the lead key exists (a lone journal is ignored and deleted by the
--     next snapshot)
--   The braces around the lead id are the Redis Cluster hash tag: both keys hash to the
--   slot of "<lead_id>". The app id must not contain "{" or "}" (the first brace pair
--   would become the tag). Both keys expire after the TTL without a save.
--
-- For the i-th lead of the call (i = 1 .. #KEYS / 2):
--   KEYS[2i - 1] = its lead key, KEYS[2i] = its journal key
--   ARGV[3i - 2] = expected generation: the `ver` the caller loaded, "0" if the key did
--                  not exist
--   ARGV[3i - 1] = "s": ARGV[3i] is a snapshot (the journal is emptied), "d": a delta
--                  (appended)
--   ARGV[3i]     = the snapshot or the delta
-- and last, ARGV[#ARGV] = TTL in milliseconds; "0" = no expiry (PERSIST). (One lead:
-- KEYS = {key, journal}, ARGV = {generation, mode, payload, ttl}.)
--
-- Returns, per lead in order, two integers: 1, ver when the state is stored (ver = the
-- new generation), or 0, ver on a conflict (ver = the generation found; 0 = the key does
-- not exist): someone else saved the lead since the caller loaded it, and nothing of that
-- lead is written.
--
-- A retried call (the client resends a pipeline whose reply it lost) finds, for each
-- lead, ver = expected + 1 holding exactly what it brings (the snapshot, or the
-- journal's last delta): that is its own write, and it is reported as stored again
-- rather than as a conflict, so retries are idempotent.

local ttl = tonumber(ARGV[#ARGV])

local function save(key, journal, expected, mode, payload)
    local ver = tonumber(redis.call('HGET', key, 'ver') or '0')
    if ver == expected then
        ver = ver + 1
        if mode == 'd' then
            redis.call('RPUSH', journal, payload)
            redis.call('HSET', key, 'ver', string.format('%d', ver))
        else
            redis.call('HSET', key, 'state', payload, 'ver', string.format('%d', ver))
            redis.call('DEL', journal)
        end
    elseif ver ~= expected + 1 then
        return 0, ver
    elseif mode == 'd' then
        if redis.call('LINDEX', journal, -1) ~= payload then
            return 0, ver
        end
    elseif redis.call('HGET', key, 'state') ~= payload then
        return 0, ver
    end
    if ttl > 0 then
        redis.call('PEXPIRE', key, ttl)
        redis.call('PEXPIRE', journal, ttl)
    else
        redis.call('PERSIST', key)
        redis.call('PERSIST', journal)
    end
    return 1, ver
end

local out = {}
for i = 1, #KEYS / 2 do
    local stored, ver = save(
        KEYS[2 * i - 1], KEYS[2 * i], tonumber(ARGV[3 * i - 2]), ARGV[3 * i - 1], ARGV[3 * i]
    )
    out[2 * i - 1] = stored
    out[2 * i] = ver
end
return out
