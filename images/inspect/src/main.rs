//! `inspect`: a static checker app the functional tests run inside pods.
//!
//! Flags are processed in a fixed order (not the command-line order) and each
//! check prints one stable line, so tests can match output exactly. Any
//! failure prints `Error: ...` on stderr and exits 1.

mod args;
mod cgroup;
mod files;
mod identity;
mod net;
mod ns;

use std::process::ExitCode;
use std::time::Duration;

use args::Opts;

fn main() -> ExitCode {
    let opts = match Opts::parse(std::env::args().skip(1)) {
        Ok(o) => o,
        Err(e) => return fail(&e),
    };
    match run(&opts) {
        Ok(()) => ExitCode::from(opts.exit_code),
        Err(e) => fail(&e),
    }
}

fn fail(msg: &str) -> ExitCode {
    eprintln!("Error: {msg}");
    ExitCode::from(1)
}

fn run(o: &Opts) -> Result<(), String> {
    if let Some(msg) = &o.print_msg {
        println!("{msg}");
    }
    for var in &o.print_env {
        println!("{var}={}", std::env::var(var).unwrap_or_default());
    }
    if o.print_exec {
        let argv0 = std::env::args().next().unwrap_or_default();
        println!("inspect execed as: {argv0}");
    }
    if o.print_cwd {
        let cwd = std::env::current_dir().map_err(|e| format!("getting cwd: {e}"))?;
        println!("cwd: {}", cwd.display());
    }
    if o.print_pid {
        println!("PID: {}", std::process::id());
    }
    if o.print_user {
        identity::print_user();
    }
    if o.print_groups {
        identity::print_groups()?;
    }
    if o.print_hostname {
        ns::print_hostname()?;
    }
    if let Some(pid) = o.print_caps_pid {
        identity::print_caps(pid)?;
    }
    if o.print_seccomp {
        identity::print_seccomp()?;
    }
    if o.print_no_new_privs {
        identity::print_no_new_privs()?;
    }
    if o.print_memorylimit {
        cgroup::print_memory_limit()?;
    }
    if o.print_cpuquota {
        cgroup::print_cpu_quota()?;
    }
    if o.print_cpushares {
        cgroup::print_cpu_shares()?;
    }
    if o.print_mounts {
        files::print_mounts()?;
    }
    for kind in &o.print_ns {
        ns::print_ns(kind)?;
    }
    if o.print_ifaces {
        net::print_ifaces()?;
    }
    if o.write_file {
        files::write_file(&o.file_name()?, &o.content())?;
    }
    if o.read_file {
        files::read_file(&o.file_name()?)?;
    }
    if o.stat_file {
        files::stat_file(&o.file_name()?)?;
    }
    if o.check_tty {
        files::check_tty();
    }
    if let Some(name) = &o.print_app_annotation {
        net::print_app_annotation(name)?;
    }
    if let Some(url) = &o.get_http {
        net::get_http(url)?;
    }
    if let Some(addr) = &o.serve_udp_echo {
        net::serve_udp_echo(addr, Duration::from_secs(o.serve_http_timeout))?;
    }
    if let Some(addr) = &o.serve_http {
        net::serve_http(addr, Duration::from_secs(o.serve_http_timeout))?;
    }
    if o.read_stdin {
        files::read_stdin()?;
    }
    if o.sleep > 0 {
        std::thread::sleep(Duration::from_secs(o.sleep));
    }
    Ok(())
}
