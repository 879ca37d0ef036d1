//! Every outbound HTTP agent is built here, so that all of them trust the same certificates
//! and take the same proxy: the remote MCP servers (`transport/http.rs`) and the managed
//! runtime's uv download (`runtime/install.rs`). `docs/client.md` ("Networks: proxies and
//! certificates") is the user's side of this.
//!
//! **Trust.** ureq's bundled Mozilla roots (webpki-roots), plus every certificate found in
//! `SSL_CERT_FILE` (a PEM bundle), in `SSL_CERT_DIR` (folders of PEM files, `:`-separated)
//! and in the system bundle (the first of [`SYSTEM_BUNDLES`] that exists). A variable that
//! is set but names a missing, unreadable or certificate-less file or folder is an error,
//! never a silent fallback. `MCPCTL_CA_ONLY=1` trusts only the two variables' certificates.
//! ureq's `RootCerts::Specific` takes certificates, while the bundled roots ship as trust
//! anchors (subject, key, name constraints); [`anchor_certificate`] wraps each anchor in a
//! minimal certificate carrying exactly those three fields, which is all a verifier reads
//! from a root (its signature and validity are never checked), so nothing is re-downloaded
//! or duplicated in the binary.
//!
//! **Proxy.** For an `https` URL `https_proxy`, `HTTPS_PROXY`, then `all_proxy`, `ALL_PROXY`;
//! for `http` the same with `http_proxy`/`HTTP_PROXY` (lowercase wins; empty means unset).
//! Only `http://` and `https://` (CONNECT) proxies; `user:pass@` is sent as Basic
//! Proxy-Authorization and never logged or shown. `NO_PROXY` and `no_proxy` (both read)
//! list hosts that go direct: `*`, a name (matching it and every name under it, with or
//! without a leading `.` or `*.`), an IP address, or an IPv4/IPv6 range (`10.0.0.0/8`,
//! checked against an address written in the URL; names are not resolved); ports are
//! ignored. Loopback (`localhost`, `*.localhost`, `127.0.0.0/8`, `::1`) is never proxied:
//! a proxy's loopback is not ours. ureq applies the list per connection (redirects too);
//! address ranges and loopback addresses are decided for the URL's own host here.
//!
//! **Errors.** A middleware rewrites a connection's failure so that it names the host
//! whose certificate was not trusted and how to trust it, or the proxy (without
//! credentials) that failed.
//!
//! Loopback-only agents (the daemon's own control connection) use [`loopback_agent`]: no
//! proxy, whatever the environment says.

use std::collections::HashSet;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use ureq::config::ConfigBuilder;
use ureq::tls::{Certificate, PemItem, RootCerts, TlsConfig};
use ureq::typestate::AgentScope;
use ureq::{Proxy, ProxyProtocol};

use crate::error::{Error, Result};

/// The system CA bundles looked for, in order (Debian/Ubuntu/Alpine, RHEL/Fedora, openSUSE,
/// RHEL 7+, Alpine/macOS); the first that exists is read.
pub const SYSTEM_BUNDLES: [&str; 5] = [
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/ca-bundle.pem",
    "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
    "/etc/ssl/cert.pem",
];

/// The hint shown with a certificate that is not trusted.
pub const TRUST_HINT: &str = "set SSL_CERT_FILE to a PEM file holding the CA that signed it (or SSL_CERT_DIR to a folder of them), or add that CA to the system store (/etc/ssl/certs/ca-certificates.crt, update-ca-certificates)";

/// An agent for requests to `url` (its scheme and host choose the proxy), with `config`'s
/// timeouts and the trust and proxy of this process's environment.
pub fn agent(url: &str, config: ConfigBuilder<AgentScope>) -> Result<ureq::Agent> {
    let tls = tls_config()?;
    let route = proxy_for(url, &env_lookup)?;
    let bypassed = |r: &Route| url.parse::<ureq::http::Uri>().is_ok_and(|u| r.proxy.is_no_proxy(&u));
    match &route {
        Some(r) if bypassed(r) => log::debug!("{url}: direct (NO_PROXY)"),
        Some(r) => log::debug!("{url}: through the proxy {} (from {})", r.label, r.var),
        None => log::debug!("{url}: direct"),
    }
    let proxy = route.as_ref().map(|r| r.proxy.clone());
    let explain_with = route.map(Arc::new);
    let config = config.tls_config(tls).proxy(proxy).middleware(
        move |req: ureq::http::Request<ureq::SendBody>, next: ureq::middleware::MiddlewareNext| {
            let uri = req.uri().clone();
            next.handle(req).map_err(|e| explain(e, &uri, explain_with.as_deref()))
        },
    );
    Ok(config.build().into())
}

/// An agent for our own daemon on loopback: never a proxy, whatever the environment says
/// (ureq's default reads `*_PROXY` and would send loopback traffic to it).
pub fn loopback_agent(config: ConfigBuilder<AgentScope>) -> ureq::Agent {
    config.proxy(None).build().into()
}

fn env_lookup(k: &str) -> Option<String> {
    std::env::var(k).ok().filter(|v| !v.trim().is_empty())
}

// ---------------------------------------------------------------------------------------
// Trust

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

// ---------------------------------------------------------------------------------------
// Proxy

/// The proxy chosen for a URL.
#[derive(Debug, Clone)]
pub struct Route {
    pub proxy: Proxy,
    /// The variable it came from, e.g. `HTTPS_PROXY`.
    pub var: &'static str,
    /// `http://host:port`: the proxy without its credentials, for logs and errors.
    pub label: String,
}

/// The proxy for `url` in this environment, or `None` to go direct (no proxy set, the
/// host is loopback, or it is in an address range of NO_PROXY). Names in NO_PROXY are
/// handed to ureq, which checks them for every connection (redirects included).
pub fn proxy_for(url: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<Option<Route>> {
    let (scheme, host) = split_url(url);
    let vars: [&'static str; 4] = if scheme.eq_ignore_ascii_case("http") {
        ["http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"]
    } else {
        ["https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"]
    };
    let Some((var, value)) = vars.iter().find_map(|v| env(v).map(|x| (*v, x.trim().to_string()))) else {
        return Ok(None);
    };
    let no_proxy =
        NoProxy::parse(&[env("no_proxy"), env("NO_PROXY")].into_iter().flatten().collect::<Vec<_>>().join(","));
    if is_loopback(&host) || no_proxy.matches_range(&host) {
        return Ok(None);
    }
    let with_scheme = if value.contains("://") { value.clone() } else { format!("http://{value}") };
    let bad = |why: &str| {
        Error::config(format!("{var}={}: {why}", redact(&with_scheme)))
            .hint(format!("set {var} to http://[user:password@]host:port, or unset it"))
    };
    // A proxy we cannot use is an error only for a host that would go through it.
    let unusable = |why: &str| if no_proxy.matches(&host) { Ok(None) } else { Err(bad(why)) };
    let Ok(parsed) = Proxy::new(&with_scheme) else { return unusable("not a proxy URL") };
    if !matches!(parsed.protocol(), ProxyProtocol::Http | ProxyProtocol::Https) {
        return unusable("only http:// and https:// (CONNECT) proxies are supported");
    }
    let scheme = if parsed.protocol() == ProxyProtocol::Https { "https" } else { "http" };
    let label = format!("{scheme}://{}:{}", parsed.host(), parsed.port());
    let mut b = Proxy::builder(parsed.protocol()).host(parsed.host()).port(parsed.port());
    if let Some(u) = parsed.username() {
        b = b.username(u);
    }
    if let Some(p) = parsed.password() {
        b = b.password(p);
    }
    for e in no_proxy.ureq_entries() {
        b = b.no_proxy(&e);
    }
    let proxy = b.build().map_err(|_| bad("not a proxy URL"))?;
    Ok(Some(Route { proxy, var, label }))
}

/// `scheme://host:port` of a proxy URL, without `user:pass@` and path.
fn redact(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("http", url));
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = authority.rsplit_once('@').map(|(_, h)| h).unwrap_or(authority);
    format!("{scheme}://{host}")
}

/// (scheme, host) of a URL; the host lowercase, without port and IPv6 brackets.
fn split_url(url: &str) -> (String, String) {
    let (scheme, rest) = url.split_once("://").unwrap_or(("https", url));
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let hostport = authority.rsplit_once('@').map(|(_, h)| h).unwrap_or(authority);
    (scheme.to_ascii_lowercase(), strip_port(hostport).to_ascii_lowercase())
}

/// `host` of `host`, `host:port`, `[v6]`, `[v6]:port` or a bare IPv6 address.
fn strip_port(s: &str) -> &str {
    if let Some(rest) = s.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match s.matches(':').count() {
        1 => s.split(':').next().unwrap_or(s),
        _ => s,
    }
}

/// `localhost`, a name under `.localhost`, or a loopback address.
pub fn is_loopback(host: &str) -> bool {
    let h = host.trim_end_matches('.').to_ascii_lowercase();
    h == "localhost" || h.ends_with(".localhost") || h.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// A parsed NO_PROXY list.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct NoProxy {
    pub all: bool,
    /// Names, lowercase, without leading `.`/`*.`: each matches itself and every name under it.
    pub domains: Vec<String>,
    pub ips: Vec<IpAddr>,
    pub ranges: Vec<(IpAddr, u8)>,
}

impl NoProxy {
    pub fn parse(list: &str) -> NoProxy {
        let mut np = NoProxy::default();
        for raw in list.split([',', ' ']).map(str::trim).filter(|e| !e.is_empty()) {
            if raw == "*" {
                np.all = true;
                continue;
            }
            if let Some((addr, bits)) = raw.split_once('/') {
                let addr = addr.trim_start_matches('[').trim_end_matches(']');
                match (addr.parse::<IpAddr>(), bits.parse::<u8>()) {
                    (Ok(ip), Ok(b)) if b <= if ip.is_ipv4() { 32 } else { 128 } => np.ranges.push((ip, b)),
                    _ => log::warn!("NO_PROXY entry `{raw}` ignored: not an address range"),
                }
                continue;
            }
            let host = strip_port(raw);
            if let Ok(ip) = host.parse::<IpAddr>() {
                np.ips.push(ip);
                continue;
            }
            let d = host.trim_start_matches('*').trim_start_matches('.').trim_end_matches('.').to_ascii_lowercase();
            if !d.is_empty() {
                np.domains.push(d);
            }
        }
        np
    }

    /// Whether `host` (lowercase, no port or brackets) goes direct.
    pub fn matches(&self, host: &str) -> bool {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        if self.all || self.matches_range(&host) {
            return true;
        }
        if let Ok(ip) = host.parse::<IpAddr>() {
            return self.ips.contains(&ip);
        }
        self.domains.iter().any(|d| host == *d || host.strip_suffix(d.as_str()).is_some_and(|r| r.ends_with('.')))
    }

    /// Whether `host` is an address inside one of the ranges.
    pub fn matches_range(&self, host: &str) -> bool {
        let Ok(ip) = host.parse::<IpAddr>() else { return false };
        self.ranges.iter().any(|(net, bits)| in_range(ip, *net, *bits))
    }

    /// The list in ureq's NO_PROXY forms (`name` exact, `.name` for names under it, `*`),
    /// plus loopback, so that ureq's per-connection check agrees with [`NoProxy::matches`]
    /// for names and addresses (ranges are decided before: see [`proxy_for`]).
    pub fn ureq_entries(&self) -> Vec<String> {
        let mut out: Vec<String> = ["localhost", ".localhost", "127.0.0.1", "[::1]"].map(String::from).to_vec();
        if self.all {
            out.push("*".into());
        }
        for d in &self.domains {
            out.push(d.clone());
            out.push(format!(".{d}"));
        }
        for ip in &self.ips {
            out.push(match ip {
                IpAddr::V4(v4) => v4.to_string(),
                IpAddr::V6(v6) => format!("[{v6}]"),
            });
        }
        out
    }
}

fn in_range(ip: IpAddr, net: IpAddr, bits: u8) -> bool {
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let mask = if bits == 0 { 0 } else { u32::MAX << (32 - bits as u32) };
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let mask = if bits == 0 { 0 } else { u128::MAX << (128 - bits as u32) };
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}

// ---------------------------------------------------------------------------------------
// Errors

/// A connection failure rewritten to say what is wrong and how to fix it: an untrusted
/// certificate names the host, a proxy failure names the proxy (never its credentials).
fn explain(e: ureq::Error, uri: &ureq::http::Uri, route: Option<&Route>) -> ureq::Error {
    let host = match (uri.host(), uri.port_u16()) {
        (Some(h), Some(p)) => format!("{h}:{p}"),
        (Some(h), None) => h.to_string(),
        _ => uri.to_string(),
    };
    let proxied = route.filter(|r| !r.proxy.is_no_proxy(uri));
    let text = e.to_string();
    if is_untrusted(&text) {
        let through = proxied
            .map(|r| {
                format!(
                    " (reached through the proxy {} from {}: a TLS-inspecting proxy's CA must be trusted)",
                    r.label, r.var
                )
            })
            .unwrap_or_default();
        let why = text.trim_start_matches("io: ").trim_start_matches("rustls: ");
        return message(if why.contains("not valid for name") {
            format!(
                "TLS: the certificate of {host} is for another name ({why}){through}; use a name it lists in the URL"
            )
        } else if why.contains("expired") || why.contains("not valid yet") {
            format!("TLS: the certificate of {host} is out of date ({why}){through}; check this machine's clock, or renew it")
        } else {
            format!("TLS: the certificate of {host} is not trusted ({why}){through}; {TRUST_HINT}")
        });
    }
    let Some(r) = proxied else { return e };
    match &e {
        ureq::Error::ConnectProxyFailed(why) => {
            let auth = match (why.contains("407"), r.proxy.username().is_some()) {
                (true, true) => " (the proxy refused the credentials: check user:password@ in the proxy URL)",
                (true, false) => " (the proxy wants credentials: put user:password@ in the proxy URL)",
                _ => "",
            };
            message(format!("the proxy {} (from {}) refused the tunnel to {host}: {why}{auth}", r.label, r.var))
        }
        ureq::Error::HostNotFound => message(format!("the proxy {} (from {}) was not found (DNS)", r.label, r.var)),
        ureq::Error::ConnectionFailed => message(format!("cannot connect to the proxy {} (from {})", r.label, r.var)),
        // Through a proxy we connect to nothing else (a reset or EOF may be the far end's).
        ureq::Error::Io(io) if io.kind() == std::io::ErrorKind::ConnectionRefused => {
            message(format!("cannot connect to the proxy {} (from {}): {io}", r.label, r.var))
        }
        _ => e,
    }
}

/// Whether a ureq error's text is rustls refusing the peer's certificate.
fn is_untrusted(text: &str) -> bool {
    text.contains("invalid peer certificate") || text.contains("UnknownIssuer")
}

/// `msg` as a ureq error whose text is exactly `msg`. ureq's only such variant holds a
/// `&'static str`, so messages are interned: one copy per distinct text (a host and its
/// reason), at most [`MAX_INTERNED`]; past that the text goes out as an I/O error.
fn message(msg: String) -> ureq::Error {
    let mut seen = INTERNED.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(s) = seen.iter().find(|s| **s == msg) {
        return ureq::Error::Tls(s);
    }
    if seen.len() >= MAX_INTERNED {
        return ureq::Error::Io(std::io::Error::other(msg));
    }
    let s: &'static str = Box::leak(msg.into_boxed_str());
    seen.push(s);
    ureq::Error::Tls(s)
}

const MAX_INTERNED: usize = 256;
static INTERNED: Mutex<Vec<&'static str>> = Mutex::new(Vec::new());

/// Whether `e` is one this module worded (a certificate or a proxy problem, saying what to
/// fix), which a caller shows as it is: told by the message's identity, not its text.
pub fn explained(e: &ureq::Error) -> bool {
    let ureq::Error::Tls(why) = e else { return false };
    INTERNED.lock().unwrap_or_else(|p| p.into_inner()).iter().any(|s| std::ptr::eq(*s, *why))
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
    fn no_proxy_forms() {
        let np = NoProxy::parse("example.com, .corp,*.dev.test:8443,10.1.2.3,[::2]:80,192.168.0.0/16,fd00::/8");
        for yes in ["example.com", "a.example.com", "EXAMPLE.com.", "x.corp", "corp", "dev.test", "a.dev.test"] {
            assert!(np.matches(yes), "{yes}");
        }
        for ip in ["10.1.2.3", "::2", "192.168.4.5", "fd12::1"] {
            assert!(np.matches(ip), "{ip}");
        }
        for no in ["notexample.com", "example.com.evil", "corp.x", "10.1.2.4", "192.169.0.1", "fe80::1", "dev"] {
            assert!(!np.matches(no), "{no}");
        }
        assert!(NoProxy::parse("*").matches("anything.at.all"));
        assert!(!NoProxy::parse("").matches("example.com"));
    }

    #[test]
    fn ureq_agrees_with_our_no_proxy_for_names_and_addresses() {
        let list = "example.com,.corp,*.dev.test:8443,10.1.2.3,[::2]:80";
        let np = NoProxy::parse(list);
        let route = proxy_for("https://target.invalid/", &env(&[("HTTPS_PROXY", "http://p:3128"), ("NO_PROXY", list)]))
            .unwrap()
            .unwrap();
        for host in [
            "example.com",
            "a.example.com",
            "notexample.com",
            "x.corp",
            "corp",
            "corpx",
            "dev.test",
            "b.dev.test",
            "10.1.2.3",
            "10.1.2.4",
            "[::2]",
            "[::3]",
            "localhost",
            "a.localhost",
            "127.0.0.1",
            "[::1]",
            "github.com",
        ] {
            let uri: ureq::http::Uri = format!("https://{host}:443/x").parse().unwrap();
            let bare = host.trim_start_matches('[').trim_end_matches(']');
            let ours = np.matches(bare) || is_loopback(bare);
            assert_eq!(route.proxy.is_no_proxy(&uri), ours, "{host}");
        }
    }

    #[test]
    fn proxy_choice_by_scheme_and_order() {
        let e = env(&[("HTTPS_PROXY", "http://s:1"), ("HTTP_PROXY", "http://h:2"), ("ALL_PROXY", "http://a:3")]);
        assert_eq!(proxy_for("https://x.example/", &e).unwrap().unwrap().label, "http://s:1");
        assert_eq!(proxy_for("http://x.example/", &e).unwrap().unwrap().label, "http://h:2");
        let e = env(&[("ALL_PROXY", "a:3"), ("https_proxy", "https://lower:4"), ("HTTPS_PROXY", "http://upper:5")]);
        let r = proxy_for("https://x.example/", &e).unwrap().unwrap();
        assert_eq!((r.label.as_str(), r.var), ("https://lower:4", "https_proxy"));
        assert_eq!(proxy_for("http://x.example/", &e).unwrap().unwrap().label, "http://a:3");
        assert!(proxy_for("https://x.example/", &env(&[("HTTP_PROXY", "http://h:2")])).unwrap().is_none());
        assert!(proxy_for("https://x.example/", &env(&[("HTTPS_PROXY", "")])).unwrap().is_none());
    }

    #[test]
    fn loopback_and_ranges_are_never_proxied() {
        let e = env(&[("HTTPS_PROXY", "http://p:1"), ("NO_PROXY", "10.0.0.0/8")]);
        for url in [
            "https://localhost:8080/mcp",
            "https://LocalHost/",
            "https://api.localhost/",
            "https://127.0.0.1:9/",
            "https://127.9.9.9/",
            "https://[::1]:443/",
            "https://10.20.30.40/",
        ] {
            assert!(proxy_for(url, &e).unwrap().is_none(), "{url}");
        }
        assert!(proxy_for("https://11.0.0.1/", &e).unwrap().is_some());
    }

    #[test]
    fn proxy_credentials_are_kept_but_never_shown() {
        let e = env(&[("HTTPS_PROXY", "http://alice:s3cr%40t@proxy.corp:3128")]);
        let r = proxy_for("https://x.example/", &e).unwrap().unwrap();
        assert_eq!(r.proxy.username(), Some("alice"));
        assert_eq!(r.proxy.password(), Some("s3cr@t"));
        assert_eq!(r.label, "http://proxy.corp:3128");
        assert!(!format!("{r:?}").contains("s3cr"), "{r:?}");
        let bad = proxy_for("https://x/", &env(&[("HTTPS_PROXY", "socks5://bob:hunter2@p:1080")])).unwrap_err();
        assert!(bad.message.contains("HTTPS_PROXY=socks5://p:1080"), "{}", bad.message);
        assert!(!bad.one_line().contains("hunter2"));
        let socks = env(&[("HTTPS_PROXY", "socks5://p:1080"), ("NO_PROXY", ".corp")]);
        assert!(proxy_for("https://a.corp/", &socks).unwrap().is_none(), "a bypassed host needs no usable proxy");
        let bad = proxy_for("https://x/", &env(&[("https_proxy", "http://bob:hunter2@/x")])).unwrap_err();
        assert!(bad.message.starts_with("https_proxy=") && !bad.one_line().contains("hunter2"), "{}", bad.message);
    }

    #[test]
    fn explained_errors_name_the_proxy_without_credentials() {
        let e = env(&[("HTTPS_PROXY", "http://alice:pw@127.0.0.1:9")]);
        let r = proxy_for("https://mcp.example/", &e).unwrap().unwrap();
        let uri: ureq::http::Uri = "https://mcp.example/mcp".parse().unwrap();
        let cases = [
            ureq::Error::ConnectProxyFailed("proxy server responded 407/Proxy Authentication Required".into()),
            ureq::Error::Io(std::io::Error::from(std::io::ErrorKind::ConnectionRefused)),
            ureq::Error::HostNotFound,
        ];
        for c in cases {
            let t = explain(c, &uri, Some(&r)).to_string();
            assert!(t.contains("http://127.0.0.1:9") && t.contains("HTTPS_PROXY") && !t.contains("pw"), "{t}");
        }
        // Without a proxy, a refusal stays what it was (the callers word it).
        let t = explain(ureq::Error::HostNotFound, &uri, None);
        assert!(matches!(t, ureq::Error::HostNotFound));
        let t = explain(ureq::Error::Io(std::io::Error::other("invalid peer certificate: UnknownIssuer")), &uri, None);
        let t = t.to_string();
        assert!(
            t.starts_with(
                "TLS: the certificate of mcp.example is not trusted (invalid peer certificate: UnknownIssuer)"
            ),
            "{t}"
        );
        assert!(t.contains("SSL_CERT_FILE") && !t.contains('\n'), "{t}");
        let other =
            "invalid peer certificate: certificate not valid for name \"a.test\"; certificate is only valid for b.test";
        let t = explain(ureq::Error::Io(std::io::Error::other(other)), &uri, None).to_string();
        assert!(
            t.starts_with("TLS: the certificate of mcp.example is for another name") && !t.contains("SSL_CERT"),
            "{t}"
        );
        // Worded here, and known to be: a caller shows it as it is.
        assert!(explained(&explain(ureq::Error::ConnectionFailed, &uri, Some(&r))));
        assert!(!explained(&ureq::Error::Tls("TLS: not ours, though it reads the same")));
        assert!(!explained(&ureq::Error::ConnectionFailed));
    }

    #[test]
    fn interned_messages_are_reused() {
        let a = message("same text".into());
        let b = message("same text".into());
        match (a, b) {
            (ureq::Error::Tls(x), ureq::Error::Tls(y)) => assert!(std::ptr::eq(x, y)),
            other => panic!("{other:?}"),
        }
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
