//! The command line, as clap reads it. Every command and flag here is what `--help` shows.

use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use sessionbank::Timestamp;

const AFTER_HELP: &str = "\
Store URLs:
  memory://                  an in-process store; it lives only as long as one command
                             (useful with `bench`)
  disk:///var/lib/app/sess   the embedded disk store in an absolute directory
  disk:relative/dir          the disk store in a directory relative to the working directory
  sqlite:///path/file.db     SQLite (also sqlite:relative.db, sqlite::memory:)
  postgres://user:pw@host/db PostgreSQL (?schema=&table=&create=&layout=native|koa)
  mysql://user:pw@host/db    MySQL or MariaDB (also mariadb://; ?table=&create=)
  redis://host:6379/0        Redis (rediss:// for TLS; ?prefix=)
  redis+sentinel://s1:26379,s2:26379/mymaster   Redis behind Sentinel
  redis+cluster://h1:7000,h2:7001               Redis Cluster
  memcached://h1:11211,h2:11211                 Memcached (no list, count or clear)
  mongodb://user:pw@h1,h2/db?collection=sessions   MongoDB (also mongodb+srv://)
  Every URL also takes ?browser_idle=1d (how long a session without expiry lives after its
  last access) and ?cleanup_time=45m|off (the background janitor), plus the backend's own
  options; an unknown scheme or option is an error that lists the known ones.

Environment:
  SESSIONBANK_URL   the store URL when --store is not given
  SESSIONBANK_LOG   log filter for stderr, e.g. debug or sessionbank=trace (default: warn)

Exit status:
  0  success
  1  the session was not found (`get`, `touch`), or the cookie does not verify
     (`cookie verify`); nothing is printed on stdout
  2  any other error, with a one-line message on stderr

Examples:
  sessionbank --store disk:sessions create '{\"user\":\"ada\"}' --ttl 30m --owner ada
  SESSIONBANK_URL=disk:sessions sessionbank list --limit 20
  sessionbank --store disk:sessions get ID --meta
  sessionbank --store memory:// bench --concurrency 64 --seconds 5
  sessionbank cookie sign --format express --key 'keyboard cat' ID
  sessionbank cookie verify --format keygrip --key k2 --key k1 'koa.sid=ID; koa.sid.sig=SIG'";

/// Inspect and manage the sessions of any sessionbank store, chosen by URL, and benchmark it.
#[derive(Debug, Parser)]
#[command(name = "sessionbank", version, after_help = AFTER_HELP)]
pub(crate) struct Cli {
    /// The store to open, e.g. memory://, disk:///var/lib/app/sessions or disk:sessions.
    #[arg(
        long,
        short = 's',
        global = true,
        value_name = "URL",
        env = "SESSIONBANK_URL",
        hide_env_values = true
    )]
    pub(crate) store: Option<String>,

    /// What to do.
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Print the number of live sessions.
    Count,

    /// Print one line per live session: id, expiry (RFC 3339, or `browser-session` for a
    /// session without one) and owner (or `-`), separated by tabs.
    ///
    /// Sessions are read a page at a time, never all at once.
    List {
        /// Stop after this many sessions.
        #[arg(long, value_name = "N")]
        limit: Option<u64>,
    },

    /// Print a session's data as one JSON object; exit 1 if there is no such live session.
    Get {
        /// The session id (32 characters of A-Z, a-z, 0-9, '-' and '_').
        #[arg(allow_hyphen_values = true)]
        id: String,
        /// Print {"data": {...}, "expires_at": ..., "created_at": ..., "last_access": ...,
        /// "owner": ...} instead, with times in RFC 3339 and null for none.
        #[arg(long)]
        meta: bool,
    },

    /// Store a new session under a fresh random id and print the id.
    ///
    /// Without --ttl or --expires-at it is a browser session, which lives until it has been
    /// idle for the store's browser_idle.
    Create {
        /// The session's data: a JSON object such as '{"user":"ada"}', or - to read it from
        /// standard input.
        data: String,
        #[command(flatten)]
        expiry: Expiry,
        /// The user the session belongs to.
        #[arg(long, value_name = "NAME")]
        owner: Option<String>,
    },

    /// Write a whole session under ID, whether or not it exists (upsert).
    ///
    /// Keys not in DATA are gone afterwards; created and last-access times become now.
    Set {
        /// The session id (32 characters of A-Z, a-z, 0-9, '-' and '_').
        #[arg(allow_hyphen_values = true)]
        id: String,
        /// The session's data: a JSON object such as '{"user":"ada"}', or - to read it from
        /// standard input.
        data: String,
        #[command(flatten)]
        expiry: Expiry,
        /// The user the session belongs to.
        #[arg(long, value_name = "NAME")]
        owner: Option<String>,
    },

    /// Remove a session; succeeds whether or not it exists.
    Destroy {
        /// The session id.
        #[arg(allow_hyphen_values = true)]
        id: String,
    },

    /// Move a live session's expiry without changing its data; exit 1 if there is no such
    /// live session.
    Touch {
        /// The session id.
        #[arg(allow_hyphen_values = true)]
        id: String,
        #[command(flatten)]
        expiry: NewExpiry,
    },

    /// Remove expired sessions now and print how many were removed.
    Gc,

    /// Remove every session of the store and print how many were removed. Refuses without
    /// --yes.
    Clear {
        /// Really remove every session.
        #[arg(long)]
        yes: bool,
    },

    /// Sign or verify session cookies in the native, Express or Keygrip format (no store
    /// needed).
    #[command(subcommand)]
    Cookie(CookieCommand),

    /// Measure the store: tasks run save+load pairs on their own ids, then the ids are
    /// destroyed. Prints one JSON line: {"ops_per_sec": …, "p50_us": …, "p99_us": …,
    /// "errors": …}, where an op is one pair (set a session holding one key of VALUE_BYTES
    /// characters, get it back and check it). Exits 2 if any op failed.
    Bench {
        /// How many tasks run pairs at once.
        #[arg(long, value_name = "N", default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=100_000))]
        concurrency: u32,
        /// How long to run, in seconds (fractions allowed).
        #[arg(long, value_name = "SECONDS", default_value = "5", value_parser = parse_seconds)]
        seconds: Duration,
        /// The stored value's length in bytes.
        #[arg(long, value_name = "N", default_value_t = 500, value_parser = clap::value_parser!(u32).range(0..=16_777_216))]
        value_bytes: u32,
    },
}

/// Signed-cookie commands (no store needed).
#[derive(Debug, Subcommand)]
pub(crate) enum CookieCommand {
    /// Print the `Cookie` header value a format sends for a session id, signed with the first
    /// --key.
    Sign {
        #[command(flatten)]
        signing: CookieSigning,
        /// The session id to sign (32 characters of A-Z, a-z, 0-9, '-' and '_').
        #[arg(allow_hyphen_values = true)]
        value: String,
    },
    /// Verify a `Cookie` header value: print the session id and exit 0 when a signature holds
    /// under one of the --key values, exit 1 (reason on stderr) when it does not.
    Verify {
        #[command(flatten)]
        signing: CookieSigning,
        /// The `Cookie` header value, e.g. 'connect.sid=s%3A…' or 'koa.sid=…; koa.sid.sig=…'.
        header: String,
    },
}

/// How cookies are signed: the format, the keys (newest first) and the cookie name.
#[derive(Debug, Clone, Args)]
pub(crate) struct CookieSigning {
    /// The signing format: native (sessionbank's own), express (express-session's
    /// cookie-signature) or keygrip (Koa's cookies module).
    #[arg(long, value_enum, default_value_t = CookieFormatName::Native)]
    pub(crate) format: CookieFormatName,
    /// A signing key, newest first; repeat for a key ring (sign with the first, verify with
    /// any). native: base64 of at least 32 bytes; express and keygrip: the secret string the
    /// Node app is configured with. Keys on a command line are visible to other local users.
    #[arg(long = "key", value_name = "KEY", required = true)]
    pub(crate) keys: Vec<String>,
    /// The cookie name (default: id for native, connect.sid for express, koa.sid for keygrip).
    #[arg(long)]
    pub(crate) name: Option<String>,
    /// keygrip only: the HMAC algorithm.
    #[arg(long, value_enum, default_value_t = KeygripHash::Sha1)]
    pub(crate) algorithm: KeygripHash,
}

/// The cookie formats `cookie sign` and `cookie verify` speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum CookieFormatName {
    /// `ID.SIG`, HMAC-SHA256 over the cookie name and the id.
    Native,
    /// `s:ID.SIG` (URI-encoded), HMAC-SHA256 of the id, as express-session writes it.
    Express,
    /// `name=ID` plus `name.sig`, as Koa's cookies module writes it with Keygrip.
    Keygrip,
}

/// Keygrip's HMAC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum KeygripHash {
    /// HMAC-SHA1, Keygrip's default.
    Sha1,
    /// HMAC-SHA256.
    Sha256,
}

/// When a new or rewritten session expires.
#[derive(Debug, Clone, Args)]
#[group(multiple = false)]
pub(crate) struct Expiry {
    /// Expire this long from now, e.g. 90s, 30m, 12h or 7days.
    #[arg(long, value_name = "DURATION", value_parser = parse_ttl)]
    pub(crate) ttl: Option<Duration>,
    /// Expire at this moment, in RFC 3339 (e.g. 2030-01-01T00:00:00Z); may be in the past.
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    pub(crate) expires_at: Option<Timestamp>,
}

/// The new expiry for `touch`: exactly one of these.
#[derive(Debug, Clone, Args)]
#[group(required = true, multiple = false)]
pub(crate) struct NewExpiry {
    /// Expire this long from now, e.g. 90s, 30m, 12h or 7days.
    #[arg(long, value_name = "DURATION", value_parser = parse_ttl)]
    pub(crate) ttl: Option<Duration>,
    /// Expire at this moment, in RFC 3339 (e.g. 2030-01-01T00:00:00Z).
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    pub(crate) expires_at: Option<Timestamp>,
    /// Make it a browser session: no expiry, kept while it is used within browser_idle.
    #[arg(long)]
    pub(crate) browser_session: bool,
}

/// A TTL: a positive duration with a unit.
fn parse_ttl(text: &str) -> Result<Duration, String> {
    let ttl = humantime::parse_duration(text.trim())
        .map_err(|e| format!("not a duration such as 90s, 30m or 12h ({e})"))?;
    if ttl.is_zero() {
        return Err("the TTL must be longer than zero".to_owned());
    }
    Ok(ttl)
}

/// An RFC 3339 time.
fn parse_time(text: &str) -> Result<Timestamp, String> {
    let parsed =
        time::OffsetDateTime::parse(text.trim(), &time::format_description::well_known::Rfc3339)
            .map_err(|e| format!("not an RFC 3339 time such as 2030-01-01T00:00:00Z ({e})"))?;
    let millis = parsed.unix_timestamp_nanos() / 1_000_000;
    i64::try_from(millis)
        .map(Timestamp::from_millis)
        .map_err(|_| "the time is out of range".to_owned())
}

/// A positive number of seconds, at most one hour.
fn parse_seconds(text: &str) -> Result<Duration, String> {
    let seconds: f64 = text
        .trim()
        .parse()
        .map_err(|_| "not a number of seconds such as 5 or 0.5".to_owned())?;
    if !(seconds > 0.0 && seconds <= 3600.0) {
        return Err("the run must last more than 0 and at most 3600 seconds".to_owned());
    }
    Ok(Duration::from_secs_f64(seconds))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn ttl_must_be_a_positive_duration_with_a_unit() {
        assert_eq!(parse_ttl("30m"), Ok(Duration::from_secs(1800)));
        assert!(parse_ttl("0s").is_err());
        assert!(parse_ttl("30").is_err());
        assert!(parse_ttl("soon").is_err());
    }

    #[test]
    fn times_parse_as_rfc3339_with_offsets() {
        assert_eq!(
            parse_time("2023-11-14T22:13:20Z"),
            Ok(Timestamp::from_millis(1_700_000_000_000))
        );
        assert_eq!(
            parse_time("2023-11-14T23:13:20.5+01:00"),
            Ok(Timestamp::from_millis(1_700_000_000_500))
        );
        assert!(parse_time("2023-11-14").is_err());
    }

    #[test]
    fn seconds_must_be_positive_and_bounded() {
        assert_eq!(parse_seconds("0.5"), Ok(Duration::from_millis(500)));
        assert!(parse_seconds("0").is_err());
        assert!(parse_seconds("-1").is_err());
        assert!(parse_seconds("NaN").is_err());
        assert!(parse_seconds("7200").is_err());
    }
}
