#![allow(clippy::print_stdout, clippy::print_stderr, missing_docs)]
use std::time::Instant;
use fourk_imaging::*;
#[path = "../benches/support/mod.rs"]
mod support;
fn t<R>(name: &str, mut f: impl FnMut() -> R) {
    let mut v = vec![];
    for _ in 0..7 { let s = Instant::now(); let r = f(); v.push(s.elapsed().as_secs_f64()*1e3); drop(r); }
    v.sort_by(|a,b| a.partial_cmp(b).unwrap());
    println!("{name:30} min {:7.1} med {:7.1} ms", v[0], v[3]);
}
fn main() {
    let png = support::photo_png();
    let body = support::response_body(&png);
    let dir = tempfile::tempdir().unwrap();
    let parsed: support::Body<'_> = serde_json::from_str(&body).unwrap();
    let b64 = &parsed.data[0].b64_json;
    let bytes = decode_b64(b64).unwrap();
    let l = std::fs::read_to_string("/proc/loadavg").unwrap(); println!("load {l}");
    t("load_from_memory", || image::load_from_memory(&png).unwrap());
    t("json", || serde_json::from_str::<support::Body<'_>>(&body).unwrap().data.len());
    t("decode_b64 (parallel)", || decode_b64(b64).unwrap());
    t("b64 single", || { use base64::Engine; base64::engine::general_purpose::STANDARD.decode(b64.as_bytes()).unwrap() });
    t("verify_bytes", || verify_bytes(&bytes, &Expect::default()));
    t("sha256", || { use sha2::Digest; sha2::Sha256::digest(&bytes) });
    t("save_atomic", || save_atomic(&dir.path().join("a.png"), &bytes).unwrap());
    t("write no sync", || std::fs::write(dir.path().join("b.png"), &bytes).unwrap());
    t("png stream decode only", || {
        let mut d = png::Decoder::new(std::io::Cursor::new(&bytes[..]));
        d.set_ignore_text_chunk(true);
        let mut r = d.read_info().unwrap();
        while let Some(_row) = r.next_row().unwrap() {}
    });
    t("png next_frame", || {
        let d = png::Decoder::new(std::io::Cursor::new(&bytes[..]));
        let mut r = d.read_info().unwrap();
        let mut buf = vec![0; r.output_buffer_size().unwrap()];
        r.next_frame(&mut buf).unwrap();
    });
    t("save_verified", || save_verified(&dir.path().join("c.png"), b64, &Expect::default()).unwrap());
    t("json+save_verified", || { let p: support::Body<'_> = serde_json::from_str(&body).unwrap(); save_verified(&dir.path().join("c.png"), &p.data[0].b64_json, &Expect::default()).unwrap() });
    let l = std::fs::read_to_string("/proc/loadavg").unwrap(); println!("load {l}");
}
