//! The `saas-server` binary: the library's program as it comes, with the
//! built-in jobs.

use std::process::ExitCode;

fn main() -> ExitCode {
    saas_server::main_with(std::env::args_os(), saas_server::Host::default())
}
