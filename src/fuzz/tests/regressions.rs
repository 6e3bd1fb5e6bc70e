//! Every seed and every crash the fuzzers ever found (`fuzz/corpus/<target>/`,
//! `fuzz/regressions/<target>/`) replayed through its target: a fixed crash stays fixed.

use std::path::Path;

#[test]
fn seeds_and_past_crashes_replay_cleanly() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz");
    let mut replayed = 0;
    for target in nordiq_fuzz::TARGETS {
        let mut seeds = 0;
        for kind in ["corpus", "regressions"] {
            let dir = root.join(kind).join(target.name);
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries {
                let path = entry.unwrap().path();
                let data = std::fs::read(&path).unwrap();
                let outcome = std::panic::catch_unwind(|| (target.run)(&data));
                assert!(
                    outcome.is_ok(),
                    "{} panics on {}",
                    target.name,
                    path.display()
                );
                replayed += 1;
                seeds += usize::from(kind == "corpus");
            }
        }
        assert!(
            seeds > 0,
            "{} has no seeds in fuzz/corpus/{}",
            target.name,
            target.name
        );
    }
    eprintln!("{replayed} inputs replayed");
}
