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
