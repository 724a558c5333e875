//! The local pixel pipeline (`upscale`, `fit`, `convert`, `cutout`, `sheet`, `compare`) as
//! typed operations, and what they share: reading an untrusted input, the output encoding,
//! and delivering an output: encode, write text and provenance metadata, verify in memory,
//! save atomically (or as `NAME.rejected.EXT`), write the sidecar, summarise.
//!
//! Each operation takes its spec and a [`CancellationToken`] and runs on the calling thread
//! (they are CPU-bound: call them from a blocking task). Cancelled before anything is
//! written, they return [`Cancelled`]; a decoding problem is an
//! [`ImagingError`] in the error chain, a parameter problem a [`UsageError`].

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;
use fourk_api::OutputFormat;
use fourk_imaging::metadata::{self, MetadataReport, Provenance};
use fourk_imaging::{Expect, ImagingError, PipelineError, PngLevel};
use image::DynamicImage;
use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;

use crate::UsageError;
use crate::ledger::LinkKind;
use crate::send::Cancelled;
use crate::sidecar::{self, Checks, SIDECAR_VERSION};

mod compare;
mod convert;
mod cutout;
mod fit;
mod sheet;
mod upscale;

pub use compare::{CompareSpec, compare};
pub mod values;

pub use convert::{ConvertSpec, convert};
pub use cutout::{CutoutMethod, CutoutSpec, cutout};
pub use fit::{FitSpec, fit};
pub use sheet::{Entry, SheetSpec, sheet};
pub use upscale::{STRETCH_TOLERANCE, UpscaleSpec, upscale};

/// One pipeline operation, as a door asks for it: [`Operation::run`] does it and puts the
/// output in the ledger.
#[derive(Debug, Clone)]
pub enum Operation {
    /// [`upscale`].
    Upscale(UpscaleSpec),
    /// [`fit`].
    Fit(FitSpec),
    /// [`convert`].
    Convert(ConvertSpec),
    /// [`cutout`].
    Cutout(CutoutSpec),
    /// [`sheet`].
    Sheet(SheetSpec),
    /// [`compare`].
    Compare(CompareSpec),
}

impl Operation {
    /// `upscale`, `fit`, `convert`, `cutout`, `sheet` or `compare`.
    #[must_use]
    pub const fn name(&self) -> &'static str {
        match self {
            Self::Upscale(_) => "upscale",
            Self::Fit(_) => "fit",
            Self::Convert(_) => "convert",
            Self::Cutout(_) => "cutout",
            Self::Sheet(_) => "sheet",
            Self::Compare(_) => "compare",
        }
    }

    const fn link(&self) -> LinkKind {
        match self {
            Self::Upscale(_) => LinkKind::ImageToUpscale,
            Self::Fit(_) => LinkKind::ImageToFit,
            Self::Convert(_) => LinkKind::ImageToConvert,
            Self::Cutout(_) => LinkKind::ImageToCutout,
            Self::Sheet(_) => LinkKind::ImageToSheet,
            Self::Compare(_) => LinkKind::ImageToCompare,
        }
    }

    /// Do it, then record the output in the ledger at `ledger`: a run of the operation's
    /// name, the image (route `local.NAME`, no cost) and a link from each input the ledger
    /// knows. A ledger that cannot be written is a warning: no money is at stake, the file
    /// is what matters.
    ///
    /// # Errors
    /// The operation's.
    pub fn run(&self, ledger: &Path, cancel: &CancellationToken) -> anyhow::Result<Summary> {
        let summary = match self {
            Self::Upscale(s) => upscale(s, cancel),
            Self::Fit(s) => fit(s, cancel),
            Self::Convert(s) => convert(s, cancel),
            Self::Cutout(s) => cutout(s, cancel),
            Self::Sheet(s) => sheet(s, cancel),
            Self::Compare(s) => compare(s, cancel),
        }?;
        self.record(ledger, &summary);
        Ok(summary)
    }

    fn record(&self, ledger: &Path, s: &Summary) {
        let abs = |p: &Path| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
        let inputs: Vec<(PathBuf, String)> = s
            .inputs
            .iter()
            .map(|i| (abs(&i.path), i.sha256.clone()))
            .collect();
        let args = serde_json::json!({
            "inputs": inputs.iter().map(|(p, _)| p).collect::<Vec<_>>(),
            "out": abs(&s.path),
        });
        let image = crate::save::ImageSummary {
            path: s.path.clone(),
            width: Some(s.width),
            height: Some(s.height),
            format: Some(s.format.as_str().to_owned()),
            verified: s.verified,
            sidecar: s.sidecar.clone(),
            usage: None,
            cost: None,
            source: "local",
            ledger_id: None,
            attempt_id: None,
            sha256: String::new(),
            bytes: s.bytes,
            request_id: None,
            thumbnail: None,
        };
        let route = format!("local.{}", self.name());
        let result = crate::ledger::Ledger::open(ledger)
            .and_then(|l| l.record_local(self.name(), &args, &route, &image, &inputs, self.link()));
        if let Err(e) = result {
            tracing::warn!(
                "{} is written, but the ledger was not updated: {e}",
                s.path.display()
            );
        }
    }
}

/// The largest input file read. Four times a 16384x16384 RGBA frame would be absurd already;
/// this stops a mistaken path to a disk image before it fills memory.
pub const MAX_INPUT_BYTES: u64 = 1 << 30;
/// The largest sidecar read next to an input; real ones are a few kilobytes.
const MAX_SIDECAR_BYTES: u64 = 8 << 20;

/// How an output is to be written, as asked (the `--format`, `--quality`, `--png-level`,
/// `--lossless`, `--flatten` and `--meta` flags); [`Encode::resolve`] checks it against the
/// output's format.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Encode {
    /// The format (default: from the output's extension, else the operation's default).
    pub format: Option<OutputFormat>,
    /// 0-100, as the API's `output_compression`: JPEG or lossy WebP quality.
    pub quality: Option<u8>,
    /// PNG effort.
    pub png_level: Option<PngLevel>,
    /// Lossless WebP effort, 0-9 as `cwebp -z` (default [`fourk_imaging::WEBP_LOSSLESS_LEVEL`]).
    pub webp_effort: Option<u8>,
    /// Lossless WebP.
    pub lossless: bool,
    /// Composite transparent pixels onto this colour first.
    pub flatten: Option<[u8; 3]>,
    /// Text to store in a PNG (`KEY`, `VALUE`), after what the input carried.
    pub meta: Vec<(String, String)>,
    /// Replace a file already at the output's name (or its sidecar's); otherwise the
    /// operation refuses before it decodes anything.
    pub force: bool,
}

/// How the output is encoded, checked once against the format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Encoding {
    /// The format.
    pub format: OutputFormat,
    /// output_compression for JPEG and lossy WebP.
    pub quality: Option<u8>,
    /// PNG effort.
    #[serde(serialize_with = "ser_level")]
    pub png_level: Option<PngLevel>,
    /// Lossless (PNG always; WebP when asked or by default).
    pub lossless: bool,
    /// Lossless WebP effort (0-9) when one was asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub webp_effort: Option<u8>,
}

impl Encoding {
    /// The encoder settings beyond format and quality.
    #[must_use]
    pub fn options(&self) -> fourk_imaging::EncodeOptions {
        let options =
            fourk_imaging::EncodeOptions::default().with_png_level(self.png_level.unwrap_or_default());
        match self.webp_effort {
            Some(level) => options.with_webp_lossless_level(level),
            None => options,
        }
    }
}

#[allow(clippy::ref_option, clippy::trivially_copy_pass_by_ref)]
fn ser_level<S: serde::Serializer>(l: &Option<PngLevel>, s: S) -> Result<S::Ok, S::Error> {
    match l {
        None => s.serialize_none(),
        Some(l) => s.serialize_str(l.name()),
    }
}

impl Encode {
    /// The encoding for `out`, refusing combinations that mean nothing for the format.
    /// `default` is the format when neither --format nor the extension names one.
    ///
    /// # Errors
    /// [`UsageError`] naming the conflict and the fix.
    pub fn resolve(&self, out: &Path, default: OutputFormat) -> anyhow::Result<Encoding> {
        if let Some(ext) = out.extension().and_then(|e| e.to_str())
            && OutputFormat::from_extension(ext).is_none()
        {
            return Err(UsageError(format!(
                "--out {} has the extension .{ext}, which fourk does not write\n\nhint: name it .png, .jpg or .webp",
                out.display()
            ))
            .into());
        }
        let format = crate::image_api::output_format(self.format, Some(out))?.unwrap_or(default);
        let usage = |m: String| -> anyhow::Result<Encoding> { Err(UsageError(m).into()) };
        // The CLI's parser refuses these too; the MCP and studio doors pass them through.
        if let Some(q) = self.quality.filter(|&q| q > 100) {
            return usage(format!(
                "--quality {q} is outside 0-100\n\nhint: 90 is a good JPEG quality, 80 a good WebP one"
            ));
        }
        if let Some(e) = self.webp_effort.filter(|&e| e > 9) {
            return usage(format!(
                "--webp-effort {e} is outside 0-9 (cwebp -z)\n\nhint: 0 is fastest, 9 smallest; the default is {}",
                fourk_imaging::WEBP_LOSSLESS_LEVEL
            ));
        }
        match format {
            OutputFormat::Png => {
                if let Some(q) = self.quality {
                    return usage(format!(
                        "--quality {q} does not apply to PNG, which is always lossless\n\nhint: use --png-level fast|default|best to trade time for size, or --format jpeg|webp for lossy output"
                    ));
                }
                if self.webp_effort.is_some() {
                    return usage(
                        "--webp-effort applies to lossless WebP only, and the output is png\n\nhint: use --png-level fast|default|best for PNG".into(),
                    );
                }
                Ok(Encoding {
                    format,
                    quality: None,
                    png_level: Some(self.png_level.unwrap_or_default()),
                    lossless: true,
                    webp_effort: None,
                })
            }
            OutputFormat::Jpeg | OutputFormat::Webp => {
                if let Some(l) = self.png_level {
                    return usage(format!(
                        "--png-level {} applies to PNG only, and the output is {format}\n\nhint: drop --png-level, or use --quality 0-100 to set {format} quality",
                        l.name()
                    ));
                }
                if format == OutputFormat::Jpeg && self.lossless {
                    return usage(
                        "--lossless is impossible with JPEG, which is always lossy\n\nhint: use --format png, or --format webp --lossless".into(),
                    );
                }
                if self.lossless && self.quality.is_some() {
                    return usage(
                        "--lossless and --quality contradict each other: lossless WebP has no quality setting\n\nhint: drop one of them".into(),
                    );
                }
                let lossless = format == OutputFormat::Webp && self.quality.is_none();
                if let Some(e) = self.webp_effort {
                    if !lossless {
                        return usage(format!(
                            "--webp-effort {e} applies to lossless WebP only, and the output is {}\n\nhint: drop --webp-effort, or drop --quality for lossless WebP",
                            if format == OutputFormat::Jpeg {
                                "jpeg"
                            } else {
                                "lossy webp (--quality)"
                            }
                        ));
                    }
                    if e > 9 {
                        return usage(format!(
                            "--webp-effort {e} is out of range: lossless WebP effort is 0 (fastest) to 9 (smallest), as cwebp -z\n\nhint: pass --webp-effort 0-9 (default {})",
                            fourk_imaging::WEBP_LOSSLESS_LEVEL
                        ));
                    }
                }
                Ok(Encoding {
                    format,
                    quality: if format == OutputFormat::Jpeg {
                        Some(self.quality.unwrap_or(100))
                    } else {
                        self.quality
                    },
                    png_level: None,
                    lossless,
                    webp_effort: self.webp_effort.filter(|_| lossless),
                })
            }
        }
    }
}

/// The exact `WIDTH`, `HEIGHT` of `to`; `auto` is refused for `operation`, which `needs`
/// an exact size.
///
/// # Errors
/// [`UsageError`] for `auto`.
fn exact(to: fourk_api::Size, operation: &str, needs: &str) -> anyhow::Result<(u32, u32)> {
    to.dims().ok_or_else(|| {
        UsageError(format!(
            "--to auto is not a size: {operation} needs {needs}\n\nhint: --to 4k, or --to 3840x2160"
        ))
        .into()
    })
}

/// The encoding and the checked output path of `operation`: `out` resolved by the rule of
/// [`crate::outputs`] (a folder gets `fourk-OPERATION-...` inside it; a name without an
/// extension gets the format's), then checked (nothing there unless `--force`, a writable
/// folder with room for a `dims` picture). `default` is the format when neither --format
/// nor the extension names one. `size` is an output size the user asked for, held to the
/// pixel budget (the output is verified by decoding it). Runs before any input is decoded.
///
/// # Errors
/// [`UsageError`] naming the conflict or the path, and the fix.
pub fn output(
    out: &Path,
    encode: &Encode,
    default: OutputFormat,
    size: Option<(u32, u32)>,
    dims: Option<(u32, u32)>,
    operation: &str,
) -> anyhow::Result<(Encoding, PathBuf)> {
    if let Some((w, h)) = size
        && fourk_imaging::budget::check(w, h, 4).is_err()
    {
        return Err(UsageError(format!(
            "--to {w}x{h} is over the pixel budget of {} pixels, and fourk verifies every output by decoding it; nothing was computed\n\nhint: choose a smaller --to, or raise the budget with --max-pixels",
            fourk_imaging::budget::max_pixels()
        ))
        .into());
    }
    let named = if crate::outputs::names_folder(out) {
        let format = encode.format.unwrap_or(default);
        crate::outputs::resolve(
            Some(out),
            &format!("fourk-{operation}"),
            format,
            crate::outputs::image_files,
        )?
    } else {
        out.to_path_buf()
    };
    let enc = encode.resolve(&named, default)?;
    let path = crate::outputs::resolve(Some(&named), "fourk", enc.format, crate::outputs::image_files)?;
    crate::outputs::check(
        &crate::outputs::image_files(&path),
        encode.force,
        crate::outputs::worst_image_bytes(dims),
    )?;
    Ok((enc, path))
}

/// The format of `input` from its header (PNG when the header says nothing), for an output
/// that defaults to it, and its width and height when it has a header: one header read, before
/// the output is checked and the full decode.
fn input_header(input: &Path) -> (OutputFormat, Option<(u32, u32)>) {
    fourk_imaging::probe_file(input).map_or((OutputFormat::Png, None), |p| {
        (p.format, Some((p.width, p.height)))
    })
}

/// One input file, as recorded in a sidecar.
#[derive(Debug, Clone, Serialize)]
pub struct InputRecord {
    /// The path as given.
    pub path: PathBuf,
    /// SHA-256 of the file.
    pub sha256: String,
    /// File size.
    pub bytes: u64,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Format, from the magic bytes.
    pub format: OutputFormat,
}

/// What the input's own sidecar says about where the picture came from.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SourceInfo {
    /// The sidecar read.
    pub sidecar: PathBuf,
    /// The operation that made the input (`images.generate`, `upscale`, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub made_by: Option<String>,
    /// The prompt.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prompt: Option<String>,
    /// The model.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// The request settings other than the prompt, as compact JSON.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub settings: Option<String>,
    /// What the input cost, as its sidecar recorded it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cost: Option<Value>,
    /// Whether the input's sidecar says it verified.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verified: Option<bool>,
    /// Whether the input's bytes still have the SHA-256 its sidecar recorded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sha256_matches: Option<bool>,
}

impl SourceInfo {
    /// Read `<image>.json` when it exists. An unreadable or foreign sidecar is a warning, not
    /// an error: the picture is still worth processing.
    #[must_use]
    pub fn near(image: &Path, sha256: &str) -> Option<Self> {
        let path = sidecar::path_for(image);
        let file = fs::File::open(&path).ok()?;
        let mut text = String::new();
        if let Err(e) = file.take(MAX_SIDECAR_BYTES).read_to_string(&mut text) {
            tracing::warn!("ignoring the sidecar {}: {e}", path.display());
            return None;
        }
        let v: Value = match serde_json::from_str(&text) {
            Ok(v) => v,
            Err(e) => {
                tracing::warn!("ignoring the sidecar {}: not JSON ({e})", path.display());
                return None;
            }
        };
        Some(Self::from_json(path, &v, sha256))
    }

    /// Understands both sidecar kinds: a generated image's (`request`, `model`, `cost`) and a
    /// pipeline output's (`source`, carried forward). `path` is where `v` was read from;
    /// `sha256` is the image's digest, compared with the one the sidecar recorded.
    #[must_use]
    pub fn from_json(path: PathBuf, v: &Value, sha256: &str) -> Self {
        let s = |v: &Value| v.as_str().map(str::to_owned);
        let recorded_sha = v["checks"]["sha256"].as_str();
        let mut info = Self {
            sidecar: path,
            made_by: s(&v["operation"]).or_else(|| s(&v["route"])),
            verified: v["checks"]["verified"].as_bool(),
            sha256_matches: recorded_sha.map(|r| r == sha256),
            ..Self::default()
        };
        if let Some(src) = v.get("source").filter(|s| s.is_object()) {
            info.prompt = s(&src["prompt"]);
            info.model = s(&src["model"]);
            info.settings = s(&src["settings"]);
            info.cost = src.get("cost").filter(|c| !c.is_null()).cloned();
        } else {
            let req = &v["request"];
            info.prompt = s(&req["prompt"])
                .or_else(|| s(&v["responses"]["revised_prompt"]))
                .or_else(|| s(&req["input"]));
            info.model = s(&v["model"]).or_else(|| s(&req["model"]));
            if let Some(obj) = req.as_object() {
                let mut settings = obj.clone();
                for k in ["prompt", "model", "input", "stream"] {
                    settings.remove(k);
                }
                if !settings.is_empty() {
                    info.settings = serde_json::to_string(&settings).ok();
                }
            }
            info.cost = v.get("cost").filter(|c| !c.is_null()).cloned();
        }
        info
    }
}

/// A decoded input and what came with it.
#[derive(Debug)]
pub struct Input<I = DynamicImage> {
    /// The pixels (or what [`read_input_as`] decoded them into).
    pub image: I,
    /// For the sidecar.
    pub record: InputRecord,
    /// Provenance blocks found in the file.
    pub provenance: Vec<Provenance>,
    /// Text chunks found in the file (PNG).
    pub text: Vec<(String, String)>,
    /// What its sidecar says, if it has one.
    pub source: Option<SourceInfo>,
    /// Milliseconds spent reading and decoding.
    pub decode_ms: f64,
}

impl<I> Input<I> {
    /// The decoded picture, and the rest (for `Job::of_input`).
    pub fn take_image(self) -> (I, Input<()>) {
        let Self {
            image,
            record,
            provenance,
            text,
            source,
            decode_ms,
        } = self;
        let rest = Input {
            image: (),
            record,
            provenance,
            text,
            source,
            decode_ms,
        };
        (image, rest)
    }
}

/// Milliseconds since `t`.
#[must_use]
pub fn ms(t: Instant) -> f64 {
    ms_of(t.elapsed())
}

/// A duration in milliseconds, to two decimals.
#[must_use]
pub fn ms_of(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e5).round() / 100.0
}

/// The file's bytes, refusing anything over [`MAX_INPUT_BYTES`].
///
/// # Errors
/// [`ImagingError::Io`] when it cannot be read, [`ImagingError::Limits`] when too large.
pub fn read_limited(path: &Path, limit: u64) -> anyhow::Result<Vec<u8>> {
    let io = |source| ImagingError::Io {
        action: "reading",
        path: path.to_owned(),
        source,
    };
    let file = fs::File::open(path).map_err(io)?;
    let len = file.metadata().map_err(io)?.len();
    if len > limit {
        return Err(ImagingError::Limits(format!(
            "{} is {len} bytes, more than the {limit} fourk reads",
            path.display()
        ))
        .into());
    }
    // Sized once: growing by doubling would copy the file several times over and touch
    // about twice its size in fresh memory.
    let mut bytes = Vec::with_capacity(usize::try_from(len).map_or(0, |n| n.saturating_add(1)));
    file.take(limit + 1).read_to_end(&mut bytes).map_err(io)?;
    Ok(bytes)
}

/// Read and decode `path` under the pipeline's limits; collect its metadata and sidecar.
///
/// # Errors
/// [`ImagingError::Io`] (exit 7) when the file cannot be read, and a decoding error (exit 1)
/// when it is not an intact PNG, JPEG or WebP within the limits.
pub fn read_input(path: &Path) -> anyhow::Result<Input> {
    read_input_as(path, |bytes| {
        let image = fourk_imaging::load_bytes(bytes, &fourk_imaging::load_limits())?;
        Ok(((image.width(), image.height()), image))
    })
}

/// [`read_input`] with another decoding: `decode` gets the file's bytes (while their SHA-256
/// is computed beside it) and returns the picture's size and what it made of them.
///
/// # Errors
/// As [`read_input`], with `decode`'s errors for decoding.
pub fn read_input_as<I: Send>(
    path: &Path,
    decode: impl FnOnce(&[u8]) -> Result<((u32, u32), I), PipelineError> + Send,
) -> anyhow::Result<Input<I>> {
    let t = Instant::now();
    let bytes = read_limited(path, MAX_INPUT_BYTES)?;
    let (sha256, decoded) = rayon::join(|| format!("{:x}", Sha256::digest(&bytes)), || decode(&bytes));
    let ((width, height), image) =
        decoded.map_err(|e| pipeline_error(e, &format!("cannot read {}", path.display())))?;
    let decode_ms = ms(t);
    // The bytes decoded, so their magic names the format; no second header parse.
    let format = fourk_imaging::probe::detect_format(&bytes)
        .with_context(|| format!("cannot read {}", path.display()))?;
    let provenance = metadata::extract(&bytes).unwrap_or_else(|e| {
        tracing::warn!(
            "cannot read the metadata of {} ({e}); none is carried",
            path.display()
        );
        Vec::new()
    });
    let text = metadata::png_text(&bytes).unwrap_or_default();
    let source = SourceInfo::near(path, &sha256);
    if let Some(s) = &source
        && s.sha256_matches == Some(false)
    {
        tracing::warn!(
            "{} changed since its sidecar {} was written (SHA-256 differs)",
            path.display(),
            s.sidecar.display()
        );
    }
    Ok(Input {
        record: InputRecord {
            path: path.to_owned(),
            sha256,
            bytes: bytes.len() as u64,
            width,
            height,
            format,
        },
        image,
        provenance,
        text,
        source,
        decode_ms,
    })
}

/// A pipeline error with context: decoding problems keep their [`ImagingError`] (exit 1, or
/// 7 for I/O), parameter problems become usage errors (exit 2).
pub fn pipeline_error(e: PipelineError, doing: &str) -> anyhow::Error {
    match e {
        PipelineError::Imaging(i) => anyhow::Error::new(i).context(doing.to_owned()),
        e @ (PipelineError::InvalidSize { .. }
        | PipelineError::InvalidParameter { .. }
        | PipelineError::CropOutOfBounds { .. }
        | PipelineError::EmptySource { .. }) => anyhow::Error::new(e).context(UsageError(doing.to_owned())),
        other => anyhow::Error::new(other).context(doing.to_owned()),
    }
}

/// Timings for the sidecar, in milliseconds, by step.
pub type Timings = BTreeMap<&'static str, f64>;

/// The sidecar of a pipeline output.
#[derive(Debug, Serialize)]
pub struct PipelineSidecar {
    /// Layout version.
    pub sidecar_version: u32,
    /// The fourk that wrote it.
    pub fourk_version: &'static str,
    /// The image this describes (file name, relative to the sidecar).
    pub image: String,
    /// `upscale`, `fit`, `convert`, `cutout`, `sheet` or `compare`.
    pub operation: &'static str,
    /// Every input file, with its SHA-256.
    pub inputs: Vec<InputRecord>,
    /// The operation's parameters.
    pub parameters: Value,
    /// How the output was encoded.
    pub output: Encoding,
    /// Where the (first) input came from, from its sidecar.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<SourceInfo>,
    /// Text written into the file, and provenance carried or dropped.
    pub metadata: MetadataReport,
    /// The operation's own report (cutout QA, comparison numbers, sheet entries).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub report: Option<Value>,
    /// Proof that the file is what was made.
    pub checks: Checks,
    /// Milliseconds per step. `encode` includes writing the metadata and, for a PNG, the
    /// verification's decode, which runs beside the encoder; `verify` is what is left of the
    /// verification when the file is saved (for such a PNG, confirming its SHA-256), beside
    /// `write`.
    pub timings_ms: Timings,
}

/// What `--json` prints for a pipeline output.
#[derive(Debug, Serialize)]
pub struct Summary {
    /// Where the bytes are (a `.rejected.` name when verification failed).
    pub path: PathBuf,
    /// Width.
    pub width: u32,
    /// Height.
    pub height: u32,
    /// Format.
    pub format: OutputFormat,
    /// Bytes written.
    pub bytes: u64,
    /// Decoded in full and as expected.
    pub verified: bool,
    /// Every input was fine (`sheet` lays out failed inputs with a red label and says so
    /// here; the others fail instead).
    #[serde(skip)]
    pub inputs_ok: bool,
    /// The inputs read, with their SHA-256 (as the sidecar records them).
    #[serde(skip)]
    pub inputs: Vec<InputRecord>,
    /// The sidecar's path.
    pub sidecar: PathBuf,
    /// Provenance carried and dropped, text written.
    pub metadata: MetadataReport,
    /// The operation's report.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub report: Option<Value>,
    /// Milliseconds per step.
    pub timings_ms: Timings,
}

/// Everything [`deliver`] records besides the pixels.
#[derive(Debug)]
struct Job<'a> {
    /// The operation's name.
    pub operation: &'static str,
    /// The inputs.
    pub inputs: Vec<InputRecord>,
    /// The parameters.
    pub parameters: Value,
    /// Provenance to carry (the first input's).
    pub provenance: &'a [Provenance],
    /// Text found in the input, written first (PNG only).
    pub input_text: &'a [(String, String)],
    /// The input's sidecar.
    pub source: Option<SourceInfo>,
    /// The operation's report.
    pub report: Option<Value>,
    /// Timings so far (decode, process).
    pub timings: Timings,
    /// When the command started, for the total.
    pub started: Instant,
    /// Cancelled when the user stops the command: checked before anything is written.
    pub cancel: CancellationToken,
}

impl<'a> Job<'a> {
    /// The job of an operation on one `input`, whose provenance, text and sidecar carry
    /// over; `process_ms` is the operation's own time, if it had one.
    fn of_input<I>(
        operation: &'static str,
        input: &'a Input<I>,
        parameters: Value,
        process_ms: Option<f64>,
        started: Instant,
        cancel: &CancellationToken,
    ) -> Self {
        let mut timings: Timings = [("decode", input.decode_ms)].into();
        if let Some(p) = process_ms {
            timings.insert("process", p);
        }
        Self {
            operation,
            inputs: vec![input.record.clone()],
            parameters,
            provenance: &input.provenance,
            input_text: &input.text,
            source: input.source.clone(),
            report: None,
            timings,
            started,
            cancel: cancel.clone(),
        }
    }
}

/// The text written into a PNG: what the input already had, then prompt, model and settings
/// from its sidecar, then `--meta`, later entries replacing earlier ones with the same key;
/// `Software` always names this fourk.
fn text_for(
    input_text: &[(String, String)],
    source: Option<&SourceInfo>,
    meta: &[(String, String)],
) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    let mut put = |k: &str, v: &str| {
        if let Some(e) = out.iter_mut().find(|(key, _)| key == k) {
            v.clone_into(&mut e.1);
        } else {
            out.push((k.to_owned(), v.to_owned()));
        }
    };
    for (k, v) in input_text {
        if metadata::check_text_key(k).is_ok() {
            put(k, v);
        }
    }
    if let Some(s) = source {
        for (k, v) in [
            ("prompt", &s.prompt),
            ("model", &s.model),
            ("fourk:settings", &s.settings),
        ] {
            if let Some(v) = v {
                put(k, v);
            }
        }
    }
    for (k, v) in meta {
        put(k, v);
    }
    put("Software", &format!("fourk {}", env!("CARGO_PKG_VERSION")));
    out
}

/// Encode `img` with its metadata, verify, save atomically (or as `NAME.rejected.EXT` when
/// verification fails), write the sidecar, and summarise. The verification demands
/// transparent pixels exactly when the picture has them (they were in the input, or the
/// operation made them).
///
/// # Errors
/// [`UsageError`] when the picture has transparency and the format cannot hold it (the fix
/// is --flatten), [`Cancelled`] when `job.cancel` fired before writing, encoding errors, and
/// I/O errors.
fn deliver(
    out: &Path,
    img: &DynamicImage,
    encode: &Encode,
    enc: Encoding,
    mut job: Job<'_>,
) -> anyhow::Result<Summary> {
    let flattened;
    let mut img = img;
    if let Some(color) = encode.flatten {
        flattened = fourk_imaging::flatten(img, color);
        img = &flattened;
    }
    let transparent = fourk_imaging::has_transparency(img);
    if transparent && !enc.format.has_alpha() {
        return Err(UsageError(format!(
            "the picture has transparent pixels and {} has no alpha channel\n\nhint: pass --flatten #RRGGBB to put them on a colour, or use --format png or webp",
            enc.format
        ))
        .into());
    }
    let t = Instant::now();
    let metadata = prepare_metadata(encode, enc, &job)?;
    let expect = expect_output(enc, (img.width(), img.height()), transparent);
    // A PNG is verified here, as it is encoded; the save then only confirms its hash.
    let file = fourk_imaging::encode_verified(
        img,
        enc.format,
        enc.quality.filter(|_| !enc.lossless),
        &enc.options(),
        metadata,
        &expect,
    )?;
    job.timings.insert("encode", ms(t));
    deliver_file(
        out,
        file,
        (img.width(), img.height()),
        transparent,
        encode,
        enc,
        job,
    )
}

/// The text and provenance for the output, checked (see [`text_for`]).
fn prepare_metadata<'j>(
    encode: &Encode,
    enc: Encoding,
    job: &Job<'j>,
) -> anyhow::Result<metadata::Prepared<'j>> {
    let text = if enc.format == OutputFormat::Png {
        text_for(job.input_text, job.source.as_ref(), &encode.meta)
    } else if encode.meta.is_empty() && job.source.is_none() {
        Vec::new()
    } else {
        // Reported as dropped: the format has no place for it.
        text_for(&[], job.source.as_ref(), &encode.meta)
    };
    Ok(metadata::prepare(enc.format, job.provenance, &text)?)
}

/// What the output must be: its size and format, and transparent pixels exactly when the
/// picture has them.
fn expect_output(enc: Encoding, (width, height): (u32, u32), transparent: bool) -> Expect {
    Expect {
        width: Some(width),
        height: Some(height),
        format: Some(enc.format),
        alpha: Some(transparent),
        thumbnail: None,
    }
}

/// [`deliver`] for a JPEG that [`fourk_imaging::png_to_jpeg`] encoded (and partly decoded for
/// verification) while it read the PNG: metadata, then as [`deliver`].
fn deliver_streamed_jpeg(
    out: &Path,
    jpeg: fourk_imaging::StreamedJpeg,
    encode: &Encode,
    enc: Encoding,
    mut job: Job<'_>,
) -> anyhow::Result<Summary> {
    let t = Instant::now();
    let (bytes, metadata) = prepare_metadata(encode, enc, &job)?.insert(jpeg.bytes)?;
    job.timings.insert("metadata", ms(t));
    let file = fourk_imaging::EncodedFile {
        bytes,
        decoded: jpeg.decoded,
        metadata,
    };
    // png_to_jpeg streams only pictures without a transparent pixel.
    deliver_file(out, file, (jpeg.width, jpeg.height), false, encode, enc, job)
}

/// Verify (of what is not already decoded, see [`fourk_imaging::verify_bytes_decoded`]) and
/// save atomically, or as `NAME.rejected.EXT` when verification fails; write the sidecar.
fn deliver_file(
    out: &Path,
    fourk_imaging::EncodedFile {
        bytes,
        decoded,
        metadata: meta_report,
    }: fourk_imaging::EncodedFile,
    (width, height): (u32, u32),
    transparent: bool,
    encode: &Encode,
    enc: Encoding,
    job: Job<'_>,
) -> anyhow::Result<Summary> {
    let mut timings = job.timings;
    if job.cancel.is_cancelled() {
        return Err(Cancelled {
            possibly_billed: false,
        }
        .into());
    }
    let expect = expect_output(enc, (width, height), transparent);
    // The verification (the rest of the decode) runs while the bytes are written and synced.
    let replace = if encode.force {
        fourk_imaging::Replace::Yes
    } else {
        fourk_imaging::Replace::No
    };
    let saved = fourk_imaging::save_bytes_verified_decoded(out, bytes, &decoded, &expect, replace)?;
    timings.insert("verify", ms_of(saved.verify_time));
    timings.insert("write", ms_of(saved.write_time));
    timings.insert("total", ms(job.started));
    let (path, report) = (saved.path, saved.report);
    if saved.rejected {
        tracing::error!(
            "the output of {} failed verification (kept as {}); this is a bug in fourk",
            job.operation,
            path.display()
        );
    }
    let car = PipelineSidecar {
        sidecar_version: SIDECAR_VERSION,
        fourk_version: env!("CARGO_PKG_VERSION"),
        image: path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        operation: job.operation,
        inputs: job.inputs.clone(),
        parameters: job.parameters,
        output: enc,
        source: job.source,
        metadata: meta_report.clone(),
        report: job.report.clone(),
        checks: Checks::from_report(Some((width, height)), enc.format, report.clone()),
        timings_ms: timings.clone(),
    };
    let sidecar_path = sidecar::path_for(&path);
    let mut json_bytes = serde_json::to_vec_pretty(&car)?;
    json_bytes.push(b'\n');
    fourk_imaging::save_atomic(&sidecar_path, &json_bytes)?;
    for d in &meta_report.dropped {
        tracing::info!("{} not written: {}", d.kind.as_str(), d.reason);
    }
    Ok(Summary {
        path,
        width,
        height,
        format: enc.format,
        bytes: report.bytes,
        verified: report.ok,
        inputs_ok: true,
        inputs: job.inputs,
        sidecar: sidecar_path,
        metadata: meta_report,
        report: job.report,
        timings_ms: timings,
    })
}
