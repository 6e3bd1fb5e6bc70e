//! The browser test builds a model with the library, so its binary links libtorch: give
//! the tests (only them) a RUNPATH to it, as the model crates' build script does.
fn main() {
    println!("cargo:rerun-if-env-changed=LIBTORCH");
    if let Some(dir) = std::env::var_os("LIBTORCH").and_then(|d| std::fs::canonicalize(d).ok()) {
        println!(
            "cargo:rustc-link-arg-tests=-Wl,-rpath,{}",
            dir.join("lib").display()
        );
    }
}
