-- quarantine.lua: move ONE lead's unreadable state aside (streams/state/redis_store.py).
--
-- KEYS[1] = <app_id>:lead:{<lead_id>}                    the lead's key, of any type
-- KEYS[2] = <app_id>:quarantine:{<lead_id>}:<unix ms>    where it goes (same hash slot)
-- ARGV[1] = the `ver` field the caller read, "" if none (or if the key is not a hash)
--
-- Renames KEYS[1] to KEYS[2] (value and TTL as they are) and returns 1, but only if the
-- key is still what the caller found unreadable: a hash whose `ver` is unchanged, or a
-- key of another type. Returns 0 if the key is gone or was saved since (its `ver`
-- moved): the caller then loads the lead again rather than move a good state aside.

local key = KEYS[1]
local kind = redis.call('TYPE', key)['ok']
if kind == 'none' then
    return 0
end
if kind == 'hash' then
    local ver = redis.call('HGET', key, 'ver') or ''
    if ver ~= ARGV[1] then
        return 0
    end
end
redis.call('RENAME', key, KEYS[2])
return 1
