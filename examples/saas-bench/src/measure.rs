//! Figures: quantiles of samples, rounding, and what the machine and this
//! process look like while a benchmark runs.

use std::time::Duration;

/// `d` in milliseconds.
pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// The `q` quantile (0..=1) of `samples`, nearest rank; NaN when empty.
pub fn quantile(samples: &[f64], q: f64) -> f64 {
    if samples.is_empty() {
        return f64::NAN;
    }
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// The median of `samples`.
pub fn median(samples: &[f64]) -> f64 {
    quantile(samples, 0.5)
}

/// `x` to three decimals, for JSON that stays readable.
pub fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// The machine's 1-minute load average right now (NaN where unknown): the
/// machine is shared, so figures are judged by how busy it was.
pub fn load_average() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|x| x.parse().ok()))
        .unwrap_or(f64::NAN)
}

/// A `VmHWM`/`VmRSS`-style field of /proc/self/status, in MiB.
pub fn proc_status_mib(field: &str) -> f64 {
    status_mib("self", field)
}

/// A `VmRSS`-style field of /proc/`pid`/status, in MiB (NaN when the
/// process is gone or not readable).
pub fn status_mib(pid: &str, field: &str) -> f64 {
    round3(status_value(pid, field) / 1024.0)
}

/// A field of /proc/`pid`/status as it stands there (`Threads:` a count,
/// `VmRSS:` KiB); NaN when missing.
pub fn status_value(pid: &str, field: &str) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<f64>().ok())
        })
        .unwrap_or(f64::NAN)
}

/// Open file descriptors of this process.
pub fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count())
}
