//! The `fourk` binary: parse arguments, run, exit with a documented code.

fn main() -> std::process::ExitCode {
    fourk::run(std::env::args_os())
}
