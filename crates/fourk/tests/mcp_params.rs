//! Every MCP tool's arguments match the CLI's flags of the same operation: same names (the
//! few renames listed here, each for a reason), nothing the CLI offers missing from the tool
//! but the CLI's own output and endpoint flags, and nothing in the tool the CLI does not know
//! but what only a server needs.

use std::collections::BTreeSet;

use clap::CommandFactory as _;

/// The MCP tool and the CLI subcommand of the same operation.
const PAIRS: &[(&str, &str)] = &[
    ("check_size", "size"),
    ("plan", "plan"),
    ("generate", "generate"),
    ("edit", "edit"),
    ("draft", "draft"),
    ("final", "final"),
    ("deliver", "deliver"),
    ("batch", "batch"),
    ("upscale", "upscale"),
    ("fit", "fit"),
    ("convert", "convert"),
    ("cutout", "cutout"),
    ("sheet", "sheet"),
    ("verify", "verify"),
    ("compare", "compare"),
    ("history", "history"),
    ("cost", "cost"),
];

/// Flags that only make sense in a terminal or are the server's own (`fourk mcp` sets the
/// endpoint once for every tool).
const CLI_ONLY: &[&str] = &[
    "json",
    "help",
    "emulator",
    "base_url",
    "provider",
    "deployment",
    "api_version",
    "headers",
    "path_prefix",
    "token_command",
    "timeout",
    "log_payload",
    "retries",
    "retry_ambiguous",
    "request_timeout",
    "no_progress",
    "verbose",
    "quiet",
    "max_pixels",
    "models_file",
    "ledger",
];

/// What only a server needs: dry runs for the sending tools without one in the CLI, jobs,
/// previews, per-call ceilings and pages.
const SERVER_ONLY: &[&str] = &[
    "dry_run",
    "job",
    "preview",
    "max_cost_usd",
    "background",
    "offset",
];

/// `(tool, tool argument, CLI flag)`: names the issue fixed for agents, or where one JSON
/// value stands for several flags.
const RENAMES: &[(&str, &str, &str)] = &[
    ("verify", "paths", "files"),
    ("edit", "images", "inputs"),
    ("edit", "prompt", "inputs"),
    ("final", "mode", "native"),
    ("final", "mode", "upscale"),
    ("deliver", "max_cost_usd", "max_cost"),
    ("deliver", "timeout_s", "timeout"),
    ("cost", "limit", "limit"),
    // `fourk batch status|collect ID`: the subcommand is the tool's `action`, its ID `batch_id`.
    ("batch", "batch_id", "id"),
];

#[test]
fn every_tool_takes_the_flags_of_its_command() {
    let cli = fourk::cli::Cli::command();
    let tools = fourk_mcp::tools::definitions();
    assert_eq!(tools.len(), 18);
    let mut problems = Vec::new();
    for (tool, cmd) in PAIRS {
        let def = tools.iter().find(|t| t.name == *tool).unwrap();
        let params: BTreeSet<String> = def.input_schema["properties"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect();
        let sub = cli.find_subcommand(cmd).unwrap();
        let flags: BTreeSet<String> = sub
            .get_arguments()
            .map(|a| a.get_id().as_str().replace('-', "_"))
            .collect();
        let renamed_flag = |f: &str| RENAMES.iter().any(|(t, _, c)| t == tool && *c == f);
        let renamed_param = |p: &str| RENAMES.iter().any(|(t, a, _)| t == tool && *a == p);
        for f in &flags {
            if !params.contains(f) && !CLI_ONLY.contains(&f.as_str()) && !renamed_flag(f) {
                problems.push(format!("{tool}: the CLI's `{cmd} --{f}` has no argument"));
            }
        }
        // A command with subcommands (`fourk batch status|collect`) is one tool with an
        // `action` argument taking the subcommand's name, and the subcommands' arguments.
        let actions: BTreeSet<String> = sub
            .get_subcommands()
            .flat_map(|s| s.get_arguments().map(|a| a.get_id().as_str().replace('-', "_")))
            .chain(sub.has_subcommands().then(|| "action".to_owned()))
            .collect();
        let in_action = |p: &str| {
            actions.contains(p)
                || RENAMES
                    .iter()
                    .any(|(t, a, c)| t == tool && *a == p && actions.contains(*c))
        };
        for p in &params {
            if !flags.contains(p) && !SERVER_ONLY.contains(&p.as_str()) && !renamed_param(p) && !in_action(p)
            {
                problems.push(format!("{tool}: `{p}` is not a flag of `fourk {cmd}`"));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
