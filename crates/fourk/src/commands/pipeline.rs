//! The local pipeline commands (`upscale`, `fit`, `convert`, `cutout`, `sheet`, `compare`):
//! flags to a [`fourk_core::pipeline::Operation`], run (and recorded in the ledger) on the
//! blocking pool with Ctrl-C watched, the summary printed.

use fourk_core::pipeline::{
    CompareSpec, ConvertSpec, CutoutMethod, CutoutSpec, Encode, FitSpec, Operation as Op, SheetSpec,
    UpscaleSpec,
};
use fourk_imaging::{Filter, FitMode, PngLevel};
use tokio_util::sync::CancellationToken;

use crate::cli::pipeline::{
    CompareArgs, ConvertArgs, CutoutArgs, EncodeArgs, FilterArg, FitArgs, ModeArg, PngLevelArg, SheetArgs,
    UpscaleArgs,
};
use crate::exit::Exit;
use crate::output::Printer;

/// Run `op` on the blocking pool with a cancellation token, so the async side keeps
/// listening for Ctrl-C. On Ctrl-C (or when this future is dropped for it) the token is
/// cancelled and the operation stops at its next check, before writing. Prints the path, or
/// the summary with `json`.
///
/// # Errors
/// The operation's error, or a panic in it.
pub async fn run(op: Op, ledger: &std::path::Path, json: bool) -> anyhow::Result<Exit> {
    let ledger = ledger.to_path_buf();
    let cancel = CancellationToken::new();
    // Dropped (the whole command was stopped) or not, the work must not write after this.
    let guard = cancel.clone().drop_guard();
    let mut task = tokio::task::spawn_blocking({
        let cancel = cancel.clone();
        move || op.run(&ledger, &cancel)
    });
    let result = tokio::select! {
        r = &mut task => r.map_err(|e| anyhow::anyhow!("the command failed: {e}"))?,
        _ = tokio::signal::ctrl_c() => {
            cancel.cancel();
            let _ = task.await;
            return Ok(Exit::Interrupted);
        }
    };
    guard.disarm();
    let summary = result?;
    let p = Printer;
    if json {
        p.json(&summary);
    } else {
        p.line(&summary.path.display().to_string());
    }
    Ok(if summary.verified && summary.inputs_ok {
        Exit::Success
    } else {
        Exit::CheckFailed
    })
}

impl From<PngLevelArg> for PngLevel {
    fn from(l: PngLevelArg) -> Self {
        match l {
            PngLevelArg::Fast => Self::Fast,
            PngLevelArg::Default => Self::Default,
            PngLevelArg::Best => Self::Best,
        }
    }
}

impl From<FilterArg> for Filter {
    fn from(f: FilterArg) -> Self {
        match f {
            FilterArg::Lanczos3 => Self::Lanczos3,
            FilterArg::CatmullRom => Self::CatmullRom,
            FilterArg::Mitchell => Self::Mitchell,
        }
    }
}

impl EncodeArgs {
    /// The encoding asked for.
    #[must_use]
    pub fn spec(&self) -> Encode {
        Encode {
            format: self.format,
            quality: self.quality,
            png_level: self.png_level.map(Into::into),
            webp_effort: self.webp_effort,
            lossless: self.lossless,
            flatten: self.flatten,
            meta: self.meta.clone(),
            force: self.force,
        }
    }
}

impl UpscaleArgs {
    /// The operation asked for.
    #[must_use]
    pub fn op(&self) -> Op {
        Op::Upscale(UpscaleSpec {
            input: self.input.clone(),
            to: self.to,
            out: self.out.clone(),
            filter: self.filter.into(),
            sharpen: self.sharpen,
            stretch: self.stretch,
            encode: self.encode.spec(),
        })
    }
}

impl FitArgs {
    /// The operation asked for.
    #[must_use]
    pub fn op(&self) -> Op {
        Op::Fit(FitSpec {
            input: self.input.clone(),
            to: self.to,
            mode: match self.mode {
                ModeArg::Cover => FitMode::Cover,
                ModeArg::Contain => FitMode::Contain(self.pad.0),
                ModeArg::Crop => FitMode::Crop(self.pad.0),
            },
            gravity: self.gravity.0,
            out: self.out.clone(),
            encode: self.encode.spec(),
        })
    }
}

impl ConvertArgs {
    /// The operation asked for.
    #[must_use]
    pub fn op(&self) -> Op {
        Op::Convert(ConvertSpec {
            input: self.input.clone(),
            out: self.out.clone(),
            encode: self.encode.spec(),
        })
    }
}

impl CutoutArgs {
    /// The operation asked for.
    #[must_use]
    pub fn op(&self) -> Op {
        Op::Cutout(CutoutSpec {
            input: self.input.clone(),
            method: match &self.model {
                Some(m) => CutoutMethod::Model(m.clone()),
                None => CutoutMethod::Key {
                    key: self.key.0,
                    tolerance: self.tolerance,
                    feather: self.feather,
                },
            },
            out: self.out.clone(),
            encode: self.encode.spec(),
        })
    }
}

impl SheetArgs {
    /// The operation asked for.
    #[must_use]
    pub fn op(&self) -> Op {
        Op::Sheet(SheetSpec {
            images: self.images.clone(),
            columns: self.columns,
            labels: self.labels,
            cell: self.cell,
            out: self.out.clone(),
            encode: self.encode.spec(),
        })
    }
}

impl CompareArgs {
    /// The operation asked for.
    #[must_use]
    pub fn op(&self) -> Op {
        Op::Compare(CompareSpec {
            a: self.a.clone(),
            b: self.b.clone(),
            crop: self.crop.map(|c| c.0),
            out: self.out.clone(),
            encode: self.encode.spec(),
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::cli::pipeline::{CropArg, GravityArg, PadArg};
    use fourk_imaging::{Gravity, Pad};

    #[test]
    fn gravity_parses_names_and_points() {
        assert_eq!("Top".parse::<GravityArg>().unwrap().0, Gravity::Top);
        assert_eq!(
            "0.25, 0.75".parse::<GravityArg>().unwrap().0,
            Gravity::Point(0.25, 0.75)
        );
        for bad in ["up", "1.5,0", "0.5", "a,b"] {
            let e = bad.parse::<GravityArg>().unwrap_err();
            assert!(e.contains("expected center"), "{e}");
        }
        assert_eq!("#0A0b0c".parse::<PadArg>().unwrap().0, Pad::Color([10, 11, 12]));
        assert!("blue".parse::<PadArg>().is_err());
    }

    #[test]
    fn crops_parse_or_say_the_form() {
        assert_eq!("1,2,30,40".parse::<CropArg>().unwrap().0, (1, 2, 30, 40));
        for bad in ["1,2,3", "a,b,c,d", "0,0,2,2", "1,2,3,4,5"] {
            assert!(bad.parse::<CropArg>().unwrap_err().contains("x,y,width,height"));
        }
    }
}
