//! Keys and certificates for the TLS tests, made at test time in a temporary folder
//! (no private key is committed): PSK files, a CA with a server and a client
//! certificate, and a second CA with a certificate of its own, for the "unknown CA"
//! refusal. Certificates are made with the `openssl` command, which the machines that
//! build the harness have (it comes with the OpenSSL the harness links).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// A PSK of 64 hex digits (256 bits); the second differs in one digit.
pub const PSK: &str = "6b1d3a5d0ff04ce7d2bdde4f0aa0a91c3f9e0d1b8a77c2e4b5a6f1d2c3b4a596";
pub const WRONG_PSK: &str = "7b1d3a5d0ff04ce7d2bdde4f0aa0a91c3f9e0d1b8a77c2e4b5a6f1d2c3b4a596";
pub const IDENTITY: &str = "zbx-conform test";

/// Subjects of the generated certificates, as the harness prints them (RFC 4514).
pub const SERVER_SUBJECT: &str = "CN=zbxc server,O=zbx-conform";
pub const CLIENT_SUBJECT: &str = "CN=zbxc client,O=zbx-conform";
pub const CA_SUBJECT: &str = "CN=zbxc test CA,O=zbx-conform";

/// Everything made for one test, in `dir` (removed on drop).
pub struct Pki {
    pub dir: tempfile::TempDir,
}

impl Pki {
    /// PSK files only (no `openssl` command needed).
    pub fn psk_only() -> Pki {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("good.psk"), format!("{PSK}\n")).unwrap();
        std::fs::write(dir.path().join("wrong.psk"), format!("{WRONG_PSK}\n")).unwrap();
        Pki { dir }
    }

    /// PSK files and the certificates: `ca.crt`, `server.{crt,key}`, `client.{crt,key}`,
    /// `other-ca.crt` and `rogue.{crt,key}` (signed by the other CA, same subject as the
    /// client). `None` (with a SKIPPED line) when the `openssl` command is missing,
    /// a failure under CI=true.
    pub fn with_certs() -> Option<Pki> {
        if Command::new("openssl").arg("version").output().is_err() {
            assert!(
                std::env::var("CI").map_or(true, |v| v != "true"),
                "the openssl command is missing and CI=true"
            );
            eprintln!("SKIPPED: the openssl command is not installed");
            return None;
        }
        let pki = Pki::psk_only();
        pki.ca("ca", "/O=zbx-conform/CN=zbxc test CA");
        pki.ca("other-ca", "/O=zbx-conform/CN=zbxc other CA");
        pki.leaf("server", "ca", "/O=zbx-conform/CN=zbxc server");
        pki.leaf("client", "ca", "/O=zbx-conform/CN=zbxc client");
        pki.leaf("rogue", "other-ca", "/O=zbx-conform/CN=zbxc client");
        Some(pki)
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// A certificate-only peer's side, as profile variables: its own certificate
    /// (`server.*`), the CA file it trusts (`ca`), what it accepts (in the variable
    /// `accept_var`, e.g. AGENT_TLS_ACCEPT), the subject it requires of the harness's
    /// certificate when given, and the refusal scenarios' wrong certificates: another
    /// CA's (`rogue.*`), and the right CA's with another subject (`server.*`).
    pub fn cert_peer_vars(
        &self,
        ca: &str,
        subject: Option<&str>,
        accept_var: &str,
        accept: &str,
    ) -> Vec<(String, String)> {
        let mut v = vec![
            ("CA_FILE".to_string(), ca.to_string()),
            ("CERT_FILE".into(), self.file("server.crt")),
            ("KEY_FILE".into(), self.file("server.key")),
            (accept_var.into(), accept.into()),
            ("ROGUE_CERT_FILE".into(), self.file("rogue.crt")),
            ("ROGUE_KEY_FILE".into(), self.file("rogue.key")),
            ("OTHER_CERT_FILE".into(), self.file("server.crt")),
            ("OTHER_KEY_FILE".into(), self.file("server.key")),
        ];
        if let Some(s) = subject {
            v.push((
                "TLS_SUBJECT_SETTING".into(),
                format!("TLSServerCertSubject={s}"),
            ));
        }
        v
    }

    /// The harness's side with PSK: `--tls-connect psk` with [`IDENTITY`] and
    /// `good.psk`.
    pub fn psk_client(&self) -> zbx_conform::transport::tls::TlsSettings {
        zbx_conform::transport::tls::TlsSettings {
            connect: Some("psk".into()),
            psk_identity: Some(IDENTITY.into()),
            psk_file: Some(self.file("good.psk")),
            ..Default::default()
        }
    }

    /// The harness's side: `--tls-connect cert` with the client certificate, checking
    /// the peer's certificate subject.
    pub fn cert_client(&self) -> zbx_conform::transport::tls::TlsSettings {
        zbx_conform::transport::tls::TlsSettings {
            connect: Some("cert".into()),
            ca_file: Some(self.file("ca.crt")),
            cert_file: Some(self.file("client.crt")),
            key_file: Some(self.file("client.key")),
            server_cert_subject: Some(SERVER_SUBJECT.into()),
            ..Default::default()
        }
    }

    /// A CA file that trusts both CAs (`both-ca.crt`), for a peer that accepts the
    /// "unknown CA" too.
    pub fn both_cas(&self) -> String {
        let bundle = [self.path("ca.crt"), self.path("other-ca.crt")]
            .iter()
            .map(|p| std::fs::read_to_string(p).expect("read CA"))
            .collect::<String>();
        std::fs::write(self.path("both-ca.crt"), bundle).expect("write the CA bundle");
        self.file("both-ca.crt")
    }

    /// `path(name)` as a string, for settings.
    pub fn file(&self, name: &str) -> String {
        self.path(name).display().to_string()
    }

    fn ca(&self, name: &str, subject: &str) {
        openssl(
            self.dir.path(),
            &[
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "2",
                "-subj",
                subject,
                "-keyout",
                &format!("{name}.key"),
                "-out",
                &format!("{name}.crt"),
            ],
        );
    }

    fn leaf(&self, name: &str, ca: &str, subject: &str) {
        let d = self.dir.path();
        openssl(
            d,
            &[
                "req",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-subj",
                subject,
                "-keyout",
                &format!("{name}.key"),
                "-out",
                &format!("{name}.csr"),
            ],
        );
        openssl(
            d,
            &[
                "x509",
                "-req",
                "-days",
                "2",
                "-in",
                &format!("{name}.csr"),
                "-CA",
                &format!("{ca}.crt"),
                "-CAkey",
                &format!("{ca}.key"),
                "-CAcreateserial",
                "-out",
                &format!("{name}.crt"),
            ],
        );
    }
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl runs");
    assert!(
        out.status.success(),
        "openssl {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Run `paths` with a fresh peer per scenario from the profile `profile` (a path from
/// the repository root), the harness's side of the encryption `tls`, the profile's
/// variables `vars`. With `versions` empty the run first asks the started peer its
/// version (as `run --start-peer` does): the protocol it named comes back with the
/// result. Every planned scenario must have a result.
pub fn run_started(
    profile: &str,
    paths: &[&str],
    versions: &[&str],
    vars: Vec<(String, String)>,
    tls: zbx_conform::transport::tls::TlsSettings,
    run_dir: &Path,
) -> (Option<String>, zbx_conform::runner::RunResult) {
    use zbx_conform::runner::{self, RunOptions};
    let root = super::support::root();
    let catalog =
        std::sync::Arc::new(zbx_conform::catalog::Catalog::load(&root).expect("catalog loads"));
    let opts = RunOptions {
        paths: paths.iter().map(|p| root.join(p)).collect(),
        versions: versions.iter().map(|v| v.to_string()).collect(),
        vars: vars.into_iter().collect(),
        jobs: 2,
        timeout: std::time::Duration::from_secs(10),
        start_peer: Some(super::support::load_profile(profile)),
        run_dir: run_dir.to_path_buf(),
        tls,
        ..RunOptions::default()
    };
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let (named, jobs) = if versions.is_empty() {
        let plan = rt
            .block_on(runner::prepare(&catalog, &opts, &mut |l| eprintln!("{l}")))
            .unwrap_or_else(|e| panic!("{profile}: the run does not start: {e}"));
        assert_eq!(plan.peers.len(), 1, "{profile}: one peer asked");
        (Some(plan.peers[0].protocol.clone()), plan.jobs)
    } else {
        let jobs = runner::plan(&catalog, &opts).expect("scenarios load and lint");
        (None, jobs)
    };
    let planned = jobs.len();
    let r = rt.block_on(runner::run_jobs(catalog, jobs, &opts, |_| {}));
    assert_eq!(
        r.scenarios.len(),
        planned,
        "{profile}: a scenario is missing"
    );
    (named, r)
}
