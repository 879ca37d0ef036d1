//! The one error type of mcpctl: what went wrong, how to fix it, and which
//! status word and exit code a script sees (0 success, 1 failure, 2 timeout/forbidden).

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

/// An error a user sees: one line saying what is wrong, plus an optional fix.
#[derive(Debug, Clone)]
pub struct Error {
    pub status: Status,
    pub message: String,
    pub hint: Option<String>,
    /// Extra lines shown under the message in text mode (e.g. a child's last stderr lines).
    pub details: Vec<String>,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    fn new(status: Status, message: impl Into<String>) -> Error {
        Error { status, message: message.into(), hint: None, details: Vec::new() }
    }
    pub fn failure(message: impl Into<String>) -> Error {
        Error::new(Status::Failure, message)
    }
    pub fn timeout(message: impl Into<String>) -> Error {
        Error::new(Status::Timeout, message)
    }
    pub fn forbidden(message: impl Into<String>) -> Error {
        Error::new(Status::Forbidden, message)
    }
    pub fn hint(mut self, hint: impl Into<String>) -> Error {
        self.hint = Some(hint.into());
        self
    }
    pub fn details(mut self, details: Vec<String>) -> Error {
        self.details = details;
        self
    }
    pub fn exit_code(&self) -> i32 {
        self.status.exit_code()
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
        serde_json::json!({"status": self.status.word(), "message": self.message, "hint": self.hint, "details": self.details})
    }

    pub fn from_json(v: &serde_json::Value) -> Error {
        Error {
            status: Status::from_word(v["status"].as_str().unwrap_or("failure")),
            message: v["message"].as_str().unwrap_or("the daemon reported an error").to_string(),
            hint: v["hint"].as_str().map(str::to_string),
            details: v["details"]
                .as_array()
                .map(|a| a.iter().filter_map(|d| d.as_str().map(str::to_string)).collect())
                .unwrap_or_default(),
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
    fn errors_survive_json() {
        let e = Error::timeout("slow").hint("wait").details(vec!["a".into()]);
        let back = Error::from_json(&e.to_json());
        assert_eq!((back.status, back.one_line(), back.details), (Status::Timeout, e.one_line(), e.details));
    }

    #[test]
    fn hint_joins_on_one_line() {
        let e = Error::failure("unknown server `x`").hint("run `mcpctl list`");
        assert_eq!(e.to_string(), "unknown server `x`; run `mcpctl list`");
    }
}
