//! Command dispatch and what every command shares: loading the config, finding a server
//! by name, opening a session to it (directly, or through the running daemon).

// A command's failure carries its context fields; it is built once per run, so its
// size on the error path does not matter.
#![allow(clippy::result_large_err)]

mod content;
mod daemon;
mod import;
mod runtime;
mod serve;
mod servers;

use crate::cli::{Cli, Command, Globals};
use crate::client::{self, Session};
use crate::config::{self, Config, ServerConfig};
use crate::error::{Error, Kind, Result, Status};
use crate::gateway::cli_wire::{self, CallAnswer, CallRequest};
use crate::output::{Failure, Report};
use serde_json::json;
use std::path::PathBuf;
use std::time::Duration;

pub struct Ctx {
    pub g: Globals,
    pub cwd: PathBuf,
}

pub fn run(cli: Cli) -> std::result::Result<Report, Failure> {
    let ctx = Ctx {
        g: cli.globals,
        cwd: std::env::current_dir().map_err(|e| Error::failure(format!("cannot read the current folder: {}", e)))?,
    };
    match cli.command {
        Command::Help(topic) => {
            let text = match topic {
                None => crate::usage::overview(),
                Some(t) => crate::usage::help_for(&t)?,
            };
            Ok(Report { raw: Some(text), ..Report::new(Status::Success, "help") })
        }
        Command::Import { client, file, write, force } => import::import(&ctx, &client, file.as_deref(), write, force),
        Command::Completion(shell) => {
            let text = crate::usage::completion(&shell)?;
            Ok(Report { raw: Some(text), ..Report::new(Status::Success, format!("{} completion", shell)) })
        }
        Command::Version => {
            let v = env!("CARGO_PKG_VERSION");
            let revisions = client::PROTOCOL_VERSIONS.join(", ");
            Ok(Report {
                raw: Some(format!("mcpctl {}\nMCP revisions: {}\n", v, revisions)),
                ..Report::new(Status::Success, format!("mcpctl {}", v))
            }
            .field("version", json!(v))
            .field("protocol_versions", json!(client::PROTOCOL_VERSIONS)))
        }
        Command::List { names } => servers::list(&ctx, names),
        Command::Status(None) => servers::status_all(&ctx),
        Command::Status(Some(name)) => servers::status_one(&ctx, &name),
        Command::Tools(name) => servers::tools(&ctx, &name),
        Command::Call { server, tool, args } => servers::call(&ctx, &server, &tool, &args),
        Command::Resources(name) => content::resources(&ctx, &name),
        Command::Read { server, uri } => content::read(&ctx, &server, &uri),
        Command::Prompts(name) => content::prompts(&ctx, &name),
        Command::Prompt { server, name, args } => content::prompt(&ctx, &server, &name, &args),
        Command::Complete { server, target, arg, value, context } => {
            content::complete(&ctx, &server, &target, &arg, &value, &context)
        }
        Command::Start(o) => daemon::start(&ctx, &o),
        Command::Stop => daemon::stop(&ctx),
        Command::Logs { follow } => daemon::logs(&ctx, follow),
        Command::RuntimeInstall { force } => runtime::install(&ctx, force),
        Command::RuntimeStatus => runtime::status(&ctx),
        Command::Serve { stdio, server } => serve::serve(&ctx, stdio, server.as_deref()),
        Command::RuntimeVerify => runtime::verify(&ctx),
    }
}

impl Ctx {
    pub fn load_config(&self) -> Result<Config> {
        let loc = config::Locate { project_root: self.g.project_root.clone(), config: self.g.config.clone() }
            .with_env(crate::settings::lookup)?;
        let cfg = config::load(&loc, &self.cwd, &|k| std::env::var(k).ok())?;
        for w in &cfg.warnings {
            log::warn!("{}: {}", cfg.path.display(), w);
        }
        Ok(cfg)
    }

    /// The configured server called `name`, or an error listing the close names.
    pub fn server<'a>(&self, cfg: &'a Config, name: &str) -> Result<&'a ServerConfig> {
        if let Some(s) = cfg.servers.iter().find(|s| s.name == name) {
            return Ok(s);
        }
        let names: Vec<&str> = cfg.servers.iter().map(|s| s.name.as_str()).collect();
        let mut e = Error::not_found(format!("unknown server `{}` in {}", name, cfg.path.display()));
        e = match crate::cli::closest(name, &names) {
            Some(c) => e.hint(format!("did you mean `{}`?", c)),
            None if names.is_empty() => e.hint("the config has no servers; add one under `mcpServers`"),
            None => e.hint(format!("configured servers: {}", names.join(", "))),
        };
        Err(e)
    }

    /// Downloading the managed runtime: yes with --yes, asked on a terminal, refused otherwise.
    pub fn consent(&self) -> crate::launch::Consent {
        let yes = self.g.yes;
        std::sync::Arc::new(move |plan| {
            if yes {
                return true;
            }
            if !(crate::output::is_tty(0) && crate::output::is_tty(2)) {
                return false;
            }
            eprint!("{}", crate::runtime::consent_text(plan));
            let mut line = String::new();
            let _ = std::io::stdin().read_line(&mut line);
            matches!(line.trim().to_ascii_lowercase().as_str(), "y" | "yes")
        })
    }

    /// The server to talk to: from `--url`, or by name from the config.
    pub fn target(&self, name: &str) -> Result<(ServerConfig, PathBuf)> {
        if let Some(url) = &self.g.url {
            let mut s = ServerConfig::from_url(url);
            if let Some(t) = self.g.timeout {
                s.timeout = Duration::from_secs_f64(t);
            }
            return Ok((s, self.cwd.clone()));
        }
        let cfg = self.load_config()?;
        let s = self.server(&cfg, name)?.clone();
        Ok((s, cfg.project_root.clone()))
    }

    pub fn request_timeout(&self, s: &ServerConfig) -> Duration {
        self.g.timeout.map(Duration::from_secs_f64).unwrap_or(s.timeout)
    }

    /// Connect and initialize: through the project's running daemon when there is one
    /// (a persistent child, no spawn), else directly.
    pub fn open(&self, s: &ServerConfig, root: &std::path::Path) -> Result<Session> {
        if let Some(via) = self.via_daemon(s, root) {
            match self.open_direct(&via, root) {
                Ok(session) => return Ok(session),
                Err(e) if e.is_unreachable() => {
                    log::warn!("the daemon did not answer ({}); connecting directly", e.one_line())
                }
                Err(e) if e.is_auth() => return Err(token_refused(e.http_status.unwrap_or(401))),
                Err(e) => return Err(e),
            }
        }
        self.open_direct(s, root)
    }

    /// The server as reached through the running daemon, if one runs and we may use it.
    /// (A daemon that refuses our token is an error, not a reason to start the server a
    /// second time: see [`token_refused`].)
    /// The running daemon's base URL and headers, if one runs and we may use it.
    fn daemon(&self, s: &ServerConfig, root: &std::path::Path) -> Option<(String, Vec<(String, String)>)> {
        if self.g.no_daemon || self.g.url.is_some() || s.disabled {
            return None;
        }
        let crate::daemon::Found::Running(st) = crate::daemon::find(root) else { return None };
        if !st.servers.is_empty() && !st.servers.contains(&s.name) {
            log::warn!(
                "the daemon does not serve `{}` (it was started before the config named it); connecting directly; \
                 run `mcpctl stop && mcpctl start` to serve it",
                s.name
            );
            return None;
        }
        let token = crate::daemon::env_token();
        let named = self.load_config().map(|c| !c.tokens.is_empty()).unwrap_or(false);
        if (st.token_mode != "none" || named) && token.is_none() {
            log::debug!("the daemon needs a token and MCPCTL_TOKEN is not set; connecting directly");
            return None;
        }
        let mut headers = Vec::new();
        if let Some(t) = token {
            headers.push(("Authorization".to_string(), format!("Bearer {}", t)));
        }
        log::debug!("using the daemon at {}", crate::daemon::base_url(&st));
        Some((crate::daemon::base_url(&st), headers))
    }

    /// The server as reached through the running daemon, if one runs and we may use it.
    fn via_daemon(&self, s: &ServerConfig, root: &std::path::Path) -> Option<ServerConfig> {
        let (base, headers) = self.daemon(s, root)?;
        let mut via = s.clone();
        // The daemon holds the server's own credentials (`headersHelper`, ...): none go to it.
        via.transport = crate::config::Transport::Http {
            url: format!("{}/mcp/{}", base, s.name),
            headers,
            auth: Default::default(),
        };
        Some(via)
    }

    /// A tool call in one round trip through the daemon's `/cli/call` (the versioned shape of
    /// `gateway::cli_wire`): its answer (with `result` or `error`), or `None` when there is no
    /// daemon to ask or it could not be asked (then the caller connects the usual way).
    pub fn call_via_daemon(
        &self,
        s: &ServerConfig,
        root: &std::path::Path,
        tool: &str,
        typed: &[crate::cli::ToolArg],
    ) -> Result<Option<CallAnswer>> {
        // Our options after the tool's name are settled by its schema here: never sent.
        if typed.iter().any(|a| cli_wire::Arg::from_typed(a).is_none()) {
            return Ok(None);
        }
        let Some((base, headers)) = self.daemon(s, root) else { return Ok(None) };
        let typed = crate::call::resolve_local(typed, &mut std::io::stdin().lock())?;
        let timeout = self.request_timeout(s);
        let body = CallRequest {
            v: cli_wire::VERSION,
            server: s.name.clone(),
            tool: tool.to_string(),
            args: typed.iter().filter_map(cli_wire::Arg::from_typed).collect(),
            timeout_ms: Some(timeout.as_millis() as u64),
        };
        let body = serde_json::to_vec(&body).map_err(|e| Error::failure(format!("cannot encode the call: {}", e)))?;
        // The daemon bounds the call; the deadline bounds this process.
        let deadline = std::time::Instant::now() + timeout + Duration::from_secs(10);
        // Once the request has reached the daemon, the tool may be running: never ask a second
        // time the usual way (a tool that is not idempotent would run twice).
        let may_have_run = |kind: Kind, why: &str| {
            Error::new(kind, format!("the call to `{}` on server `{}` went to the daemon, but {}", tool, s.name, why))
                .hint("the tool may have run; check before calling it again (or pass --no-daemon)")
        };
        match crate::daemon::post(&base, "/cli/call", &headers, &body, deadline) {
            crate::daemon::Posted::Answer(200, text) => match serde_json::from_slice::<CallAnswer>(&text) {
                Ok(a) => Ok(Some(a)),
                Err(e) => Err(may_have_run(Kind::Protocol, &format!("its answer is not a /cli/call answer ({})", e))),
            },
            crate::daemon::Posted::Answer(status @ (401 | 403), _) => Err(token_refused(status)),
            crate::daemon::Posted::Answer(status, text) => {
                // Any other status is the daemon refusing the request before it ran anything:
                // the HTTP layer (connection cap, size, deadline), or 400 for a request of
                // another version of the endpoint (a daemon of another mcpctl).
                let why = serde_json::from_slice::<CallAnswer>(&text)
                    .ok()
                    .and_then(|a| a.error)
                    .map(|e| format!(": {}", Error::from_json(&e).message))
                    .unwrap_or_default();
                log::warn!("the daemon answered HTTP {} on /cli/call{}; connecting the usual way", status, why);
                Ok(None)
            }
            crate::daemon::Posted::Failed(why) => {
                log::warn!("the daemon could not take the call ({}); connecting the usual way", why);
                Ok(None)
            }
            crate::daemon::Posted::Lost(why) => Err(may_have_run(Kind::Disconnected, &why)),
            crate::daemon::Posted::TimedOut => Err(crate::peer::timeout_error(&s.name, "`tools/call`", timeout)),
            crate::daemon::Posted::Interrupted => {
                Err(Error::interrupted(format!("`tools/call` on server `{}` interrupted", s.name))
                    .hint("Ctrl-C was pressed"))
            }
        }
    }

    /// Connect without the daemon (a child of this process).
    pub fn open_own(&self, s: &ServerConfig, root: &std::path::Path) -> Result<Session> {
        self.open_direct(s, root)
    }

    fn open_direct(&self, s: &ServerConfig, root: &std::path::Path) -> Result<Session> {
        let ctx = client::Context {
            project_root: root,
            handler: client::cli_handler(root),
            client_info: client::default_client_info(),
            capabilities: json!({"roots": {"listChanged": false}}),
            consent: self.consent(),
        };
        client::connect(s, &ctx)
    }
}

/// The running daemon refused the token in `MCPCTL_TOKEN`.
pub(crate) fn token_refused(status: u16) -> Error {
    Error::forbidden(format!("the running daemon refused MCPCTL_TOKEN (HTTP {})", status))
        .hint("set MCPCTL_TOKEN to the token the daemon was started with, or pass --no-daemon")
}
