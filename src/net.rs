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

use std::sync::{Arc, Mutex};

use ureq::config::ConfigBuilder;
use ureq::typestate::AgentScope;

use crate::error::Result;

mod proxy;
mod trust;

pub use proxy::{is_loopback, proxy_for, NoProxy, Route};
pub use trust::{anchor_certificate, load_roots, tls_config, Roots, SYSTEM_BUNDLES};

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
    crate::settings::lookup(k).filter(|v| !v.trim().is_empty())
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
}
