//! The jobs file: JSONL (one object a line) or CSV (a header row), each record a prompt and
//! its options. Every record becomes a normalised [`JobSpec`] with a stable key before any
//! request is sent; a file with a bad record is refused as a whole, naming every bad line.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use fourk_api::{Background, Moderation, OutputFormat, ProviderKind, Quality, Size};
use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::names;

/// The keys a job may have. Anything else is refused (a typo would silently change a job).
pub const KEYS: &[&str] = &[
    "prompt",
    "size",
    "quality",
    "format",
    "name",
    "model",
    "images",
    "image",
    "mask",
    "background",
    "compression",
    "moderation",
    "n",
    "provider",
];

/// Values every job gets unless it sets its own (from the command line).
#[derive(Debug, Clone)]
pub struct Defaults {
    /// The image model.
    pub model: String,
    /// Output size.
    pub size: Size,
    /// Quality (not sent when `None`).
    pub quality: Option<Quality>,
    /// Output format.
    pub format: OutputFormat,
}

/// One job, normalised: every default applied, paths absolute, the name sanitised. Its
/// JSON is what the job key hashes, so the field order is part of the format.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct JobSpec {
    /// The image model.
    pub model: String,
    /// The prompt.
    pub prompt: String,
    /// Output size.
    pub size: Size,
    /// Quality (not sent when `None`).
    pub quality: Option<Quality>,
    /// Output format.
    pub format: OutputFormat,
    /// `output_compression`.
    pub compression: Option<u8>,
    /// Background.
    pub background: Option<Background>,
    /// Moderation.
    pub moderation: Option<Moderation>,
    /// Images in the request.
    pub n: u8,
    /// Reference images: with any, the job is an edit.
    pub images: Vec<PathBuf>,
    /// The edit mask.
    pub mask: Option<PathBuf>,
    /// The output file stem (sanitised).
    pub name: String,
    /// The provider this job goes to (`provider` key); `None`: the batch's (`--provider`,
    /// the environment, or the model's own). Not in the JSON when unset, so the keys of jobs
    /// written before the key existed do not change.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider: Option<ProviderKind>,
}

/// A parsed job with its identity.
#[derive(Debug, Clone)]
pub struct Job {
    /// 1-based line (JSONL) or record (CSV, after the header) number.
    pub line: u32,
    /// Stable id: the same spec in the same output folder always has the same key.
    pub key: String,
    /// The spec.
    pub spec: JobSpec,
    /// The spec as JSON (stored in the ledger).
    pub spec_json: String,
}

impl Job {
    /// The short id shown to users (first 12 hex digits of the key).
    #[must_use]
    pub fn short_id(&self) -> &str {
        self.key.get(..12).unwrap_or(&self.key)
    }
}

/// The file's layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// One JSON object a line; blank lines and lines starting with `#` are skipped.
    Jsonl,
    /// Comma-separated with a header row naming the keys.
    Csv,
}

impl Layout {
    /// From the extension (`.csv`, `.jsonl`/`.ndjson`/`.json`), else from the first
    /// non-blank character (`{` means JSONL).
    #[must_use]
    pub fn detect(path: &Path, text: &str) -> Self {
        match path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            Some("csv") => Self::Csv,
            Some("jsonl" | "ndjson" | "json") => Self::Jsonl,
            _ if text.trim_start().starts_with('{') => Self::Jsonl,
            _ => Self::Csv,
        }
    }
}

/// Problems found in a jobs file, each with its line number, in the order found.
pub type Problems = Vec<(u32, String)>;

/// Read and normalise a jobs file in one pass: the jobs that parse, and every problem of
/// every line (syntax, unknown or bad fields, duplicate output names) together. `out_dir` is
/// part of each key (the same jobs into another folder are other jobs). Relative image paths
/// are relative to the jobs file.
///
/// # Errors
/// A file that cannot be read at all (missing, not UTF-8, a CSV header that cannot be read),
/// or one with no jobs and no problems.
pub fn load(path: &Path, out_dir: &Path, defaults: &Defaults) -> Result<(Vec<Job>, Problems), String> {
    let bytes =
        std::fs::read(path).map_err(|e| format!("cannot read the jobs file {}: {e}", path.display()))?;
    let text = String::from_utf8(bytes).map_err(|_| {
        format!(
            "the jobs file {} is not UTF-8 text; save it as UTF-8",
            path.display()
        )
    })?;
    let base = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
    let base = std::path::absolute(&base).unwrap_or(base);
    parse(&text, Layout::detect(path, &text), &base, out_dir, defaults)
}

/// Normalise the text of a jobs file laid out as `layout`, in one pass: what [`load`] does
/// after reading the file. Relative image paths are relative to `base`.
///
/// # Errors
/// As [`load`], without the reading errors.
pub fn parse(
    text: &str,
    layout: Layout,
    base: &Path,
    out_dir: &Path,
    defaults: &Defaults,
) -> Result<(Vec<Job>, Problems), String> {
    let (records, mut problems) = match layout {
        Layout::Jsonl => jsonl_records(text),
        Layout::Csv => csv_records(text)?,
    };
    let (jobs, more) = parse_records(records, base, out_dir, defaults);
    problems.extend(more);
    if jobs.is_empty() && problems.is_empty() {
        return Err("the jobs file has no jobs; write one JSON object a line, or a CSV with a header row and a `prompt` column".into());
    }
    Ok((jobs, problems))
}

type Record = (u32, BTreeMap<String, Value>);

fn jsonl_records(text: &str) -> (Vec<Record>, Problems) {
    let mut out = Vec::new();
    let mut errs = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let n = u32::try_from(i + 1).unwrap_or(u32::MAX);
        let t = line.trim();
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        match serde_json::from_str::<BTreeMap<String, Value>>(t) {
            Ok(m) => out.push((n, m)),
            Err(e) => errs.push((n, format!("not a JSON object: {e}"))),
        }
    }
    (out, errs)
}

fn csv_records(text: &str) -> Result<(Vec<Record>, Problems), String> {
    let mut rdr = csv::ReaderBuilder::new()
        .flexible(false)
        .trim(csv::Trim::All)
        .comment(Some(b'#'))
        .from_reader(text.as_bytes());
    let headers: Vec<String> = rdr
        .headers()
        .map_err(|e| format!("the CSV header row cannot be read: {e}"))?
        .iter()
        .map(|h| h.trim().to_ascii_lowercase())
        .collect();
    let mut out = Vec::new();
    let mut errs = Vec::new();
    for rec in rdr.records() {
        match rec {
            Ok(r) => {
                let line = r
                    .position()
                    .map_or(0, |p| u32::try_from(p.line()).unwrap_or(u32::MAX));
                let mut m = BTreeMap::new();
                for (h, v) in headers.iter().zip(r.iter()) {
                    if v.is_empty() {
                        continue;
                    }
                    let v = if h == "images" {
                        Value::Array(
                            v.split([';', '|'])
                                .map(str::trim)
                                .filter(|s| !s.is_empty())
                                .map(|s| Value::String(s.to_owned()))
                                .collect(),
                        )
                    } else {
                        Value::String(v.to_owned())
                    };
                    m.insert(h.clone(), v);
                }
                out.push((line, m));
            }
            Err(e) => {
                let line = e
                    .position()
                    .map_or(0, |p| u32::try_from(p.line()).unwrap_or(u32::MAX));
                errs.push((line, format!("{e}")));
            }
        }
    }
    Ok((out, errs))
}

fn text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn parse_records(records: Vec<Record>, base: &Path, out_dir: &Path, d: &Defaults) -> (Vec<Job>, Problems) {
    let mut errs: Problems = Vec::new();
    let mut jobs = Vec::new();
    let mut seen: HashMap<String, u32> = HashMap::new();
    let mut names: HashMap<String, u32> = HashMap::new();
    let out_key = std::path::absolute(out_dir)
        .unwrap_or_else(|_| out_dir.to_path_buf())
        .to_string_lossy()
        .into_owned();
    for (line, rec) in records {
        let spec = match spec_of(&rec, base, d) {
            Ok(s) => s,
            Err(es) => {
                errs.extend(es.into_iter().map(|e| (line, e)));
                continue;
            }
        };
        let spec_json = serde_json::to_string(&spec).unwrap_or_default();
        // Identical specs on several lines are several jobs: the occurrence number is the
        // line identity, so inserting or moving other lines keeps every key.
        let occurrence = seen.entry(spec_json.clone()).or_insert(0);
        *occurrence += 1;
        let mut h = Sha256::new();
        h.update(b"fourk-batch-job/1\0");
        h.update(out_key.as_bytes());
        h.update(b"\0");
        h.update(spec_json.as_bytes());
        h.update(b"\0");
        h.update(occurrence.to_string().as_bytes());
        let key = format!("{:x}", h.finalize());
        let mut spec = spec;
        if spec.name.is_empty() {
            spec.name = format!("job-{}", &key[..12]);
        }
        // The file stems the job writes: a job with n > 1 numbers them (`hero-1`, `hero-2`),
        // so a job named `hero-1` would overwrite one of them. Compared case-blind for
        // macOS and Windows.
        let stems: Vec<String> = if spec.n <= 1 {
            vec![spec.name.to_lowercase()]
        } else {
            (1..=spec.n)
                .map(|i| format!("{}-{i}", spec.name).to_lowercase())
                .collect()
        };
        if let Some((stem, first)) = stems.iter().find_map(|s| names.get(s).map(|f| (s, *f))) {
            errs.push((line, format!(
                "the output name '{stem}' is already used by line {first} (a job with n > 1 writes NAME-1, NAME-2, ...); give each job its own name"
            )));
            continue;
        }
        for stem in stems {
            names.insert(stem, line);
        }
        jobs.push(Job {
            line,
            key,
            spec_json,
            spec,
        });
    }
    (jobs, errs)
}

/// One record as a job, with every problem of the line (not only the first) in the error.
#[allow(clippy::too_many_lines)]
fn spec_of(rec: &BTreeMap<String, Value>, base: &Path, d: &Defaults) -> Result<JobSpec, Vec<String>> {
    let mut errs: Vec<String> = Vec::new();
    // The value of a fallible step, or its default with the problem noted.
    macro_rules! take {
        ($e:expr) => {
            match $e {
                Ok(v) => v,
                Err(e) => {
                    errs.push(e.to_string());
                    Default::default()
                }
            }
        };
    }
    let unknown: Vec<&str> = rec
        .keys()
        .map(String::as_str)
        .filter(|k| !KEYS.contains(k))
        .collect();
    if !unknown.is_empty() {
        errs.push(format!(
            "unknown key(s) {}; a job may have: {}",
            unknown
                .iter()
                .map(|k| format!("'{k}'"))
                .collect::<Vec<_>>()
                .join(", "),
            KEYS.join(", ")
        ));
    }
    let get = |k: &str| -> Result<Option<String>, String> {
        rec.get(k)
            .filter(|v| !v.is_null())
            .map(|v| text(v).ok_or_else(|| format!("'{k}' must be a string or a number")))
            .transpose()
    };
    let parse = |k: &str| -> Result<Option<String>, String> { Ok(get(k)?.filter(|s| !s.trim().is_empty())) };
    let prompt: Option<String> = take!(get("prompt"));
    let prompt = match prompt.filter(|p| !p.trim().is_empty()) {
        Some(p) => p,
        None => {
            if rec.get("prompt").is_none_or(|v| text(v).is_some()) {
                errs.push("'prompt' is missing or empty".into());
            }
            String::new()
        }
    };
    let size: Option<Size> = take!(
        take!(parse("size"))
            .map(|s: String| s.parse::<Size>().map_err(|e| format!("size: {e}")))
            .transpose()
    );
    let quality: Option<Quality> = take!(
        take!(parse("quality"))
            .map(|s: String| s.parse::<Quality>())
            .transpose()
    );
    let raw_name: String = take!(parse("name")).unwrap_or_default();
    // `hero.png` as a name means stem `hero`, format png.
    let (stem, name_format) = match raw_name.rsplit_once('.') {
        Some((stem, ext)) => match OutputFormat::from_extension(&ext.to_ascii_lowercase()) {
            Some(f) => (stem.to_owned(), Some(f)),
            None => (raw_name.clone(), None),
        },
        None => (raw_name.clone(), None),
    };
    let format_key: Option<OutputFormat> = take!(
        take!(parse("format"))
            .map(|s: String| s.parse::<OutputFormat>())
            .transpose()
    );
    if let (Some(a), Some(b)) = (format_key, name_format)
        && a != b
    {
        errs.push(format!(
            "format '{a}' does not match the extension of name '{raw_name}'; drop one of them"
        ));
    }
    let format = format_key.or(name_format).unwrap_or(d.format);
    let name = if raw_name.is_empty() {
        String::new()
    } else if let Some(n) = names::sanitize(&stem) {
        n
    } else {
        errs.push(format!(
            "name '{raw_name}' has no usable characters; use letters, digits, '-', '_' or '.'"
        ));
        String::new()
    };
    let compression: Option<u8> = take!(
        take!(parse("compression"))
            .map(|s: String| {
                s.trim()
                    .parse::<u8>()
                    .ok()
                    .filter(|c| *c <= 100)
                    .ok_or_else(|| format!("compression '{s}' must be a whole number 0-100"))
            })
            .transpose()
    );
    let n: Option<u8> = take!(
        take!(parse("n"))
            .map(|s: String| {
                s.trim()
                    .parse::<u8>()
                    .ok()
                    .filter(|c| (1..=10).contains(c))
                    .ok_or_else(|| format!("n '{s}' must be a whole number 1-10"))
            })
            .transpose()
    );
    let mut images: Vec<String> = Vec::new();
    match rec.get("images") {
        None | Some(Value::Null) => {}
        Some(Value::Array(a)) => {
            if a.iter().any(|v| text(v).is_none()) {
                errs.push("'images' must be a list of paths".into());
            }
            images.extend(a.iter().filter_map(text));
        }
        Some(v) => match text(v) {
            Some(t) => images.extend(
                t.split([';', '|'])
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned),
            ),
            None => errs.push("'images' must be a list of paths".into()),
        },
    }
    if let Some(i) = take!(parse("image")) {
        images.insert(0, i);
    }
    let resolve = |p: &str| {
        let p = Path::new(p.trim());
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            base.join(p)
        }
    };
    let mask = take!(parse("mask")).map(|m: String| resolve(&m));
    if mask.is_some() && images.is_empty() {
        errs.push("a mask needs reference images ('images'); a mask only applies to an edit".into());
    }
    let model: Option<String> = take!(parse("model"));
    let background: Option<Background> = take!(
        take!(parse("background"))
            .map(|s: String| s.parse::<Background>())
            .transpose()
    );
    let moderation: Option<Moderation> = take!(
        take!(parse("moderation"))
            .map(|s: String| s.parse::<Moderation>())
            .transpose()
    );
    let provider: Option<ProviderKind> = take!(
        take!(parse("provider"))
            .map(|s: String| s
                .trim()
                .parse::<ProviderKind>()
                .map_err(|e| format!("provider: {e}")))
            .transpose()
    );
    if !errs.is_empty() {
        return Err(errs);
    }
    Ok(JobSpec {
        model: model.unwrap_or_else(|| d.model.clone()),
        prompt,
        size: size.unwrap_or(d.size),
        quality: quality.or(d.quality),
        format,
        compression,
        background,
        moderation,
        n: n.unwrap_or(1),
        images: images.iter().map(|p| resolve(p)).collect(),
        mask,
        name,
        provider,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn defaults() -> Defaults {
        Defaults {
            model: "gpt-image-2".into(),
            size: Size::new(1024, 1024),
            quality: Some(Quality::Low),
            format: OutputFormat::Png,
        }
    }

    fn parse(text: &str, layout: Layout) -> Result<Vec<Job>, String> {
        let (recs, mut problems) = match layout {
            Layout::Jsonl => jsonl_records(text),
            Layout::Csv => csv_records(text)?,
        };
        let (jobs, more) = parse_records(recs, Path::new("/jobs"), Path::new("/out"), &defaults());
        problems.extend(more);
        if problems.is_empty() {
            Ok(jobs)
        } else {
            Err(problems
                .iter()
                .map(|(l, e)| format!("line {l}: {e}"))
                .collect::<Vec<_>>()
                .join("\n"))
        }
    }

    #[test]
    fn jsonl_and_csv_give_the_same_jobs() {
        let j = parse(
            "{\"prompt\":\"a cat\",\"name\":\"cat.webp\",\"size\":\"1536x1024\"}\n\n# comment\n{\"prompt\":\"a dog\",\"images\":[\"ref.png\"],\"quality\":\"high\"}\n",
            Layout::Jsonl,
        )
        .unwrap();
        let c = parse(
            "prompt,name,size,images,quality\na cat,cat.webp,1536x1024,,\na dog,,,ref.png,high\n",
            Layout::Csv,
        )
        .unwrap();
        assert_eq!(j.len(), 2);
        for (a, b) in j.iter().zip(&c) {
            assert_eq!(a.spec, b.spec);
            assert_eq!(a.key, b.key);
        }
        assert_eq!(j[0].spec.format, OutputFormat::Webp);
        assert_eq!(j[0].spec.name, "cat");
        assert_eq!(j[1].spec.images, vec![PathBuf::from("/jobs/ref.png")]);
        assert!(j[1].spec.name.starts_with("job-"));
    }

    #[test]
    fn keys_are_stable_and_distinct() {
        let a = parse(
            "{\"prompt\":\"x\"}\n{\"prompt\":\"x\"}\n{\"prompt\":\"y\"}\n",
            Layout::Jsonl,
        )
        .unwrap();
        let b = parse(
            "{\"prompt\":\"y\"}\n{\"prompt\":\"x\"}\n{\"prompt\":\"x\"}\n",
            Layout::Jsonl,
        )
        .unwrap();
        assert_ne!(a[0].key, a[1].key, "identical lines are distinct jobs");
        let ka: std::collections::BTreeSet<_> = a.iter().map(|j| j.key.clone()).collect();
        let kb: std::collections::BTreeSet<_> = b.iter().map(|j| j.key.clone()).collect();
        assert_eq!(ka, kb, "moving lines keeps the keys");
        let other = parse_records(
            jsonl_records("{\"prompt\":\"y\"}\n").0,
            Path::new("/jobs"),
            Path::new("/elsewhere"),
            &defaults(),
        )
        .0;
        assert!(
            !ka.contains(&other[0].key),
            "another output folder is another job"
        );
    }

    #[test]
    fn bad_records_are_all_named() {
        let e = parse(
            "{\"prompt\":\"\"}\n{\"prompt\":\"x\",\"sise\":\"4k\"}\n{\"prompt\":\"x\",\"size\":\"12x12x\"}\nnot json\n",
            Layout::Jsonl,
        )
        .unwrap_err();
        // A syntax error no longer hides the field errors of the other lines.
        for want in [
            "line 1: 'prompt'",
            "line 2: unknown key(s) 'sise'",
            "line 3: size",
            "line 4: not a JSON object",
        ] {
            assert!(e.contains(want), "{want} in {e}");
        }
        // Every problem of one line, not only the first.
        let e = parse(
            "{\"prompt\":\"\",\"quality\":\"ultra\",\"n\":\"99\",\"x\":1}\n",
            Layout::Jsonl,
        )
        .unwrap_err();
        assert_eq!(e.lines().count(), 4, "{e}");
        let e = parse(
            "{\"prompt\":\"\"}\n{\"prompt\":\"x\",\"sise\":\"4k\"}\n{\"prompt\":\"x\",\"quality\":\"ultra\"}\n{\"prompt\":\"x\",\"name\":\"..\"}\n",
            Layout::Jsonl,
        )
        .unwrap_err();
        for want in [
            "line 1: 'prompt'",
            "line 2: unknown key(s) 'sise'",
            "line 3: invalid quality",
            "line 4: name '..'",
        ] {
            assert!(e.contains(want), "{want} in {e}");
        }
    }

    #[test]
    fn hostile_names_stay_in_the_folder_and_collide_loudly() {
        let j = parse(
            "{\"prompt\":\"a\",\"name\":\"../../etc/x\"}\n{\"prompt\":\"b\",\"name\":\"/abs/y\"}\n{\"prompt\":\"c\",\"name\":\"NUL\"}\n{\"prompt\":\"d\",\"name\":\"a\\u0000b\"}\n",
            Layout::Jsonl,
        )
        .unwrap();
        let names: Vec<&str> = j.iter().map(|j| j.spec.name.as_str()).collect();
        assert_eq!(names, ["etc_x", "abs_y", "_NUL", "a_b"]);
        let e = parse(
            "{\"prompt\":\"a\",\"name\":\"Hero\"}\n{\"prompt\":\"b\",\"name\":\"hero.png\"}\n",
            Layout::Jsonl,
        )
        .unwrap_err();
        assert!(e.contains("already used by line 1"), "{e}");
        // n > 1 numbers the files, and the numbers count as names too.
        let e = parse(
            "{\"prompt\":\"a\",\"name\":\"hero\",\"n\":2}\n{\"prompt\":\"b\",\"name\":\"Hero-2\"}\n",
            Layout::Jsonl,
        )
        .unwrap_err();
        assert!(
            e.contains("line 2: the output name 'hero-2' is already used by line 1"),
            "{e}"
        );
        let ok = parse(
            "{\"prompt\":\"a\",\"name\":\"hero\",\"n\":2}\n{\"prompt\":\"b\",\"name\":\"hero-3\"}\n",
            Layout::Jsonl,
        );
        assert!(ok.is_ok(), "{ok:?}");
    }
}
