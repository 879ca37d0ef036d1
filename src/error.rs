//! The one error type of mcpctl: what went wrong (its [`Kind`]), how to fix it, and which
//! status word and exit code a script sees (0 success, 1 failure, 2 timeout/forbidden).
//! Code that must react to an error asks its kind (`e.is_unreachable()`), never its text.

use std::fmt;

/// The outcome class of a command; doubles as the JSON `status` word.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Success,
    Failure,
    DryRun,
    Timeout,
    Forbidden,
}

impl Status {
    pub fn word(self) -> &'static str {
        match self {
            Status::Success => "success",
            Status::Failure => "failure",
            Status::DryRun => "dry_run",
            Status::Timeout => "timeout",
            Status::Forbidden => "forbidden",
        }
    }

    /// The status named by `word` (unknown words read as failure).
    pub fn from_word(word: &str) -> Status {
        match word {
            "success" => Status::Success,
            "dry_run" => Status::DryRun,
            "timeout" => Status::Timeout,
            "forbidden" => Status::Forbidden,
            _ => Status::Failure,
        }
    }

    pub fn exit_code(self) -> i32 {
        match self {
            Status::Success | Status::DryRun => 0,
            Status::Failure => 1,
            Status::Timeout | Status::Forbidden => 2,
        }
    }
}

macro_rules! kinds {
    ($($(#[$doc:meta])* $kind:ident, $word:literal, $ctor:ident, $is:ident;)*) => {
        /// What went wrong, for code that reacts to an error; the status word and exit
        /// code follow from it ([`Kind::status`]).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Kind {
            $($(#[$doc])* $kind,)*
        }

        impl Kind {
            /// Every kind, in the order declared.
            pub const ALL: &'static [Kind] = &[$(Kind::$kind),*];

            /// The kind's name in JSON (`"not_found"`).
            pub fn word(self) -> &'static str {
                match self {
                    $(Kind::$kind => $word,)*
                }
            }

            /// The kind named by `word`, if it names one.
            pub fn from_word(word: &str) -> Option<Kind> {
                match word {
                    $($word => Some(Kind::$kind),)*
                    _ => None,
                }
            }
        }

        impl Error {
            $(
                $(#[$doc])*
                pub fn $ctor(message: impl Into<String>) -> Error {
                    Error::new(Kind::$kind, message)
                }

                pub fn $is(&self) -> bool {
                    self.kind == Kind::$kind
                }
            )*
        }
    };
}

kinds! {
    /// The command line is wrong (an unknown option, a missing or malformed argument).
    Usage, "usage", usage, is_usage;
    /// The config is wrong or cannot be read (or an environment setting is malformed).
    Config, "config", config, is_config;
    /// No such server, tool, resource, prompt or method (or a server without resources or
    /// prompts at all).
    NotFound, "not_found", not_found, is_not_found;
    /// Refused by policy: mcpctl or its daemon will not do it for this caller (a tool that
    /// needs approval, a token the daemon refuses, a download that was declined).
    Forbidden, "forbidden", forbidden, is_forbidden;
    /// A server refused the credentials mcpctl sent for it (HTTP 401/403; see the
    /// `http_status` field): a failure of that server, exit 1. The daemon refusing the
    /// caller's own `MCPCTL_TOKEN` is [`Kind::Forbidden`] (exit 2).
    Auth, "auth", auth, is_auth;
    /// No answer in time.
    Timeout, "timeout", timeout, is_timeout;
    /// No connection was made: a server or the daemon cannot be reached, a child cannot be
    /// spawned. Nothing was sent, so trying another way is safe.
    Unreachable, "unreachable", unreachable, is_unreachable;
    /// The connection was lost while a request was out (the server exited or closed it).
    Disconnected, "disconnected", disconnected, is_disconnected;
    /// A peer sent something that is not what the protocol allows or what was asked for.
    Protocol, "protocol", protocol, is_protocol;
    /// A server answered a request with an error (a JSON-RPC error, an HTTP error status
    /// other than 401/403).
    Server, "server", server, is_server;
    /// A tool ran and reported an error (`isError`).
    Tool, "tool", tool, is_tool;
    /// The managed runtime (uv, Node) or an install of it is missing or broken.
    Runtime, "runtime", runtime, is_runtime;
    /// Stopped by the user (Ctrl-C).
    Interrupted, "interrupted", interrupted, is_interrupted;
    /// Something in mcpctl itself failed (a thread that cannot start, a bug).
    Internal, "internal", internal, is_internal;
    /// Anything else (a file that cannot be read or written, ...).
    Other, "other", failure, is_other;
}

impl Kind {
    /// The status word and exit code of an error of this kind.
    pub fn status(self) -> Status {
        match self {
            Kind::Timeout => Status::Timeout,
            Kind::Forbidden => Status::Forbidden,
            _ => Status::Failure,
        }
    }

    /// The kind an error gets when all that is known is its status (an error from an
    /// older daemon, which sent no kind).
    pub fn from_status(status: Status) -> Kind {
        match status {
            Status::Timeout => Kind::Timeout,
            Status::Forbidden => Kind::Forbidden,
            _ => Kind::Other,
        }
    }
}

/// An error a user sees: one line saying what is wrong, plus an optional fix.
#[derive(Debug, Clone)]
pub struct Error {
    pub kind: Kind,
    pub message: String,
    pub hint: Option<String>,
    /// Extra lines shown under the message in text mode (e.g. a child's last stderr lines).
    pub details: Vec<String>,
    /// The HTTP status of the answer that is the error, when a server answered with one.
    pub http_status: Option<u16>,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn new(kind: Kind, message: impl Into<String>) -> Error {
        Error { kind, message: message.into(), hint: None, details: Vec::new(), http_status: None }
    }
    /// The same error, of another kind.
    pub fn with_kind(mut self, kind: Kind) -> Error {
        self.kind = kind;
        self
    }
    pub fn hint(mut self, hint: impl Into<String>) -> Error {
        self.hint = Some(hint.into());
        self
    }
    pub fn details(mut self, details: Vec<String>) -> Error {
        self.details = details;
        self
    }
    pub fn with_http_status(mut self, status: u16) -> Error {
        self.http_status = Some(status);
        self
    }
    pub fn status(&self) -> Status {
        self.kind.status()
    }
    pub fn exit_code(&self) -> i32 {
        self.status().exit_code()
    }
    /// The message and the fix on one line.
    pub fn one_line(&self) -> String {
        match &self.hint {
            Some(h) => format!("{}; {}", self.message, h),
            None => self.message.clone(),
        }
    }
}

impl Error {
    /// The error as JSON, to carry it between processes (the daemon's CLI endpoint).
    pub fn to_json(&self) -> serde_json::Value {
        let mut v = serde_json::json!({
            "status": self.status().word(),
            "kind": self.kind.word(),
            "message": self.message,
            "hint": self.hint,
            "details": self.details,
        });
        if let Some(s) = self.http_status {
            v["http_status"] = s.into();
        }
        v
    }

    /// The error [`Error::to_json`] made; without a `kind` (an older daemon), the kind
    /// follows from the status word.
    pub fn from_json(v: &serde_json::Value) -> Error {
        let status = Status::from_word(v["status"].as_str().unwrap_or("failure"));
        let kind = v["kind"].as_str().and_then(Kind::from_word).unwrap_or_else(|| Kind::from_status(status));
        Error {
            kind,
            message: v["message"].as_str().unwrap_or("the daemon reported an error").to_string(),
            hint: v["hint"].as_str().map(str::to_string),
            details: v["details"]
                .as_array()
                .map(|a| a.iter().filter_map(|d| d.as_str().map(str::to_string)).collect())
                .unwrap_or_default(),
            http_status: v["http_status"].as_u64().and_then(|s| u16::try_from(s).ok()),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.one_line())
    }
}

impl std::error::Error for Error {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_follow_the_contract() {
        assert_eq!(Error::failure("x").exit_code(), 1);
        assert_eq!(Error::timeout("x").exit_code(), 2);
        assert_eq!(Error::forbidden("x").exit_code(), 2);
        assert_eq!(Status::DryRun.exit_code(), 0);
    }

    #[test]
    fn the_kind_decides_the_status_word_and_exit_code() {
        for &k in Kind::ALL {
            let e = Error::new(k, "x");
            let (word, code) = match k {
                Kind::Timeout => ("timeout", 2),
                Kind::Forbidden => ("forbidden", 2),
                _ => ("failure", 1),
            };
            assert_eq!((e.status().word(), e.exit_code()), (word, code), "{:?}", k);
        }
        // A refused credential is a failure of the server it was for (exit 1); only a
        // policy refusal is `forbidden`.
        assert_eq!(Error::auth("HTTP 401").exit_code(), 1);
    }

    #[test]
    fn constructors_and_predicates_agree() {
        assert!(Error::unreachable("x").is_unreachable());
        assert!(!Error::disconnected("x").is_unreachable());
        assert!(Error::not_found("x").is_not_found());
        assert!(Error::failure("x").is_other());
        assert!(Error::failure("x").with_kind(Kind::Protocol).is_protocol());
        let words: std::collections::HashSet<_> = Kind::ALL.iter().map(|k| k.word()).collect();
        assert_eq!(words.len(), Kind::ALL.len());
        for &k in Kind::ALL {
            assert_eq!(Kind::from_word(k.word()), Some(k));
        }
    }

    #[test]
    fn errors_survive_json() {
        for &k in Kind::ALL {
            let e = Error::new(k, "slow").hint("wait").details(vec!["a".into()]);
            let back = Error::from_json(&e.to_json());
            assert_eq!((back.kind, back.one_line(), &back.details), (k, e.one_line(), &e.details));
            assert_eq!(back.http_status, None);
        }
        let e = Error::auth("refused").with_http_status(403);
        let back = Error::from_json(&e.to_json());
        assert_eq!((back.kind, back.http_status), (Kind::Auth, Some(403)));
    }

    #[test]
    fn json_without_a_kind_reads_as_before() {
        // What a daemon from before kinds sends.
        let old = |status: &str| {
            Error::from_json(&serde_json::json!({"status": status, "message": "m", "hint": null, "details": []}))
        };
        assert_eq!((old("timeout").kind, old("timeout").exit_code()), (Kind::Timeout, 2));
        assert_eq!((old("forbidden").kind, old("forbidden").exit_code()), (Kind::Forbidden, 2));
        assert_eq!((old("failure").kind, old("failure").exit_code()), (Kind::Other, 1));
        assert_eq!(old("failure").one_line(), "m");
        // A kind this build does not know (a newer daemon) falls back to the status.
        let newer = serde_json::json!({"status": "forbidden", "kind": "quota", "message": "m"});
        assert_eq!(Error::from_json(&newer).kind, Kind::Forbidden);
        assert_eq!(Error::from_json(&serde_json::json!({})).one_line(), "the daemon reported an error");
    }

    #[test]
    fn the_json_keeps_the_status_word() {
        let v = Error::unreachable("gone").to_json();
        assert_eq!((v["status"].as_str(), v["kind"].as_str()), (Some("failure"), Some("unreachable")));
        assert_eq!(Error::forbidden("no").to_json()["status"], "forbidden");
    }

    #[test]
    fn hint_joins_on_one_line() {
        let e = Error::failure("unknown server `x`").hint("run `mcpctl list`");
        assert_eq!(e.to_string(), "unknown server `x`; run `mcpctl list`");
    }
}
