//! A minimal benchmark runner: repeats a closure until enough time has
//! passed, then reports the rate of the best of several samples (the least
//! disturbed by a noisy, shared machine).

use std::time::{Duration, Instant};

/// Runs `f` (which does `units` units of work per call) and prints
/// `name: <rate> <unit>/s` using the best of 5 samples of ~200 ms each.
pub fn bench(name: &str, unit: &str, units: f64, mut f: impl FnMut()) -> f64 {
    // Warm up and find an iteration count that takes ~200 ms.
    let mut iters = 1u64;
    loop {
        let t = Instant::now();
        for _ in 0..iters {
            f();
        }
        if t.elapsed() >= Duration::from_millis(50) {
            break;
        }
        iters *= 2;
    }
    iters *= 4;
    let mut best = f64::MAX;
    for _ in 0..5 {
        let t = Instant::now();
        for _ in 0..iters {
            f();
        }
        best = best.min(t.elapsed().as_secs_f64() / iters as f64);
    }
    let rate = units / best;
    println!("{name:<48} {:>12} {unit}/s", human(rate));
    rate
}

fn human(x: f64) -> String {
    if x >= 1e9 {
        format!("{:.2} G", x / 1e9)
    } else if x >= 1e6 {
        format!("{:.2} M", x / 1e6)
    } else if x >= 1e3 {
        format!("{:.2} k", x / 1e3)
    } else {
        format!("{x:.1}")
    }
}
