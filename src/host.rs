//! The machine wgtrain runs on: how much memory a run may still take.

/// Bytes of memory this process can still allocate without swapping or being killed: Linux's
/// `MemAvailable`, lowered to what is left under the cgroup's limit where there is one (a
/// container, a CI runner). `None` where neither can be read (other systems).
pub fn available_memory() -> Option<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|text| {
            text.lines()
                .find_map(|l| l.strip_prefix("MemAvailable:"))
                .and_then(|rest| {
                    rest.trim()
                        .trim_end_matches("kB")
                        .trim()
                        .parse::<u64>()
                        .ok()
                })
                .map(|kib| kib * 1024)
        });
    let cgroup = cgroup_headroom();
    match (meminfo, cgroup) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// What is left under this process's cgroup memory limit, if it has one: v2's
/// `memory.max - memory.current`, or v1's `memory.limit_in_bytes - memory.usage_in_bytes`
/// (looked up at the cgroup's path, then at the root a container namespaces).
fn cgroup_headroom() -> Option<u64> {
    let own = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    let root = std::path::Path::new("/sys/fs/cgroup");
    let read = |file: std::path::PathBuf| -> Option<u64> {
        std::fs::read_to_string(file).ok()?.trim().parse().ok()
    };
    // v2: one line "0::/path"; "max" (no limit) does not parse.
    if let Some(path) = own.lines().find_map(|l| l.strip_prefix("0::")) {
        let dir = root.join(path.trim().trim_start_matches('/'));
        if let Some(max) = read(dir.join("memory.max")) {
            return Some(max.saturating_sub(read(dir.join("memory.current")).unwrap_or(0)));
        }
    }
    // v1: "N:memory:/path"; "no limit" is a huge number.
    let path = own
        .lines()
        .find_map(|l| l.split_once(":memory:").map(|(_, p)| p.trim()))?;
    let v1 = root.join("memory");
    for dir in [v1.join(path.trim_start_matches('/')), v1] {
        if let Some(limit) = read(dir.join("memory.limit_in_bytes")) {
            if limit >= 1 << 60 {
                return None;
            }
            let used = read(dir.join("memory.usage_in_bytes")).unwrap_or(0);
            return Some(limit.saturating_sub(used));
        }
    }
    None
}

/// `bytes` for a message: `12.8 GB`, `640 MB`, `12 kB`.
pub fn format_bytes(bytes: u64) -> String {
    let b = bytes as f64;
    if b >= 1e9 {
        format!("{:.1} GB", b / 1e9)
    } else if b >= 1e6 {
        format!("{:.0} MB", b / 1e6)
    } else if b >= 1e3 {
        format!("{:.0} kB", b / 1e3)
    } else {
        format!("{bytes} bytes")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_is_known_on_linux_and_plausible() {
        if cfg!(target_os = "linux") {
            let m = available_memory().expect("Linux has /proc/meminfo");
            assert!(m > 1 << 20, "{m}");
        }
        assert_eq!(format_bytes(12_800_000_000), "12.8 GB");
        assert_eq!(format_bytes(999), "999 bytes");
    }
}
