//! Random ids of the gateway: session ids (`Mcp-Session-Id`, after a node id's `<node>.`)
//! and 2026-07-28 request states, 128 bits each from the kernel's random source.

/// 128 bits from the kernel's random source, as hex (a 2026-07-28 request state). Without
/// random bytes there is no safe state to hand out: the handler panics with the reason
/// (logged; its connection is closed) rather than hand out a guessable one.
pub(super) fn random_id() -> String {
    session_id_from(None, random_bytes).unwrap_or_else(|e| panic!("no random bytes for a request state: {}", e))
}

/// A new session id: 128 bits from the kernel's random source as hex, after `<node>.` when
/// the daemon has a node id (a load balancer routes the session to its daemon by that
/// prefix). An error, never a guessable id, when no random bytes can be had.
pub(super) fn new_session_id(node: Option<&str>) -> Result<String, String> {
    session_id_from(node, random_bytes)
}

fn session_id_from(node: Option<&str>, fill: fn(&mut [u8]) -> Result<(), String>) -> Result<String, String> {
    let mut b = [0u8; 16];
    fill(&mut b)?;
    Ok(match node {
        Some(n) => format!("{}.{}", n, hex(&b)),
        None => hex(&b),
    })
}

/// Fill `buf` from getrandom(2) (the kernel's CSPRNG; blocks only until it is seeded at boot).
fn random_bytes(buf: &mut [u8]) -> Result<(), String> {
    crate::sys::fill_random(buf).map_err(|e| format!("getrandom failed: {}", e))
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{:02x}", x)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_ids_are_random_and_name_their_node() {
        let a = new_session_id(None).unwrap();
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|b| b.is_ascii_hexdigit()), "{a}");
        assert_ne!(a, new_session_id(None).unwrap());
        assert_ne!(a, "0".repeat(32));
        let n = new_session_id(Some("node-1")).unwrap();
        let (node, random) = n.split_once('.').unwrap();
        assert_eq!(node, "node-1");
        assert_eq!(random.len(), 32);
        assert!(random.bytes().all(|b| b.is_ascii_hexdigit()), "{n}");
        // No random bytes: an error, never a guessable (all-zero) id.
        let e = session_id_from(Some("a"), |_| Err("getrandom failed: no entropy".into())).unwrap_err();
        assert!(e.contains("getrandom failed"), "{e}");
        assert_eq!(random_id().len(), 32);
    }
}
