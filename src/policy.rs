//! The tool policy: the one decision every path to a tool takes — the shell client,
//! `/mcp` (aggregated), `/mcp/<server>` and `/cli/call` — from a server's `disabled`,
//! `alwaysAllow` and `gatewayApproval`, and the words `list`/`status` show for it.
//! `"gatewayApproval": "ask"` means nothing new for the shell (it asks on its terminal, as
//! for any unlisted tool); a gateway client's user is asked by elicitation (`gateway::approval`).

use crate::config::{Approval, ServerConfig};
use crate::error::Error;

/// The JSON-RPC error code of a call the policy refuses.
pub const REFUSED: i64 = -32003;

/// Who is asking, and whether they can be asked a question.
#[derive(Debug, Clone, Copy)]
pub enum Caller {
    /// `mcpctl call`: `yes` is --yes, `can_ask` a terminal to ask on.
    Shell { yes: bool, can_ask: bool },
    /// A client of the daemon (any HTTP path).
    Gateway,
}

/// What happens to a call of one tool.
#[derive(Debug)]
pub enum Decision {
    Run,
    /// Run after a yes: on the terminal (the shell), or from the client's user by an MCP
    /// elicitation (the gateway, `"gatewayApproval": "ask"`).
    Ask,
    Refuse(Error),
}

/// The decision for `tool` on server `s`.
pub fn decide(s: &ServerConfig, tool: &str, caller: Caller) -> Decision {
    let key = format!("mcpServers.{}", s.name);
    if s.disabled {
        return Decision::Refuse(
            Error::config(format!("server `{}` is disabled", s.name))
                .hint("set \"disabled\": false in the config to use it"),
        );
    }
    if matches!(&s.always_allow, Some(list) if list.is_empty()) {
        return Decision::Refuse(
            Error::forbidden(format!("server `{}` blocks every tool (`alwaysAllow` is empty)", s.name)).hint(format!(
                "add \"{}\" (or a pattern like \"*\") to its alwaysAllow list ({}.alwaysAllow) to allow it",
                tool, key
            )),
        );
    }
    if s.allows(tool) {
        return Decision::Run;
    }
    match caller {
        Caller::Shell { yes: true, .. } => Decision::Run,
        Caller::Shell { can_ask: true, .. } => Decision::Ask,
        Caller::Shell { .. } => Decision::Refuse(
            Error::forbidden(format!("tool `{}` on server `{}` needs approval", tool, s.name))
                .hint("pass --yes, or add it to the server's alwaysAllow list"),
        ),
        Caller::Gateway => match s.gateway_approval {
            Approval::Allow => Decision::Run,
            // Whether this client can be asked is the gateway's to tell (see `cannot_ask`).
            Approval::Ask => Decision::Ask,
            Approval::Deny => Decision::Refuse(
                Error::forbidden(format!(
                    "tool `{}` on server `{}` is not allowed through the gateway (it is not in `alwaysAllow`)",
                    tool, s.name
                ))
                .hint(format!(
                    "add \"{}\" to {}.alwaysAllow (or set {}.gatewayApproval to \"allow\" or \"ask\") and restart the daemon",
                    tool, key, key
                )),
            ),
        },
    }
}

/// What the gateway does with a call its policy does not refuse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    Run,
    /// Run after the user says yes to an elicitation sent to the calling client
    /// (`"gatewayApproval": "ask"`).
    Ask,
}

/// The decision for a caller of the daemon that cannot be asked (`/cli/call`, and the
/// shell client's guess whether the daemon would run a tool): `Err` says why not and what
/// to change.
pub fn gateway(s: &ServerConfig, tool: &str) -> Result<(), Error> {
    match decide(s, tool, Caller::Gateway) {
        Decision::Run => Ok(()),
        Decision::Refuse(e) => Err(e),
        Decision::Ask => Err(cannot_ask(s, tool, "this caller cannot be asked")),
    }
}

/// The decision for an MCP client of the daemon that bears `token` (a named token's
/// allowlist narrows the servers'): run, ask its user first, or `Err` (why not, what to change).
pub fn gateway_for(s: &ServerConfig, tool: &str, token: Option<&crate::tokens::NamedToken>) -> Result<Gate, Error> {
    let gate = match decide(s, tool, Caller::Gateway) {
        Decision::Run => Gate::Run,
        Decision::Ask => Gate::Ask,
        Decision::Refuse(e) => return Err(e),
    };
    match token {
        Some(t) if !t.allows(&s.name, tool) => {
            Err(Error::forbidden(format!("token `{}` may not call tool `{}` on server `{}`", t.name, tool, s.name))
                .hint(format!(
                    "add \"{}__{}\" to tokens.{}.allow in the config and restart the daemon",
                    s.name, tool, t.name
                )))
        }
        _ => Ok(gate),
    }
}

/// The refusal of a tool that needs the user's approval (`"gatewayApproval": "ask"`) when
/// the caller cannot be asked; `why` says why not.
pub fn cannot_ask(s: &ServerConfig, tool: &str, why: &str) -> Error {
    let key = format!("mcpServers.{}", s.name);
    Error::forbidden(format!(
        "tool `{}` on server `{}` needs the user's approval (gatewayApproval \"ask\"), but {}",
        tool, s.name, why
    ))
    .hint(format!(
        "use a client that supports elicitation, or add \"{}\" to {}.alwaysAllow (or set {}.gatewayApproval to \"allow\") and restart the daemon",
        tool, key, key
    ))
}

/// Whether the gateway shows a client every tool of `s` (else the shell lists them itself).
pub fn gateway_shows_all(s: &ServerConfig) -> bool {
    !s.disabled
        && (s.gateway_approval == Approval::Allow
            || s.always_allow.as_ref().map(|l| l.iter().any(|p| p == "*")).unwrap_or(false))
}

/// The policy in words, for `list` and `status`.
pub fn describe(s: &ServerConfig) -> String {
    if s.disabled {
        return "disabled".into();
    }
    let listed = match &s.always_allow {
        Some(l) if l.is_empty() => return "blocks all tools".into(),
        Some(l) if l.iter().any(|p| p == "*") => return "allows all tools".into(),
        Some(l) => {
            let shown: Vec<&str> = l.iter().take(5).map(String::as_str).collect();
            let more = if l.len() > 5 { ", …" } else { "" };
            format!("allows {} tool{} ({}{})", l.len(), if l.len() == 1 { "" } else { "s" }, shown.join(", "), more)
        }
        None => "asks for every tool in the shell".into(),
    };
    let unlisted = match s.gateway_approval {
        Approval::Allow => "allows unlisted tools through the gateway",
        Approval::Deny => "denies unlisted tools through the gateway",
        Approval::Ask => "asks the agent's user for unlisted tools through the gateway",
    };
    format!("{}; {}", listed, unlisted)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ServerConfig;

    fn server(list: Option<&[&str]>, approval: Approval) -> ServerConfig {
        let mut s = ServerConfig::from_url("http://127.0.0.1:1/mcp");
        s.always_allow = list.map(|l| l.iter().map(|x| x.to_string()).collect());
        s.gateway_approval = approval;
        s
    }

    #[test]
    fn one_decision_for_every_caller() {
        let blocked = server(Some(&[]), Approval::Allow);
        assert!(matches!(decide(&blocked, "t", Caller::Gateway), Decision::Refuse(_)));
        assert!(matches!(decide(&blocked, "t", Caller::Shell { yes: true, can_ask: true }), Decision::Refuse(_)));
        let named = server(Some(&["echo", "ad*"]), Approval::Deny);
        assert!(matches!(decide(&named, "add", Caller::Gateway), Decision::Run));
        assert!(matches!(decide(&named, "fail", Caller::Gateway), Decision::Refuse(_)));
        assert!(matches!(decide(&named, "fail", Caller::Shell { yes: true, can_ask: false }), Decision::Run));
        assert!(matches!(decide(&named, "fail", Caller::Shell { yes: false, can_ask: true }), Decision::Ask));
        let open = server(None, Approval::Allow);
        assert!(matches!(decide(&open, "x", Caller::Gateway), Decision::Run));
        let mut off = server(Some(&["*"]), Approval::Allow);
        off.disabled = true;
        assert!(matches!(decide(&off, "x", Caller::Gateway), Decision::Refuse(_)));
        assert_eq!(describe(&off), "disabled");
        assert_eq!(describe(&named), "allows 2 tools (echo, ad*); denies unlisted tools through the gateway");
    }

    #[test]
    fn ask_asks_gateway_clients_for_unlisted_tools_only() {
        let ask = server(Some(&["echo"]), Approval::Ask);
        assert!(matches!(decide(&ask, "echo", Caller::Gateway), Decision::Run));
        assert!(matches!(decide(&ask, "add", Caller::Gateway), Decision::Ask));
        assert_eq!(gateway_for(&ask, "add", None).unwrap(), Gate::Ask);
        assert_eq!(gateway_for(&ask, "echo", None).unwrap(), Gate::Run);
        // A caller that cannot be asked (/cli/call) is refused, with what to change.
        let e = gateway(&ask, "add").unwrap_err().one_line();
        assert!(e.contains("needs the user's approval"), "{}", e);
        assert!(e.contains("mcpServers.url.alwaysAllow"), "{}", e);
        // The shell asks on its terminal as for any unlisted tool.
        assert!(matches!(decide(&ask, "add", Caller::Shell { yes: false, can_ask: true }), Decision::Ask));
        assert!(matches!(decide(&ask, "add", Caller::Shell { yes: false, can_ask: false }), Decision::Refuse(_)));
        assert!(matches!(decide(&ask, "add", Caller::Shell { yes: true, can_ask: false }), Decision::Run));
        // `[]` and `disabled` still refuse outright.
        assert!(gateway_for(&server(Some(&[]), Approval::Ask), "add", None).is_err());
        assert_eq!(
            describe(&ask),
            "allows 1 tool (echo); asks the agent's user for unlisted tools through the gateway"
        );
        assert!(!gateway_shows_all(&ask));
    }
}
