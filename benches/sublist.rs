//! Subject trie: matches/s with and without the match cache, from 1 to
//! 100k subscriptions (90% literal, 5% `*`, 5% `>`), and inserts/s.

mod bench_util;
use bench_util::bench;
use natrium::sublist::Sublist;
use std::hint::black_box;

/// A tiny deterministic generator (xorshift).
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn filter(i: usize) -> String {
    match i % 20 {
        0 => format!("s.{i}.*"),
        1 => format!("s.{i}.>"),
        _ => format!("s.{i}.x"),
    }
}

fn fill(sl: &mut Sublist, n: usize) {
    for i in 0..n {
        sl.insert(filter(i).as_bytes(), None, i as u32).unwrap();
    }
}

fn main() {
    for n in [1usize, 100, 10_000, 100_000] {
        let subjects: Vec<String> = {
            let mut rng = Rng(0x9e3779b97f4a7c15);
            (0..4096)
                .map(|_| format!("s.{}.x", rng.next() as usize % n))
                .collect()
        };
        for (label, mut sl) in [
            ("cache", Sublist::new()),
            ("no cache", Sublist::without_cache()),
        ] {
            fill(&mut sl, n);
            // A small working set (cache-friendly) and a spread one.
            let hot: Vec<&String> = subjects.iter().take(64).collect();
            bench(
                &format!("match {n} subs, 64 hot subjects ({label})"),
                "match",
                1024.0,
                || {
                    for s in hot.iter().cycle().take(1024) {
                        black_box(sl.matches(black_box(s.as_bytes())));
                    }
                },
            );
            bench(
                &format!("match {n} subs, 4096 subjects ({label})"),
                "match",
                4096.0,
                || {
                    for s in &subjects {
                        black_box(sl.matches(black_box(s.as_bytes())));
                    }
                },
            );
        }
    }
    bench("insert+remove 10k subs", "sub", 10_000.0, || {
        let mut sl = Sublist::new();
        fill(&mut sl, 10_000);
        for i in 0..10_000 {
            sl.remove(filter(i).as_bytes(), None, i as u32);
        }
        black_box(sl.len());
    });
}
