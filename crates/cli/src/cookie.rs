//! `sessionbank cookie sign|verify`: the cookie formats from the command line.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Context;
use sessionbank::SessionId;
use sessionbank::cookie::{
    CookieFormat, ExpressFormat, Key, KeyRing, KeygripAlgorithm, KeygripFormat, NativeFormat,
    RequestCookies,
};

use crate::args::{CookieCommand, CookieFormatName, CookieSigning, KeygripHash};
use crate::exit::EXIT_NOT_FOUND;

/// The longest `Cookie` header `verify` reads.
const MAX_HEADER: usize = 8192;

/// Runs a cookie command, writing the result to `out`.
pub(crate) fn execute(command: CookieCommand, out: &mut dyn Write) -> anyhow::Result<ExitCode> {
    match command {
        CookieCommand::Sign { signing, value } => {
            let (format, keys, name) = resolve(&signing)?;
            let id = SessionId::parse(&value).context("invalid session id")?;
            let pairs = format.encode(&name, &id, &keys);
            let header = pairs
                .iter()
                .map(|(n, v)| format!("{n}={v}"))
                .collect::<Vec<_>>()
                .join("; ");
            writeln!(out, "{header}")?;
            Ok(ExitCode::SUCCESS)
        }
        CookieCommand::Verify { signing, header } => {
            let (format, keys, name) = resolve(&signing)?;
            let verdict = RequestCookies::parse([header.as_str()], MAX_HEADER)
                .and_then(|cookies| format.decode(&name, &cookies, &keys));
            match verdict {
                Ok(Some(verified)) => {
                    writeln!(out, "{}", verified.id.as_str())?;
                    if verified.needs_resign() {
                        eprintln!(
                            "sessionbank: verified with an older key (--key number {}); a server re-signs it with the first",
                            verified.key_index + 1
                        );
                    }
                    Ok(ExitCode::SUCCESS)
                }
                Ok(None) => {
                    eprintln!("sessionbank: the header has no cookie named `{name}`");
                    Ok(ExitCode::from(EXIT_NOT_FOUND))
                }
                Err(rejection) => {
                    eprintln!("sessionbank: {rejection}");
                    Ok(ExitCode::from(EXIT_NOT_FOUND))
                }
            }
        }
    }
}

/// The format, the key ring and the cookie name the flags ask for.
fn resolve(signing: &CookieSigning) -> anyhow::Result<(Box<dyn CookieFormat>, KeyRing, String)> {
    let (format, default_name): (Box<dyn CookieFormat>, &str) = match signing.format {
        CookieFormatName::Native => (
            Box::new(NativeFormat),
            sessionbank::cookie::DEFAULT_COOKIE_NAME,
        ),
        CookieFormatName::Express => (Box::new(ExpressFormat), "connect.sid"),
        CookieFormatName::Keygrip => {
            let algorithm = match signing.algorithm {
                KeygripHash::Sha1 => KeygripAlgorithm::Sha1,
                KeygripHash::Sha256 => KeygripAlgorithm::Sha256,
            };
            (
                Box::new(KeygripFormat::with_algorithm(algorithm)),
                "koa.sid",
            )
        }
    };
    let keys = signing
        .keys
        .iter()
        .enumerate()
        .map(|(i, text)| {
            match signing.format {
                CookieFormatName::Native => Key::from_base64(text),
                CookieFormatName::Express | CookieFormatName::Keygrip => {
                    Key::from_legacy_secret(text)
                }
            }
            .with_context(|| format!("--key number {} is not usable", i + 1))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let keys = KeyRing::from_keys(keys)?;
    let name = signing
        .name
        .clone()
        .unwrap_or_else(|| default_name.to_owned());
    Ok((format, keys, name))
}
