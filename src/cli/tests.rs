//! Unit tests of the command-line parser (`cli`): globals anywhere, tool arguments after
//! `call <server> <tool>`, `--`, and the errors and suggestions of a line that does not parse.

use super::*;

fn p(s: &[&str]) -> Result<Cli> {
    parse(s.iter().map(OsString::from))
}

#[test]
fn globals_anywhere_and_tool_args_after_tool() {
    let c = p(&[
        "call",
        "--json-output",
        "fs",
        "write",
        "--path",
        "a.txt",
        "--force",
        "--n=3",
        "--dry-run",
        "--var",
        "k=v",
    ])
    .unwrap();
    // Before the tool's name an option is ours; after it, one that a tool may also
    // name waits for the tool's schema (`Late`).
    assert!(c.globals.json_output && !c.globals.dry_run);
    assert_eq!(
        c.command,
        Command::Call {
            server: "fs".into(),
            tool: "write".into(),
            args: vec![
                ToolArg::Pair("path".into(), Some("a.txt".into())),
                ToolArg::Pair("force".into(), None),
                ToolArg::Pair("n".into(), Some("3".into())),
                ToolArg::Late("dry-run".into(), None),
                ToolArg::Var("k=v".into()),
            ]
        }
    );
    // Those that shape the connection or the output act at once, noted as late.
    let c = p(&["call", "s", "t", "--verbose", "--url", "http://x", "--timeout", "5"]).unwrap();
    assert!(c.globals.verbose && c.globals.url.is_none() && c.globals.timeout.is_none());
    assert_eq!(c.globals.late, vec!["verbose".to_string()]);
    let Command::Call { args, .. } = c.command else { panic!() };
    assert_eq!(
        args,
        vec![
            ToolArg::Late("verbose".into(), None),
            ToolArg::Late("url".into(), Some("http://x".into())),
            ToolArg::Late("timeout".into(), Some("5".into())),
        ]
    );
}

#[test]
fn dashdash_makes_everything_a_tool_argument() {
    let c = p(&["call", "s", "t", "--", "--dry-run", "--timeout", "5", "--var", "x"]).unwrap();
    assert!(!c.globals.dry_run);
    let Command::Call { args, .. } = c.command else { panic!() };
    assert_eq!(
        args,
        vec![
            ToolArg::Pair("dry-run".into(), None),
            ToolArg::Pair("timeout".into(), Some("5".into())),
            ToolArg::Pair("var".into(), Some("x".into()))
        ]
    );
}

#[test]
fn no_abbreviations_and_clear_errors() {
    assert!(p(&["list", "--verb"]).unwrap_err().one_line().contains("did you mean --verbose"));
    assert!(p(&["lst"]).unwrap_err().one_line().contains("did you mean `list`"));
    assert!(p(&["tools"]).unwrap_err().message.contains("usage: mcpctl tools <server>"));
    assert!(p(&["list", "--port", "1"]).unwrap_err().message.contains("option of `mcpctl start`"));
    assert!(p(&["list", "--timeout", "x"]).unwrap_err().message.contains("--timeout takes seconds"));
    for bad in [&["list", "--verb"][..], &["lst"], &["tools"], &["list", "--port", "1"], &["list", "-q"]] {
        let e = p(bad).unwrap_err();
        assert!(e.is_usage() && e.exit_code() == 1, "{:?}: {:?}", bad, e);
    }
    let c = p(&["call", "s", "t", "--v", "1"]).unwrap();
    assert!(
        matches!(c.command, Command::Call { ref args, .. } if args[0] == ToolArg::Pair("v".into(), Some("1".into())))
    );
}

#[test]
fn url_form_takes_tool_args_after_the_tool() {
    let c = p(&["--url", "http://127.0.0.1:1/mcp", "call", "add_numbers", "--a", "5", "--b", "3"]).unwrap();
    assert!(matches!(c.command, Command::Call { ref tool, ref args, .. }
        if tool == "add_numbers" && args.len() == 2));
}

#[test]
fn url_calls_take_tool_args_after_the_tool() {
    let c = p(&["call", "--url", "http://127.0.0.1:1/mcp", "echo_string", "--value", "007", "--", "--x", "1"]).unwrap();
    assert_eq!(
        c.command,
        Command::Call {
            server: String::new(),
            tool: "echo_string".into(),
            args: vec![ToolArg::Pair("value".into(), Some("007".into())), ToolArg::Pair("x".into(), Some("1".into()))]
        }
    );
}

/// The tables that drive help and completion name exactly the options the parser takes.
#[test]
fn every_option_in_the_tables_parses_and_help_exists_for_every_command() {
    use crate::usage::{COMMANDS, COMMAND_OPTS, GLOBAL};
    for o in GLOBAL.iter().filter(|o| o.long != "url") {
        let mut line = vec!["list".to_string(), format!("--{}", o.long)];
        if o.value.is_some() {
            line.push(if o.long == "timeout" { "5".into() } else { "x".into() });
        }
        let r = parse(line.iter().map(OsString::from));
        assert!(r.is_ok(), "--{}: {:?}", o.long, r.err().map(|e| e.one_line()));
        if let Some(c) = o.short {
            assert!(p(&["list", &format!("-{}", c)]).is_ok() || o.value.is_some(), "-{}", c);
        }
    }
    for c in COMMANDS {
        for name in c.options {
            assert!(COMMAND_OPTS.iter().any(|o| o.long == *name), "{} names unknown --{}", c.name, name);
        }
        let cmd: Vec<&str> = match c.name {
            "runtime" => vec!["runtime", "install"],
            "completion" => vec!["completion", "bash"],
            "list" | "logs" | "start" | "stop" | "help" => vec![c.name],
            "serve" => vec!["serve", "--stdio"],
            "complete" => vec!["complete", "s"],
            "call" | "prompt" | "read" => vec![c.name, "s", "t"],
            _ => vec![c.name, "s"],
        };
        for name in c.options {
            let o = COMMAND_OPTS.iter().find(|o| o.long == *name).unwrap();
            let mut line: Vec<String> = cmd.iter().map(|w| w.to_string()).collect();
            line.push(format!("--{}", o.long));
            if o.value.is_some() {
                line.push(match o.long {
                    "port" => "1".into(),
                    "context" => "k=v".into(),
                    _ => "x".into(),
                });
            }
            if c.name == "complete" {
                // It needs one reference and the argument; add what this option is not.
                if !["prompt", "resource"].contains(name) {
                    line.extend(["--prompt".to_string(), "p".to_string()]);
                }
                if *name != "arg" {
                    line.extend(["--arg".to_string(), "a".to_string()]);
                }
            }
            let r = parse(line.iter().map(OsString::from));
            assert!(r.is_ok(), "{:?}: {:?}", line, r.err().map(|e| e.one_line()));
        }
        let topic = if c.name == "help" { None } else { Some(c.name.to_string()) };
        assert_eq!(p(&[c.name, "--help"]).unwrap().command, Command::Help(topic));
        assert!(crate::usage::command(c.name).unwrap().contains(c.usage));
    }
    assert_eq!(p(&["help", "call"]).unwrap().command, Command::Help(Some("call".into())));
    assert!(p(&["status", "--names"]).unwrap_err().message.contains("option of `mcpctl list`"));
}

#[test]
fn prompt_arguments_follow_the_prompt_name() {
    let c =
        p(&["prompt", "ev", "args-prompt", "--city", "Paris", "--json-output", "--state=TX", "--var", "k=v"]).unwrap();
    assert!(c.globals.json_output);
    assert_eq!(
        c.command,
        Command::Prompt {
            server: "ev".into(),
            name: "args-prompt".into(),
            args: vec![
                ToolArg::Pair("city".into(), Some("Paris".into())),
                ToolArg::Pair("state".into(), Some("TX".into())),
                ToolArg::Var("k=v".into()),
            ]
        }
    );
    // Words that are options of `complete` elsewhere are prompt arguments here.
    let c = p(&["prompt", "ev", "x", "--prompt", "a", "--arg", "b", "--", "--timeout", "1"]).unwrap();
    let Command::Prompt { args, .. } = c.command else { panic!() };
    assert_eq!(args.len(), 3);
    assert!(p(&["prompt", "ev", "x", "extra"]).unwrap_err().message.contains("after the prompt name"));
    assert!(p(&["prompt", "ev"]).unwrap_err().message.contains("usage: mcpctl prompt <server> <name>"));
    assert!(p(&["read", "ev"]).unwrap_err().message.contains("usage: mcpctl read <server> <uri>"));
    assert_eq!(p(&["resources", "ev"]).unwrap().command, Command::Resources("ev".into()));
    assert_eq!(p(&["prompts", "ev"]).unwrap().command, Command::Prompts("ev".into()));
    assert_eq!(
        p(&["read", "ev", "demo://a"]).unwrap().command,
        Command::Read { server: "ev".into(), uri: "demo://a".into() }
    );
    let c = p(&["--url", "http://127.0.0.1:1/mcp", "prompt", "greet", "--name", "x"]).unwrap();
    assert!(matches!(c.command, Command::Prompt { ref server, ref name, ref args }
        if server.is_empty() && name == "greet" && args.len() == 1));
}

#[test]
fn complete_takes_a_reference_and_an_argument() {
    let c = p(&["complete", "ev", "--prompt", "team", "--arg", "name", "--value", "A", "--context", "d=Eng"]).unwrap();
    assert_eq!(
        c.command,
        Command::Complete {
            server: "ev".into(),
            target: CompleteRef::Prompt("team".into()),
            arg: "name".into(),
            value: "A".into(),
            context: vec!["d=Eng".into()],
        }
    );
    let c = p(&["complete", "ev", "--resource", "demo://{id}", "--arg", "id"]).unwrap();
    assert!(matches!(c.command, Command::Complete { target: CompleteRef::Resource(ref u), ref value, .. }
        if u == "demo://{id}" && value.is_empty()));
    assert!(p(&["complete", "ev", "--arg", "a"]).unwrap_err().message.contains("--prompt NAME or --resource"));
    assert!(p(&["complete", "ev", "--prompt", "a", "--resource", "b", "--arg", "a"]).is_err());
    assert!(p(&["complete", "ev", "--prompt", "a"]).unwrap_err().message.contains("needs --arg NAME"));
    assert!(p(&["complete", "ev", "--prompt", "a", "--arg", "x", "--context", "nokey"])
        .unwrap_err()
        .message
        .contains("key=value"));
    assert!(p(&["tools", "ev", "--arg", "a"]).unwrap_err().message.contains("option of `mcpctl complete`"));
}

#[test]
fn serve_takes_stdio_and_a_server() {
    assert_eq!(
        p(&["serve", "--stdio", "--server", "fx"]).unwrap().command,
        Command::Serve { stdio: true, server: Some("fx".into()) }
    );
    assert_eq!(p(&["serve", "--stdio"]).unwrap().command, Command::Serve { stdio: true, server: None });
    assert!(p(&["serve"]).unwrap_err().message.contains("usage: mcpctl serve --stdio"));
    assert!(p(&["serve", "--stdio", "x"]).is_err());
    assert!(p(&["list", "--stdio"]).unwrap_err().message.contains("option of `mcpctl serve`"));
    assert!(p(&["tools", "s", "--server", "x"]).unwrap_err().message.contains("option of `mcpctl serve`"));
    // After `call <server> <tool>` they are tool arguments.
    let c = p(&["call", "s", "t", "--server", "x"]).unwrap();
    assert!(
        matches!(c.command, Command::Call { ref args, .. } if args[0] == ToolArg::Pair("server".into(), Some("x".into())))
    );
}

#[test]
fn negative_numbers_are_values() {
    let c = p(&["call", "s", "t", "--n", "-5"]).unwrap();
    assert!(
        matches!(c.command, Command::Call { ref args, .. } if args[0] == ToolArg::Pair("n".into(), Some("-5".into())))
    );
}

/// Whether an option takes a value is the table's: each with a value refuses to go without
/// one and takes the next word; each flag takes none.
#[test]
fn the_tables_say_which_options_take_a_value() {
    use crate::usage::{COMMANDS, COMMAND_OPTS, GLOBAL};
    for o in GLOBAL.iter().chain(COMMAND_OPTS) {
        let cmd = COMMANDS.iter().find(|c| c.options.contains(&o.long)).map_or("list", |c| c.name);
        let (line, wrong) = match o.value {
            Some(_) => (vec![cmd.to_string(), format!("--{}", o.long)], "missing argument"),
            None => (vec![cmd.to_string(), format!("--{}=1", o.long)], "unexpected argument"),
        };
        let e = parse(line.iter().map(OsString::from)).unwrap_err();
        assert!(e.is_usage() && e.message.contains(wrong), "{:?}: {:?}", line, e);
    }
    // Short forms are the table's.
    for o in GLOBAL.iter().chain(COMMAND_OPTS) {
        if let Some(c) = o.short {
            let cmd = COMMANDS.iter().find(|c| c.options.contains(&o.long)).map_or("list", |c| c.name);
            let long = p(&[cmd, &format!("--{}", o.long)]);
            let short = p(&[cmd, &format!("-{}", c)]);
            assert_eq!(long.map_err(|e| e.one_line()), short.map_err(|e| e.one_line()), "-{}", c);
        }
    }
    assert_eq!(p(&["logs", "-f"]).unwrap().command, Command::Logs { follow: true });
    assert!(p(&["logs", "-q"]).unwrap_err().message.contains("unknown option -q"));
}

/// Which command an option belongs to is the table's: each command option is refused with
/// every command whose entry does not list it, naming those that do.
#[test]
fn a_command_option_is_refused_with_another_command() {
    use crate::usage::{COMMANDS, COMMAND_OPTS};
    for o in COMMAND_OPTS {
        let owners: Vec<&str> = COMMANDS.iter().filter(|c| c.options.contains(&o.long)).map(|c| c.name).collect();
        assert!(!owners.is_empty(), "--{} is no command's", o.long);
        for c in COMMANDS.iter().filter(|c| !c.options.contains(&o.long)) {
            let mut line = vec![c.name.to_string(), format!("--{}", o.long)];
            if o.value.is_some() {
                line.push("1".into());
            }
            let e = parse(line.iter().map(OsString::from)).unwrap_err();
            assert!(e.is_usage(), "{:?}: {:?}", line, e);
            let named = owners.iter().map(|w| format!("`mcpctl {}`", w)).collect::<Vec<_>>().join(" and ");
            assert_eq!(e.message, format!("--{} is an option of {}, not of `{}`", o.long, named, c.name), "{:?}", line);
        }
    }
    assert_eq!(
        p(&["list", "--force"]).unwrap_err().message,
        "--force is an option of `mcpctl runtime` and `mcpctl import`, not of `list`"
    );
    // Help wins over a misplaced option; the first misplaced one is named.
    assert_eq!(p(&["list", "--port", "1", "--help"]).unwrap().command, Command::Help(Some("list".into())));
    assert!(p(&["list", "--write", "--port", "1"]).unwrap_err().message.starts_with("--write is an option of"));
}

/// After `call <server> <tool>` (`prompt <server> <name>`) only the global options are ours:
/// another command's option is the tool's argument, and `LATE` names only global options.
#[test]
fn after_the_tool_name_command_options_are_arguments() {
    for o in LATE {
        assert!(crate::usage::find_opt(o).is_some_and(crate::usage::is_global), "--{}", o);
    }
    let c = p(&["call", "s", "t", "--port", "5", "--follow", "--host=h", "-v"]).unwrap();
    assert!(c.globals.verbose);
    let Command::Call { args, .. } = c.command else { panic!() };
    assert_eq!(
        args,
        vec![
            ToolArg::Pair("port".into(), Some("5".into())),
            ToolArg::Pair("follow".into(), None),
            ToolArg::Pair("host".into(), Some("h".into())),
        ]
    );
    assert!(p(&["call", "s", "t", "-f"]).unwrap_err().message.contains("unknown option -f"));
    assert!(p(&["call", "s", "--port", "5", "t"]).unwrap_err().message.contains("option of `mcpctl start`"));
}
