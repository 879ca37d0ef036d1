//! The `mcpctl` binary: hands the command line to the library and exits with its code.

fn main() {
    let code = mcpctl::run(std::env::args_os().skip(1).collect());
    std::process::exit(code);
}
