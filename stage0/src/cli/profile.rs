//! The hidden `--cpuprofile` / `--memprofile` flags: a sampled CPU profile in
//! folded-stack form (for flamegraph tools) and a heap summary from the
//! counting allocator, written when the command ends or before stage1 exec.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// Counts heap use so `--memprofile` can report it; a few relaxed atomics per
/// allocation.
pub struct CountingAlloc;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);
static ALLOCS: AtomicUsize = AtomicUsize::new(0);
static TOTAL: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to the system allocator and only updates counters.
unsafe impl std::alloc::GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
        // SAFETY: same contract as the caller's.
        let p = unsafe { std::alloc::System.alloc(layout) };
        if !p.is_null() {
            let live = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(live, Ordering::Relaxed);
            ALLOCS.fetch_add(1, Ordering::Relaxed);
            TOTAL.fetch_add(layout.size(), Ordering::Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: std::alloc::Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { std::alloc::System.dealloc(ptr, layout) }
    }
}

struct Active {
    cpu: Option<(PathBuf, pprof::ProfilerGuard<'static>)>,
    mem: Option<PathBuf>,
}

static ACTIVE: Mutex<Option<Active>> = Mutex::new(None);

/// Starts the requested profiles.
pub fn start(cpu: Option<PathBuf>, mem: Option<PathBuf>) -> anyhow::Result<()> {
    if cpu.is_none() && mem.is_none() {
        return Ok(());
    }
    let cpu = match cpu {
        Some(path) => {
            let guard = pprof::ProfilerGuardBuilder::default()
                .frequency(997)
                .build()
                .map_err(|e| anyhow::anyhow!("cannot start the CPU profiler: {e}"))?;
            Some((path, guard))
        }
        None => None,
    };
    *ACTIVE.lock().unwrap_or_else(|e| e.into_inner()) = Some(Active { cpu, mem });
    Ok(())
}

/// Writes the profiles (once); errors are reported, not fatal.
pub fn finish() {
    let Some(active) = ACTIVE.lock().unwrap_or_else(|e| e.into_inner()).take() else {
        return;
    };
    if let Some((path, guard)) = active.cpu {
        let result = guard
            .report()
            .build()
            .map_err(|e| e.to_string())
            .and_then(|report| {
                let mut out = String::new();
                for (frames, count) in &report.data {
                    let mut stack: Vec<String> = vec![frames.thread_name.clone()];
                    for frame in frames.frames.iter().rev() {
                        for sym in frame.iter().rev() {
                            stack.push(sym.name());
                        }
                    }
                    let _ = writeln!(out, "{} {count}", stack.join(";"));
                }
                std::fs::write(&path, out).map_err(|e| e.to_string())
            });
        if let Err(e) = result {
            eprintln!("cannot write CPU profile {}: {e}", path.display());
        }
    }
    if let Some(path) = active.mem {
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        let mut out = format!(
            "heap_peak_bytes {}\nheap_live_bytes {}\nallocations {}\nallocated_bytes {}\n",
            PEAK.load(Ordering::Relaxed),
            LIVE.load(Ordering::Relaxed),
            ALLOCS.load(Ordering::Relaxed),
            TOTAL.load(Ordering::Relaxed)
        );
        for line in status.lines().filter(|l| l.starts_with("Vm")) {
            let _ = writeln!(
                out,
                "{}",
                line.replace(":\t", " ")
                    .split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" ")
            );
        }
        if let Err(e) = std::fs::write(&path, out) {
            eprintln!("cannot write memory profile {}: {e}", path.display());
        }
    }
}
