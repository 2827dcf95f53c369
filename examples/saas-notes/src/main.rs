//! The `saas-notes` binary: `saas-server`'s program with the notes
//! application added. `cargo run -p saas-notes` serves it on SQLite under
//! `./data`; every `saas-server` command and setting applies.

use std::process::ExitCode;

fn main() -> ExitCode {
    saas_server::main_with(std::env::args_os(), saas_notes::host())
}
