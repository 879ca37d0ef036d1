//! `runtime install` and `runtime status`: uv, then Python, then every configured uv
//! server's package installed as a uv tool under the root, so that `uvx <pkg>` later
//! works with no network (uvx uses an installed tool that satisfies the request).

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::install::{ensure_uv, installed, InstallPlan, Uv};
use super::{settings_json, Settings};
use crate::error::{Error, Result};

/// A configured server: (name, command, args).
pub type ServerEntry = (String, String, Vec<String>);

/// Options of `mcpctl runtime install`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct InstallOptions {
    /// Do not ask before downloading.
    pub yes: bool,
    /// Download and replace uv even if it is installed.
    pub force: bool,
}

/// Longest a single `uv python install` / `uv tool install` may run.
const STEP_TIMEOUT: Duration = Duration::from_secs(30 * 60);

/// uvx options that take a value (as `--opt VALUE` or `--opt=VALUE`).
const VALUE_OPTS: &[&str] = &[
    "--from",
    "-w",
    "--with",
    "--with-editable",
    "--with-requirements",
    "-p",
    "--python",
    "--index",
    "--default-index",
    "-i",
    "--index-url",
    "--extra-index-url",
    "-f",
    "--find-links",
    "--index-strategy",
    "--keyring-provider",
    "--resolution",
    "--prerelease",
    "--fork-strategy",
    "--exclude-newer",
    "--exclude-newer-package",
    "--link-mode",
    "-C",
    "--config-setting",
    "--config-settings-package",
    "--no-build-isolation-package",
    "-P",
    "--upgrade-package",
    "--reinstall-package",
    "--refresh-package",
    "--no-build-package",
    "--no-binary-package",
    "--env-file",
    "--directory",
    "--project",
    "--config-file",
    "--cache-dir",
    "--color",
    "--python-platform",
    "--allow-insecure-host",
    "--torch-backend",
    "-c",
    "--constraints",
    "--overrides",
    "-b",
    "--build-constraints",
    "--python-preference",
    "--lfs",
];

/// Of those, the ones that change what gets installed, passed on to `uv tool install`.
const FORWARDED_VALUE_OPTS: &[&str] = &[
    "-w",
    "--with",
    "--with-editable",
    "--with-requirements",
    "-p",
    "--python",
    "--index",
    "--default-index",
    "-i",
    "--index-url",
    "--extra-index-url",
    "-f",
    "--find-links",
    "--index-strategy",
    "--resolution",
    "--prerelease",
    "--exclude-newer",
    "-C",
    "--config-setting",
    "-c",
    "--constraints",
    "--overrides",
    "-b",
    "--build-constraints",
    "--torch-backend",
];

/// Flags passed on to `uv tool install`.
const FORWARDED_FLAGS: &[&str] = &["--no-build-isolation", "--no-sources", "--no-build", "--no-binary"];

/// What a uv server runs, as a uv tool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolRequest {
    /// The requirement given to `uv tool install` (`pkg`, `pkg@1.2`, `pkg==1.2`, a URL...).
    pub spec: String,
    /// The normalized package name (the folder under `<root>/tools`), when the spec tells it.
    pub package: Option<String>,
    /// Options for `uv tool install` taken from the server's uvx options.
    pub install_args: Vec<String>,
    /// The `--python` it asks for, if any.
    pub python: Option<String>,
}

/// The tool a uv server runs, or `None` when it is not a `uvx`/`uv tool run` command.
/// A command other than uv/uvx (a server with `"runtime": "uv"`) runs as `uvx <command> <args>`.
pub fn tool_request(command: &str, args: &[String]) -> Option<ToolRequest> {
    let uvx_args: &[String] = match command {
        "uvx" => args,
        "uv" => match args.first().map(String::as_str) {
            Some("tool") if args.get(1).map(String::as_str) == Some("run") => &args[2..],
            Some("x") => &args[1..],
            _ => return None,
        },
        _ => {
            let spec = command.to_string();
            return Some(ToolRequest { package: package_name(&spec), spec, install_args: vec![], python: None });
        }
    };
    let mut from = None;
    let mut python = None;
    let mut install_args = Vec::new();
    let mut i = 0;
    let mut target = None;
    while i < uvx_args.len() {
        let a = &uvx_args[i];
        if a == "--" {
            target = uvx_args.get(i + 1).cloned();
            break;
        }
        if !a.starts_with('-') || a == "-" {
            target = Some(a.clone());
            break;
        }
        let (opt, inline) = match a.split_once('=') {
            Some((o, v)) if o.starts_with("--") => (o.to_string(), Some(v.to_string())),
            _ => (a.clone(), None),
        };
        if VALUE_OPTS.contains(&opt.as_str()) {
            let value = match inline {
                Some(v) => v,
                None => {
                    i += 1;
                    uvx_args.get(i)?.clone()
                }
            };
            if opt == "--from" {
                from = Some(value);
            } else {
                if opt == "-p" || opt == "--python" {
                    python = Some(value.clone());
                }
                if FORWARDED_VALUE_OPTS.contains(&opt.as_str()) {
                    install_args.push(opt);
                    install_args.push(value);
                }
            }
        } else if FORWARDED_FLAGS.contains(&opt.as_str()) {
            install_args.push(a.clone());
        }
        i += 1;
    }
    let spec = from.or(target)?;
    Some(ToolRequest { package: package_name(&spec), spec, install_args, python })
}

/// `Foo_Bar[x]@1.0` → `foo-bar`; `None` for URLs and paths.
fn package_name(spec: &str) -> Option<String> {
    if spec.contains("://") || spec.starts_with('.') || spec.starts_with('/') || spec.starts_with('~') {
        return None;
    }
    let name: String = spec.chars().take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')).collect();
    if name.is_empty() {
        return None;
    }
    let mut out = String::new();
    for c in name.to_ascii_lowercase().chars() {
        let c = if matches!(c, '_' | '.') { '-' } else { c };
        if !(c == '-' && out.ends_with('-')) {
            out.push(c);
        }
    }
    Some(out)
}

/// Is the tool a server needs installed under the root?
fn tool_installed(settings: &Settings, req: &ToolRequest) -> Option<bool> {
    let pkg = req.package.as_ref()?;
    Some(settings.tool_dir().join(pkg).join("uv-receipt.toml").is_file())
}

/// The Python installs under the root (folder names such as `cpython-3.13.5-linux-x86_64-gnu`).
pub fn pythons(settings: &Settings) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(settings.python_dir())
        .map(|rd| {
            rd.flatten()
                .filter(|e| e.path().is_dir())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| !n.starts_with('.'))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// `mcpctl runtime status`: the pin, the root, what is installed, and per uv server whether
/// it can start with no network.
pub fn status(settings: &Settings, servers: &[ServerEntry]) -> Value {
    let uv = installed(settings);
    let pythons = pythons(settings);
    let servers: Vec<Value> = servers
        .iter()
        .map(|(name, command, args)| {
            let req = tool_request(command, args);
            let ready = match &req {
                None => Value::Null,
                Some(r) => match tool_installed(settings, r) {
                    Some(t) => Value::Bool(t && uv.is_some() && !pythons.is_empty()),
                    None => Value::Null,
                },
            };
            json!({
                "name": name,
                "command": command,
                "package": req.as_ref().map(|r| r.spec.clone()),
                "ready_offline": ready,
            })
        })
        .collect();
    let mut v = settings_json(settings);
    v["installed"] = json!(uv.is_some());
    v["uv"] = json!(uv.as_ref().map(|u| u.uv.clone()));
    v["python"] = json!(pythons);
    v["servers"] = json!(servers);
    v
}

/// `mcpctl runtime install`: uv (reinstalled with `force`), then Python through uv, then the
/// package of every configured uv server, so that a copy of the root at the same path serves
/// them offline. `consent` is asked before downloading uv unless `yes`.
/// Returns a report; if any server's package could not be fetched, an error listing them.
pub fn install_runtime(
    settings: &Settings,
    servers: &[ServerEntry],
    opts: InstallOptions,
    consent: &dyn Fn(&InstallPlan) -> bool,
) -> Result<Value> {
    let yes = |_: &InstallPlan| true;
    let uv = ensure_uv(settings, opts.force, if opts.yes { &yes } else { consent })?;

    let requests: Vec<(String, Option<ToolRequest>)> =
        servers.iter().map(|(n, c, a)| (n.clone(), tool_request(c, a))).collect();
    let mut versions: Vec<String> = requests.iter().filter_map(|(_, r)| r.as_ref()?.python.clone()).collect();
    versions.sort();
    versions.dedup();
    run_uv(settings, &uv, &["python", "install"])?;
    if !versions.is_empty() {
        let mut args = vec!["python", "install"];
        args.extend(versions.iter().map(String::as_str));
        run_uv(settings, &uv, &args)?;
    }

    let mut reports = Vec::new();
    let mut failed = Vec::new();
    for (name, req) in &requests {
        let Some(req) = req else {
            reports.push(json!({"name": name, "prefetched": false, "why": "not a uvx / uv tool run command"}));
            continue;
        };
        let mut args: Vec<&str> = vec!["tool", "install"];
        args.extend(req.install_args.iter().map(String::as_str));
        args.push(&req.spec);
        match run_uv(settings, &uv, &args) {
            Ok(()) => reports.push(json!({"name": name, "package": req.spec, "prefetched": true})),
            Err(e) => {
                failed.push(format!("{name}: {}", e.message));
                reports.push(json!({"name": name, "package": req.spec, "prefetched": false, "why": e.message}));
            }
        }
    }
    if !failed.is_empty() {
        return Err(Error::runtime(format!(
            "fetching the packages of {} of {} uv servers failed",
            failed.len(),
            requests.len()
        ))
        .hint("check the network and the servers' args, then run `mcpctl runtime install` again")
        .details(failed));
    }
    let mut report = settings_json(settings);
    report["uv"] = json!({"path": uv.uv, "installed_now": uv.installed_now});
    report["python"] = json!(pythons(settings));
    report["servers"] = json!(reports);
    Ok(report)
}

/// Run the managed uv with the runtime's environment, from the root (so no project's
/// `.python-version` or `uv.toml` is picked up), echoing its stderr; bounded in time.
fn run_uv(settings: &Settings, uv: &Uv, args: &[&str]) -> Result<()> {
    run_step(&format!("uv {}", args.join(" ")), &uv.uv, args, &settings.uv_env(), &settings.root)
}

/// Run one install step (`what` names it in messages) with `env`, from `cwd`, echoing its
/// stderr; bounded in time.
pub(crate) fn run_step(
    what: &str,
    program: &std::path::Path,
    args: &[&str],
    env: &[(String, String)],
    cwd: &std::path::Path,
) -> Result<()> {
    let what = what.to_string();
    let _ = std::fs::create_dir_all(cwd);
    log::info!("running {what}");
    let mut cmd = Command::new(program);
    crate::childenv::strip_secrets(&mut cmd);
    cmd.args(args)
        .current_dir(cwd)
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(|e| Error::runtime(format!("cannot run {}: {e}", program.display())))?;
    let stderr = child.stderr.take().expect("piped stderr");
    let echo = std::thread::spawn(move || {
        let mut tail: Vec<String> = Vec::new();
        for line in BufReader::new(stderr).lines().map_while(|l| l.ok()) {
            let _ = writeln!(std::io::stderr(), "{line}");
            tail.push(line);
            if tail.len() > 10 {
                tail.remove(0);
            }
        }
        tail
    });
    let start = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break s,
            Ok(None) if start.elapsed() > STEP_TIMEOUT => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(Error::timeout(format!("`{what}` ran over {} s and was stopped", STEP_TIMEOUT.as_secs())));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(100)),
            Err(e) => return Err(Error::runtime(format!("waiting for `{what}`: {e}"))),
        }
    };
    let tail = echo.join().unwrap_or_default();
    if status.success() {
        Ok(())
    } else {
        let last = tail.iter().rev().find(|l| !l.trim().is_empty()).cloned().unwrap_or_default();
        Err(Error::runtime(format!(
            "`{what}` failed ({status}){}",
            if last.is_empty() { String::new() } else { format!(": {last}") }
        ))
        .details(tail))
    }
}

/// `runtime install` for the Node servers: the managed Node (replaced with `force`), then
/// every server's package installed globally under the runtime's npm prefix
/// (`npm install --global <pkg>`, which also fills `<root>/npm-cache`), so that a later
/// `npx -y <pkg>` finds it there with no network. Errors list the servers that failed.
/// A configured npx server for `runtime install`: (name, command, args, the `npm_config_*`
/// variables of its `env`, which npm also needs when prefetching, e.g. its registry).
pub type NodeEntry = (String, String, Vec<String>, Vec<(String, String)>);

pub fn install_node_runtime(
    settings: &super::node::NodeSettings,
    servers: &[NodeEntry],
    opts: InstallOptions,
    consent: &dyn Fn(&InstallPlan) -> bool,
) -> Result<Value> {
    use super::node;
    let yes = |_: &InstallPlan| true;
    let n = node::ensure_node(settings, opts.force, if opts.yes { &yes } else { consent })?;
    let mut reports = Vec::new();
    let mut failed = Vec::new();
    for (name, command, args, server_env) in servers {
        let Some(spec) = node::npx_package(command, args) else {
            reports.push(json!({"name": name, "prefetched": false, "why": "not an `npx <package>` command"}));
            continue;
        };
        let npm = n.npm_cli.to_string_lossy().into_owned();
        let step = ["install", "--global", "--no-audit", "--no-fund", spec.as_str()];
        let mut argv: Vec<&str> = vec![npm.as_str()];
        argv.extend(step);
        let mut env = settings.npm_env();
        env.extend(server_env.iter().filter(|(k, _)| k.to_ascii_lowercase().starts_with("npm_config_")).cloned());
        match run_step(&format!("npm {}", step.join(" ")), &n.node, &argv, &env, &settings.root) {
            Ok(()) => reports.push(json!({"name": name, "package": spec, "prefetched": true})),
            Err(e) => {
                failed.push(format!("{name}: {}", e.message));
                reports.push(json!({"name": name, "package": spec, "prefetched": false, "why": e.message}));
            }
        }
    }
    if !failed.is_empty() {
        return Err(Error::runtime(format!(
            "fetching the packages of {} of {} npx servers failed",
            failed.len(),
            servers.len()
        ))
        .hint("check the network (and npm_config_registry) and the servers' args, then run `mcpctl runtime install` again")
        .details(failed));
    }
    Ok(json!({
        "version": n.version,
        "root": settings.root,
        "path": n.node,
        "installed_now": n.installed_now,
        "servers": reports,
    }))
}

/// `runtime status` for the Node servers: the pin, whether Node is installed, and per server
/// its package and whether it is installed under the root (so it starts offline).
pub fn node_status(settings: &super::node::NodeSettings, servers: &[ServerEntry]) -> Value {
    use super::node;
    let n = node::installed(settings);
    let list: Vec<Value> = servers
        .iter()
        .map(|(name, command, args)| {
            let spec = node::npx_package(command, args);
            let ready = match spec.as_deref().and_then(|s| node::package_present(settings, s)) {
                Some(p) => Value::Bool(p && n.is_some()),
                None => Value::Null,
            };
            json!({"name": name, "command": command, "runtime": "node", "package": spec, "ready_offline": ready})
        })
        .collect();
    json!({
        "version": settings.version(),
        "libc": settings.libc.word(),
        "platform": settings.pin.as_ref().map(|p| p.target.clone()),
        "supported": settings.pin.is_some(),
        "source": if settings.npm.is_some() { "registry" } else { "archive" },
        "download_url": settings.url().ok(),
        "npm_download_url": settings.npm_url().ok().flatten(),
        "npm_version": settings.npm.as_ref().map(|p| p.version.clone()),
        "installed": n.is_some(),
        "path": n.as_ref().map(|n| n.node.clone()),
        "servers": list,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn parses_uvx_commands() {
        let r = tool_request("uvx", &s(&["mcp-server-fetch", "--user-agent", "x"])).unwrap();
        assert_eq!(r.spec, "mcp-server-fetch");
        assert_eq!(r.package.as_deref(), Some("mcp-server-fetch"));
        assert!(r.install_args.is_empty());

        let r = tool_request("uvx", &s(&["--python", "3.12", "--from", "Foo_Bar[x]==1.0", "foo", "--x"])).unwrap();
        assert_eq!(r.spec, "Foo_Bar[x]==1.0");
        assert_eq!(r.package.as_deref(), Some("foo-bar"));
        assert_eq!(r.python.as_deref(), Some("3.12"));
        assert_eq!(r.install_args, s(&["--python", "3.12"]));

        let r = tool_request("uvx", &s(&["--with=httpx", "-q", "--env-file", ".env", "pkg@1.2"])).unwrap();
        assert_eq!(r.spec, "pkg@1.2");
        assert_eq!(r.install_args, s(&["--with", "httpx"]));

        let r = tool_request("uv", &s(&["tool", "run", "pkg"])).unwrap();
        assert_eq!(r.spec, "pkg");
        assert!(tool_request("uv", &s(&["run", "server.py"])).is_none());
        assert!(tool_request("uvx", &s(&["--from"])).is_none());

        let r = tool_request("mcp-server-time", &[]).unwrap();
        assert_eq!(r.spec, "mcp-server-time");
        assert_eq!(tool_request("uvx", &s(&["--from", "git+https://x/y", "y"])).unwrap().package, None);
    }
}
