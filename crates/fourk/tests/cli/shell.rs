//! What a user installs beside the binary and looks at first: `--version`, shell completions,
//! the manual page, and `fourk probe` (headers only).

use std::io::Cursor;
use std::process::Command as Process;

use crate::common::{fourk, json_stdout};

#[test]
fn version_names_the_capability_tables_newest_check() {
    let out = fourk().arg("--version").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    let newest = fourk_api::Capabilities::builtin()
        .models
        .iter()
        .filter_map(|m| m.checked.clone())
        .max()
        .unwrap();
    assert_eq!(
        text.trim(),
        format!(
            "fourk {} (capability table checked {newest})",
            env!("CARGO_PKG_VERSION")
        )
    );
}

/// The bash script is loaded into a real bash and asked to complete, as the shell would.
#[test]
fn bash_completion_completes_commands_and_flags() {
    let script = fourk().args(["completions", "bash"]).output().unwrap();
    assert!(script.status.success());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fourk.bash");
    std::fs::write(&path, &script.stdout).unwrap();
    let complete = |words: &str| {
        let n = words.split(' ').count() - 1;
        let out = Process::new("bash")
            .arg("-c")
            .arg(format!(
                "source '{}'; COMP_WORDS=({words}); COMP_CWORD={n}; COMP_LINE='{words}'; COMP_POINT=${{#COMP_LINE}}; \
                 _fourk fourk \"${{COMP_WORDS[$COMP_CWORD]}}\" \"${{COMP_WORDS[$COMP_CWORD-1]}}\"; printf '%s\\n' \"${{COMPREPLY[@]}}\"",
                path.display()
            ))
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    };
    let commands = complete("fourk ");
    for c in ["generate", "probe", "completions", "man", "verify"] {
        assert!(commands.lines().any(|l| l == c), "{c} missing from: {commands}");
    }
    assert_eq!(complete("fourk pro").trim(), "probe");
    let flags = complete("fourk generate --si");
    assert_eq!(flags.trim(), "--size");
    let shells = complete("fourk completions ");
    for s in ["bash", "zsh", "fish", "powershell"] {
        assert!(shells.lines().any(|l| l == s), "{s} missing from: {shells}");
    }
}

#[test]
fn zsh_fish_and_powershell_scripts_name_every_command() {
    for (shell, marker) in [
        ("zsh", "#compdef fourk"),
        ("fish", "complete -c fourk"),
        ("powershell", "Register-ArgumentCompleter"),
    ] {
        let out = fourk().args(["completions", shell]).output().unwrap();
        assert!(out.status.success(), "{shell}");
        let text = String::from_utf8(out.stdout).unwrap();
        assert!(text.contains(marker), "{shell}: no {marker}");
        for c in ["generate", "upscale", "probe", "batch"] {
            assert!(text.contains(c), "{shell}: {c} missing");
        }
    }
    let bad = fourk().args(["completions", "tcsh"]).output().unwrap();
    assert_eq!(bad.status.code(), Some(2), "an unknown shell is a usage error");
    assert!(String::from_utf8_lossy(&bad.stderr).contains("possible values"));
}

#[test]
fn man_prints_a_page_and_writes_one_per_command() {
    let out = fourk().arg("man").output().unwrap();
    assert!(out.status.success());
    let page = String::from_utf8(out.stdout).unwrap();
    assert!(
        page.starts_with(".ie \\n(.g .ds Aq") || page.contains(".TH fourk 1"),
        "{}",
        &page[..200.min(page.len())]
    );
    assert!(page.contains(".TH fourk 1"));
    assert!(
        page.contains("capability table checked"),
        "the version is on the page"
    );
    for c in ["generate", "probe", "completions"] {
        assert!(page.contains(c), "{c} missing");
    }
    // man(1) itself formats it without complaint, where it is installed.
    if Process::new("man")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
    {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("fourk.1");
        std::fs::write(&file, &page).unwrap();
        let shown = Process::new("man")
            .arg("-l")
            .arg(&file)
            .env("MANPAGER", "cat")
            .env("MANWIDTH", "100")
            .output()
            .unwrap();
        assert!(shown.status.success());
        assert!(String::from_utf8_lossy(&shown.stdout).contains("Verified high-resolution images"));
    }

    let dir = tempfile::tempdir().unwrap();
    let pages = dir.path().join("man1");
    let out = fourk().args(["man", "--out-dir"]).arg(&pages).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    for name in ["fourk.1", "fourk-generate.1", "fourk-probe.1", "fourk-batch.1"] {
        let text = std::fs::read_to_string(pages.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(text.contains(".TH"), "{name}");
    }
    let generate = std::fs::read_to_string(pages.join("fourk-generate.1")).unwrap();
    assert!(
        generate.contains("\\-\\-size"),
        "the generate page lists its flags"
    );
}

fn encoded(img: image::DynamicImage, format: image::ImageFormat) -> Vec<u8> {
    let mut out = Vec::new();
    img.write_to(&mut Cursor::new(&mut out), format).unwrap();
    out
}

#[test]
fn probe_reads_headers_only_and_names_each_failure() {
    let dir = tempfile::tempdir().unwrap();
    let rgba16 = image::DynamicImage::ImageRgba16(image::ImageBuffer::from_pixel(
        64,
        48,
        image::Rgba([1u16, 2, 3, 4]),
    ));
    let rgb = image::DynamicImage::ImageRgb8(image::RgbImage::from_fn(80, 32, |x, y| {
        image::Rgb([x as u8, y as u8, 9])
    }));
    std::fs::write(
        dir.path().join("deep.png"),
        encoded(rgba16, image::ImageFormat::Png),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("photo.jpg"),
        encoded(rgb.clone(), image::ImageFormat::Jpeg),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("web.webp"),
        encoded(rgb.clone(), image::ImageFormat::WebP),
    )
    .unwrap();
    // Named .png but a JPEG: the magic bytes decide.
    std::fs::write(
        dir.path().join("renamed.png"),
        encoded(rgb.clone(), image::ImageFormat::Jpeg),
    )
    .unwrap();
    // Cut after its header: probe still answers (it reads no pixels), verify does not pass it.
    let whole = encoded(rgb, image::ImageFormat::Png);
    std::fs::write(dir.path().join("cut.png"), &whole[..whole.len() / 2]).unwrap();
    std::fs::write(dir.path().join("notes.txt"), "not an image").unwrap();

    let files = [
        "deep.png",
        "photo.jpg",
        "web.webp",
        "renamed.png",
        "cut.png",
        "notes.txt",
        "missing.png",
    ];
    let out = fourk()
        .current_dir(dir.path())
        .arg("probe")
        .args(files)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "unreadable files fail the run");
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines,
        [
            "deep.png PNG 64x48 rgba16 16-bit alpha",
            "photo.jpg JPEG 80x32 rgb8 8-bit",
            "web.webp WEBP 80x32 rgb8 8-bit",
            "renamed.png JPEG 80x32 rgb8 8-bit",
            "cut.png PNG 80x32 rgb8 8-bit",
        ]
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("notes.txt") && err.contains("missing.png"), "{err}");

    let out = fourk()
        .current_dir(dir.path())
        .args(["probe", "--json"])
        .args(files)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let v = json_stdout(&out);
    let all = v.as_array().unwrap();
    assert_eq!(all.len(), files.len());
    assert_eq!(all[0]["file"], "deep.png");
    assert_eq!(all[0]["format"], "png");
    assert_eq!(all[0]["width"], 64);
    assert_eq!(all[0]["height"], 48);
    assert_eq!(all[0]["color"], "rgba16");
    assert_eq!(all[0]["bit_depth"], 16);
    assert_eq!(all[0]["has_alpha"], true);
    assert_eq!(all[3]["format"], "jpeg");
    assert!(
        all[5]["error"].as_str().unwrap().contains("magic bytes"),
        "{}",
        all[5]
    );
    assert!(all[6]["error"].is_string() && all[6].get("width").is_none());

    let verify = fourk()
        .current_dir(dir.path())
        .args(["verify", "cut.png"])
        .output()
        .unwrap();
    assert_eq!(verify.status.code(), Some(1), "the full decode finds the cut");
}
