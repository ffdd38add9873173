//! `rkt`: the stage0 binary.

mod cli;

fn main() {
    std::process::exit(cli::main());
}
