//! What the command line offers, as tables: every command with its usage, what it does, its
//! own options and examples, and every option with its help. The parser (`cli`) reads them
//! for whether an option takes a value, its short form, and which commands take it;
//! `mcpctl --help`, `mcpctl help <command>`, `mcpctl <command> --help` and
//! `mcpctl completion bash|zsh|fish` are drawn from them, so help, completion and parsing
//! cannot drift apart. (Where an option's value goes is the parser's own `match`.)

use crate::error::{Error, Result};
use std::fmt::Write as _;

/// One option: `--long`, its short form, the name of its value (none for a flag), its help.
pub struct Opt {
    pub long: &'static str,
    pub short: Option<char>,
    pub value: Option<&'static str>,
    pub help: &'static str,
}

/// One command (or `runtime install`-style pair): its usage line, a one-line summary, a few
/// lines on what it does, the options only it takes, and examples.
pub struct Cmd {
    pub name: &'static str,
    /// What follows `mcpctl` in the overview (short).
    pub synopsis: &'static str,
    pub usage: &'static str,
    pub summary: &'static str,
    pub about: &'static str,
    pub options: &'static [&'static str],
    pub examples: &'static [&'static str],
}

const fn opt(long: &'static str, short: Option<char>, value: Option<&'static str>, help: &'static str) -> Opt {
    Opt { long, short, value, help }
}

/// Options every command takes, anywhere on the line (before `--`).
pub const GLOBAL: &[Opt] = &[
    opt(
        "project-root",
        None,
        Some("DIR"),
        "project folder (else MCPCTL_PROJECT_DIR, else the nearest with .mcpctl/ or .mcp.json)",
    ),
    opt("config", None, Some("FILE"), "config file (else MCPCTL_CONFIG)"),
    opt("url", None, Some("URL"), "talk to a Streamable HTTP server directly, without a config"),
    opt("json-output", None, None, "print exactly one JSON object, success or failure"),
    opt("dry-run", None, None, "connect and validate, but do not act (the tool is not run, the daemon not started)"),
    opt("timeout", None, Some("SECS"), "per-request timeout (default: the server's `timeout`, 30)"),
    opt("yes", Some('y'), None, "approve tools that are not in `alwaysAllow`, and the runtime download"),
    opt("no-daemon", None, None, "talk to servers directly even when the daemon runs"),
    opt("progress", None, None, "call: show the tool's progress on stderr (the default when stderr is a terminal)"),
    opt("verbose", Some('v'), None, "debug logs and the servers' stderr on stderr"),
    opt("help", Some('h'), None, "help (of a command, after its name)"),
    opt("version", Some('V'), None, "the version and the MCP revisions spoken"),
];

/// Options of one command only.
pub const COMMAND_OPTS: &[Opt] = &[
    opt("host", None, Some("H"), "address to bind (127.0.0.1; anything but loopback needs a token)"),
    opt("port", None, Some("N"), "port to bind (7878; 0 picks a free one)"),
    opt("token", None, Some("T"), "require this bearer token (prefer the MCPCTL_TOKEN variable: argv is public)"),
    opt("foreground", None, None, "serve in this process until SIGINT/SIGTERM (systemd, containers)"),
    opt("allowed-host", None, Some("H"), "also accept this Host header (repeatable)"),
    opt("allowed-origin", None, Some("O"), "also accept this browser Origin (repeatable)"),
    opt(
        "node-id",
        None,
        Some("ID"),
        "session ids start with `ID.`, so a load balancer can route them to this daemon (else MCPCTL_NODE_ID)",
    ),
    opt("follow", Some('f'), None, "keep printing what is appended, until Ctrl-C"),
    opt("force", None, None, "runtime install: install again even when it is there; import: replace the config"),
    opt("write", None, None, "write the project's .mcpctl/config.json instead of printing"),
    opt("names", None, None, "only the server names, one a line (for scripts and completion)"),
    opt("prompt", None, Some("NAME"), "complete an argument of this prompt"),
    opt("resource", None, Some("URI_TEMPLATE"), "complete a variable of this resource template"),
    opt("arg", None, Some("NAME"), "the argument (or template variable) to complete"),
    opt("value", None, Some("PREFIX"), "what is typed of it so far (default: nothing)"),
    opt("context", None, Some("K=V"), "an argument already chosen (repeatable)"),
    opt("stdio", None, None, "serve over stdin/stdout (newline-delimited JSON-RPC)"),
    opt("server", None, Some("NAME"), "serve this one server (unprefixed names), as /mcp/NAME does"),
];

/// Words that are tool arguments after `call <server> <tool>` (documented with `call`), and
/// prompt arguments after `prompt <server> <name>`.
pub const TOOL_ARG_OPTS: &[&str] = &["var", "json"];

pub const COMMANDS: &[Cmd] = &[
    Cmd {
        name: "list",
        synopsis: "list [--names]",
        usage: "mcpctl list [--names]",
        summary: "configured servers (never starts them)",
        about: "The servers of the project's config, with their command or URL, tool policy and, when\n\
                the daemon runs, their live state, tool count, calls and restarts.",
        options: &["names"],
        examples: &["mcpctl list", "mcpctl list --names", "mcpctl --json-output list"],
    },
    Cmd {
        name: "status",
        synopsis: "status [server]",
        usage: "mcpctl status [server]",
        summary: "daemon and server states; with a name, connect and show it",
        about: "Without a name: the daemon (running, stopped or stale) and every server's state.\n\
                With a name: connect to that server (through the daemon when it runs) and show its\n\
                identity, negotiated MCP revision, capabilities and tools.",
        options: &[],
        examples: &["mcpctl status", "mcpctl status everything", "mcpctl --json-output status"],
    },
    Cmd {
        name: "tools",
        synopsis: "tools <server>",
        usage: "mcpctl tools <server>",
        summary: "a server's tools and their parameters",
        about: "Each tool with its description and parameters (type, required, enum, default), as the\n\
                server's inputSchema says; `--json-output` gives the tools as the server sent them.",
        options: &[],
        examples: &["mcpctl tools everything", "mcpctl --url http://127.0.0.1:3001/mcp tools"],
    },
    Cmd {
        name: "call",
        synopsis: "call <server> <tool> [args]",
        usage: "mcpctl call <server> <tool> [tool arguments]",
        summary: "call a tool; its text goes to stdout",
        about: "Tool arguments, merged left to right (later keys win), typed by the tool's schema:\n\
                \x20 --key value, --key=value, --flag   one argument\n\
                \x20 --var key=value, --var key=@file   one argument (a file's contents with @)\n\
                \x20 --json '{...}', --json -           an object of arguments (stdin with -)\n\
                \x20 -- --key value                     after `--`, every --name is a tool argument\n\
                A tool not in the server's `alwaysAllow` is asked about on a terminal, else refused\n\
                unless --yes. Exit 0 on success, 1 on failure (a tool error too), 2 on a timeout or\n\
                a refusal.",
        options: &[],
        examples: &[
            "mcpctl call everything get-sum --a 2 --b 3",
            "mcpctl call everything echo --message hi --json-output",
            "mcpctl call fs write_file --path notes.txt --var content=@notes.txt",
            "mcpctl call fs write_file --dry-run --json '{\"path\": \"a.txt\", \"content\": \"x\"}'",
            "mcpctl call everything trigger-long-running-operation --duration 5 --progress",
        ],
    },
    Cmd {
        name: "resources",
        synopsis: "resources <server>",
        usage: "mcpctl resources <server>",
        summary: "a server's resources and resource templates",
        about: "Every resource (all pages of resources/list) and resource template\n\
                (resources/templates/list) with its URI, name, MIME type and description.\n\
                `--json-output` gives them as the server sent them. Resources are not subject to\n\
                `alwaysAllow` (it concerns tools only).",
        options: &[],
        examples: &["mcpctl resources everything", "mcpctl --json-output resources everything"],
    },
    Cmd {
        name: "read",
        synopsis: "read <server> <uri>",
        usage: "mcpctl read <server> <uri>",
        summary: "read a resource; its text goes to stdout",
        about: "Text contents go to stdout as they are. Binary (blob) contents go to stdout as raw\n\
                bytes when stdout is not a terminal (`> file` saves them); on a terminal a one-line\n\
                note gives their size and MIME type instead. `--json-output` gives the server's\n\
                result as it is (blobs in base64); `--dry-run` shows the request without sending it.",
        options: &[],
        examples: &[
            "mcpctl read everything demo://resource/static/document/features.md",
            "mcpctl read everything demo://resource/dynamic/blob/1 > blob.bin",
            "mcpctl --json-output read everything demo://resource/dynamic/text/1",
        ],
    },
    Cmd {
        name: "prompts",
        synopsis: "prompts <server>",
        usage: "mcpctl prompts <server>",
        summary: "a server's prompts and their arguments",
        about: "Each prompt with its description and arguments (required or not, description);\n\
                `--json-output` gives the prompts as the server sent them.",
        options: &[],
        examples: &["mcpctl prompts everything", "mcpctl --json-output prompts everything"],
    },
    Cmd {
        name: "prompt",
        synopsis: "prompt <server> <name> [args]",
        usage: "mcpctl prompt <server> <name> [prompt arguments]",
        summary: "get a prompt's messages, filled with arguments",
        about: "Prompt arguments are given like tool arguments (they are strings):\n\
                \x20 --key value, --key=value            one argument\n\
                \x20 --var key=value, --var key=@file    one argument (a file's contents with @)\n\
                \x20 --json '{...}', --json -            an object of arguments (stdin with -)\n\
                \x20 -- --key value                      after `--`, every --name is an argument\n\
                Prints each message as `role: text` (other content described in brackets). A\n\
                missing required argument fails before the server is asked; `--dry-run` shows\n\
                the request without sending it.",
        options: &[],
        examples: &[
            "mcpctl prompt everything args-prompt --city Paris",
            "mcpctl prompt everything args-prompt --json '{\"city\": \"Paris\", \"state\": \"TX\"}'",
            "mcpctl --json-output prompt everything simple-prompt",
        ],
    },
    Cmd {
        name: "complete",
        synopsis: "complete <server> --arg NAME",
        usage: "mcpctl complete <server> (--prompt NAME | --resource URI_TEMPLATE) --arg NAME [--value PREFIX] [--context K=V ...]",
        summary: "suggested values of a prompt argument or template variable",
        about: "Asks the server (completion/complete) for the values of a prompt's argument or a\n\
                resource template's variable that start with --value; one a line. --context gives\n\
                arguments already chosen, for servers whose suggestions depend on them.",
        options: &["prompt", "resource", "arg", "value", "context"],
        examples: &[
            "mcpctl complete everything --prompt completable-prompt --arg department --value E",
            "mcpctl complete everything --prompt completable-prompt --arg name --context department=Engineering",
            "mcpctl complete everything --resource 'demo://resource/dynamic/text/{resourceId}' --arg resourceId",
        ],
    },
    Cmd {
        name: "start",
        synopsis: "start [options]",
        usage: "mcpctl start [--host H] [--port N] [--foreground] [--allowed-host H] [--allowed-origin O] [--node-id ID]",
        summary: "start the gateway daemon (MCP over HTTP)",
        about: "Starts the daemon in the background, waits until it answers, and prints its URL:\n\
                every configured server at /mcp (names <server>__<tool>) and each at /mcp/<server>.\n\
                The token comes from MCPCTL_TOKEN (or --token); without one only loopback is allowed.",
        options: &["host", "port", "token", "foreground", "allowed-host", "allowed-origin", "node-id"],
        examples: &["mcpctl start", "MCPCTL_TOKEN=$(cat token) mcpctl start --host 0.0.0.0", "mcpctl start --port 0"],
    },
    Cmd {
        name: "serve",
        synopsis: "serve --stdio [--server NAME]",
        usage: "mcpctl serve --stdio [--server NAME]",
        summary: "the gateway over stdio, for clients that launch stdio servers",
        about: "Every configured server as one MCP server on stdin/stdout (names <server>__<tool>;\n\
                with --server, one server with its own names), with the gateway's tool policy\n\
                (alwaysAllow, gatewayApproval, disabled), supervision and routing. It goes through the\n\
                project's daemon when one runs (MCPCTL_TOKEN when it needs one), else it runs the\n\
                servers itself and stops them when stdin closes. Stdout carries only JSON-RPC; logs\n\
                go to stderr. Exit 0 when stdin closes, 1 when no gateway can be started or reached.",
        options: &["stdio", "server"],
        examples: &[
            "mcpctl serve --stdio",
            "mcpctl serve --stdio --server fs",
            "mcpctl serve --stdio --project-root /path/to/project",
        ],
    },
    Cmd {
        name: "stop",
        synopsis: "stop",
        usage: "mcpctl stop",
        summary: "stop the gateway daemon",
        about: "SIGTERM to the project's daemon (SIGKILL after 10 s); its children stop with it.",
        options: &[],
        examples: &["mcpctl stop"],
    },
    Cmd {
        name: "logs",
        synopsis: "logs [--follow]",
        usage: "mcpctl logs [--follow]",
        summary: "print (and follow) the daemon's log",
        about: "Prints .mcpctl/logs/daemon.log (control characters escaped); --follow keeps printing\n\
                what is appended, without `tail`.",
        options: &["follow"],
        examples: &["mcpctl logs", "mcpctl logs --follow"],
    },
    Cmd {
        name: "runtime",
        synopsis: "runtime install|status|verify",
        usage: "mcpctl runtime install [--yes] [--force] | mcpctl runtime status | mcpctl runtime verify",
        summary: "install, show or verify the managed runtimes (uv, Node)",
        about: "Servers started with uv/uvx run on a pinned, sha256-verified uv, and servers started\n\
                with npx on a pinned, sha256-verified Node, that mcpctl installs on first use. `install`\n\
                fetches them and the servers' packages now (for images built ahead); `status` shows\n\
                them; `verify` re-hashes them (exit 1 on a change).",
        options: &["force"],
        examples: &["mcpctl runtime install --yes", "mcpctl runtime status", "mcpctl runtime verify"],
    },
    Cmd {
        name: "import",
        synopsis: "import <client> [FILE]",
        usage: "mcpctl import claude-desktop|claude-code|cursor|vscode|codex [FILE] [--write [--force]]",
        summary: "another client's MCP servers as an mcpctl config",
        about: "Reads the client's config (or FILE) and prints its servers as an mcpServers file;\n\
                --write puts it in the project's .mcpctl/config.json. ${VAR} references stay\n\
                references. Where each client keeps its servers:\n\
                \x20 claude-desktop  ~/.config/Claude/claude_desktop_config.json (macOS: ~/Library/…)\n\
                \x20 claude-code     ./.mcp.json, then ~/.claude.json (its servers and this project's)\n\
                \x20 cursor          ./.cursor/mcp.json, then ~/.cursor/mcp.json\n\
                \x20 vscode          ./.vscode/mcp.json (${input:id} becomes ${MCPCTL_INPUT_ID})\n\
                \x20 codex           $CODEX_HOME/config.toml or ~/.codex/config.toml\n\
                These files are also read as they are by --config FILE, and the project files are\n\
                found by themselves (after .mcpctl/config.json and .mcp.json).",
        options: &["write", "force"],
        examples: &["mcpctl import codex", "mcpctl import vscode --write", "mcpctl import cursor ~/.cursor/mcp.json"],
    },
    Cmd {
        name: "completion",
        synopsis: "completion bash|zsh|fish",
        usage: "mcpctl completion bash|zsh|fish",
        summary: "print a shell completion script",
        about: "Commands, options and the project's server names complete.\n\
                bash: add `source <(mcpctl completion bash)` to ~/.bashrc\n\
                zsh:  add `source <(mcpctl completion zsh)` to ~/.zshrc\n\
                fish: mcpctl completion fish > ~/.config/fish/completions/mcpctl.fish",
        options: &[],
        examples: &["mcpctl completion bash"],
    },
    Cmd {
        name: "help",
        synopsis: "help [command]",
        usage: "mcpctl help [command]",
        summary: "this overview, or one command's help",
        about: "The same as `mcpctl <command> --help`.",
        options: &[],
        examples: &["mcpctl help call"],
    },
];

/// Every option name the parser knows (for "did you mean").
pub fn all_option_names() -> Vec<&'static str> {
    GLOBAL.iter().chain(COMMAND_OPTS).map(|o| o.long).chain(TOOL_ARG_OPTS.iter().copied()).collect()
}

pub fn command_names() -> Vec<&'static str> {
    COMMANDS.iter().map(|c| c.name).collect()
}

/// The option `--long`, global or a command's.
pub fn find_opt(long: &str) -> Option<&'static Opt> {
    GLOBAL.iter().chain(COMMAND_OPTS).find(|o| o.long == long)
}

/// The option whose short form is `-c`.
pub fn find_short(c: char) -> Option<&'static Opt> {
    GLOBAL.iter().chain(COMMAND_OPTS).find(|o| o.short == Some(c))
}

/// Whether every command takes `o` (it is in [`GLOBAL`]).
pub fn is_global(o: &Opt) -> bool {
    GLOBAL.iter().any(|g| g.long == o.long)
}

/// Whether the command `cmd` takes the option `--long`: a global one, or one its entry lists.
pub fn takes(cmd: &str, long: &str) -> bool {
    find_opt(long).is_some_and(is_global) || COMMANDS.iter().any(|c| c.name == cmd && c.options.contains(&long))
}

/// The commands whose entries list the option `--long`.
pub fn commands_taking(long: &str) -> Vec<&'static str> {
    COMMANDS.iter().filter(|c| c.options.contains(&long)).map(|c| c.name).collect()
}

fn opt_line(o: &Opt) -> String {
    let mut left = format!("--{}", o.long);
    if let Some(v) = o.value {
        let _ = write!(left, " {}", v);
    }
    if let Some(c) = o.short {
        let _ = write!(left, ", -{}", c);
    }
    format!("  {:<24}{}\n", left, o.help)
}

/// `mcpctl --help`: every command in a line, the global options, exit codes.
pub fn overview() -> String {
    let mut s = String::from("mcpctl — use MCP servers from a shell, and serve them to agents over HTTP\n\nUsage:\n");
    for c in COMMANDS {
        let _ = writeln!(s, "  mcpctl {:<32}{}", c.synopsis, c.summary);
    }
    s.push_str("\nOptions (anywhere on the line, before `--`):\n");
    for o in GLOBAL {
        s.push_str(&opt_line(o));
    }
    s.push_str(
        "\n`mcpctl help <command>` (or `mcpctl <command> --help`) shows a command's options and examples.\n\
         Exit codes: 0 success, 1 failure, 2 timeout or permission denied.\n",
    );
    s
}

/// One command's help, or `None` for a name that is no command.
pub fn command(name: &str) -> Option<String> {
    let c = COMMANDS.iter().find(|c| c.name == name)?;
    let mut s = format!("mcpctl {} — {}\n\nUsage: {}\n\n{}\n", c.name, c.summary, c.usage, c.about);
    if !c.options.is_empty() {
        s.push_str("\nOptions:\n");
        for o in c.options.iter().filter_map(|n| find_opt(n)) {
            s.push_str(&opt_line(o));
        }
    }
    s.push_str("\nExamples:\n");
    for e in c.examples {
        let _ = writeln!(s, "  {}", e);
    }
    s.push_str("\nGlobal options (--json-output, --timeout, --verbose, …): `mcpctl --help`.\n");
    Some(s)
}

/// The help for `mcpctl help <name>`: the command's, or an error with the close names.
pub fn help_for(name: &str) -> Result<String> {
    command(name).ok_or_else(|| {
        let names = command_names();
        let e = Error::usage(format!("no command `{}`", name));
        match crate::cli::closest(name, &names) {
            Some(c) => e.hint(format!("did you mean `{}`?", c)),
            None => e.hint(format!("commands: {}", names.join(", "))),
        }
    })
}

fn longs(opts: &[&Opt]) -> String {
    opts.iter().map(|o| format!("--{}", o.long)).collect::<Vec<_>>().join(" ")
}

/// A completion script for `shell`: commands, each command's options, server names (from
/// `mcpctl list --names`, so the project's own config is read at completion time).
pub fn completion(shell: &str) -> Result<String> {
    let globals: Vec<&Opt> = GLOBAL.iter().collect();
    let cmds = command_names().join(" ");
    let clients = crate::clients::CLIENTS.join(" ");
    let per_cmd = |c: &Cmd| -> String {
        let own: Vec<&Opt> = c.options.iter().filter_map(|n| find_opt(n)).collect();
        longs(&own)
    };
    let mut s = String::new();
    match shell {
        "bash" => {
            s.push_str("# bash completion for mcpctl (source <(mcpctl completion bash))\n_mcpctl() {\n");
            s.push_str("  local cur=${COMP_WORDS[COMP_CWORD]} cmd= i w\n");
            s.push_str("  for ((i = 1; i < COMP_CWORD; i++)); do w=${COMP_WORDS[i]}; [[ $w != -* ]] && { cmd=$w; break; }; done\n");
            let _ = writeln!(s, "  local globals=\"{}\"", longs(&globals));
            s.push_str("  if [[ $cur == -* ]]; then\n    local own=\n    case $cmd in\n");
            for c in COMMANDS.iter().filter(|c| !c.options.is_empty()) {
                let _ = writeln!(s, "      {}) own=\"{}\" ;;", c.name, per_cmd(c));
            }
            s.push_str("    esac\n    COMPREPLY=($(compgen -W \"$globals $own\" -- \"$cur\"))\n    return\n  fi\n");
            let _ =
                writeln!(s, "  if [[ -z $cmd ]]; then COMPREPLY=($(compgen -W \"{}\" -- \"$cur\")); return; fi", cmds);
            s.push_str("  case $cmd in\n");
            s.push_str("    status|tools|call|resources|read|prompts|prompt|complete) [[ ${COMP_WORDS[COMP_CWORD-1]} == \"$cmd\" ]] && COMPREPLY=($(compgen -W \"$(mcpctl list --names 2>/dev/null)\" -- \"$cur\")) ;;\n");
            s.push_str("    runtime) COMPREPLY=($(compgen -W \"install status verify\" -- \"$cur\")) ;;\n");
            let _ = writeln!(s, "    import) COMPREPLY=($(compgen -W \"{}\" -- \"$cur\")) ;;", clients);
            let _ = writeln!(s, "    help) COMPREPLY=($(compgen -W \"{}\" -- \"$cur\")) ;;", cmds);
            s.push_str("    completion) COMPREPLY=($(compgen -W \"bash zsh fish\" -- \"$cur\")) ;;\n  esac\n}\n");
            s.push_str("complete -F _mcpctl mcpctl\n");
        }
        "zsh" => {
            s.push_str("#compdef mcpctl\n# zsh completion for mcpctl (source <(mcpctl completion zsh))\n_mcpctl() {\n");
            s.push_str("  local cmd=${words[2]}\n");
            let _ = writeln!(s, "  local -a globals; globals=({})", longs(&globals));
            s.push_str("  if [[ $PREFIX == -* ]]; then\n    local -a own\n    case $cmd in\n");
            for c in COMMANDS.iter().filter(|c| !c.options.is_empty()) {
                let _ = writeln!(s, "      {}) own=({}) ;;", c.name, per_cmd(c));
            }
            s.push_str("    esac\n    compadd -- $globals $own\n    return\n  fi\n");
            let _ = writeln!(s, "  if (( CURRENT == 2 )); then compadd -- {}; return; fi", cmds);
            s.push_str("  case $cmd in\n");
            s.push_str("    status|tools|call|resources|read|prompts|prompt|complete) (( CURRENT == 3 )) && compadd -- ${(f)\"$(mcpctl list --names 2>/dev/null)\"} ;;\n");
            s.push_str("    runtime) compadd -- install status verify ;;\n");
            let _ = writeln!(s, "    import) compadd -- {} ;;", clients);
            let _ = writeln!(s, "    help) compadd -- {} ;;", cmds);
            s.push_str("    completion) compadd -- bash zsh fish ;;\n  esac\n}\n");
            s.push_str("if [[ $zsh_eval_context[-1] == loadautofunc ]]; then _mcpctl \"$@\"; else compdef _mcpctl mcpctl; fi\n");
        }
        "fish" => {
            s.push_str(
                "# fish completion for mcpctl (mcpctl completion fish > ~/.config/fish/completions/mcpctl.fish)\n",
            );
            s.push_str("complete -c mcpctl -f\n");
            for c in COMMANDS {
                let _ = writeln!(
                    s,
                    "complete -c mcpctl -n '__fish_use_subcommand' -a {} -d '{}'",
                    c.name,
                    c.summary.replace('\'', "\\'")
                );
            }
            for o in GLOBAL {
                let _ = writeln!(s, "{}", fish_opt(o, None));
            }
            for c in COMMANDS {
                for o in c.options.iter().filter_map(|n| find_opt(n)) {
                    let _ = writeln!(s, "{}", fish_opt(o, Some(c.name)));
                }
            }
            s.push_str(
                "complete -c mcpctl -n '__fish_seen_subcommand_from status tools call resources read prompts prompt complete; and test (count (commandline -opc)) -eq 2' -a '(mcpctl list --names 2>/dev/null)'\n",
            );
            s.push_str("complete -c mcpctl -n '__fish_seen_subcommand_from runtime' -a 'install status verify'\n");
            let _ = writeln!(s, "complete -c mcpctl -n '__fish_seen_subcommand_from import' -a '{}'", clients);
            let _ = writeln!(s, "complete -c mcpctl -n '__fish_seen_subcommand_from help' -a '{}'", cmds);
            s.push_str("complete -c mcpctl -n '__fish_seen_subcommand_from completion' -a 'bash zsh fish'\n");
        }
        other => {
            return Err(Error::usage(format!("no completion for shell `{}`", other))
                .hint("use `mcpctl completion bash`, `zsh` or `fish`"))
        }
    }
    Ok(s)
}

fn fish_opt(o: &Opt, cmd: Option<&str>) -> String {
    let mut s = String::from("complete -c mcpctl");
    if let Some(c) = cmd {
        let _ = write!(s, " -n '__fish_seen_subcommand_from {}'", c);
    }
    let _ = write!(s, " -l {}", o.long);
    if let Some(c) = o.short {
        let _ = write!(s, " -s {}", c);
    }
    if o.value.is_some() {
        s.push_str(" -r");
    }
    let _ = write!(s, " -d '{}'", o.help.replace('\'', "\\'"));
    s
}
