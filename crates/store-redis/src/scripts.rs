//! The Lua scripts: each touches the keys of one hash slot only, so each runs on a cluster too.
//! redis-rs sends them with EVALSHA and falls back on EVAL (loading them) after NOSCRIPT.

use std::sync::LazyLock;

use redis::Script;

/// Writes a whole record (`set`, or `create` when ARGV[1] is `create`).
///
/// KEYS[1] session. ARGV[1] `set`|`create`, ARGV[2] deadline (ms since the epoch), ARGV[3..]
/// field/value pairs. Returns `{0}` when `create` found a live session, else `{1[, old owner]}`.
pub(crate) static WRITE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local key = KEYS[1]
if ARGV[1] == 'create' and redis.call('EXISTS', key) == 1 then return {0} end
local old = redis.call('HGET', key, 'o')
redis.call('DEL', key)
local n = #ARGV
local i = 3
while i <= n do
  local j = math.min(i + 999, n)
  redis.call('HSET', key, unpack(ARGV, i, j))
  i = j + 1
end
redis.call('PEXPIREAT', key, ARGV[2])
if old then return {1, old} end
return {1}
",
    )
});

/// Applies a patch (and `touch`), only if the session exists.
///
/// KEYS[1] session. ARGV[1] now, ARGV[2] expiry mode `keep`|`browser`|`at`, ARGV[3] the new
/// expiry (for `at`), ARGV[4] now + browser_idle, ARGV[5] owner mode `keep`|`clear`|`set`,
/// ARGV[6] the new owner, ARGV[7] the number of field/value pairs to set, then the pairs, then
/// the fields to delete.
///
/// Returns `{0}` when the session is gone, else `{1, deadline, old owner or '', has old (0|1),
/// new owner or '', has new (0|1)}`.
pub(crate) static UPDATE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local key = KEYS[1]
if redis.call('EXISTS', key) == 0 then return {0} end
local old = redis.call('HGET', key, 'o')
local last = 7 + 2 * tonumber(ARGV[7])
local i = 8
while i <= last do
  local j = math.min(i + 999, last)
  redis.call('HSET', key, unpack(ARGV, i, j))
  i = j + 1
end
local n = #ARGV
i = last + 1
while i <= n do
  local j = math.min(i + 999, n)
  redis.call('HDEL', key, unpack(ARGV, i, j))
  i = j + 1
end
redis.call('HSET', key, 'a', ARGV[1])
local deadline
if ARGV[2] == 'at' then
  redis.call('HSET', key, 'e', ARGV[3])
  deadline = ARGV[3]
elseif ARGV[2] == 'browser' then
  redis.call('HDEL', key, 'e')
  deadline = ARGV[4]
else
  deadline = redis.call('HGET', key, 'e') or ARGV[4]
end
local owner = old
if ARGV[5] == 'set' then
  redis.call('HSET', key, 'o', ARGV[6])
  owner = ARGV[6]
elseif ARGV[5] == 'clear' then
  redis.call('HDEL', key, 'o')
  owner = false
end
redis.call('PEXPIREAT', key, deadline)
return {1, deadline, old or '', old and 1 or 0, owner or '', owner and 1 or 0}
",
    )
});

/// Deletes a session. KEYS[1] session. Returns `{deleted (0|1)[, owner]}`.
pub(crate) static DESTROY: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local old = redis.call('HGET', KEYS[1], 'o')
local n = redis.call('DEL', KEYS[1])
if old then return {n, old} end
return {n}
",
    )
});

/// Renames within one server (standalone and sentinel): KEYS[1] old, KEYS[2] new; ARGV[1] now,
/// ARGV[2] now + browser_idle. Returns `{0}` (old gone), `{-1}` (new taken) or
/// `{1, deadline[, owner]}`.
pub(crate) static RENAME: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('EXISTS', KEYS[1]) == 0 then return {0} end
if redis.call('EXISTS', KEYS[2]) == 1 then return {-1} end
redis.call('RENAME', KEYS[1], KEYS[2])
redis.call('HSET', KEYS[2], 'a', ARGV[1])
local deadline = redis.call('HGET', KEYS[2], 'e')
if not deadline then
  deadline = ARGV[2]
  redis.call('PEXPIREAT', KEYS[2], deadline)
end
local owner = redis.call('HGET', KEYS[2], 'o')
if owner then return {1, deadline, owner} end
return {1, deadline}
",
    )
});

/// Cluster rename, step 1 (the old id's slot): KEYS[1] old. Returns `{0}` or `{1, dump}`.
pub(crate) static DUMP: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('EXISTS', KEYS[1]) == 0 then return {0} end
return {1, redis.call('DUMP', KEYS[1])}
",
    )
});

/// Cluster rename, step 2 (the new id's slot): KEYS[1] new; ARGV[1] the dump, ARGV[2] now,
/// ARGV[3] now + browser_idle, ARGV[4] `nx` or `replace`. Returns `{-1}` (new taken, with
/// `nx`) or `{1, deadline[, owner]}`.
pub(crate) static RESTORE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if ARGV[4] == 'nx' then
  if redis.call('EXISTS', KEYS[1]) == 1 then return {-1} end
  redis.call('RESTORE', KEYS[1], 0, ARGV[1])
else
  redis.call('RESTORE', KEYS[1], 0, ARGV[1], 'REPLACE')
end
redis.call('HSET', KEYS[1], 'a', ARGV[2])
local deadline = redis.call('HGET', KEYS[1], 'e') or ARGV[3]
redis.call('PEXPIREAT', KEYS[1], deadline)
local owner = redis.call('HGET', KEYS[1], 'o')
if owner then return {1, deadline, owner} end
return {1, deadline}
",
    )
});

/// Cluster rename, step 3 (the old id's slot): deletes KEYS[1] only if it still dumps as
/// ARGV[1]. Returns 1 (deleted), 0 (already gone) or -1 (changed meanwhile).
pub(crate) static DELETE_IF_UNCHANGED: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local now = redis.call('DUMP', KEYS[1])
if not now then return 0 end
if now == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return -1
",
    )
});

/// Adds a session to its owner's set and keeps the set alive at least until the session's
/// deadline: KEYS[1] owner set; ARGV[1] id, ARGV[2] deadline, ARGV[3] now.
pub(crate) static OWNER_ADD: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
redis.call('SADD', KEYS[1], ARGV[1])
local want = tonumber(ARGV[2]) - tonumber(ARGV[3])
if want < 1 then want = 1 end
local ttl = redis.call('PTTL', KEYS[1])
if ttl < want then redis.call('PEXPIRE', KEYS[1], want) end
return 1
",
    )
});
