//! mcpctl as a library: the binary (`main.rs`) and the integration tests call in here.
//! Modules, alphabetically; `docs/architecture.md` shows how a call flows through them.

#![deny(unsafe_code)] // except in `sys`, which owns the OS calls

pub mod args;
pub mod call;
pub mod childenv;
pub mod cli;
pub mod client;
pub mod clients;
pub mod commands;
pub mod config;
pub mod daemon;
pub mod error;
pub mod gateway;
pub(crate) mod http1;
pub mod jsonrpc;
pub mod launch;
pub mod logsafe;
pub mod net;
pub mod output;
pub mod peer;
pub mod policy;
pub mod runtime;
pub mod settings;
pub mod signals;
pub mod sse;
pub mod sync;
pub mod sys;
pub mod tokens;
pub mod toml;
pub mod transport;
pub mod usage;

/// Run mcpctl with these arguments (without the program name); returns the exit code.
pub fn run(args: Vec<std::ffi::OsString>) -> i32 {
    // `--json-output` holds for a command line that does not parse, too (before any `--`).
    let asked_json = args.iter().take_while(|a| *a != "--").any(|a| a == "--json-output");
    let parsed = cli::parse(args);
    let json = match &parsed {
        Ok(c) => c.globals.json_output,
        Err(_) => asked_json,
    };
    let printer = output::Printer::new(json);
    let cli = match parsed {
        Ok(c) => c,
        Err(e) => return printer.failure(&e.into()),
    };
    let daemon = matches!(&cli.command, cli::Command::Start(o) if o.foreground);
    init_logging(cli.globals.verbose, if daemon { "info" } else { "warn" });
    signals::install();
    let code = match commands::run(cli) {
        Ok(r) => printer.report(&r),
        Err(f) => printer.failure(&f),
    };
    // The answer is out: now the servers a call started may take their time to stop.
    client::shutdown_deferred();
    code
}

fn init_logging(verbose: bool, default: &str) {
    // MCPCTL_LOG, else RUST_LOG, else `default`.
    let filter = settings::log_filter().or_else(|| std::env::var("RUST_LOG").ok()).unwrap_or_else(|| default.into());
    let mut b = env_logger::Builder::new();
    b.parse_filters(&filter);
    if let Ok(style) = std::env::var("RUST_LOG_STYLE") {
        b.parse_write_style(&style);
    }
    if verbose {
        b.filter_level(log::LevelFilter::Debug);
    }
    b.format_target(false).format_timestamp_millis().target(env_logger::Target::Stderr);
    // Every line escaped as a whole too: no message can carry CR/LF or a terminal escape.
    b.format(|buf, r| {
        use std::io::Write;
        let msg = r.args().to_string();
        writeln!(buf, "[{} {:<5}] {}", buf.timestamp_millis(), r.level(), logsafe::unbounded(&msg))
    });
    let _ = b.try_init();
}
