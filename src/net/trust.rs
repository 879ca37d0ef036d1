//! Trusted roots of every outbound HTTP agent: ureq's bundled Mozilla roots (as minimal
//! certificates built from their trust anchors), `SSL_CERT_FILE`, `SSL_CERT_DIR` and the
//! system bundle; `MCPCTL_CA_ONLY`.

use super::env_lookup;
use crate::error::{Error, Result};
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use ureq::tls::{Certificate, PemItem, RootCerts, TlsConfig};

/// The system CA bundles looked for, in order (Debian/Ubuntu/Alpine, RHEL/Fedora, openSUSE,
/// RHEL 7+, Alpine/macOS); the first that exists is read.
pub const SYSTEM_BUNDLES: [&str; 5] = [
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/ca-bundle.pem",
    "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
    "/etc/ssl/cert.pem",
];

/// This process's TLS settings (read once: the environment does not change under us).
pub fn tls_config() -> Result<TlsConfig> {
    static CACHE: OnceLock<std::result::Result<TlsConfig, Error>> = OnceLock::new();
    CACHE
        .get_or_init(|| {
            let roots = load_roots(&env_lookup, &SYSTEM_BUNDLES)?;
            log::debug!("trusting {}", roots.sources.join(" + "));
            Ok(TlsConfig::builder().root_certs(roots.certs).build())
        })
        .clone()
}

/// The trusted roots and where they came from (for the log).
pub struct Roots {
    pub certs: RootCerts,
    /// e.g. `bundled (146)`, `SSL_CERT_FILE=/x/ca.pem (1)`.
    pub sources: Vec<String>,
    /// How many distinct certificates (0 for the bundled set alone).
    pub count: usize,
}

/// The roots for this environment; `system` lists the bundle paths to try.
pub fn load_roots(env: &dyn Fn(&str) -> Option<String>, system: &[&str]) -> Result<Roots> {
    let only = env("MCPCTL_CA_ONLY").is_some_and(|v| !matches!(v.as_str(), "0" | "false" | "no"));
    let mut set = CertSet::default();
    let mut sources = Vec::new();
    if let Some(file) = env("SSL_CERT_FILE") {
        let n = set.add_file(Path::new(&file)).map_err(|why| env_error("SSL_CERT_FILE", &file, &why))?;
        sources.push(format!("SSL_CERT_FILE={file} ({n})"));
    }
    if let Some(dirs) = env("SSL_CERT_DIR") {
        for dir in dirs.split(':').filter(|d| !d.is_empty()) {
            let n = set.add_dir(Path::new(dir)).map_err(|why| env_error("SSL_CERT_DIR", dir, &why))?;
            sources.push(format!("SSL_CERT_DIR {dir} ({n})"));
        }
    }
    if only {
        if set.certs.is_empty() {
            return Err(Error::config(
                "MCPCTL_CA_ONLY is set but neither SSL_CERT_FILE nor SSL_CERT_DIR names a certificate",
            )
            .hint("set SSL_CERT_FILE to the PEM bundle to trust, or unset MCPCTL_CA_ONLY"));
        }
    } else {
        // The system store is read when present; one that cannot be read is only logged.
        if let Some(path) = system.iter().map(Path::new).find(|p| p.exists()) {
            match set.add_file(path) {
                Ok(n) => sources.push(format!("system {} ({n})", path.display())),
                Err(why) => log::debug!("system CA bundle {} skipped: {why}", path.display()),
            }
        }
        if set.certs.is_empty() {
            return Ok(Roots { certs: RootCerts::WebPki, sources: vec!["bundled roots".into()], count: 0 });
        }
        let bundled = bundled_certificates();
        for c in bundled.iter() {
            set.insert(c.der().to_vec());
        }
        sources.insert(0, format!("bundled ({})", bundled.len()));
    }
    let count = set.certs.len();
    let certs = set.certs.into_iter().map(|d| Certificate::from_der(&d).to_owned());
    Ok(Roots { certs: RootCerts::from(certs), sources, count })
}

fn env_error(var: &str, value: &str, why: &str) -> Error {
    Error::config(format!("{var}={value}: {why}"))
        .hint(format!("point {var} at a readable PEM certificate bundle, or unset it"))
}

/// Distinct certificates, in the order first seen.
#[derive(Default)]
struct CertSet {
    seen: HashSet<Vec<u8>>,
    certs: Vec<Vec<u8>>,
}

impl CertSet {
    fn insert(&mut self, der: Vec<u8>) -> bool {
        if self.seen.insert(der.clone()) {
            self.certs.push(der);
            true
        } else {
            false
        }
    }

    /// The certificates of a PEM file; how many it held (an error when none).
    fn add_file(&mut self, path: &Path) -> std::result::Result<usize, String> {
        let meta = std::fs::metadata(path).map_err(|e| io_why(&e))?;
        if meta.is_dir() {
            return Err("is a folder, not a PEM file".into());
        }
        let bytes = std::fs::read(path).map_err(|e| io_why(&e))?;
        let n = self.add_pem(&bytes)?;
        if n == 0 {
            return Err(if bytes.iter().all(u8::is_ascii_whitespace) {
                "the file is empty".into()
            } else {
                "no PEM certificate (-----BEGIN CERTIFICATE-----) in the file".into()
            });
        }
        Ok(n)
    }

    /// The certificates of every PEM file in a folder (others are skipped); an error when none.
    fn add_dir(&mut self, dir: &Path) -> std::result::Result<usize, String> {
        let entries = std::fs::read_dir(dir).map_err(|e| io_why(&e))?;
        let mut paths: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
        paths.sort();
        let mut n = 0;
        for p in paths {
            // Symlinks (the hashed names of c_rehash) are followed; unreadable files skipped.
            if !p.is_file() {
                continue;
            }
            match std::fs::read(&p) {
                Ok(bytes) => n += self.add_pem(&bytes).unwrap_or(0),
                Err(e) => log::debug!("{} skipped: {e}", p.display()),
            }
        }
        if n == 0 {
            return Err("no PEM certificate in the folder".into());
        }
        Ok(n)
    }

    /// Certificates in PEM text (keys and other items are ignored); how many.
    fn add_pem(&mut self, bytes: &[u8]) -> std::result::Result<usize, String> {
        let mut n = 0;
        for item in ureq::tls::parse_pem(bytes) {
            match item {
                Ok(PemItem::Certificate(c)) => {
                    self.insert(c.der().to_vec());
                    n += 1;
                }
                Ok(_) => {}
                Err(e) => return Err(format!("not a PEM file ({e})")),
            }
        }
        Ok(n)
    }
}

fn io_why(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file or folder".into(),
        std::io::ErrorKind::PermissionDenied => "permission denied".into(),
        _ => format!("cannot read it: {e}"),
    }
}

/// ureq's bundled roots (webpki-roots) as certificates, made once.
fn bundled_certificates() -> &'static [Certificate<'static>] {
    static CERTS: OnceLock<Vec<Certificate<'static>>> = OnceLock::new();
    CERTS.get_or_init(|| {
        webpki_roots::TLS_SERVER_ROOTS
            .iter()
            .map(|a| {
                let der = anchor_certificate(&a.subject, &a.subject_public_key_info, a.name_constraints.as_deref());
                Certificate::from_der(&der).to_owned()
            })
            .collect()
    })
}

/// A minimal X.509 v3 certificate for a trust anchor: `subject` (the Name's contents) as
/// subject and issuer, `spki` (the SubjectPublicKeyInfo's contents), and `name_constraints`
/// (the NameConstraints' contents) as its one extension. A verifier takes only these three
/// fields from a root; the signature is a placeholder and never checked.
pub fn anchor_certificate(subject: &[u8], spki: &[u8], name_constraints: Option<&[u8]>) -> Vec<u8> {
    // AlgorithmIdentifier ecdsa-with-SHA256 (1.2.840.10045.4.3.2).
    const ALG: [u8; 12] = [0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02];
    let name = der(0x30, subject);
    let mut tbs = vec![0xa0, 0x03, 0x02, 0x01, 0x02, 0x02, 0x01, 0x01]; // v3, serial 1
    tbs.extend_from_slice(&ALG);
    tbs.extend_from_slice(&name);
    tbs.extend(der(0x30, &[der(0x17, b"700101000000Z"), der(0x18, b"99991231235959Z")].concat()));
    tbs.extend_from_slice(&name);
    tbs.extend(der(0x30, spki));
    if let Some(nc) = name_constraints {
        // id-ce-nameConstraints 2.5.29.30, critical, OCTET STRING { NameConstraints }.
        let ext = [der(0x06, &[0x55, 0x1d, 0x1e]), vec![0x01, 0x01, 0xff], der(0x04, &der(0x30, nc))].concat();
        tbs.extend(der(0xa3, &der(0x30, &der(0x30, &ext))));
    }
    der(0x30, &[der(0x30, &tbs), ALG.to_vec(), der(0x03, &[0x00, 0x00])].concat())
}

/// One DER element.
fn der(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = body.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
    out.extend_from_slice(body);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let m: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |k| m.get(k).cloned().filter(|v| !v.is_empty())
    }

    #[test]
    fn anchors_become_certificates_that_give_back_the_same_anchor() {
        let mut constrained = 0;
        for a in webpki_roots::TLS_SERVER_ROOTS {
            let der = anchor_certificate(&a.subject, &a.subject_public_key_info, a.name_constraints.as_deref());
            let cert = rustls_pki_types::CertificateDer::from(der);
            let back = webpki::anchor_from_trusted_cert(&cert).expect("parses as a trust anchor");
            assert_eq!(&*back.subject, &*a.subject);
            assert_eq!(&*back.subject_public_key_info, &*a.subject_public_key_info);
            assert_eq!(back.name_constraints.as_deref(), a.name_constraints.as_deref());
            constrained += a.name_constraints.is_some() as usize;
        }
        assert!(constrained > 0, "the name-constraints path was exercised");
        assert_eq!(bundled_certificates().len(), webpki_roots::TLS_SERVER_ROOTS.len());
    }

    #[test]
    fn der_lengths() {
        assert_eq!(der(0x04, &[1, 2]), vec![0x04, 2, 1, 2]);
        let long = der(0x04, &[0; 300]);
        assert_eq!(&long[..4], &[0x04, 0x82, 0x01, 0x2c]);
        assert_eq!(long.len(), 304);
    }

    #[test]
    fn trust_reads_files_folders_and_the_system_bundle() {
        let dir = std::env::temp_dir().join(format!("mcpctl-net-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("certs")).unwrap();
        // Two made-up certificates (their DER need not be valid for counting and dedup).
        let pem = |der: &[u8]| {
            let b64 = base64(der);
            format!("-----BEGIN CERTIFICATE-----\n{b64}\n-----END CERTIFICATE-----\n")
        };
        let (c1, c2) = (pem(&der(0x30, b"one")), pem(&der(0x30, b"two")));
        let file = dir.join("ca.pem");
        std::fs::write(&file, format!("{c1}{c2}")).unwrap();
        std::fs::write(dir.join("certs/a.pem"), &c1).unwrap();
        std::fs::write(dir.join("certs/readme.txt"), "not a certificate").unwrap();
        std::fs::write(dir.join("empty.pem"), "\n").unwrap();
        let f = file.to_str().unwrap().to_string();
        let d = dir.join("certs").to_str().unwrap().to_string();
        let bundled = webpki_roots::TLS_SERVER_ROOTS.len();

        let none = load_roots(&env(&[]), &["/nonexistent/bundle.pem"]).unwrap();
        assert!(matches!(none.certs, RootCerts::WebPki));

        let r = load_roots(&env(&[("SSL_CERT_FILE", &f), ("SSL_CERT_DIR", &d)]), &[]).unwrap();
        assert_eq!(r.count, bundled + 2, "{:?}", r.sources);
        let sys = load_roots(&env(&[]), &["/nonexistent", &f]).unwrap();
        assert_eq!(sys.count, bundled + 2);
        assert!(sys.sources.iter().any(|s| s.starts_with("system ")), "{:?}", sys.sources);

        let only = load_roots(&env(&[("SSL_CERT_FILE", &f), ("MCPCTL_CA_ONLY", "1")]), &[&f]).unwrap();
        assert_eq!(only.count, 2);
        let e = load_roots(&env(&[("MCPCTL_CA_ONLY", "1")]), &[&f]).err().unwrap();
        assert!(e.message.contains("MCPCTL_CA_ONLY"), "{}", e.message);

        let bad = |k: &str, v: &str| load_roots(&env(&[(k, v)]), &[]).err().unwrap().one_line();
        let missing = bad("SSL_CERT_FILE", "/nonexistent/ca.pem");
        assert!(missing.starts_with("SSL_CERT_FILE=/nonexistent/ca.pem: no such file"), "{missing}");
        assert!(bad("SSL_CERT_FILE", dir.join("empty.pem").to_str().unwrap()).contains("the file is empty"));
        assert!(bad("SSL_CERT_FILE", dir.join("certs/readme.txt").to_str().unwrap()).contains("no PEM certificate"));
        assert!(bad("SSL_CERT_FILE", &d).contains("is a folder"));
        assert!(
            bad("SSL_CERT_DIR", &format!("{d}:/nonexistent/dir")).starts_with("SSL_CERT_DIR=/nonexistent/dir: no such")
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    fn base64(bytes: &[u8]) -> String {
        const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut out = String::new();
        for chunk in bytes.chunks(3) {
            let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
            let n = (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32;
            for i in 0..4 {
                if i <= chunk.len() {
                    out.push(T[(n >> (18 - 6 * i) & 63) as usize] as char);
                } else {
                    out.push('=');
                }
            }
        }
        out
    }
}
