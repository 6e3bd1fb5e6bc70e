//! Named process exit codes (sysexits-style), shared by every NordIQ binary.

/// Everything went fine.
pub const OK: i32 = 0;
/// The command line was wrong.
pub const USAGE: i32 = 64;
/// Input data (a file the user handed over) was malformed.
pub const DATA_ERR: i32 = 65;
/// A service this command needs is unavailable (daemon down, no listener).
pub const UNAVAILABLE: i32 = 69;
/// An internal error: a bug, or an invariant that did not hold.
pub const SOFTWARE: i32 = 70;
/// Reading or writing a file or socket failed.
pub const IO_ERR: i32 = 74;
/// A temporary failure: retrying later may succeed.
pub const TEMP_FAIL: i32 = 75;
/// The configuration (file, key, environment) is wrong.
pub const CONFIG: i32 = 78;

/// A failure that ends the process, with the exit code to end with (binaries print it as
/// `program: message` and exit with `code`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Fatal {
    pub code: i32,
    pub message: String,
}

impl Fatal {
    /// `message` with its whole cause chain (`{:#}`, as anyhow prints it).
    pub fn new(code: i32, message: impl std::fmt::Display) -> Fatal {
        Fatal {
            code,
            message: format!("{message:#}"),
        }
    }
}

/// `result.or_exit(code)`: any displayable error as a [`Fatal`] with `code`.
pub trait OrExit<T> {
    fn or_exit(self, code: i32) -> Result<T, Fatal>;
}

impl<T, E: std::fmt::Display> OrExit<T> for Result<T, E> {
    fn or_exit(self, code: i32) -> Result<T, Fatal> {
        self.map_err(|e| Fatal::new(code, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fatal_error_keeps_its_code_and_the_whole_chain() {
        let inner: Result<(), anyhow::Error> =
            Err(anyhow::anyhow!("disk full").context("writing the spool"));
        let fatal = inner.or_exit(IO_ERR).unwrap_err();
        assert_eq!(fatal.code, IO_ERR);
        assert_eq!(fatal.to_string(), "writing the spool: disk full");
    }
}
