//! Files, mounts, the terminal and stdin.

use std::fs;
use std::io::{self, BufRead, IsTerminal, Write};
use std::os::unix::fs::MetadataExt;

pub fn write_file(path: &str, content: &str) -> Result<(), String> {
    fs::write(path, content).map_err(|e| format!("writing {path}: {e}"))
}

pub fn read_file(path: &str) -> Result<(), String> {
    let data = fs::read(path).map_err(|e| format!("reading {path}: {e}"))?;
    println!("{path}: {}", String::from_utf8_lossy(&data));
    Ok(())
}

pub fn stat_file(path: &str) -> Result<(), String> {
    let m = fs::metadata(path).map_err(|e| format!("stat {path}: {e}"))?;
    println!(
        "stat: {path} mode={:04o} uid={} gid={} size={}",
        m.mode() & 0o7777,
        m.uid(),
        m.gid(),
        m.size()
    );
    Ok(())
}

/// Dumps /proc/self/mountinfo as is.
pub fn print_mounts() -> Result<(), String> {
    let info = fs::read_to_string("/proc/self/mountinfo")
        .map_err(|e| format!("reading /proc/self/mountinfo: {e}"))?;
    print!("{info}");
    Ok(())
}

pub fn check_tty() {
    if io::stdin().is_terminal() {
        println!("stdin is a terminal");
    } else {
        println!("stdin is not a terminal");
    }
}

/// Prompts, reads one line and echoes it back (rkt's `--read-stdin`).
pub fn read_stdin() -> Result<(), String> {
    println!("Enter text:");
    io::stdout()
        .flush()
        .map_err(|e| format!("flushing stdout: {e}"))?;
    let mut line = String::new();
    io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| format!("reading stdin: {e}"))?;
    println!("Received text: {}", line.trim_end_matches(['\n', '\r']));
    Ok(())
}
