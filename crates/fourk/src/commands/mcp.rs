//! `fourk mcp`: the flags become the MCP server's options; `fourk-mcp` serves on stdio
//! (stdout is then the protocol channel: nothing else may write there; logs go to stderr),
//! or with `--http ADDR` on loopback HTTP behind a bearer token.

use crate::cli::McpArgs;
use crate::exit::Exit;
use crate::output::Printer;

pub(super) async fn run(args: &McpArgs, fk: fourk_core::Fourk) -> anyhow::Result<Exit> {
    if let Some(addr) = args.http {
        fourk_mcp::http::check_addr(addr)?;
    }
    let opts = fourk_mcp::Options {
        endpoint: args.endpoint.spec(),
        roots: args.roots.clone(),
        out_dir: args.out_dir.clone(),
        max_cost: args.max_cost,
    };
    tracing::info!(
        "fourk mcp on {}: ledger {}, {}",
        args.http
            .map_or_else(|| "stdio".to_owned(), |a| format!("http {a}")),
        fk.ledger_path().display(),
        if opts.endpoint.emulator {
            "offline emulator (procedural placeholder images)"
        } else {
            "the API at $OPENAI_BASE_URL or api.openai.com"
        }
    );
    let server = fourk_mcp::Server::new(fk, opts)
        .await
        .map_err(|e| e.context(crate::UsageError("cannot start the MCP server".into())))?;
    let Some(addr) = args.http else {
        server.serve_stdio().await?;
        return Ok(Exit::Success);
    };
    let (token, from_env) = match std::env::var(fourk_mcp::http::TOKEN_VAR) {
        Ok(t) if !t.trim().is_empty() => (t.trim().to_owned(), true),
        _ => (fourk_mcp::http::random_token()?, false),
    };
    // Stopped by Ctrl-C or SIGTERM like every command (the process ends the server).
    let stop = tokio_util::sync::CancellationToken::new();
    server
        .serve_http(addr, token, stop, |l| {
            let p = Printer;
            p.line(&format!("mcp on {}", l.url));
            if from_env {
                p.line(&format!(
                    "Authorization: Bearer ${} (the token is the one in that variable)",
                    fourk_mcp::http::TOKEN_VAR
                ));
            } else {
                p.line(&format!("Authorization: Bearer {}", l.token));
            }
        })
        .await?;
    Ok(Exit::Success)
}
