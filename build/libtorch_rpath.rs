//! Binaries and tests that link libtorch find it through RUNPATH, never through whatever
//! other libtorch the system has (a mismatch dies with a symbol lookup error).
fn main() {
    println!("cargo:rerun-if-env-changed=LIBTORCH");
    if let Some(dir) = std::env::var_os("LIBTORCH").and_then(|d| std::fs::canonicalize(d).ok()) {
        println!(
            "cargo:rustc-link-arg=-Wl,-rpath,{}",
            dir.join("lib").display()
        );
    }
}
