//! The Lua scripts: each touches the keys of one hash slot only, so each runs on a cluster too.
//! redis-rs sends them with EVALSHA and falls back on EVAL (loading them) after NOSCRIPT.
//!
//! The session value is a list of `LEN:BYTES` tokens (see `layout.rs`); the scripts split it
//! with `string.find`/`string.sub` and rebuild it with `table.concat`, so the JSON of each value
//! is never parsed and comes back byte for byte.

use std::sync::LazyLock;

use redis::Script;

/// The shared Lua helpers: `split(value)` into tokens, `join(tokens)` back.
const HELPERS: &str = r"
local function split(s)
  local items, pos, n = {}, 1, #s
  while pos <= n do
    local colon = string.find(s, ':', pos, true)
    if not colon then return nil end
    local len = tonumber(string.sub(s, pos, colon - 1))
    if not len then return nil end
    items[#items + 1] = string.sub(s, colon + 1, colon + len)
    pos = colon + len + 1
  end
  if items[1] ~= 'sb1' or #items < 5 then return nil end
  return items
end
local function tok(x) return #x .. ':' .. x end
";

fn with_helpers(body: &str) -> Script {
    Script::new(&format!("{HELPERS}{body}"))
}

/// Applies a patch (and `touch`), only if the session exists.
///
/// KEYS[1] session. ARGV[1] now, ARGV[2] expiry mode `keep`|`browser`|`at`, ARGV[3] the new
/// expiry (for `at`), ARGV[4] now + browser_idle, ARGV[5] owner mode `keep`|`clear`|`set`,
/// ARGV[6] the new owner, ARGV[7] the number of key/JSON pairs to set, then the pairs, then
/// the keys to remove.
///
/// Returns `{0}` when the session is gone, else `{1, deadline, owner token, browser}` (the
/// owner token `''` or `=OWNER`; browser 1 for a browser session).
pub(crate) static UPDATE: LazyLock<Script> = LazyLock::new(|| {
    with_helpers(
        r"
local key = KEYS[1]
local s = redis.call('GET', key)
if not s then return {0} end
local items = split(s)
if not items then return redis.error_reply('sessionbank: a stored session is malformed') end
local data, order = {}, {}
for i = 6, #items - 1, 2 do
  local k = items[i]
  if data[k] == nil then order[#order + 1] = k end
  data[k] = items[i + 1]
end
local last = 7 + 2 * tonumber(ARGV[7])
for i = 8, last, 2 do
  local k = ARGV[i]
  if data[k] == nil then order[#order + 1] = k end
  data[k] = ARGV[i + 1]
end
for i = last + 1, #ARGV do data[ARGV[i]] = false end
items[3] = ARGV[1]
if ARGV[2] == 'at' then items[4] = ARGV[3] elseif ARGV[2] == 'browser' then items[4] = '' end
local deadline = items[4]
if deadline == '' then deadline = ARGV[4] end
if ARGV[5] == 'set' then items[5] = '=' .. ARGV[6] elseif ARGV[5] == 'clear' then items[5] = '' end
local out = {}
for i = 1, 5 do out[#out + 1] = tok(items[i]) end
for _, k in ipairs(order) do
  local v = data[k]
  if v then
    out[#out + 1] = tok(k)
    out[#out + 1] = tok(v)
  end
end
redis.call('SET', key, table.concat(out), 'PXAT', deadline)
if items[4] == '' then return {1, deadline, items[5], 1} end
return {1, deadline, items[5], 0}
",
    )
});

/// Renames within one server (standalone and sentinel): KEYS[1] old, KEYS[2] new; ARGV[1] now,
/// ARGV[2] now + browser_idle. Returns `{0}` (old gone), `{-1}` (new taken) or
/// `{1, deadline, owner token}`.
pub(crate) static RENAME: LazyLock<Script> = LazyLock::new(|| {
    with_helpers(
        r"
local s = redis.call('GET', KEYS[1])
if not s then return {0} end
if redis.call('EXISTS', KEYS[2]) == 1 then return {-1} end
local items = split(s)
if not items then return redis.error_reply('sessionbank: a stored session is malformed') end
local rest_at = 1
for i = 1, 5 do rest_at = rest_at + #tok(items[i]) end
items[3] = ARGV[1]
local deadline = items[4]
if deadline == '' then deadline = ARGV[2] end
local head = {}
for i = 1, 5 do head[#head + 1] = tok(items[i]) end
redis.call('SET', KEYS[2], table.concat(head) .. string.sub(s, rest_at), 'PXAT', deadline)
redis.call('DEL', KEYS[1])
return {1, deadline, items[5]}
",
    )
});

/// Cluster rename, last step (the old id's slot): deletes KEYS[1] only if it still holds
/// ARGV[1]. Returns 1 (deleted), 0 (already gone) or -1 (changed meanwhile).
pub(crate) static DELETE_IF_UNCHANGED: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local now = redis.call('GET', KEYS[1])
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
