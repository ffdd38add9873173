//! `rkt`: the stage0 binary.

mod cli;

#[global_allocator]
static ALLOC: cli::profile::CountingAlloc = cli::profile::CountingAlloc;

fn main() {
    // The Rust runtime ignores SIGPIPE; a CLI should die quietly when its
    // reader goes away (`rkt list | head`), and an ignored disposition would
    // be inherited through exec by stage1 and the apps.
    // SAFETY: restoring a default signal disposition before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    std::process::exit(cli::main());
}
