//! Every fuzz target on its seeds and on the inputs checked in under
//! `fuzz/corpus-regressions/<target>/` (crashes found by fuzzing, minimised, kept so that a
//! fix stays fixed). CI runs these on stable; it never builds the fuzzers themselves.

use std::path::PathBuf;

fn regressions(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus-regressions")
        .join(target);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let data = std::fs::read(&p).unwrap_or_else(|e| panic!("reading {}: {e}", p.display()));
            (p, data)
        })
        .collect()
}

fn replay(name: &str) {
    let target = fourk_fuzz::target(name).expect("a target");
    for seed in (target.seeds)() {
        (target.run)(&seed);
    }
    for (path, data) in regressions(name) {
        // The panic's own message is printed by the hook; this names the input.
        if std::panic::catch_unwind(|| (target.run)(&data)).is_err() {
            panic!("{name}: {} fails again", path.display());
        }
    }
}

macro_rules! replay_tests {
    ($($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                replay(stringify!($name));
            }
        )*

        #[test]
        fn every_target_is_replayed() {
            let tested = [$(stringify!($name)),*];
            for t in fourk_fuzz::TARGETS {
                assert!(tested.contains(&t.name), "no replay test for {}", t.name);
            }
        }
    };
}

replay_tests!(
    size,
    sse,
    emulator_json,
    multipart,
    multipart_boundary,
    jobs,
    sidecar,
    manifest,
    image,
    jpeg_check,
    png_rows,
    webp_check,
);

#[test]
fn every_regression_folder_names_a_target() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus-regressions");
    for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        assert!(
            fourk_fuzz::target(&name).is_some(),
            "fuzz/corpus-regressions/{name} is not a target's folder"
        );
    }
}

/// A smoke run of the mutator for CI: a few hundred mutations of each target's seeds, from a
/// fixed seed so that a failure is reproducible (`fourk-fuzz run` does the real fuzzing).
#[test]
fn seeded_mutations_of_every_target() {
    for t in fourk_fuzz::TARGETS {
        let corpus = (t.seeds)();
        let slow = t.name.starts_with("emulator") || t.name.starts_with("multipart");
        let mut rng = fastrand::Rng::with_seed(0x0066_6f75_726b);
        for _ in 0..if slow { 100 } else { 500 } {
            let a = &corpus[rng.usize(0..corpus.len())];
            let b = &corpus[rng.usize(0..corpus.len())];
            let input = fourk_fuzz::mutate::mutate(&mut rng, a, b, t.dictionary, 1 << 16);
            if std::panic::catch_unwind(|| (t.run)(&input)).is_err() {
                panic!("{}: a mutation panics: {input:?}", t.name);
            }
        }
    }
}
