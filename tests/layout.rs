//! The architecture is visible from the tree (ARCHITECTURE.md "Module
//! map"): `src/` holds only `main.rs`, `lib.rs` and one folder per domain;
//! folders do not import each other in a cycle; no source file grows past
//! about 700 lines. Read from the source text, so it needs no build
//! tooling; test modules (`tests.rs`, `tests/`, `#[cfg(test)]` blocks) may
//! use anything.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

const MAX_LINES: usize = 700;

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn is_test_file(path: &Path) -> bool {
    path.components().any(|c| c.as_os_str() == "tests") || path.file_name().is_some_and(|n| n == "tests.rs")
}

/// The folder under src/ a file belongs to (None for main.rs / lib.rs).
fn folder(path: &Path) -> Option<String> {
    let rel = path.strip_prefix(src()).unwrap();
    let mut parts = rel.components();
    let first = parts.next()?.as_os_str().to_string_lossy().into_owned();
    parts.next().map(|_| first)
}

/// Source text without `#[cfg(test)]` modules and comment lines.
fn code_lines(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        let t = line.trim_start();
        if t.starts_with("#[cfg(test)]") {
            // Skip the item that follows: to the end of its braces.
            let mut depth = 0i32;
            let mut opened = false;
            for l in lines.by_ref() {
                depth += l.matches('{').count() as i32 - l.matches('}').count() as i32;
                opened |= l.contains('{');
                if opened && depth <= 0 || !opened && l.trim_end().ends_with(';') {
                    break;
                }
            }
            continue;
        }
        if t.starts_with("//") {
            continue;
        }
        out.push(line);
    }
    out
}

fn imports() -> BTreeMap<String, BTreeSet<String>> {
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    let mut deps: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in files.iter().filter(|f| !is_test_file(f)) {
        let Some(from) = folder(file) else { continue };
        let text = std::fs::read_to_string(file).unwrap();
        for line in code_lines(&text) {
            for (i, _) in line.match_indices("crate::") {
                let name: String = line[i + 7..].chars().take_while(|c| c.is_ascii_lowercase() || *c == '_').collect();
                // Only folders count (`crate::words!` is a macro at the root).
                if !name.is_empty() && name != from && src().join(&name).is_dir() {
                    deps.entry(from.clone()).or_default().insert(name);
                }
            }
        }
        deps.entry(from).or_default();
    }
    deps
}

#[test]
fn src_holds_only_main_lib_and_domain_folders() {
    let loose: Vec<String> = std::fs::read_dir(src())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .filter(|n| n != "main.rs" && n != "lib.rs")
        .collect();
    assert!(loose.is_empty(), "loose modules in src/ (put each in its domain's folder): {loose:?}");
}

#[test]
fn no_import_cycles_between_folders() {
    let deps = imports();
    // Depth-first search for a path back to the start.
    for start in deps.keys() {
        let mut stack: Vec<Vec<String>> = vec![vec![start.clone()]];
        let mut seen = BTreeSet::new();
        while let Some(path) = stack.pop() {
            let last = path.last().unwrap();
            for next in deps.get(last).into_iter().flatten() {
                if next == start {
                    panic!("import cycle between folders: {} -> {start}\nall imports: {deps:#?}", path.join(" -> "));
                }
                if seen.insert(next.clone()) {
                    let mut longer = path.clone();
                    longer.push(next.clone());
                    stack.push(longer);
                }
            }
        }
    }
}

#[test]
fn proto_imports_nothing_of_loa() {
    let deps = imports();
    assert_eq!(deps.get("proto"), Some(&BTreeSet::new()), "proto is the vocabulary; it must not import other folders");
}

#[test]
fn no_source_file_over_700_lines() {
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    let mut long: Vec<(usize, String)> = files
        .iter()
        .map(|f| (std::fs::read_to_string(f).unwrap().lines().count(), f.strip_prefix(src()).unwrap().display().to_string()))
        .filter(|(n, _)| *n > MAX_LINES)
        .collect();
    long.sort();
    assert!(long.is_empty(), "files over {MAX_LINES} lines (split them by what they own): {long:?}");
}
