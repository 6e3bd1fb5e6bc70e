//! What every NordIQ binary does with its command line the same way: parse it (usage
//! errors exit 64, `--help`/`--version` exit 0) and report a fatal error with its code.

use crate::exit::{self, Fatal, OrExit};
use std::process::ExitCode;

/// Parses the arguments; on `--help`, `--version` or a usage error prints clap's text
/// and returns the exit code to end with.
pub fn parse<T: clap::Parser>() -> Result<T, ExitCode> {
    T::try_parse().map_err(|e| {
        let code = if e.use_stderr() {
            exit::USAGE
        } else {
            exit::OK
        };
        let _ = e.print();
        ExitCode::from(code as u8)
    })
}

/// Prints `program: message` to stderr and returns `code` as the exit code.
pub fn fail(program: &str, code: i32, message: impl std::fmt::Display) -> ExitCode {
    eprintln!("{program}: {message}");
    ExitCode::from(code as u8)
}

/// The config a binary runs on: `--dev` (the embedded default rooted in the current
/// directory), else the file from `--config` / `$NORDIQ_CONFIG` / the default path.
/// Errors carry their exit code (74 for the directory, 78 for the config).
pub fn load_config(
    dev: bool,
    path: Option<&std::path::Path>,
) -> Result<nordiq_core::config::Config, Fatal> {
    use nordiq_core::config::Config;
    if dev {
        let dir = std::env::current_dir()
            .map_err(|e| Fatal::new(exit::IO_ERR, format!("reading the current directory: {e}")))?;
        return Ok(Config::dev(&dir));
    }
    Config::load(&Config::resolve_path(path)).or_exit(exit::CONFIG)
}
