//! Names on the aggregated `/mcp` endpoint: `<server>__<tool>`, kept within
//! `^[A-Za-z0-9_-]{1,64}$`. A name that would break that, or collide, gets a short form:
//! characters outside the set become `_`, and the name is cut to 55 characters plus `_`
//! and 8 hex digits of an FNV-1a hash of the full original `<server>__<tool>`.

use std::collections::HashMap;

pub const SEP: &str = "__";

/// FNV-1a, 32 bits: stable across versions and platforms (documented in docs/gateway.md).
pub fn fnv1a(s: &str) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for b in s.bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    h
}

fn sanitize(s: &str) -> String {
    s.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' || c == '-' { c } else { '_' }).collect()
}

fn short_form(full: &str) -> String {
    let clean = sanitize(full);
    let head: String = clean.chars().take(55).collect();
    format!("{}_{:08x}", head, fnv1a(full))
}

/// Exposed name → (server, original name), built from every server's list in config order.
#[derive(Debug, Default, Clone)]
pub struct Table {
    pub by_exposed: HashMap<String, (String, String)>,
    /// (server, original) → exposed, in insertion order.
    pub order: Vec<(String, String, String)>,
}

impl Table {
    pub fn build<'a>(items: impl IntoIterator<Item = (&'a str, &'a str)>) -> Table {
        let mut t = Table::default();
        for (server, name) in items {
            let full = format!("{}{}{}", server, SEP, name);
            let mut exposed = if crate::config::valid_name(&full) { full.clone() } else { short_form(&full) };
            if t.by_exposed.contains_key(&exposed) {
                exposed = short_form(&full);
                let mut salt = 0u32;
                while t.by_exposed.contains_key(&exposed) {
                    salt += 1;
                    exposed = short_form(&format!("{}#{}", full, salt));
                }
            }
            t.by_exposed.insert(exposed.clone(), (server.to_string(), name.to_string()));
            t.order.push((server.to_string(), name.to_string(), exposed));
        }
        t
    }

    pub fn resolve(&self, exposed: &str) -> Option<(&str, &str)> {
        self.by_exposed.get(exposed).map(|(s, n)| (s.as_str(), n.as_str()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_names_are_prefixed() {
        let t = Table::build([("fs", "read_file"), ("db", "query")]);
        assert_eq!(t.resolve("fs__read_file"), Some(("fs", "read_file")));
        assert_eq!(t.order[1].2, "db__query");
    }

    #[test]
    fn long_and_odd_names_get_a_stable_short_form() {
        let long = "a".repeat(70);
        let t = Table::build([("srv", long.as_str()), ("srv", "has.dot")]);
        for (_, _, e) in &t.order {
            assert!(crate::config::valid_name(e), "{}", e);
        }
        assert_eq!(t.order[0].2.len(), 64);
        assert_eq!(t.order[0].2, Table::build([("srv", long.as_str())]).order[0].2);
        assert!(t.order[1].2.starts_with("srv__has_dot_"));
        assert_eq!(t.resolve(&t.order[1].2), Some(("srv", "has.dot")));
    }

    #[test]
    fn collisions_never_drop_a_tool() {
        // `a__b` + `c` and `a` + `b__c` both read `a__b__c`.
        let t = Table::build([("a__b", "c"), ("a", "b__c")]);
        assert_eq!(t.by_exposed.len(), 2);
        assert_eq!(t.resolve("a__b__c"), Some(("a__b", "c")));
        assert_eq!(t.resolve(&t.order[1].2), Some(("a", "b__c")));
    }
}
