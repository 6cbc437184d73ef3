//! The Lua scripts: each touches the keys of one hash slot only, so each runs on a cluster too.
//! redis-rs sends them with EVALSHA and falls back on EVAL (loading them) after NOSCRIPT; the
//! update script, which runs on every request that changes a session, is sent by the store
//! itself ([`Lua`]), as one command built in place.
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

/// A script the store sends itself: `EVALSHA` with its SHA-1, or `EVAL` with its text when the
/// server has not cached it (`NOSCRIPT`, after a restart or `SCRIPT FLUSH`; `EVAL` caches it).
///
/// redis-rs's `ScriptInvocation` keeps every argument in a buffer of its own and copies them
/// all into a command on each call; building the `EVALSHA` command directly writes each
/// argument once, into the command's one buffer.
pub(crate) struct Lua {
    /// The script's text.
    pub(crate) code: &'static str,
    /// Its SHA-1, in hex, as `EVALSHA` wants it.
    pub(crate) sha: String,
}

impl Lua {
    fn new(code: &'static str) -> Self {
        Self {
            code,
            sha: Script::new(code).get_hash().to_owned(),
        }
    }
}

/// Applies a patch (and `touch`), only if the session exists.
///
/// The client sends every token it adds already written (`LEN:BYTES`), and the script copies
/// the tokens it keeps as byte ranges of the stored value: it never turns a number into text,
/// which in Redis's Lua (doubles, `%.14g` through the C library) cost more than everything
/// else in the script together (17.9 µs per call before, measured with `INFO commandstats`).
///
/// KEYS[1] session. ARGV[1] the new last-access token, ARGV[2] expiry mode
/// `keep`|`browser`|`at`, ARGV[3] the new expiry (for `at`), ARGV[4] its token, ARGV[5] now +
/// browser_idle, ARGV[6] owner mode `keep`|`clear`|`set`, ARGV[7] the new owner token, ARGV[8]
/// its content (`=OWNER`), ARGV[9] the number N of keys to set, then N pairs (key, the key's
/// and value's tokens together), then the keys to remove.
///
/// Returns `{0}` when the session is gone, else `{1, deadline, owner content, browser}` (the
/// owner content `''` or `=OWNER`; browser 1 for a browser session).
pub(crate) static UPDATE: LazyLock<Lua> = LazyLock::new(|| {
    Lua::new(
        r"
local key = KEYS[1]
local s = redis.call('GET', key)
if not s then return {0} end
local find, sub = string.find, string.sub
local n, pos = #s, 1
local ts, cs, ce = {}, {}, {}
for h = 1, 5 do
  local colon = find(s, ':', pos, true)
  if not colon then return redis.error_reply('sessionbank: a stored session is malformed') end
  local len = tonumber(sub(s, pos, colon - 1))
  if not len or colon + len > n then return redis.error_reply('sessionbank: a stored session is malformed') end
  ts[h], cs[h], ce[h] = pos, colon + 1, colon + len
  pos = colon + len + 1
end
if sub(s, cs[1], ce[1]) ~= 'sb1' then return redis.error_reply('sessionbank: a stored session is malformed') end
local changed = {}
local pairs_at = 10 + 2 * tonumber(ARGV[9])
for i = 10, pairs_at - 1, 2 do changed[ARGV[i]] = ARGV[i + 1] end
for i = pairs_at, #ARGV do changed[ARGV[i]] = false end
local out = {sub(s, ts[1], ce[2]), ARGV[1]}
local mode, deadline, browser = ARGV[2], nil, 0
if mode == 'at' then
  out[3] = ARGV[4]
  deadline = ARGV[3]
elseif mode == 'browser' or cs[4] > ce[4] then
  out[3] = '0:'
  deadline, browser = ARGV[5], 1
else
  out[3] = sub(s, ts[4], ce[4])
  deadline = sub(s, cs[4], ce[4])
end
local owner = ARGV[6]
local owner_content
if owner == 'set' then
  out[4] = ARGV[7]
  owner_content = ARGV[8]
elseif owner == 'clear' then
  out[4] = '0:'
  owner_content = ''
else
  out[4] = sub(s, ts[5], ce[5])
  owner_content = sub(s, cs[5], ce[5])
end
while pos <= n do
  local start = pos
  local colon = find(s, ':', pos, true)
  local len = colon and tonumber(sub(s, pos, colon - 1))
  if not len then return redis.error_reply('sessionbank: a stored session is malformed') end
  local k = sub(s, colon + 1, colon + len)
  pos = colon + len + 1
  colon = find(s, ':', pos, true)
  len = colon and tonumber(sub(s, pos, colon - 1))
  if not len or colon + len > n then return redis.error_reply('sessionbank: a stored session is malformed') end
  pos = colon + len + 1
  local new = changed[k]
  if new == nil then
    out[#out + 1] = sub(s, start, pos - 1)
  else
    if new then out[#out + 1] = new end
    changed[k] = false
  end
end
for i = 10, pairs_at - 1, 2 do
  local k = ARGV[i]
  if changed[k] then
    out[#out + 1] = changed[k]
    changed[k] = false
  end
end
redis.call('SET', key, table.concat(out), 'PXAT', deadline)
return {1, deadline, owner_content, browser}
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

// The hash layout (`hash.rs`): these serve the rare operations only; `update` and `touch` are
// native commands in one MULTI … EXEC.

/// Creates a session in the hash layout unless a live one has the id: KEYS[1] the hash;
/// ARGV[1] now (ms), ARGV[2] browser_idle (ms), ARGV[3] the new deadline, then the fields and
/// values to write. A hash without `c` (a zombie that an update of a gone session left) or one
/// whose deadline has passed is replaced, never inherited. Returns 1 (created) or 0 (a live
/// session has the id).
pub(crate) static HASH_CREATE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local m = redis.call('HMGET', KEYS[1], 'c', 'a', 'e')
if m[1] then
  local deadline = tonumber(m[3])
  if not deadline then deadline = (tonumber(m[2]) or 0) + tonumber(ARGV[2]) end
  if deadline > tonumber(ARGV[1]) then return 0 end
end
redis.call('DEL', KEYS[1])
local n = #ARGV
local i = 4
while i <= n do
  local last = math.min(i + 199, n)
  redis.call('HSET', KEYS[1], unpack(ARGV, i, last))
  i = last + 1
end
redis.call('PEXPIREAT', KEYS[1], ARGV[3])
return 1
",
    )
});

/// Renames within one server in the hash layout: KEYS[1] old, KEYS[2] new; ARGV[1] now,
/// ARGV[2] now + browser_idle. Returns what [`RENAME`] returns: `{0}` (old gone), `{-1}` (new
/// taken) or `{1, deadline, owner content}`. `RENAME` moves the hash whole (a zombie at the new
/// id is overwritten), then last access and the TTL are set.
pub(crate) static HASH_RENAME: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local m = redis.call('HMGET', KEYS[1], 'c', 'e', 'o')
if not m[1] then return {0} end
if redis.call('HEXISTS', KEYS[2], 'c') == 1 then return {-1} end
redis.call('RENAME', KEYS[1], KEYS[2])
redis.call('HSET', KEYS[2], 'a', ARGV[1])
local deadline = m[2]
if not deadline or deadline == '' then deadline = ARGV[2] end
redis.call('PEXPIREAT', KEYS[2], deadline)
return {1, deadline, m[3] or ''}
",
    )
});

/// Cluster rename in the hash layout, last step (the old id's slot): deletes KEYS[1] only if
/// its fields and values are still exactly ARGV (field, value, field, value, …). Returns 1
/// (deleted), 0 (already gone) or -1 (changed meanwhile).
pub(crate) static HASH_DELETE_IF_UNCHANGED: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local now = redis.call('HGETALL', KEYS[1])
if #now == 0 then return 0 end
if #now ~= #ARGV then return -1 end
local want = {}
for i = 1, #ARGV, 2 do want[ARGV[i]] = ARGV[i + 1] end
for i = 1, #now, 2 do
  if want[now[i]] ~= now[i + 1] then return -1 end
end
return redis.call('DEL', KEYS[1])
",
    )
});

/// After an update found the session gone (the hash layout's zombie path, rare): gives the
/// hash the update left behind at most ARGV[1] ms to live, unless it is a live session again
/// (has `c`). Needed when the update's `PEXPIREAT … XX` met an earlier zombie, which has a TTL.
pub(crate) static HASH_CAP_ZOMBIE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('HEXISTS', KEYS[1], 'c') == 1 then return 0 end
return redis.call('PEXPIRE', KEYS[1], ARGV[1], 'LT')
",
    )
});
