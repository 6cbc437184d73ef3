//! What each command does, against a store opened by URL.

use std::io::{self, Read, Write};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use futures::TryStreamExt;
use serde_json::Value;
use sessionbank::{Data, ErrorKind, Record, SessionId, StoreExt, StoreHandle, Timestamp};
use sessionbank_load::{LoadConfig, run_load};

use crate::args::{Command, Expiry, NewExpiry};
use crate::exit::EXIT_NOT_FOUND;

/// How many sessions `list` asks the store for at a time.
const LIST_PAGE: usize = 500;

/// Runs `command` against the store at `url`, writing results to `out`.
pub(crate) async fn execute(
    command: Command,
    url: Option<&str>,
    out: &mut dyn Write,
) -> anyhow::Result<ExitCode> {
    // Cookie commands need no store.
    let command = match command {
        Command::Cookie(cookie) => return crate::cookie::execute(cookie, out),
        other => other,
    };
    // Refuse before touching the store, so the refusal has no side effect at all.
    if let Command::Clear { yes: false } = command {
        bail!("refusing to remove every session without --yes");
    }
    // Check the arguments before connecting, so a typo never waits on a network.
    let command = Checked::from(command)?;
    let url = url.ok_or_else(|| {
        anyhow!("no store given: pass --store URL or set SESSIONBANK_URL (see sessionbank --help)")
    })?;
    let store = sessionbank::connect(url).await?;
    tracing::debug!(target = store.target(), "connected");

    match command {
        Checked::Count => {
            writeln!(out, "{}", store.length().await?)?;
        }
        Checked::List { limit } => list(&store, limit, out).await?,
        Checked::Get { id, meta } => {
            let Some(record) = store.get(&id).await? else {
                return Ok(ExitCode::from(EXIT_NOT_FOUND));
            };
            if meta {
                writeln!(out, "{}", meta_json(record))?;
            } else {
                writeln!(out, "{}", Value::from(record.data))?;
            }
        }
        Checked::Create {
            data,
            expires_at,
            owner,
        } => {
            let id = SessionId::generate()?;
            store
                .create(&id, &new_record(data, expires_at, owner))
                .await?;
            writeln!(out, "{}", id.as_str())?;
        }
        Checked::Set {
            id,
            data,
            expires_at,
            owner,
        } => {
            store.set(&id, &new_record(data, expires_at, owner)).await?;
        }
        Checked::Destroy { id } => store.destroy(&id).await?,
        Checked::Touch { id, expires_at } => {
            match store.touch(&id, expires_at.at(Timestamp::now())).await {
                Ok(()) => {}
                Err(e) if matches!(e.kind(), ErrorKind::Gone | ErrorKind::NotFound) => {
                    return Ok(ExitCode::from(EXIT_NOT_FOUND));
                }
                Err(e) => return Err(e.into()),
            }
        }
        Checked::Gc => {
            writeln!(out, "{}", store.cleanup().await?)?;
        }
        Checked::Clear => {
            writeln!(out, "{}", store.clear().await?)?;
        }
        Checked::Bench(config) => {
            let report = run_load(Arc::new(store.clone()), &config).await?;
            writeln!(out, "{}", report.to_json_line())?;
            if report.errors > 0 || report.cleanup_errors > 0 {
                out.flush()?;
                bail!(
                    "{} of {} ops failed and {} ids could not be removed afterwards (SESSIONBANK_LOG=warn shows the first failure of each task)",
                    report.errors,
                    report.errors + report.ops,
                    report.cleanup_errors
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// A command whose arguments were checked: ids parsed, data parsed, expiry resolved.
enum Checked {
    Count,
    List {
        limit: Option<u64>,
    },
    Get {
        id: SessionId,
        meta: bool,
    },
    Create {
        data: Data,
        expires_at: When,
        owner: Option<String>,
    },
    Set {
        id: SessionId,
        data: Data,
        expires_at: When,
        owner: Option<String>,
    },
    Destroy {
        id: SessionId,
    },
    Touch {
        id: SessionId,
        expires_at: When,
    },
    Gc,
    Clear,
    Bench(LoadConfig),
}

impl Checked {
    fn from(command: Command) -> anyhow::Result<Self> {
        Ok(match command {
            Command::Count => Self::Count,
            Command::List { limit } => Self::List { limit },
            Command::Get { id, meta } => Self::Get {
                id: parse_id(&id)?,
                meta,
            },
            Command::Create {
                data,
                expiry,
                owner,
            } => Self::Create {
                data: parse_data(&data)?,
                expires_at: resolve(&expiry),
                owner,
            },
            Command::Set {
                id,
                data,
                expiry,
                owner,
            } => Self::Set {
                id: parse_id(&id)?,
                data: parse_data(&data)?,
                expires_at: resolve(&expiry),
                owner,
            },
            Command::Destroy { id } => Self::Destroy { id: parse_id(&id)? },
            Command::Touch { id, expiry } => Self::Touch {
                id: parse_id(&id)?,
                expires_at: resolve_new(&expiry),
            },
            Command::Gc => Self::Gc,
            Command::Cookie(_) => bail!("cookie commands need no store"),
            Command::Clear { .. } => Self::Clear,
            Command::Bench {
                concurrency,
                seconds,
                value_bytes,
            } => Self::Bench(LoadConfig {
                concurrency: usize::try_from(concurrency)?,
                duration: seconds,
                value_bytes: usize::try_from(value_bytes)?,
                ..LoadConfig::default()
            }),
        })
    }
}

/// Parses an id; the message says which rule failed and never echoes the text.
fn parse_id(text: &str) -> anyhow::Result<SessionId> {
    SessionId::parse(text).context("invalid session id")
}

/// Parses the session data: a JSON object, given inline or as `-` for standard input.
fn parse_data(text: &str) -> anyhow::Result<Data> {
    let read;
    let text = if text == "-" {
        let mut buffer = String::new();
        io::stdin()
            .read_to_string(&mut buffer)
            .context("cannot read the session data from standard input")?;
        read = buffer;
        read.as_str()
    } else {
        text
    };
    let value: Value = serde_json::from_str(text)
        .map_err(|e| anyhow!("invalid session data: not valid JSON ({e})"))?;
    match value {
        Value::Object(data) => Ok(data.into()),
        other => bail!(
            "invalid session data: it must be a JSON object such as {{\"user\":\"ada\"}}, not {}",
            json_kind(&other)
        ),
    }
}

fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// When a session expires, as the command line gave it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum When {
    /// A browser session: no expiry.
    Never,
    /// At this moment.
    At(Timestamp),
    /// This long after the moment of writing.
    In(Duration),
}

impl When {
    /// The expiry for a record written at `now`.
    fn at(self, now: Timestamp) -> Option<Timestamp> {
        match self {
            When::Never => None,
            When::At(at) => Some(at),
            When::In(ttl) => Some(now + ttl),
        }
    }
}

fn resolve(expiry: &Expiry) -> When {
    when(expiry.ttl, expiry.expires_at)
}

fn resolve_new(expiry: &NewExpiry) -> When {
    if expiry.browser_session {
        return When::Never;
    }
    when(expiry.ttl, expiry.expires_at)
}

fn when(ttl: Option<Duration>, at: Option<Timestamp>) -> When {
    match (at, ttl) {
        (Some(at), _) => When::At(at),
        (None, Some(ttl)) => When::In(ttl),
        (None, None) => When::Never,
    }
}

/// A new record written now: created, last access and a TTL all count from the same moment.
fn new_record(data: Data, expires_at: When, owner: Option<String>) -> Record {
    let now = Timestamp::now();
    Record {
        data,
        expires_at: expires_at.at(now),
        owner,
        ..Record::new(now)
    }
}

/// `get --meta`: the record with its times in RFC 3339 (`null` for none), as one JSON object
/// with the keys in this order: data, expires_at, created_at, last_access, owner.
fn meta_json(record: Record) -> String {
    format!(
        r#"{{"data":{},"expires_at":{},"created_at":{},"last_access":{},"owner":{}}}"#,
        Value::from(record.data),
        Value::from(record.expires_at.map(Timestamp::to_rfc3339)),
        Value::from(record.created_at.to_rfc3339()),
        Value::from(record.last_access.to_rfc3339()),
        Value::from(record.owner),
    )
}

/// `list`: streams pages from the store and writes a line per session as it arrives.
async fn list(store: &StoreHandle, limit: Option<u64>, out: &mut dyn Write) -> anyhow::Result<()> {
    let page = limit.map_or(LIST_PAGE, |l| {
        usize::try_from(l).unwrap_or(LIST_PAGE).clamp(1, LIST_PAGE)
    });
    let mut sessions = store.stream_all(page);
    let mut printed = 0u64;
    while limit.is_none_or(|l| printed < l) {
        let Some((id, record)) = sessions.try_next().await? else {
            break;
        };
        let expiry = record
            .expires_at
            .map_or_else(|| "browser-session".to_owned(), Timestamp::to_rfc3339);
        let owner = record
            .owner
            .as_deref()
            .map_or_else(|| "-".to_owned(), tsv_field);
        writeln!(out, "{}\t{expiry}\t{owner}", id.as_str())?;
        printed += 1;
    }
    Ok(())
}

/// Escapes what would break a tab-separated line: backslash, tab, newline, carriage return.
fn tsv_field(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' => escaped.push_str("\\\\"),
            '\t' => escaped.push_str("\\t"),
            '\n' => escaped.push_str("\\n"),
            '\r' => escaped.push_str("\\r"),
            c => escaped.push(c),
        }
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_must_be_a_json_object() {
        assert_eq!(parse_data(r#"{"a":1}"#).unwrap()["a"], 1);
        let err = format!("{:#}", parse_data("[1]").unwrap_err());
        assert!(
            err.contains("JSON object") && err.contains("array"),
            "{err}"
        );
        let err = format!("{:#}", parse_data("{oops").unwrap_err());
        assert!(err.contains("not valid JSON"), "{err}");
    }

    #[test]
    fn invalid_ids_are_named_but_not_echoed() {
        let err = format!("{:#}", parse_id("secret-looking-but-short").unwrap_err());
        assert!(err.contains("invalid session id"), "{err}");
        assert!(!err.contains("secret-looking"), "{err}");
    }

    #[test]
    fn owners_cannot_break_a_tsv_line() {
        assert_eq!(tsv_field("a\tb\nc\\d"), "a\\tb\\nc\\\\d");
        assert_eq!(tsv_field("ada lovelace"), "ada lovelace");
    }

    #[test]
    fn an_explicit_time_wins_and_a_ttl_counts_from_the_write() {
        let at = Timestamp::from_millis(1_000);
        let now = Timestamp::from_millis(50_000);
        assert_eq!(
            when(Some(Duration::from_secs(60)), Some(at)).at(now),
            Some(at)
        );
        assert_eq!(when(None, None).at(now), None);
        assert_eq!(
            when(Some(Duration::from_secs(60)), None).at(now),
            Some(Timestamp::from_millis(110_000))
        );
        let record = new_record(Data::new(), When::In(Duration::from_secs(60)), None);
        assert_eq!(
            record.expires_at,
            Some(record.created_at + Duration::from_secs(60))
        );
        assert_eq!(record.created_at, record.last_access);
    }
}
