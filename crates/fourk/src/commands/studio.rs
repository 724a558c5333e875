//! `fourk studio`: the flags become the studio's options; `fourk-studio` serves the pages on
//! loopback behind a token. stdout's first line is the address to open, token included.

use crate::cli::StudioArgs;
use crate::exit::Exit;
use crate::output::Printer;

pub(super) async fn run(args: &StudioArgs, fk: fourk_core::Fourk) -> anyhow::Result<Exit> {
    fourk_studio::check_addr(args.addr, args.allow_remote)?;
    let opts = fourk_studio::Options {
        endpoint: args.endpoint.spec(),
        roots: args.roots.clone(),
        out_dir: args.out_dir.clone(),
        max_cost: args.max_cost,
    };
    let emulated = opts.endpoint.emulator;
    let ledger = fk.ledger_path().to_path_buf();
    let studio = fourk_studio::Studio::new(fk, opts)
        .await
        .map_err(|e| e.context(crate::UsageError("cannot start the studio".into())))?;
    let listener = tokio::net::TcpListener::bind(args.addr).await.map_err(|e| {
        anyhow::Error::new(e).context(crate::UsageError(format!(
            "cannot listen on {}\n\nhint: pick another --addr, or 127.0.0.1:0 for any free port",
            args.addr
        )))
    })?;
    let addr = listener.local_addr()?;
    let token = fourk_studio::guard::random_token()?;
    let url = format!("http://{addr}/?token={token}");
    Printer.line(&format!("studio on {url}"));
    tracing::info!(
        "fourk studio: ledger {}, images under {}, new ones in {}; {}",
        ledger.display(),
        studio
            .roots()
            .iter()
            .map(|r| r.display().to_string())
            .collect::<Vec<_>>()
            .join(", "),
        studio.out_dir().display(),
        if emulated {
            "offline emulator (procedural placeholder images)"
        } else {
            "the API at $OPENAI_BASE_URL or api.openai.com"
        }
    );
    if args.open {
        open_browser(&url);
    }
    // Stopped by Ctrl-C or SIGTERM like every command (the process ends the server).
    let stop = tokio_util::sync::CancellationToken::new();
    studio.serve(listener, &token, stop).await?;
    Ok(Exit::Success)
}

/// Hand the address to the desktop's opener; a failure is a warning (the address is printed).
fn open_browser(url: &str) {
    let (cmd, args): (&str, Vec<&str>) = if cfg!(target_os = "macos") {
        ("open", vec![url])
    } else if cfg!(windows) {
        ("cmd", vec!["/C", "start", "", url])
    } else {
        ("xdg-open", vec![url])
    };
    match std::process::Command::new(cmd)
        .args(&args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
    {
        Ok(_) => tracing::info!("opened the studio in the default browser"),
        Err(e) => tracing::warn!("could not open a browser ({cmd}: {e}); open the address above yourself"),
    }
}
