//! Pre-shared keys for the TLS scenarios that run against the built-in reference peers.
//! They are made fresh for each run, in the run directory, and removed when the run
//! ends: no key is committed, and none is anybody's deployment key. Scenarios reach them
//! as `${test_psk_file}` (the key both sides share) and `${test_wrong_psk_file}` (another
//! one, for refusal steps), usually as the default of a variable a user sets for a real
//! peer: `psk_file: ${PSK_FILE:-${test_psk_file}}`.

use std::io::Read;
use std::path::{Path, PathBuf};

/// Names of the variables the runner sets to the key files.
pub const PSK_FILE_VAR: &str = "test_psk_file";
pub const WRONG_PSK_FILE_VAR: &str = "test_wrong_psk_file";

/// The run's two key files, in a folder of their own that is removed on drop.
#[derive(Debug)]
pub struct TestKeys {
    dir: PathBuf,
    pub psk_file: PathBuf,
    pub wrong_psk_file: PathBuf,
}

impl TestKeys {
    /// Two random 256-bit keys (64 hex digits, as `openssl rand -hex 32` makes them)
    /// in a new folder below `run_dir`, readable by the owner only.
    pub fn make(run_dir: &Path) -> std::io::Result<TestKeys> {
        let dir = run_dir.join(format!("keys-{}-{}", std::process::id(), random_hex(4)?));
        std::fs::create_dir_all(&dir)?;
        let keys = TestKeys {
            psk_file: dir.join("test.psk"),
            wrong_psk_file: dir.join("wrong.psk"),
            dir,
        };
        write_private(&keys.psk_file, &random_hex(32)?)?;
        write_private(&keys.wrong_psk_file, &random_hex(32)?)?;
        Ok(keys)
    }
}

impl Drop for TestKeys {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `n` random bytes from the kernel, as hex.
fn random_hex(n: usize) -> std::io::Result<String> {
    let mut bytes = vec![0u8; n];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

fn write_private(path: &Path, key: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    writeln!(f, "{key}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_different_keys_that_go_away() {
        let tmp = tempfile::tempdir().unwrap();
        let keys = TestKeys::make(tmp.path()).unwrap();
        let a = std::fs::read_to_string(&keys.psk_file).unwrap();
        let b = std::fs::read_to_string(&keys.wrong_psk_file).unwrap();
        assert_eq!(a.trim().len(), 64);
        assert!(a.trim().chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
        let dir = keys.psk_file.parent().unwrap().to_path_buf();
        drop(keys);
        assert!(!dir.exists());
    }
}
