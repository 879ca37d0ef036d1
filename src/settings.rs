//! mcpctl's settings from the environment: every `MCPCTL_*` variable mcpctl reads is named
//! once here, in [`ALL`] (with its documented default and what it does), and read through
//! the accessors below, which apply the defaults and bounds. docs/settings.md shows the same
//! table; a unit test holds the two (and every `MCPCTL_*` name in src/) to each other.
//!
//! Not settings, so read where they are used: variables of the system or of other tools
//! (HOME, PATH, XDG_DATA_HOME, APPDATA, NO_COLOR, RUST_LOG, SSL_CERT_FILE, SSL_CERT_DIR,
//! the `*_PROXY` variables ureq reads), the variables a config expands (`${NAME}`, and
//! VS Code's inputs as `MCPCTL_INPUT_<ID>`), and the token variables a config names
//! (`"tokens"`, conventionally `MCPCTL_TOKEN_<NAME>`).

use crate::error::{Error, Result};
use std::time::Duration;

/// One variable: its name, its default as the docs give it, and what it does.
#[derive(Debug, Clone, Copy)]
pub struct Setting {
    pub name: &'static str,
    pub default: &'static str,
    pub about: &'static str,
}

pub const TOKEN: &str = "MCPCTL_TOKEN";
pub const TOKEN_MODE: &str = "MCPCTL_TOKEN_MODE";
pub const LOG: &str = "MCPCTL_LOG";
pub const PROJECT_DIR: &str = "MCPCTL_PROJECT_DIR";
pub const CONFIG: &str = "MCPCTL_CONFIG";
pub const MAX_LINE: &str = "MCPCTL_MAX_LINE";
pub const NODE_ID: &str = "MCPCTL_NODE_ID";
pub const CA_ONLY: &str = "MCPCTL_CA_ONLY";
pub const RUNTIME_ROOT: &str = "MCPCTL_RUNTIME_ROOT";
pub const RUNTIME_INSTALL: &str = "MCPCTL_RUNTIME_INSTALL";
pub const UV_MANIFEST: &str = "MCPCTL_UV_MANIFEST";
pub const UV_DOWNLOAD_URL: &str = "MCPCTL_UV_DOWNLOAD_URL";
pub const NODE_MANIFEST: &str = "MCPCTL_NODE_MANIFEST";
pub const NODE_DOWNLOAD_URL: &str = "MCPCTL_NODE_DOWNLOAD_URL";
pub const NODE_LIBC: &str = "MCPCTL_NODE_LIBC";

/// A whole-number setting of the daemon, from 1 to `max` (unset or empty: the default).
#[derive(Debug, Clone, Copy)]
pub struct Number {
    pub name: &'static str,
    pub max: u64,
    pub unit: &'static str,
}

pub const MAX_BODY: Number = Number { name: "MCPCTL_MAX_BODY", max: 1 << 32, unit: "bytes" };
pub const MAX_CONNECTIONS: Number = Number { name: "MCPCTL_MAX_CONNECTIONS", max: 100_000, unit: "connections" };
pub const IO_TIMEOUT: Number = Number { name: "MCPCTL_IO_TIMEOUT", max: 86_400, unit: "seconds" };
pub const MAX_SESSIONS: Number = Number { name: "MCPCTL_MAX_SESSIONS", max: 1_000_000, unit: "sessions" };
pub const MAX_SESSION_CHILDREN: Number = Number { name: "MCPCTL_MAX_SESSION_CHILDREN", max: 100_000, unit: "children" };
pub const HEAD_TIMEOUT: Number = Number { name: "MCPCTL_HEAD_TIMEOUT", max: 86_400, unit: "seconds" };
pub const MAX_BUFFERED: Number = Number { name: "MCPCTL_MAX_BUFFERED", max: 1 << 40, unit: "bytes" };
pub const SESSION_IDLE: Number = Number { name: "MCPCTL_SESSION_IDLE", max: 365 * 86_400, unit: "seconds" };

/// Every variable, in the order of docs/settings.md.
pub const ALL: &[Setting] = &[
    Setting {
        name: TOKEN,
        default: "unset",
        about: "The daemon's bearer token (`mcpctl start`), and the one the client, `serve` and `status` send to it. \
                Needed to bind a non-loopback address; never passed on to a server's process.",
    },
    Setting {
        name: TOKEN_MODE,
        default: "`env`",
        about: "Internal: set by `mcpctl start` for the daemon it starts (`flag` when the token came from `--token`).",
    },
    Setting {
        name: LOG,
        default: "`RUST_LOG`, else `warn` (`info` for the daemon)",
        about: "Log filter, as in `RUST_LOG` (`debug`, `mcpctl=debug`, …); logs go to stderr (the daemon's to its log file).",
    },
    Setting {
        name: PROJECT_DIR,
        default: "unset",
        about: "The project folder, as `--project-root` (which wins). Set but empty is an error.",
    },
    Setting { name: CONFIG, default: "unset", about: "The config file, as `--config` (which wins)." },
    Setting {
        name: MAX_LINE,
        default: "67108864 (64 MiB)",
        about: "The longest line a stdio server (or `serve`'s client) may write, in bytes; at least 1024. \
                A server that writes a longer one is disconnected.",
    },
    Setting {
        name: MAX_BODY.name,
        default: "16777216 (16 MiB)",
        about: "Daemon: the largest request body, in bytes (413 past it); 1 to 2^32.",
    },
    Setting {
        name: MAX_CONNECTIONS.name,
        default: "256",
        about: "Daemon: client connections open at once (503 past it); 1 to 100000.",
    },
    Setting {
        name: IO_TIMEOUT.name,
        default: "30",
        about: "Daemon: seconds a request may take to arrive, a kept-alive connection may stay idle, and a client \
                may take to read what we write; 1 to 86400.",
    },
    Setting {
        name: HEAD_TIMEOUT.name,
        default: "10",
        about: "Daemon: seconds a client may take to send a request's head; 1 to 86400.",
    },
    Setting {
        name: MAX_BUFFERED.name,
        default: "268435456 (256 MiB)",
        about: "Daemon: bytes of answers all slow clients together may leave unread; 1 to 2^40.",
    },
    Setting {
        name: MAX_SESSIONS.name,
        default: "1024",
        about: "Daemon: client sessions open at once; 1 to 1000000.",
    },
    Setting {
        name: MAX_SESSION_CHILDREN.name,
        default: "32",
        about: "Daemon: per-session processes of one server alive at once; 1 to 100000.",
    },
    Setting {
        name: SESSION_IDLE.name,
        default: "1800",
        about: "Daemon: seconds a session may go unused before it is ended; 1 to 31536000.",
    },
    Setting {
        name: NODE_ID,
        default: "unset",
        about: "Daemon: this node's id, as `--node-id` (which wins): session ids start with it, so a load \
                balancer can route a session to its daemon. 1 to 32 of `A-Z a-z 0-9 _ -`.",
    },
    Setting {
        name: CA_ONLY,
        default: "unset",
        about: "When set (and not `0`, `false` or `no`): trust only `SSL_CERT_FILE` / `SSL_CERT_DIR`, not the bundled \
                roots or the system store.",
    },
    Setting {
        name: RUNTIME_ROOT,
        default: "`$XDG_DATA_HOME/mcpctl/runtime`, else `~/.local/share/mcpctl/runtime`",
        about: "Where the managed uv and Node live.",
    },
    Setting {
        name: RUNTIME_INSTALL,
        default: "`auto`",
        about: "`auto`: download a missing managed runtime (after consent where asked); `never`: never download.",
    },
    Setting {
        name: UV_MANIFEST,
        default: "the built-in pin",
        about: "A JSON file pinning another uv build (version, file, sha256).",
    },
    Setting {
        name: UV_DOWNLOAD_URL,
        default: "the GitHub release",
        about: "A mirror (base URL) holding the pinned uv archive.",
    },
    Setting {
        name: NODE_MANIFEST,
        default: "the built-in pin",
        about: "A JSON file pinning another Node build (an official-layout archive, or a registry build).",
    },
    Setting {
        name: NODE_DOWNLOAD_URL,
        default: "the pin's own source",
        about: "A mirror (base URL) holding the pinned Node archive.",
    },
    Setting {
        name: NODE_LIBC,
        default: "detected",
        about: "`glibc` or `musl`: which Node build to use, instead of detecting the C library.",
    },
];

/// Whether `name` is one of ours.
pub fn is_setting(name: &str) -> bool {
    ALL.iter().any(|s| s.name == name)
}

/// The raw value of one of our variables (`None` when unset or not Unicode).
fn raw(name: &str) -> Option<String> {
    debug_assert!(is_setting(name), "{name} is not in settings::ALL");
    std::env::var(name).ok()
}

/// For code that looks its variables up through a function (so tests can pass a map):
/// ours are read through the table, the others (HOME, XDG_DATA_HOME, SSL_CERT_*) as they
/// are. The raw value: callers decide what an empty one means.
pub fn lookup(name: &str) -> Option<String> {
    if name.starts_with("MCPCTL_") {
        raw(name)
    } else {
        std::env::var(name).ok()
    }
}

/// `MCPCTL_TOKEN`, when set and not empty.
pub fn token() -> Option<String> {
    raw(TOKEN).filter(|t| !t.is_empty())
}

/// `MCPCTL_TOKEN_MODE=flag`: the token the daemon got came from `--token`.
pub fn token_from_flag() -> bool {
    raw(TOKEN_MODE).is_some_and(|m| m == "flag")
}

/// `MCPCTL_LOG`, when set.
pub fn log_filter() -> Option<String> {
    raw(LOG)
}

/// `MCPCTL_NODE_ID`, when set and not empty (checked by the daemon).
pub fn node_id() -> Option<String> {
    raw(NODE_ID).filter(|v| !v.is_empty())
}

const DEFAULT_MAX_LINE: usize = 64 * 1024 * 1024;

/// The longest line a child may write on stdout (`MCPCTL_MAX_LINE`, at least 1024 bytes;
/// default 64 MiB, also when the value is not understood, with a warning). Read once.
pub fn max_line() -> usize {
    static MAX: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *MAX.get_or_init(|| max_line_from(raw(MAX_LINE)))
}

fn max_line_from(v: Option<String>) -> usize {
    let Some(v) = v else { return DEFAULT_MAX_LINE };
    match v.trim().parse::<usize>() {
        Ok(n) if n >= 1024 => n,
        _ => {
            log::warn!("{}={} is not a number of bytes (at least 1024); using 64 MiB", MAX_LINE, v);
            DEFAULT_MAX_LINE
        }
    }
}

impl Number {
    /// The value when set: an error when it is not a whole number from 1 to `max`.
    pub fn get(&self) -> Result<Option<u64>> {
        self.parse(raw(self.name))
    }

    /// As [`Number::get`], as a number of seconds.
    pub fn seconds(&self) -> Result<Option<Duration>> {
        Ok(self.get()?.map(Duration::from_secs))
    }

    /// As [`Number::get`], as a size or count.
    pub fn usize(&self) -> Result<Option<usize>> {
        Ok(self.get()?.map(|n| usize::try_from(n).unwrap_or(usize::MAX)))
    }

    fn parse(&self, value: Option<String>) -> Result<Option<u64>> {
        let Some(v) = value.filter(|v| !v.trim().is_empty()) else { return Ok(None) };
        match v.trim().parse::<u64>() {
            Ok(n) if (1..=self.max).contains(&n) => Ok(Some(n)),
            _ => Err(Error::config(format!(
                "{}=`{}` is not a whole number of {} from 1 to {}",
                self.name, v, self.unit, self.max
            ))
            .hint(format!("fix or unset {}", self.name))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;
    use std::path::Path;

    const DOCS: &str = include_str!("../docs/settings.md");

    /// The names in the first column of docs/settings.md's table.
    fn documented() -> Vec<String> {
        let table = DOCS.split_once("\n## Settings\n").expect("a `## Settings` section").1;
        let table = table.split("\n## ").next().unwrap();
        table
            .lines()
            .filter_map(|l| l.strip_prefix("| `"))
            .filter_map(|l| l.split_once('`').map(|(name, _)| name.to_string()))
            .filter(|n| n.starts_with("MCPCTL_"))
            .collect()
    }

    #[test]
    fn the_docs_table_and_the_code_name_the_same_variables_in_the_same_order() {
        let code: Vec<String> = ALL.iter().map(|s| s.name.to_string()).collect();
        let docs = documented();
        for n in &code {
            assert!(docs.contains(n), "{n} is in settings::ALL but not in docs/settings.md");
        }
        for n in &docs {
            assert!(code.contains(n), "{n} is in docs/settings.md but not in settings::ALL");
        }
        assert_eq!(code, docs, "the same order in both");
        let unique: BTreeSet<&String> = code.iter().collect();
        assert_eq!(unique.len(), code.len(), "a variable is listed twice");
    }

    #[test]
    fn the_docs_table_shows_each_default() {
        for s in ALL {
            let row = DOCS.lines().find(|l| l.starts_with(&format!("| `{}`", s.name))).unwrap();
            assert!(row.contains(s.default), "docs/settings.md's row for {} lacks the default {:?}", s.name, s.default);
        }
    }

    /// Every `MCPCTL_*` name in src/ is a setting, or one of the variables a config names.
    #[test]
    fn every_mcpctl_variable_in_the_source_is_in_the_table() {
        fn walk(dir: &Path, out: &mut Vec<(String, String)>) {
            for e in std::fs::read_dir(dir).unwrap().flatten() {
                let p = e.path();
                if p.is_dir() {
                    walk(&p, out);
                } else if p.extension().is_some_and(|x| x == "rs") {
                    let text = std::fs::read_to_string(&p).unwrap();
                    let mut rest = text.as_str();
                    while let Some(at) = rest.find("MCPCTL_") {
                        let tail = &rest[at..];
                        let end = tail.find(|c: char| !(c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'));
                        let name = &tail[..end.unwrap_or(tail.len())];
                        out.push((name.to_string(), p.display().to_string()));
                        rest = &tail[name.len()..];
                    }
                }
            }
        }
        let mut found = Vec::new();
        walk(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"), &mut found);
        assert!(found.len() > 50, "the scan found too little: {}", found.len());
        // A config's token variables (`MCPCTL_TOKEN_CI`) and VS Code inputs (`MCPCTL_INPUT_ID`),
        // the knobs of the fuzz tests (`make fuzz`, not the program's settings), and the bare
        // prefix where the text speaks of all of them.
        let theirs = |n: &str| {
            n == "MCPCTL_"
                || n.starts_with("MCPCTL_TOKEN_")
                || n.starts_with("MCPCTL_INPUT_")
                || n.starts_with("MCPCTL_FUZZ_")
        };
        for (name, file) in found {
            assert!(is_setting(&name) || theirs(&name), "{file} names {name}, which is not in settings::ALL");
        }
    }

    #[test]
    fn documented_numbers_are_the_gateways_defaults() {
        let d = crate::gateway::Options::default();
        let default_of = |n: &Number| -> u64 {
            let s = ALL.iter().find(|s| s.name == n.name).unwrap();
            s.default.split_whitespace().next().unwrap().parse().unwrap()
        };
        assert_eq!(default_of(&MAX_BODY), d.max_body as u64);
        assert_eq!(default_of(&MAX_CONNECTIONS), d.max_connections as u64);
        assert_eq!(default_of(&IO_TIMEOUT), d.io_timeout.as_secs());
        assert_eq!(default_of(&HEAD_TIMEOUT), d.head_timeout.as_secs());
        assert_eq!(default_of(&MAX_BUFFERED), d.max_buffered as u64);
        assert_eq!(default_of(&MAX_SESSIONS), d.max_sessions as u64);
        assert_eq!(default_of(&MAX_SESSION_CHILDREN), d.max_session_children as u64);
        assert_eq!(default_of(&SESSION_IDLE), d.session_idle.as_secs());
        let line = ALL.iter().find(|s| s.name == MAX_LINE).unwrap();
        assert_eq!(line.default.split_whitespace().next().unwrap().parse::<usize>().unwrap(), DEFAULT_MAX_LINE);
    }

    #[test]
    fn numbers_are_bounded() {
        let s = |v: &str| Some(v.to_string());
        assert_eq!(MAX_SESSIONS.parse(None).unwrap(), None);
        assert_eq!(MAX_SESSIONS.parse(s(" ")).unwrap(), None);
        assert_eq!(MAX_SESSIONS.parse(s(" 7 ")).unwrap(), Some(7));
        assert_eq!(MAX_SESSIONS.parse(s("1000000")).unwrap(), Some(1_000_000));
        for bad in ["0", "1000001", "-1", "1e3", "x"] {
            let e = MAX_SESSIONS.parse(s(bad)).unwrap_err().one_line();
            assert!(e.contains("MCPCTL_MAX_SESSIONS=") && e.contains("from 1 to 1000000"), "{bad}: {e}");
        }
    }

    #[test]
    fn max_line_falls_back_to_the_default() {
        let s = |v: &str| Some(v.to_string());
        assert_eq!(max_line_from(None), DEFAULT_MAX_LINE);
        assert_eq!(max_line_from(s("1024")), 1024);
        assert_eq!(max_line_from(s("1023")), DEFAULT_MAX_LINE);
        assert_eq!(max_line_from(s("lots")), DEFAULT_MAX_LINE);
    }
}
