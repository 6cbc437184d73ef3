//! The cookie signing key: from `SESSIONBANK_KEY`, or from a key file the demo creates once with
//! owner-only permissions, so a restart keeps every signed cookie valid.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use sessionbank_cookie::Key;
use sessionbank_core::{FromStoreUrl, StoreUrl};
use sessionbank_store_disk::DiskStoreBuilder;

/// The name of the key file inside a disk store's folder, beside the store's own
/// `sessions.redb`.
pub(crate) const KEY_FILE_NAME: &str = "demo.key";

/// The signing key and where it came from. `Debug` never shows the key (`Key` redacts it).
#[derive(Debug)]
pub(crate) struct LoadedKey {
    /// The key.
    pub(crate) key: Key,
    /// Where it came from, for the log: `SESSIONBANK_KEY`, or the file's path.
    pub(crate) origin: String,
    /// Whether the file was created on this start.
    pub(crate) created: bool,
}

/// Where the key file goes when `--key-file` is not given: `demo.key` inside a `disk:` store's
/// folder (beside the data it protects), otherwise `sessionbank-demo.key` in the working
/// directory.
pub(crate) fn default_key_file(store_url: &str) -> PathBuf {
    disk_dir(store_url).map_or_else(
        || PathBuf::from("sessionbank-demo.key"),
        |dir| dir.join(KEY_FILE_NAME),
    )
}

/// The folder of a `disk:` store URL, read exactly as the disk store reads it.
fn disk_dir(store_url: &str) -> Option<PathBuf> {
    let mut url = StoreUrl::parse(store_url).ok()?;
    if url.scheme() != "disk" {
        return None;
    }
    // The registry's own options (`cleanup_time`, `coalesce`) stay in `url`, unread: only the
    // directory matters here.
    let builder = DiskStoreBuilder::from_url(&mut url).ok()?;
    Some(builder.get_dir().to_path_buf())
}

fn parse_key(text: &str, origin: &str) -> anyhow::Result<Key> {
    // The key crate's messages never echo the key.
    Key::from_base64(text).with_context(|| {
        format!(
            "the signing key in {origin} is unusable; it must be base64 of at least 32 random \
             bytes, e.g. `head -c 64 /dev/urandom | base64 -w0`"
        )
    })
}

/// Loads the signing key: from `env_key` (the value of `SESSIONBANK_KEY`) when set, otherwise
/// from `file`, creating it with a fresh key and permissions 0600 when it does not exist.
pub(crate) fn load_key(env_key: Option<&str>, file: &Path) -> anyhow::Result<LoadedKey> {
    if let Some(text) = env_key {
        return Ok(LoadedKey {
            key: parse_key(text, "SESSIONBANK_KEY")?,
            origin: "SESSIONBANK_KEY".to_owned(),
            created: false,
        });
    }
    let origin = file.display().to_string();
    match fs::read_to_string(file) {
        Ok(text) => {
            warn_if_readable_by_others(file);
            Ok(LoadedKey {
                key: parse_key(&text, &origin)?,
                origin,
                created: false,
            })
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => create_key_file(file, origin),
        Err(e) => Err(e).with_context(|| format!("cannot read the key file {origin}")),
    }
}

fn create_key_file(file: &Path, origin: String) -> anyhow::Result<LoadedKey> {
    if let Some(parent) = file.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::create_dir_all(parent)
            .with_context(|| format!("cannot create the folder for the key file {origin}"))?;
    }
    let key = Key::generate().context("cannot generate a signing key")?;
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut handle = match options.open(file) {
        Ok(handle) => handle,
        // Another process created it between our read and our create: use theirs.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            let text = fs::read_to_string(file)
                .with_context(|| format!("cannot read the key file {origin}"))?;
            return Ok(LoadedKey {
                key: parse_key(&text, &origin)?,
                origin,
                created: false,
            });
        }
        Err(e) => return Err(e).with_context(|| format!("cannot create the key file {origin}")),
    };
    let mut text = key.to_base64();
    text.push('\n');
    handle
        .write_all(text.as_bytes())
        .and_then(|()| handle.sync_all())
        .with_context(|| format!("cannot write the key file {origin}"))?;
    Ok(LoadedKey {
        key,
        origin,
        created: true,
    })
}

#[cfg(unix)]
fn warn_if_readable_by_others(file: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = fs::metadata(file)
        && meta.permissions().mode() & 0o077 != 0
    {
        tracing::warn!(
            path = %file.display(),
            "the key file is readable by other users; `chmod 600` it"
        );
    }
}

#[cfg(not(unix))]
fn warn_if_readable_by_others(_file: &Path) {}

#[cfg(test)]
mod tests {
    use super::*;

    fn sign(key: &Key) -> [u8; 32] {
        key.hmac_sha256(&[b"probe"])
    }

    #[test]
    fn default_key_file_sits_in_a_disk_store_folder() {
        assert_eq!(
            default_key_file("disk:.sessionbank"),
            PathBuf::from(".sessionbank/demo.key")
        );
        assert_eq!(
            default_key_file("disk:///var/lib/demo?cleanup_time=1m"),
            PathBuf::from("/var/lib/demo/demo.key")
        );
        assert_eq!(
            default_key_file("disk:///tmp/with%20space"),
            PathBuf::from("/tmp/with space/demo.key")
        );
        assert_eq!(
            default_key_file("memory://"),
            PathBuf::from("sessionbank-demo.key")
        );
        assert_eq!(
            default_key_file("not a url"),
            PathBuf::from("sessionbank-demo.key")
        );
    }

    #[test]
    fn creates_a_private_key_file_once_and_reads_it_back() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("sub/demo.key");
        let first = load_key(None, &file).unwrap();
        assert!(first.created);
        assert_eq!(
            first.key.expose_secret().len(),
            sessionbank_cookie::GENERATED_KEY_LEN
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&file).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let second = load_key(None, &file).unwrap();
        assert!(!second.created);
        assert_eq!(sign(&second.key), sign(&first.key));
        let shown = format!("{second:?}");
        assert!(!shown.contains(&first.key.to_base64()[..12]), "{shown}");
    }

    #[test]
    fn env_key_wins_and_must_be_long_enough_base64() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("demo.key");
        let key = Key::from_bytes(&[7u8; 32]).unwrap();
        let loaded = load_key(Some(&key.to_base64()), &file).unwrap();
        assert_eq!(sign(&loaded.key), sign(&key));
        assert!(!file.exists(), "an env key creates no file");
        let short = "QUJDRA==";
        let err = format!("{:#}", load_key(Some(short), &file).unwrap_err());
        assert!(err.contains("at least 32"), "{err}");
        assert!(!err.contains(short));
        let err = format!(
            "{:#}",
            load_key(Some("!!!not base64!!!"), &file).unwrap_err()
        );
        assert!(err.contains("SESSIONBANK_KEY"), "{err}");
        assert!(!err.contains("!!!not"), "{err}");
    }

    #[test]
    fn a_corrupt_key_file_is_an_error_not_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("demo.key");
        fs::write(&file, "short").unwrap();
        assert!(load_key(None, &file).is_err());
        assert_eq!(fs::read_to_string(&file).unwrap(), "short");
    }
}
