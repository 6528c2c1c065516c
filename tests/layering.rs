//! The crate's subsystems form layers: each may use only the layers below
//! it, so there is no import cycle between them. This test reads `src/`
//! and fails on any `crate::<subsystem>` path that reaches sideways or up
//! (ARCHITECTURE.md draws the same picture in words).
//!
//! A subsystem is a folder or a top-level file under `src/`. Comment lines
//! (including doc links) are not dependencies and are skipped.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// Each subsystem and its layer: a subsystem may use subsystems of a lower
/// layer only. Subsystems on one layer know nothing of each other.
const LAYERS: &[(&str, u32)] = &[
    // Pure cores: no I/O, no configuration, no connection.
    ("protocol", 0),
    ("sublist", 0),
    ("tls", 0),
    // Identity and access decisions over plain data.
    ("auth", 1),
    // Leaf-node links, the pure part: parser, interest, options.
    ("leaf", 1),
    // What the server is asked to be: builds auth's and tls's option types.
    ("config", 2),
    // HTTP, JSON shapes and the closed ring; knows no loop.
    ("monitor", 3),
    // Durable streams: engine, storage, API; knows no loop.
    ("jetstream", 4),
    // The event loop, its connections, and the glue to everything below.
    ("server", 5),
];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).expect("src/ is readable") {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The subsystem a file under `src/` belongs to (`None` for the crate root
/// and the binary, which may use everything).
fn subsystem(src: &Path, file: &Path) -> Option<String> {
    let rel = file.strip_prefix(src).ok()?;
    let first = rel.components().next()?.as_os_str().to_str()?;
    match first {
        "lib.rs" | "main.rs" => None,
        f => Some(f.trim_end_matches(".rs").to_string()),
    }
}

/// Every subsystem named after `crate::` on a non-comment line.
fn crate_paths(text: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for line in text.lines() {
        if line.trim_start().starts_with("//") {
            continue;
        }
        let mut rest = line;
        while let Some(at) = rest.find("crate::") {
            let after = &rest[at + "crate::".len()..];
            let name: String = after
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() {
                found.insert(name);
            }
            rest = after;
        }
    }
    found
}

fn dependency_graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let known: BTreeSet<&str> = LAYERS.iter().map(|(n, _)| *n).collect();
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in files {
        let Some(from) = subsystem(&src, &file) else {
            continue;
        };
        let text = fs::read_to_string(&file).expect("source file is readable");
        let deps = graph.entry(from.clone()).or_default();
        for to in crate_paths(&text) {
            if to != from && known.contains(to.as_str()) {
                deps.insert(to);
            }
        }
    }
    graph
}

#[test]
fn every_subsystem_has_a_layer() {
    let layers: BTreeMap<&str, u32> = LAYERS.iter().copied().collect();
    for name in dependency_graph().keys() {
        assert!(
            layers.contains_key(name.as_str()),
            "src/{name} is not in LAYERS: give the new subsystem its place in tests/layering.rs and ARCHITECTURE.md"
        );
    }
}

#[test]
fn subsystems_use_only_lower_layers() {
    let layers: BTreeMap<&str, u32> = LAYERS.iter().copied().collect();
    let mut wrong = Vec::new();
    for (from, deps) in dependency_graph() {
        let Some(&own) = layers.get(from.as_str()) else {
            continue;
        };
        for to in deps {
            if layers[to.as_str()] >= own {
                wrong.push(format!(
                    "{from} (layer {own}) uses {to} (layer {})",
                    layers[to.as_str()]
                ));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "layering violations:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn the_scan_sees_real_dependencies() {
    // Guards the test itself: if the scan found nothing, every check above
    // would pass vacuously.
    let graph = dependency_graph();
    assert!(graph["server"].contains("sublist"));
    assert!(graph["config"].contains("auth"));
    assert!(graph["auth"].contains("protocol"));
    assert!(crate_paths("// crate::server::x\nuse crate::auth::y;").len() == 1);
}
