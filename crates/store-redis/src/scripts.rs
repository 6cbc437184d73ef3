//! The Lua scripts: each touches the keys of one hash slot only, so each runs on a cluster too.
//! The store sends each as one `EVALSHA` command built in place, and as `EVAL` after NOSCRIPT
//! ([`Lua`]).
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
    if not len or len < 0 or len % 1 ~= 0 or colon + len > n then return nil end
    items[#items + 1] = string.sub(s, colon + 1, colon + len)
    pos = colon + len + 1
  end
  if items[1] ~= 'sb1' or #items < 5 then return nil end
  return items
end
local function tok(x) return #x .. ':' .. x end
";

fn with_helpers(body: &str) -> Lua {
    Lua::new(format!("{HELPERS}{body}"))
}

/// A script the store sends itself: `EVALSHA` with its SHA-1, or `EVAL` with its text when the
/// server has not cached it (`NOSCRIPT`, after a restart or `SCRIPT FLUSH`; `EVAL` caches it).
///
/// redis-rs's `ScriptInvocation` keeps every argument in a buffer of its own and copies them
/// all into a command on each call; building the `EVALSHA` command directly writes each
/// argument once, into the command's one buffer (`RedisStore::eval`).
pub(crate) struct Lua {
    /// The script's text.
    pub(crate) code: String,
    /// Its SHA-1, in hex, as `EVALSHA` wants it.
    pub(crate) sha: String,
}

impl Lua {
    fn new(code: impl Into<String>) -> Self {
        let code = code.into();
        let sha = Script::new(&code).get_hash().to_owned();
        Self { code, sha }
    }
}

/// Applies a patch (and `touch`), only if the session exists.
///
/// The client sends every token it adds already written (`LEN:BYTES`), and the script copies
/// the tokens it keeps as byte ranges of the stored value: it never turns a number into text,
/// which in Redis's Lua (doubles, `%.14g` through the C library) cost more than everything
/// else in the script together (17.9 µs per call before, measured with `INFO commandstats`).
/// It keeps no table per token: the header's five tokens are read into locals, only data keys
/// whose length is that of a changed key are cut out and compared, and runs of kept tokens are
/// copied as one range each. A token whose length is not a whole number of bytes that fits is
/// an error, never a step backwards (a negative length made the first version loop until
/// Redis's script timeout).
///
/// KEYS[1] session. ARGV[1] the new last-access token, ARGV[2] expiry mode
/// `keep`|`browser`|`at`, ARGV[3] the new expiry (for `at`), ARGV[4] its token, ARGV[5] now +
/// browser_idle, ARGV[6] owner mode `keep`|`clear`|`set`, ARGV[7] the new owner token, ARGV[8]
/// its content (`=OWNER`), ARGV[9] the number N of keys to set, then N pairs (key, the key's
/// and value's tokens together), then the keys to remove.
///
/// Returns nil when the session is gone, else the new deadline (ms, as text; with a leading
/// `-` for a browser session), or, when the client must refresh the owner's set (the owner or
/// the expiry moved, or a browser session's TTL did) and there is an owner, `{deadline,
/// '=OWNER'}`.
pub(crate) static UPDATE: LazyLock<Lua> = LazyLock::new(|| {
    Lua::new(
        r"
local key = KEYS[1]
local s = redis.call('GET', key)
if not s then return false end
local find, sub, n = string.find, string.sub, #s
local function token(p)
  local c = find(s, ':', p, true)
  local l = c and tonumber(sub(s, p, c - 1))
  if not l or l < 0 or l % 1 ~= 0 or c + l > n then return nil end
  return c + 1, c + l
end
local bad = 'sessionbank: a stored session is malformed'
local a1, b1 = token(1)
if not a1 or sub(s, a1, b1) ~= 'sb1' then return redis.error_reply(bad) end
local a2, b2 = token(b1 + 1)
if not a2 then return redis.error_reply(bad) end
local a3, b3 = token(b2 + 1)
if not a3 then return redis.error_reply(bad) end
local a4, b4 = token(b3 + 1)
if not a4 then return redis.error_reply(bad) end
local a5, b5 = token(b4 + 1)
if not a5 then return redis.error_reply(bad) end
local mode, deadline, browser, expiry = ARGV[2], nil, false, nil
if mode == 'at' then
  expiry, deadline = ARGV[4], ARGV[3]
elseif mode == 'browser' or a4 > b4 then
  expiry, deadline, browser = '0:', ARGV[5], true
else
  expiry, deadline = sub(s, b3 + 1, b4), sub(s, a4, b4)
end
local owner_mode, owner_token, owner = ARGV[6], nil, nil
if owner_mode == 'set' then
  owner_token, owner = ARGV[7], ARGV[8]
elseif owner_mode == 'clear' then
  owner_token, owner = '0:', ''
else
  owner_token = sub(s, b4 + 1, b5)
end
local out = {sub(s, 1, b2), ARGV[1], expiry, owner_token}
local first_unset = 10 + 2 * tonumber(ARGV[9])
local changed, lengths = {}, {}
for i = 10, first_unset - 1, 2 do
  local k = ARGV[i]
  changed[k], lengths[#k] = ARGV[i + 1], true
end
for i = first_unset, #ARGV do
  local k = ARGV[i]
  changed[k], lengths[#k] = false, true
end
local pos = b5 + 1
local run = pos
while pos <= n do
  local ka, kb = token(pos)
  if not ka then return redis.error_reply(bad) end
  local va, vb = token(kb + 1)
  if not va then return redis.error_reply(bad) end
  if lengths[kb - ka + 1] then
    local k = sub(s, ka, kb)
    local new = changed[k]
    if new ~= nil then
      if run < pos then out[#out + 1] = sub(s, run, pos - 1) end
      if new then out[#out + 1] = new end
      changed[k] = false
      run = vb + 1
    end
  end
  pos = vb + 1
end
if run <= n then out[#out + 1] = sub(s, run, n) end
for i = 10, first_unset - 1, 2 do
  local new = changed[ARGV[i]]
  if new then
    out[#out + 1] = new
    changed[ARGV[i]] = false
  end
end
redis.call('SET', key, table.concat(out), 'PXAT', deadline)
if browser then deadline = '-' .. deadline end
if owner_mode ~= 'keep' or mode ~= 'keep' or browser then
  owner = owner or sub(s, a5, b5)
  if owner ~= '' then return {deadline, owner} end
end
return deadline
",
    )
});

/// Renames within one server (standalone and sentinel): KEYS[1] old, KEYS[2] new; ARGV[1] now,
/// ARGV[2] now + browser_idle. Returns `{0}` (old gone), `{-1}` (new taken) or
/// `{1, deadline, owner token}`.
pub(crate) static RENAME: LazyLock<Lua> = LazyLock::new(|| {
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
pub(crate) static DELETE_IF_UNCHANGED: LazyLock<Lua> = LazyLock::new(|| {
    Lua::new(
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
pub(crate) static OWNER_ADD: LazyLock<Lua> = LazyLock::new(|| {
    Lua::new(
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
pub(crate) static HASH_CREATE: LazyLock<Lua> = LazyLock::new(|| {
    Lua::new(
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
pub(crate) static HASH_RENAME: LazyLock<Lua> = LazyLock::new(|| {
    Lua::new(
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
pub(crate) static HASH_DELETE_IF_UNCHANGED: LazyLock<Lua> = LazyLock::new(|| {
    Lua::new(
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
pub(crate) static HASH_CAP_ZOMBIE: LazyLock<Lua> = LazyLock::new(|| {
    Lua::new(
        r"
if redis.call('HEXISTS', KEYS[1], 'c') == 1 then return 0 end
return redis.call('PEXPIRE', KEYS[1], ARGV[1], 'LT')
",
    )
});
