//! GnuPG, the independent OpenPGP implementation that makes the test keys
//! and signatures our verification is checked against. Each [`Gpg`] has its
//! own home directory; nothing touches the user's keyring.

use std::path::{Path, PathBuf};
use std::process::Command;

use tempfile::TempDir;

pub struct Gpg {
    home: TempDir,
}

/// A key made by [`Gpg::new_key`].
#[derive(Debug, Clone)]
pub struct Key {
    pub email: String,
    /// Lowercase hex, as rkt names key files.
    pub fingerprint: String,
}

impl Default for Gpg {
    fn default() -> Self {
        Self::new()
    }
}

impl Gpg {
    pub fn new() -> Gpg {
        let home = tempfile::Builder::new()
            .prefix("rkt-test-gnupg-")
            .tempdir()
            .unwrap();
        Gpg { home }
    }

    fn command(&self) -> Command {
        let mut c = Command::new("gpg");
        c.env("GNUPGHOME", self.home.path()).args([
            "--batch",
            "--quiet",
            "--no-tty",
            "--pinentry-mode=loopback",
        ]);
        c
    }

    #[track_caller]
    fn ok(&self, c: &mut Command) -> Vec<u8> {
        let out = c.output().expect("gpg (Debian's gnupg package)");
        assert!(
            out.status.success(),
            "{c:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }

    /// A new signing key for `Name <email>` (`algo` as gpg's
    /// --quick-gen-key takes it, e.g. `rsa2048`, `ed25519`), valid for
    /// `expire` (`1y`, `1d`), made at `faked_time` (gpg's
    /// --faked-system-time, e.g. `20200101T000000`) when given.
    pub fn new_key(
        &self,
        name: &str,
        email: &str,
        algo: &str,
        expire: &str,
        faked_time: Option<&str>,
    ) -> Key {
        let mut c = self.command();
        c.args(["--passphrase", ""]);
        if let Some(t) = faked_time {
            c.arg(format!("--faked-system-time={t}"));
        }
        c.args([
            "--quick-gen-key",
            &format!("{name} <{email}>"),
            algo,
            "sign",
            expire,
        ]);
        self.ok(&mut c);
        let listing = self.ok(self.command().args(["--with-colons", "--list-keys", email]));
        let fingerprint = String::from_utf8_lossy(&listing)
            .lines()
            .find_map(|l| {
                l.strip_prefix("fpr:")
                    .map(|r| r.trim_matches(':').to_string())
            })
            .expect("a fingerprint in gpg's listing")
            .to_ascii_lowercase();
        Key {
            email: email.to_string(),
            fingerprint,
        }
    }

    /// The key's public part, armored, written to `out`.
    pub fn export(&self, key: &Key, out: &Path) -> PathBuf {
        let armored = self.ok(self.command().args(["--armor", "--export", &key.email]));
        std::fs::write(out, armored).unwrap();
        out.to_path_buf()
    }

    /// `gpg --armor --detach-sign` of `file` by `key` into `out`, at
    /// `faked_time` when given.
    pub fn sign(&self, key: &Key, file: &Path, out: &Path, faked_time: Option<&str>) -> PathBuf {
        let _ = std::fs::remove_file(out);
        let mut c = self.command();
        if let Some(t) = faked_time {
            c.arg(format!("--faked-system-time={t}"));
        }
        c.args([
            "--local-user",
            &key.email,
            "--armor",
            "--detach-sign",
            "--output",
        ])
        .arg(out)
        .arg(file);
        self.ok(&mut c);
        out.to_path_buf()
    }

    /// Revokes `key` with the revocation certificate gpg made with it.
    pub fn revoke(&self, key: &Key) {
        let cert = self
            .home
            .path()
            .join("openpgp-revocs.d")
            .join(format!("{}.rev", key.fingerprint.to_ascii_uppercase()));
        // gpg guards the stored certificate with a leading ':' on its armor line.
        let text = std::fs::read_to_string(&cert)
            .unwrap()
            .replace(":-----BEGIN", "-----BEGIN");
        let armored = self.home.path().join("revoke.asc");
        std::fs::write(&armored, text).unwrap();
        self.ok(self.command().arg("--import").arg(&armored));
    }
}
