//! This process's resource use for `/varz`: resident memory (`mem`, from
//! `/proc/self/statm`) and CPU use in percent (`cpu`, from the utime and
//! stime of `/proc/self/stat`). Linux only; elsewhere both read 0.

use std::time::{Duration, Instant};

/// Resident set size in bytes (0 if `/proc` cannot be read).
pub fn rss_bytes() -> u64 {
    let Ok(statm) = std::fs::read_to_string("/proc/self/statm") else {
        return 0;
    };
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|f| f.parse().ok())
        .unwrap_or(0);
    pages.saturating_mul(rustix::param::page_size() as u64)
}

/// CPU time used so far (user + system), if `/proc` can be read.
fn cpu_time() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // After the parenthesised command name: field 3 (state) onwards;
    // utime and stime are fields 14 and 15, in clock ticks.
    let rest = stat.get(stat.rfind(')')? + 1..)?;
    let mut fields = rest.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    let hz = rustix::param::clock_ticks_per_second().max(1);
    Some(Duration::from_secs_f64((utime + stime) as f64 / hz as f64))
}

/// Samples within this interval of the last one return the last value
/// (clock ticks are 10 ms: a shorter window is mostly noise).
const MIN_WINDOW: Duration = Duration::from_secs(1);

/// CPU use in percent of one core, over the time since the previous sample
/// (or since start for the first one).
#[derive(Debug)]
pub struct CpuSampler {
    last_at: Instant,
    last_cpu: Duration,
    last_percent: f64,
    sampled: bool,
}

impl CpuSampler {
    /// A sampler counting from `start` (the process start, near enough).
    pub fn new(start: Instant) -> CpuSampler {
        CpuSampler {
            last_at: start,
            last_cpu: Duration::ZERO,
            last_percent: 0.0,
            sampled: false,
        }
    }

    /// CPU use since the last sample, in percent, rounded to 0.01.
    pub fn sample(&mut self, now: Instant) -> f64 {
        let window = now.saturating_duration_since(self.last_at);
        if self.sampled && window < MIN_WINDOW {
            return self.last_percent;
        }
        let Some(cpu) = cpu_time() else {
            return 0.0;
        };
        if !window.is_zero() {
            let used = cpu.saturating_sub(self.last_cpu);
            let percent = used.as_secs_f64() / window.as_secs_f64() * 100.0;
            self.last_percent = (percent * 100.0).round() / 100.0;
        }
        self.last_at = now;
        self.last_cpu = cpu;
        self.sampled = true;
        self.last_percent
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process() {
        assert!(rss_bytes() > 0);
        assert!(cpu_time().is_some());
        let mut s = CpuSampler::new(Instant::now() - Duration::from_secs(10));
        let p = s.sample(Instant::now());
        assert!((0.0..=100.0 * 64.0).contains(&p), "{p}");
        // Within the window: the same value again.
        assert_eq!(s.sample(Instant::now()), p);
    }
}
