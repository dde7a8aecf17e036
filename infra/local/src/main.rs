//! `natter-local`: the whole natter stack on one machine. See README.md and docs/architecture.md.

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
