//! Process utilities: where the workspace is, a free port, and children that die with natter-local.

use std::{
    net::TcpListener,
    path::{Path, PathBuf},
    process::Command,
};

/// The workspace root: where template.yaml and .venv live.
pub fn workspace_root() -> PathBuf {
    let compiled = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut dir = std::env::current_dir().unwrap_or_default();
    loop {
        if dir.join("template.yaml").is_file() && dir.join("Cargo.toml").is_file() {
            return dir;
        }
        if !dir.pop() {
            return compiled.canonicalize().unwrap_or(compiled);
        }
    }
}

/// A free loopback port (bound, read, released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(0)
}

/// Makes a child die with its parent thread's process: the kernel sends SIGKILL when natter-local exits, so no
/// emulator or function process outlives it, even after a crash.
pub fn die_with_parent(cmd: &mut Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: prctl is async-signal-safe; the closure touches no memory of the parent.
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
}

/// [`die_with_parent`] for tokio's `Command`.
pub fn die_with_parent_tokio(cmd: &mut tokio::process::Command) {
    // SAFETY: as above.
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
}

/// CPU time (user + system) a process used so far, in milliseconds, from `/proc/{pid}/stat`.
pub fn cpu_ms(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command (which may contain spaces) start after the last ')'.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let (utime, stime): (f64, f64) = (fields.get(11)?.parse().ok()?, fields.get(12)?.parse().ok()?);
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    Some((utime + stime) * 1000.0 / ticks.max(1.0))
}

#[cfg(test)]
mod tests {
    use super::cpu_ms;

    #[test]
    fn this_process_has_used_some_cpu() {
        let mut x = 0u64;
        for i in 0..5_000_000u64 {
            x = x.wrapping_add(i * i);
        }
        assert!(x > 0);
        assert!(cpu_ms(std::process::id()).is_some());
    }
}
