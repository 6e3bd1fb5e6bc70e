//! Binaries and tests that link libtorch find it through RUNPATH, never through whatever
//! other libtorch the system has (a mismatch dies with a symbol lookup error). Packages set
//! NORDIQ_RPATH to where they install the libraries (/usr/lib/nordiq); development builds
//! point at the libtorch they were built against.
fn main() {
    println!("cargo:rerun-if-env-changed=LIBTORCH");
    println!("cargo:rerun-if-env-changed=NORDIQ_RPATH");
    if let Some(rpath) = std::env::var_os("NORDIQ_RPATH") {
        println!(
            "cargo:rustc-link-arg=-Wl,-rpath,{}",
            rpath.to_string_lossy()
        );
        return;
    }
    if let Some(dir) = std::env::var_os("LIBTORCH").and_then(|d| std::fs::canonicalize(d).ok()) {
        println!(
            "cargo:rustc-link-arg=-Wl,-rpath,{}",
            dir.join("lib").display()
        );
    }
}
