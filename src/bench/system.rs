//! What the bench asks of the operating system: a file-descriptor limit large enough for
//! thousands of connections, and the resident memory of a process (VmRSS).

use std::path::PathBuf;

/// Raise the soft RLIMIT_NOFILE as far as the hard limit allows; returns the new soft
/// limit (or the current one when it cannot be changed).
pub fn raise_fd_limit() -> u64 {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(n) => n,
        Err(e) => {
            tracing::warn!("cannot raise the file-descriptor limit: {e}");
            rlimit::getrlimit(rlimit::Resource::NOFILE)
                .map(|(soft, _)| soft)
                .unwrap_or(1024)
        }
    }
}

/// Resident memory of `pid` (or of this process for `None`) in KiB, from
/// `/proc/PID/status`; `None` when it cannot be read (no procfs, process gone).
pub fn rss_kib(pid: Option<u32>) -> Option<u64> {
    let path = match pid {
        Some(p) => PathBuf::from(format!("/proc/{p}/status")),
        None => PathBuf::from("/proc/self/status"),
    };
    let text = std::fs::read_to_string(path).ok()?;
    parse_vm_rss(&text)
}

/// The `VmRSS:` line of a `/proc/PID/status` text, in KiB.
pub fn parse_vm_rss(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let mut parts = line["VmRSS:".len()..].split_whitespace();
    let value: u64 = parts.next()?.parse().ok()?;
    match parts.next() {
        Some("kB") | None => Some(value),
        Some("mB") | Some("MB") => Some(value * 1024),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn vm_rss_is_parsed() {
        let text = "Name:\tmosquitto\nVmPeak:\t  9000 kB\nVmRSS:\t    6144 kB\nThreads: 1\n";
        assert_eq!(parse_vm_rss(text), Some(6144));
        assert_eq!(parse_vm_rss("Name: x\n"), None);
    }

    #[test]
    fn own_rss_is_positive_on_linux() {
        if cfg!(target_os = "linux") {
            assert!(rss_kib(None).unwrap() > 0);
        }
    }

    #[test]
    fn fd_limit_is_at_least_the_default() {
        assert!(raise_fd_limit() >= 256);
    }
}
