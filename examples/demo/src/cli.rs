//! Command-line flags.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Parser;

/// A small website on sessionbank: a visit counter, sign-in, the list of your sessions, and
/// "sign out everywhere".
///
/// Cookies are marked `Secure` unless the demo listens on a loopback address (127.0.0.1, ::1),
/// where plain http is the only way to reach it; on any other address put it behind HTTPS.
#[derive(Parser)]
#[command(name = "sessionbank-demo", version, about, long_about)]
pub(crate) struct Args {
    /// Address and port to listen on (port 0 picks a free one; the chosen address is printed).
    #[arg(long, value_name = "ADDR:PORT", default_value = "127.0.0.1:3000")]
    pub(crate) listen: SocketAddr,

    /// Session store URL, e.g. `disk:.sessionbank`, `disk:///var/lib/demo`, `memory://`.
    #[arg(
        long,
        value_name = "URL",
        env = "SESSIONBANK_URL",
        default_value = "disk:.sessionbank",
        hide_env_values = true
    )]
    pub(crate) store: String,

    /// File holding the base64 cookie-signing key; created with fresh random bytes and
    /// permissions 0600 on first start. Default: `demo.key` inside a `disk:` store's folder,
    /// otherwise `sessionbank-demo.key`. The environment variable `SESSIONBANK_KEY` (base64,
    /// at least 32 bytes) takes precedence over any file.
    #[arg(long, value_name = "PATH", env = "SESSIONBANK_KEY_FILE")]
    pub(crate) key_file: Option<PathBuf>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn flags_parse_with_defaults() {
        Args::command().debug_assert();
        let args = Args::try_parse_from(["sessionbank-demo"]).unwrap();
        assert_eq!(args.listen, "127.0.0.1:3000".parse().unwrap());
        if std::env::var_os("SESSIONBANK_URL").is_none() {
            assert_eq!(args.store, "disk:.sessionbank");
        }
        let args = Args::try_parse_from([
            "sessionbank-demo",
            "--listen",
            "[::1]:0",
            "--store",
            "memory://",
            "--key-file",
            "/tmp/k",
        ])
        .unwrap();
        assert!(args.listen.ip().is_loopback());
        assert_eq!(args.store, "memory://");
        assert_eq!(args.key_file, Some(PathBuf::from("/tmp/k")));
        assert!(Args::try_parse_from(["sessionbank-demo", "--listen", "nowhere"]).is_err());
    }
}
