//! The proxy of an outbound HTTP agent: `*_PROXY` by scheme and order, `NO_PROXY` names and
//! address ranges, loopback never proxied, credentials kept but never shown.

use crate::error::{Error, Result};
use std::net::IpAddr;
use ureq::{Proxy, ProxyProtocol};

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

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let m: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |k| m.get(k).cloned().filter(|v| !v.is_empty())
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
}
