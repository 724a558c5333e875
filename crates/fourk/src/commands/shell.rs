//! `fourk completions` and `fourk man`: generated from the command line's own definition, so
//! they never disagree with `--help`.

use std::io::Write as _;

use anyhow::Context as _;

use crate::cli::{Cli, CompletionsArgs, ManArgs};
use crate::exit::Exit;

pub(super) fn completions(args: &CompletionsArgs) -> Exit {
    let mut cmd = Cli::definition();
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut cmd, "fourk", &mut script);
    let mut out = std::io::stdout().lock();
    // A closed pipe (`fourk completions bash | head`) is not an error.
    let _ = out.write_all(&script).and_then(|()| out.flush());
    Exit::Success
}

pub(super) fn man(args: &ManArgs) -> anyhow::Result<Exit> {
    let cmd = Cli::definition();
    match &args.out_dir {
        None => {
            let mut page = Vec::new();
            clap_mangen::Man::new(cmd).render(&mut page)?;
            let mut out = std::io::stdout().lock();
            // A closed pipe (`fourk man | head`) is not an error.
            let _ = out.write_all(&page).and_then(|()| out.flush());
        }
        Some(dir) => {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
            clap_mangen::generate_to(cmd, dir)
                .with_context(|| format!("writing manual pages into {}", dir.display()))?;
            tracing::info!(
                "manual pages written to {} (fourk.1 and fourk-COMMAND.1)",
                dir.display()
            );
        }
    }
    Ok(Exit::Success)
}
