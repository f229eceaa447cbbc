-- save_leads.lua: compare-and-set of each of N leads' states (streams/state/redis_store.py).
-- RedisStore.save sends, on one Redis, one EVALSHA of this script per chunk of a batch's
-- leads, and on a Redis Cluster one per lead (a script's keys must share a slot), all in one
-- non-transactional pipeline. Each lead's compare-and-set is decided on its own (a conflict
-- on one lead writes nothing of it and does not stop the others), which is what "save is
-- atomic per lead" means; a call runs as a whole on the server.
--
-- Key schema (the only keys this script touches, and the only writer of them):
-- Per lead i (1-based), KEYS[2i-1] and KEYS[2i], ARGV[4i-3] to ARGV[4i]; below for i = 1:
--   KEYS[1] = <app_id>:lead:{<lead_id>}            type: hash
--     field `state`  a snapshot: the LeadState as `streams.state.codec` encodes it
--                    (history, fields, campaign runs, the dedup record `seen`, max_ts)
--     field `ver`    integer generation: 1 after the first save, +1 on every save
--   KEYS[2] = <app_id>:journal:{<lead_id>}         type: list
--     deltas (`streams.state.journal`) to replay on the snapshot, oldest first; only
--     meaningful while KEYS[1] exists (a lone journal is ignored and deleted by the next
--     snapshot)
--   The braces around the lead id are the Redis Cluster hash tag: both keys hash to the
--   slot of "<lead_id>". The app id must not contain "{" or "}" (the first brace pair
--   would become the tag). Both keys expire after ARGV[4] ms without a save.
--
-- ARGV[1] = expected generation: the `ver` the caller loaded, "0" if the key did not exist
-- ARGV[2] = "s": ARGV[3] is a snapshot (the journal is emptied), "d": a delta (appended)
-- ARGV[3] = the snapshot or the delta
-- ARGV[4] = TTL in milliseconds; "0" = no expiry (PERSIST)
--
-- Returns, per lead in order, two integers: 1, ver when the state is stored (ver = the new
-- generation), or 0, ver on a conflict (ver = the generation found; 0 = the key does not
-- exist): someone else saved the lead since the caller loaded it, and nothing of that lead
-- is written. So one lead gives {1, ver} or {0, ver}.
--
-- A retried call (the client resends a pipeline whose reply it lost) finds
-- ver = expected + 1 holding exactly what it brings (the snapshot, or the journal's last
-- delta): that is its own write, and it is reported as stored again rather than as a
-- conflict, so retries are idempotent.

local function save(key, journal, expected, mode, payload, ttl)
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
    local a = 4 * i - 3
    local stored, ver = save(
        KEYS[2 * i - 1], KEYS[2 * i],
        tonumber(ARGV[a]), ARGV[a + 1], ARGV[a + 2], tonumber(ARGV[a + 3])
    )
    out[2 * i - 1] = stored
    out[2 * i] = ver
end
return out
