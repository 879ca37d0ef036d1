//! The command line, parsed into plain data (nothing here touches files or the network).
//! Our own options are recognised anywhere on the line; after `call <server> <tool>` (and
//! `prompt <server> <name>`) every other `--name` but a global option is a tool (prompt)
//! argument; `--` ends our options. The tables of `usage` say which options there are,
//! which take a value, their short forms and which commands take them; the `match` in
//! [`parse`] says only where each one's value goes.

use crate::error::{Error, Result};
use crate::usage::{self, Opt};
use lexopt::prelude::*;
use std::ffi::OsString;
use std::path::PathBuf;

#[derive(Debug, Default, Clone, PartialEq)]
pub struct Globals {
    pub project_root: Option<PathBuf>,
    pub config: Option<PathBuf>,
    pub json_output: bool,
    pub dry_run: bool,
    pub verbose: bool,
    pub timeout: Option<f64>,
    pub yes: bool,
    pub no_daemon: bool,
    /// `--progress`: `call` asks for progress and shows it on stderr.
    pub progress: bool,
    pub url: Option<String>,
    /// Options given only after a tool's name that already act (see `provisional`): the
    /// tool's schema may still claim them.
    pub late: Vec<String>,
}

#[derive(Debug, Default, Clone, PartialEq)]
pub struct StartOpts {
    pub host: Option<String>,
    pub port: Option<u16>,
    pub token: Option<String>,
    pub foreground: bool,
    pub allowed_hosts: Vec<String>,
    pub allowed_origins: Vec<String>,
    /// `--node-id ID`: this daemon's name among several behind one load balancer.
    pub node_id: Option<String>,
}

/// One tool argument as typed, before the schema gives it a type.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum ToolArg {
    /// `--key value`, `--key=value`, or `--flag` (no value).
    Pair(String, Option<String>),
    /// `--var key=value` / `--var key=@file`.
    Var(String),
    /// `--json '{...}'` / `--json -`.
    Json(String),
    /// One of our options given after the tool's name (`--timeout 5`, `--verbose`): the
    /// tool's parameter when its schema declares one of that name, else ours
    /// ([`crate::call::resolve_late`]).
    Late(String, Option<String>),
}

/// Our options that a tool may also name as a parameter: after `call <server> <tool>`
/// they are read as [`ToolArg::Late`] and settled by the tool's schema.
pub const LATE: [&str; 10] =
    ["timeout", "verbose", "dry-run", "yes", "json-output", "url", "config", "project-root", "no-daemon", "progress"];

#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// The overview, or one command's help.
    Help(Option<String>),
    Version,
    List {
        names: bool,
    },
    Status(Option<String>),
    Tools(String),
    Call {
        server: String,
        tool: String,
        args: Vec<ToolArg>,
    },
    /// `resources <server>`: resources and resource templates.
    Resources(String),
    /// `read <server> <uri>`: one resource's contents.
    Read {
        server: String,
        uri: String,
    },
    /// `prompts <server>`: prompts and their arguments.
    Prompts(String),
    /// `prompt <server> <name> [--key value ...]`: one prompt's messages.
    Prompt {
        server: String,
        name: String,
        args: Vec<ToolArg>,
    },
    /// `complete <server> (--prompt NAME | --resource URI_TEMPLATE) --arg NAME [--value PREFIX]`.
    Complete {
        server: String,
        target: CompleteRef,
        arg: String,
        value: String,
        /// `--context k=v`, as typed.
        context: Vec<String>,
    },
    Start(StartOpts),
    Stop,
    Logs {
        follow: bool,
    },
    RuntimeInstall {
        force: bool,
    },
    RuntimeStatus,
    /// `serve --stdio [--server NAME]`: the gateway over stdio.
    Serve {
        stdio: bool,
        server: Option<String>,
    },
    RuntimeVerify,
    Completion(String),
    /// `import <client> [FILE] [--write [--force]]`
    Import {
        client: String,
        file: Option<PathBuf>,
        write: bool,
        force: bool,
    },
}

/// What `complete` completes an argument of.
#[derive(Debug, Clone, PartialEq)]
pub enum CompleteRef {
    Prompt(String),
    /// A resource template's URI template.
    Resource(String),
}

/// The options only `complete` takes.
#[derive(Debug, Default)]
struct CompleteOpts {
    prompt: Option<String>,
    resource: Option<String>,
    arg: Option<String>,
    value: Option<String>,
    context: Vec<String>,
}

/// What an option of ours after the tool's name does before the schema settles it: those
/// that shape the connection or the output act at once (undone, or an error naming both
/// readings, when the tool turns out to declare the name); `--dry-run`, `--yes` and
/// `--url` wait for the schema.
fn provisional(g: &mut Globals, name: &str, value: Option<&str>) {
    let acted = match name {
        "verbose" => !std::mem::replace(&mut g.verbose, true),
        "json-output" => !std::mem::replace(&mut g.json_output, true),
        "no-daemon" => !std::mem::replace(&mut g.no_daemon, true),
        "config" if g.config.is_none() => {
            g.config = value.map(PathBuf::from);
            true
        }
        "project-root" if g.project_root.is_none() => {
            g.project_root = value.map(PathBuf::from);
            true
        }
        _ => false,
    };
    if acted {
        g.late.push(name.to_string());
    }
}

/// Whether the words so far are `call <server> <tool>` or `prompt <server> <name>` (without
/// the server with --url): what follows is arguments.
fn takes_arguments(pos: &[String], url: bool) -> bool {
    matches!(pos.first().map(String::as_str), Some("call" | "prompt")) && pos.len() >= if url { 2 } else { 3 }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Cli {
    pub globals: Globals,
    pub command: Command,
}

pub fn parse<I: IntoIterator<Item = OsString>>(args: I) -> Result<Cli> {
    let mut args: Vec<OsString> = args.into_iter().collect();
    // Everything after the first `--` is a tool argument, whatever it looks like.
    let after_dashdash: Vec<String> = match args.iter().position(|a| a == "--") {
        Some(i) => {
            let rest = args.split_off(i + 1);
            args.pop();
            rest.into_iter().map(|a| a.to_string_lossy().into_owned()).collect()
        }
        None => Vec::new(),
    };
    let mut g = Globals::default();
    let mut start = StartOpts::default();
    let mut follow = false;
    let mut force = false;
    let mut names = false;
    let mut write = false;
    let mut serve_stdio = false;
    let mut serve_server: Option<String> = None;
    let mut help = false;
    let mut version = false;
    let mut pos: Vec<String> = Vec::new();
    let mut tool_args: Vec<ToolArg> = Vec::new();
    let mut comp = CompleteOpts::default();
    // Our options given that are not global, in order: each must be one of the command's.
    let mut own: Vec<&'static str> = Vec::new();
    let mut p = lexopt::Parser::from_args(args);
    let err = |e: lexopt::Error| Error::usage(e.to_string()).hint("see `mcpctl --help`");
    while let Some(arg) = p.next().map_err(err)? {
        // `call <server> <tool>`, or `call --url URL <tool>`: what follows is tool arguments
        // (prompt arguments after `prompt <server> <name>`), except our global options.
        let in_call = takes_arguments(&pos, g.url.is_some());
        // After a tool's name, an option of ours that is also a likely parameter name is
        // held until the tool's schema says whose it is (`call fetch fetch --url …`).
        let calling = pos.first().map(|c| c == "call").unwrap_or(false);
        let o: &'static Opt = match arg {
            Long(name) if in_call && calling && LATE.contains(&name) => {
                let name = name.to_string();
                let value = loose_value(&mut p).map_err(err)?;
                provisional(&mut g, &name, value.as_deref());
                tool_args.push(ToolArg::Late(name, value));
                continue;
            }
            Long(name) => match usage::find_opt(name) {
                Some(o) if !in_call || usage::is_global(o) => o,
                _ if in_call => {
                    let name = name.to_string();
                    tool_args.push(match name.as_str() {
                        "var" => ToolArg::Var(string(p.value().map_err(err)?)),
                        "json" => ToolArg::Json(string(p.value().map_err(err)?)),
                        _ => ToolArg::Pair(name, loose_value(&mut p).map_err(err)?),
                    });
                    continue;
                }
                _ => {
                    let e = Error::usage(format!("unknown option --{}", name));
                    return Err(match closest(name, &usage::all_option_names()) {
                        Some(close) => e.hint(format!("did you mean --{}?", close)),
                        None => e.hint("tool arguments go after `call <server> <tool>`; see `mcpctl --help`"),
                    });
                }
            },
            Short(c) => match usage::find_short(c) {
                Some(o) if !in_call || usage::is_global(o) => o,
                _ => return Err(Error::usage(format!("unknown option -{}", c)).hint("see `mcpctl --help`")),
            },
            Value(v) => {
                let v = string(v);
                if in_call {
                    let what = if pos[0] == "prompt" { "prompt" } else { "tool" };
                    return Err(Error::usage(format!("unexpected argument `{}` after the {} name", v, what))
                        .hint(format!("give {} arguments as --key value, --var key=value or --json '{{...}}'", what)));
                }
                pos.push(v);
                continue;
            }
        };
        // Whether it takes a value is the table's; where the value goes is said here.
        let v = match o.value {
            Some(_) => string(p.value().map_err(err)?),
            None => String::new(),
        };
        if !usage::is_global(o) {
            own.push(o.long);
        }
        match o.long {
            "project-root" => g.project_root = Some(v.into()),
            "config" => g.config = Some(v.into()),
            "url" => g.url = Some(v),
            "json-output" => g.json_output = true,
            "dry-run" => g.dry_run = true,
            "timeout" => match v.parse::<f64>() {
                Ok(s) if s > 0.0 && s <= 86_400.0 => g.timeout = Some(s),
                _ => return Err(Error::usage(format!("--timeout takes seconds (a number above 0), not `{}`", v))),
            },
            "yes" => g.yes = true,
            "no-daemon" => g.no_daemon = true,
            "progress" => g.progress = true,
            "verbose" => g.verbose = true,
            "help" => help = true,
            "version" => version = true,
            "host" => start.host = Some(v),
            "port" => {
                start.port = Some(
                    v.parse()
                        .map_err(|_| Error::usage(format!("--port takes a port number (0-65535), not `{}`", v)))?,
                )
            }
            "token" => start.token = Some(v),
            "foreground" => start.foreground = true,
            "allowed-host" => start.allowed_hosts.push(v),
            "allowed-origin" => start.allowed_origins.push(v),
            "node-id" => start.node_id = Some(v),
            "follow" => follow = true,
            "force" => force = true,
            "write" => write = true,
            "names" => names = true,
            "prompt" => comp.prompt = Some(v),
            "resource" => comp.resource = Some(v),
            "arg" => comp.arg = Some(v),
            "value" => comp.value = Some(v),
            "context" => comp.context.push(v),
            "stdio" => serve_stdio = true,
            "server" => serve_server = Some(v),
            other => return Err(Error::internal(format!("--{} is in the option tables but not parsed", other))),
        }
    }
    if !after_dashdash.is_empty() {
        if !takes_arguments(&pos, g.url.is_some()) {
            return Err(Error::usage(
                "arguments after `--` are tool arguments; they need `call <server> <tool>` (or `prompt <server> <name>`) first",
            ));
        }
        tool_args.extend(parse_raw_tool_args(&after_dashdash)?);
    }
    if version {
        return Ok(Cli { globals: g, command: Command::Version });
    }
    if help || pos.is_empty() {
        // `mcpctl call --help`, `mcpctl help call`: that command's help.
        let topic = match pos.first().map(String::as_str) {
            Some("help") => pos.get(1).cloned(),
            other => other.map(str::to_string),
        };
        return Ok(Cli { globals: g, command: Command::Help(topic) });
    }
    let cmd = pos[0].as_str();
    // An option of another command (the first given, in order) is refused, naming its own.
    if let Some(o) = own.iter().find(|o| !usage::takes(cmd, o)) {
        let owners: Vec<String> = usage::commands_taking(o).iter().map(|c| format!("`mcpctl {}`", c)).collect();
        return Err(Error::usage(format!("--{} is an option of {}, not of `{}`", o, owners.join(" and "), cmd)));
    }
    let arity = |min: usize, max: usize, usage: &str| -> Result<()> {
        let n = pos.len() - 1;
        if n < min || n > max {
            Err(Error::usage(format!("usage: mcpctl {}", usage)))
        } else {
            Ok(())
        }
    };
    let command = match cmd {
        "list" => {
            arity(0, 0, "list [--names]")?;
            Command::List { names }
        }
        "status" => {
            arity(0, 1, "status [server]")?;
            Command::Status(pos.get(1).cloned())
        }
        "tools" => {
            if g.url.is_some() {
                arity(0, 0, "tools --url URL")?;
                Command::Tools(String::new())
            } else {
                arity(1, 1, "tools <server>")?;
                Command::Tools(pos[1].clone())
            }
        }
        "call" => {
            if g.url.is_some() && pos.len() == 2 {
                Command::Call { server: String::new(), tool: pos[1].clone(), args: tool_args }
            } else {
                arity(2, 2, "call <server> <tool> [--key value ...]")?;
                Command::Call { server: pos[1].clone(), tool: pos[2].clone(), args: tool_args }
            }
        }
        "resources" | "prompts" => {
            let server = if g.url.is_some() {
                arity(0, 0, &format!("{} --url URL", cmd))?;
                String::new()
            } else {
                arity(1, 1, &format!("{} <server>", cmd))?;
                pos[1].clone()
            };
            if cmd == "resources" {
                Command::Resources(server)
            } else {
                Command::Prompts(server)
            }
        }
        "read" => {
            if g.url.is_some() && pos.len() == 2 {
                Command::Read { server: String::new(), uri: pos[1].clone() }
            } else {
                arity(2, 2, "read <server> <uri>")?;
                Command::Read { server: pos[1].clone(), uri: pos[2].clone() }
            }
        }
        "prompt" => {
            if g.url.is_some() && pos.len() == 2 {
                Command::Prompt { server: String::new(), name: pos[1].clone(), args: tool_args }
            } else {
                arity(2, 2, "prompt <server> <name> [--key value ...]")?;
                Command::Prompt { server: pos[1].clone(), name: pos[2].clone(), args: tool_args }
            }
        }
        "complete" => {
            const USAGE: &str =
                "complete <server> (--prompt NAME | --resource URI_TEMPLATE) --arg NAME [--value PREFIX] [--context k=v]";
            let server = if g.url.is_some() {
                arity(0, 0, USAGE)?;
                String::new()
            } else {
                arity(1, 1, USAGE)?;
                pos[1].clone()
            };
            let target = match (comp.prompt, comp.resource) {
                (Some(p), None) => CompleteRef::Prompt(p),
                (None, Some(r)) => CompleteRef::Resource(r),
                _ => {
                    return Err(Error::usage("complete needs one of --prompt NAME or --resource URI_TEMPLATE")
                        .hint(format!("usage: mcpctl {}", USAGE)))
                }
            };
            let Some(arg) = comp.arg else {
                return Err(Error::usage("complete needs --arg NAME (the argument to complete)")
                    .hint(format!("usage: mcpctl {}", USAGE)));
            };
            for kv in &comp.context {
                if !kv.split_once('=').map(|(k, _)| !k.is_empty()).unwrap_or(false) {
                    return Err(Error::usage(format!("--context `{}` needs the form key=value", kv)));
                }
            }
            Command::Complete { server, target, arg, value: comp.value.unwrap_or_default(), context: comp.context }
        }
        "start" => {
            arity(0, 0, "start [--host H] [--port N] [--foreground] ...")?;
            Command::Start(start)
        }
        "stop" => {
            arity(0, 0, "stop")?;
            Command::Stop
        }
        "logs" => {
            arity(0, 0, "logs [--follow]")?;
            Command::Logs { follow }
        }
        "serve" => {
            arity(0, 0, "serve --stdio [--server NAME]")?;
            if !serve_stdio {
                return Err(Error::usage("usage: mcpctl serve --stdio [--server NAME]")
                    .hint("--stdio is the only front end so far; for HTTP, use `mcpctl start`"));
            }
            Command::Serve { stdio: serve_stdio, server: serve_server }
        }
        "runtime" => match pos.get(1).map(String::as_str) {
            Some("install") => {
                arity(1, 1, "runtime install [--yes] [--force]")?;
                Command::RuntimeInstall { force }
            }
            Some("status") => {
                arity(1, 1, "runtime status")?;
                Command::RuntimeStatus
            }
            Some("verify") => {
                arity(1, 1, "runtime verify")?;
                Command::RuntimeVerify
            }
            _ => return Err(Error::usage("usage: mcpctl runtime install|status|verify")),
        },
        "import" => {
            arity(1, 2, "import <client> [FILE] [--write [--force]]")?;
            Command::Import { client: pos[1].clone(), file: pos.get(2).map(PathBuf::from), write, force }
        }
        "completion" => {
            arity(1, 1, "completion bash|zsh|fish")?;
            Command::Completion(pos[1].clone())
        }
        "help" => {
            arity(0, 1, "help [command]")?;
            Command::Help(pos.get(1).cloned())
        }
        "version" => Command::Version,
        other => {
            let mut e = Error::usage(format!("unknown command `{}`", other));
            let cmds = crate::usage::command_names();
            if let Some(c) = closest(other, &cmds) {
                e = e.hint(format!("did you mean `{}`?", c));
            } else {
                e = e.hint(format!("commands: {}", cmds.join(", ")));
            }
            return Err(e);
        }
    };
    Ok(Cli { globals: g, command })
}

fn string(v: OsString) -> String {
    v.to_string_lossy().into_owned()
}

/// A tool argument's value, if it has one: `--key=value`, or `--key value` (see
/// [`next_is_value`]).
fn loose_value(p: &mut lexopt::Parser) -> std::result::Result<Option<String>, lexopt::Error> {
    match p.optional_value() {
        Some(v) => Ok(Some(string(v))),
        None => next_is_value(p),
    }
}

/// `--key value`: the next word is the value unless it is another `--option`.
fn next_is_value(p: &mut lexopt::Parser) -> std::result::Result<Option<String>, lexopt::Error> {
    let mut raw = p.try_raw_args().map(Some).unwrap_or(None);
    let Some(raw) = raw.as_mut() else { return Ok(None) };
    let take = match raw.peek() {
        Some(next) => !next.to_string_lossy().starts_with("--"),
        None => false,
    };
    Ok(if take { raw.next().map(string) } else { None })
}

/// Tool arguments after `--`: every `--name` is a tool parameter (even `--var`, `--json`).
fn parse_raw_tool_args(words: &[String]) -> Result<Vec<ToolArg>> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < words.len() {
        let w = &words[i];
        let Some(name) = w.strip_prefix("--").filter(|n| !n.is_empty()) else {
            return Err(Error::usage(format!("unexpected argument `{}` after `--`", w))
                .hint("after `--`, give tool arguments as --key value"));
        };
        if let Some((k, v)) = name.split_once('=') {
            out.push(ToolArg::Pair(k.to_string(), Some(v.to_string())));
            i += 1;
        } else if i + 1 < words.len() && !words[i + 1].starts_with("--") {
            out.push(ToolArg::Pair(name.to_string(), Some(words[i + 1].clone())));
            i += 2;
        } else {
            out.push(ToolArg::Pair(name.to_string(), None));
            i += 1;
        }
    }
    Ok(out)
}

/// The closest of `options` to `word`, if it is close enough to be a likely typo.
pub fn closest<'a>(word: &str, options: &[&'a str]) -> Option<&'a str> {
    if word.len() >= 3 {
        if let Some(o) = options.iter().find(|o| o.starts_with(word)) {
            return Some(o);
        }
    }
    options.iter().map(|o| (edit_distance(word, o), *o)).filter(|(d, o)| *d <= 2.max(o.len() / 3)).min().map(|(_, o)| o)
}

pub fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur.push(sub.min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests;
