//! One rule for every file a command writes (issue 13, points 1 and 2): folders and names
//! without an extension, no file replaced without --force, default names that never collide,
//! and an unusable output folder found before anything is sent. Each "nothing was sent" is
//! proved by the emulator's request log.

use std::path::Path;
use std::process::Output;

use crate::common::{Emulator, fourk, fourk_unsent};

const KEY: &str = "sk-test-outputs";

/// `fourk ARGS --base-url EMU` in `dir`.
fn run(dir: &Path, emu: &Emulator, args: &[&str]) -> Output {
    fourk()
        .current_dir(dir)
        .env("OPENAI_API_KEY", KEY)
        .args(args)
        .args(["--base-url", &emu.base])
        .output()
        .unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

const SMALL: [&str; 4] = ["--size", "1024x1024", "--quality", "low"];

fn generate<'a>(extra: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec!["generate", "a red kite"];
    v.extend(SMALL);
    v.extend(extra);
    v
}

/// `fourk-YYYYMMDD-HHMMSS-mmm-xxxx.EXT`
fn is_default_name(name: &str, prefix: &str, ext: &str) -> bool {
    let Some(rest) = name
        .strip_prefix(&format!("{prefix}-"))
        .and_then(|r| r.strip_suffix(&format!(".{ext}")))
    else {
        return false;
    };
    let parts: Vec<&str> = rest.split('-').collect();
    parts.len() == 4
        && parts[0].len() == 8
        && parts[1].len() == 6
        && parts[2].len() == 3
        && parts[..3].iter().all(|p| p.bytes().all(|b| b.is_ascii_digit()))
        && parts[3].len() == 4
        && parts[3].bytes().all(|b| b.is_ascii_hexdigit())
}

fn images_in(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".png") || n.ends_with(".jpg") || n.ends_with(".webp"))
        .collect();
    v.sort();
    v
}

#[test]
fn a_folder_or_a_name_without_extension_is_written_the_way_people_expect() {
    let emu = Emulator::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir(d.join("shots")).unwrap();

    // An existing folder: the default name inside it.
    let o = run(d, &emu, &generate(&["--out", "shots"]));
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let inside = images_in(&d.join("shots"));
    assert_eq!(inside.len(), 1, "{inside:?}");
    assert!(is_default_name(&inside[0], "fourk", "png"), "{inside:?}");
    assert!(d.join("shots").join(format!("{}.json", inside[0])).is_file());
    assert!(!d.join("shots.png").exists(), "wrote the sibling");

    // A new folder named with a trailing slash: made, and the default name inside it.
    let o = run(d, &emu, &generate(&["--out", "new/", "--format", "webp"]));
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let inside = images_in(&d.join("new"));
    assert!(
        inside.len() == 1 && is_default_name(&inside[0], "fourk", "webp"),
        "{inside:?}"
    );

    // No extension: the format's, said on stderr.
    let o = run(d, &emu, &generate(&["--out", "noext", "--format", "jpeg"]));
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(d.join("noext.jpg").is_file());
    assert!(!d.join("noext").exists());
    assert!(
        stderr(&o).contains("no extension") && stderr(&o).contains("noext.jpg"),
        "{}",
        stderr(&o)
    );

    // A pipeline command follows the same rule.
    let o = fourk()
        .current_dir(d)
        .args(["convert", "noext.jpg", "--out", "shots/", "--format", "png"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let inside = images_in(&d.join("shots"));
    assert!(
        inside.iter().any(|n| is_default_name(n, "fourk-convert", "png")),
        "{inside:?}"
    );
}

#[test]
fn an_existing_file_is_never_replaced_without_force_and_nothing_is_sent() {
    let emu = Emulator::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let o = run(d, &emu, &generate(&["--out", "a.png"]));
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let first = std::fs::read(d.join("a.png")).unwrap();
    assert_eq!(emu.posts().len(), 1);

    // The image, then only its sidecar, then a numbered file of -n: each refused, unsent.
    let o = run(d, &emu, &generate(&["--out", "a.png"]));
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(
        e.contains("a.png") && e.contains("--force") && e.contains("nothing was sent"),
        "{e}"
    );
    std::fs::rename(d.join("a.png"), d.join("keep.png")).unwrap();
    let o = run(d, &emu, &generate(&["--out", "a.png"]));
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("a.png.json"), "{}", stderr(&o));
    std::fs::write(d.join("b-2.png"), b"mine").unwrap();
    let o = run(d, &emu, &generate(&["--out", "b.png", "-n", "2"]));
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("b-2.png"), "{}", stderr(&o));
    // Kept partial images are files of the run too.
    std::fs::write(d.join("s.partial-0.png"), b"mine").unwrap();
    let o = run(
        d,
        &emu,
        &generate(&["--out", "s.png", "--stream", "--partials", "1", "--keep-partials"]),
    );
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("s.partial-0.png"), "{}", stderr(&o));
    assert_eq!(emu.posts().len(), 1, "a refused run sent a request");
    assert_eq!(std::fs::read(d.join("b-2.png")).unwrap(), b"mine");

    // --force replaces.
    std::fs::write(d.join("a.png"), b"old").unwrap();
    let o = run(d, &emu, &generate(&["--out", "a.png", "--force"]));
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(emu.posts().len(), 2);
    assert!(std::fs::read(d.join("a.png")).unwrap() == first, "not replaced");

    // The pipeline: refused before the input is read, replaced with --force.
    for args in [
        &["upscale", "keep.png", "--to", "2048x2048", "--out", "up.png"][..],
        &["convert", "keep.png", "--out", "up.png"],
    ] {
        let o = fourk().current_dir(d).args(args).output().unwrap();
        let code = o.status.code();
        if args[0] == "upscale" {
            assert_eq!(code, Some(0), "{}", stderr(&o));
        } else {
            assert_eq!(code, Some(2), "{}", stderr(&o));
            assert!(stderr(&o).contains("up.png") && stderr(&o).contains("--force"));
        }
    }
    let o = fourk()
        .current_dir(d)
        .args(["convert", "keep.png", "--out", "up.png", "--force"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
}

#[test]
fn an_edit_and_a_transparent_run_check_every_file_they_would_write() {
    let emu = Emulator::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let o = run(d, &emu, &generate(&["--out", "in.png"]));
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    std::fs::write(d.join("e.png"), b"mine").unwrap();
    let o = run(
        d,
        &emu,
        &[
            "edit",
            "in.png",
            "make it blue",
            "--size",
            "1024x1024",
            "--out",
            "e.png",
        ],
    );
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("e.png") && stderr(&o).contains("--force"),
        "{}",
        stderr(&o)
    );
    // --transparent may write NAME.key.png on its fallback: checked before the first request.
    std::fs::write(d.join("t.key.png"), b"mine").unwrap();
    let o = run(d, &emu, &generate(&["--out", "t.png", "--transparent"]));
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("t.key.png"), "{}", stderr(&o));
    assert_eq!(emu.posts().len(), 1, "a refused run sent a request");
    let o = run(
        d,
        &emu,
        &[
            "edit",
            "in.png",
            "make it blue",
            "--size",
            "1024x1024",
            "--out",
            "e.png",
            "--force",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_ne!(std::fs::read(d.join("e.png")).unwrap(), b"mine");
}

#[test]
fn the_workflows_check_every_step_s_files_before_the_first_request() {
    let emu = Emulator::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // draft: the contact sheet it lays out after the drafts.
    std::fs::write(d.join("d-sheet.png"), b"mine").unwrap();
    let o = run(
        d,
        &emu,
        &[
            "--ledger", "l.db", "draft", "a boat", "--size", "4k", "-n", "2", "--out", "d.png",
        ],
    );
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("d-sheet.png"), "{}", stderr(&o));
    // deliver: the fallback's master.
    std::fs::write(d.join("x.master.png"), b"mine").unwrap();
    let o = run(
        d,
        &emu,
        &[
            "--ledger", "l.db", "deliver", "a boat", "--size", "4k", "--out", "x.png",
        ],
    );
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("x.master.png"), "{}", stderr(&o));
    assert_eq!(emu.posts().len(), 0, "a refused run sent a request");
}

#[test]
fn runs_without_out_never_share_a_name() {
    let emu = Emulator::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let spawn = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_fourk"))
            .current_dir(d)
            .env("OPENAI_API_KEY", KEY)
            .env_remove("OPENAI_BASE_URL")
            .args(generate(&["--base-url", &emu.base]))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap()
    };
    // Started together, so they finish within the same second.
    let children: Vec<_> = (0..3).map(|_| spawn()).collect();
    for mut c in children {
        assert!(c.wait().unwrap().success());
    }
    let names = images_in(d);
    assert_eq!(names.len(), 3, "{names:?}");
    assert!(
        names.iter().all(|n| is_default_name(n, "fourk", "png")),
        "{names:?}"
    );
    assert_eq!(emu.posts().len(), 3);
}

#[test]
fn an_output_folder_that_cannot_be_written_is_found_before_sending() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("plain"), b"a file").unwrap();
    // A path under a regular file. fourk_unsent points at a port where nothing listens: a
    // request would fail with a connection error instead.
    let o = fourk_unsent()
        .current_dir(d)
        .args(generate(&["--out", "plain/sub/x.png"]))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("plain is a file, not a folder") && stderr(&o).contains("--out"),
        "{}",
        stderr(&o)
    );
    // A folder nobody can write into, root included (procfs).
    #[cfg(target_os = "linux")]
    {
        let o = fourk_unsent()
            .current_dir(d)
            .args(generate(&["--out", "/proc/self/x.png"]))
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
        assert!(stderr(&o).contains("not writable"), "{}", stderr(&o));
    }
    assert!(!stderr(&o).contains("127.0.0.1:9"), "{}", stderr(&o));
}

#[test]
fn a_new_batch_job_does_not_replace_a_file_and_a_resume_keeps_its_own() {
    let emu = Emulator::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(
        d.join("jobs.jsonl"),
        "{\"prompt\": \"a\", \"name\": \"one\", \"size\": \"1024x1024\", \"quality\": \"low\"}\n{\"prompt\": \"b\", \"name\": \"two\", \"size\": \"1024x1024\", \"quality\": \"low\"}\n",
    )
    .unwrap();
    let batch = |extra: &[&str]| {
        let mut args = vec!["--ledger", "ledger.db", "batch", "jobs.jsonl", "--out", "out"];
        args.extend(extra);
        run(d, &emu, &args)
    };
    std::fs::create_dir(d.join("out")).unwrap();
    std::fs::write(d.join("out").join("two.png"), b"mine").unwrap();
    let o = batch(&[]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("two.png") && stderr(&o).contains("--force"),
        "{}",
        stderr(&o)
    );
    assert_eq!(emu.posts().len(), 0);
    std::fs::remove_file(d.join("out").join("two.png")).unwrap();
    let o = batch(&[]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(emu.posts().len(), 2);
    // Again: both jobs are done, their files are the batch's own, nothing is sent.
    let o = batch(&[]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(emu.posts().len(), 2);
}
