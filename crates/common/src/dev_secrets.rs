//! Development secrets: generated on first start, kept under the dev folder so
//! restarts reuse them (sessions survive a restart), never used in production.

use std::fs;
use std::io::Write;
use std::path::Path;

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine as _};
use secrecy::SecretString;

/// Every generated secret starts with this, so production can recognise and refuse it.
pub const DEV_PREFIX: &str = "dev-only-";

/// Reads `<dir>/secrets/<name>`, creating it with 256 random bits when missing.
pub fn load_or_create(dir: &Path, name: &str) -> std::io::Result<SecretString> {
    let folder = dir.join("secrets");
    let path = folder.join(name);
    if let Ok(existing) = fs::read_to_string(&path) {
        let existing = existing.trim();
        if !existing.is_empty() {
            return Ok(SecretString::from(existing.to_owned()));
        }
    }
    fs::create_dir_all(&folder)?;
    let mut bytes = [0u8; 32];
    rand::fill(&mut bytes);
    let secret = format!("{DEV_PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes));
    // Write to a temporary file and link it into place, so a concurrent start
    // never reads half a secret. The temporary name is unique per call, not
    // per process: the services of `gatehouse dev` (and tests) share a process
    // and may create the same secret at the same moment.
    let tmp = folder.join(format!(".{name}.{}.{:016x}", std::process::id(), rand::random::<u64>()));
    {
        let mut file = open_private(&tmp)?;
        file.write_all(secret.as_bytes())?;
        file.sync_all()?;
    }
    match fs::hard_link(&tmp, &path) {
        Ok(()) => {
            fs::remove_file(&tmp)?;
            Ok(SecretString::from(secret))
        }
        // Someone else won the race: use theirs.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            fs::remove_file(&tmp)?;
            Ok(SecretString::from(fs::read_to_string(&path)?.trim().to_owned()))
        }
        Err(e) => Err(e),
    }
}

fn open_private(path: &Path) -> std::io::Result<fs::File> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    #[test]
    fn a_secret_is_created_once_and_then_reused() {
        let dir = std::env::temp_dir().join(format!("gh-secrets-{}", uuid::Uuid::new_v4()));
        let first = load_or_create(&dir, "s").unwrap();
        let second = load_or_create(&dir, "s").unwrap();
        assert_eq!(first.expose_secret(), second.expose_secret());
        assert!(first.expose_secret().starts_with(DEV_PREFIX));
        assert!(first.expose_secret().len() > DEV_PREFIX.len() + 40);
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn threads_creating_one_secret_at_once_all_get_the_same_one() {
        for _ in 0..20 {
            let dir = std::env::temp_dir().join(format!("gh-secrets-{}", uuid::Uuid::new_v4()));
            let barrier = std::sync::Barrier::new(8);
            let secrets: Vec<String> = std::thread::scope(|scope| {
                let handles: Vec<_> = (0..8)
                    .map(|_| {
                        scope.spawn(|| {
                            barrier.wait();
                            load_or_create(&dir, "shared").unwrap().expose_secret().to_owned()
                        })
                    })
                    .collect();
                handles.into_iter().map(|h| h.join().unwrap()).collect()
            });
            assert!(secrets.iter().all(|s| s == &secrets[0]), "{secrets:?}");
            let leftovers: Vec<_> = fs::read_dir(dir.join("secrets")).unwrap().collect();
            assert_eq!(leftovers.len(), 1, "temporary files left behind");
            fs::remove_dir_all(dir).unwrap();
        }
    }
}
