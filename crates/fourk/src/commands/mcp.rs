//! `fourk mcp`: the flags become the MCP server's options; `fourk-mcp` serves on stdio.
//! stdout is the protocol channel: nothing else may write there (logs go to stderr).

use crate::cli::McpArgs;
use crate::exit::Exit;

pub(super) async fn run(args: &McpArgs, fk: fourk_core::Fourk) -> anyhow::Result<Exit> {
    let opts = fourk_mcp::Options {
        endpoint: args.endpoint.spec(),
        roots: args.roots.clone(),
        out_dir: args.out_dir.clone(),
        max_cost: args.max_cost,
    };
    tracing::info!(
        "fourk mcp on stdio: ledger {}, {}",
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
    server.serve_stdio().await?;
    Ok(Exit::Success)
}
