//! What a new user reads: the README and the migration guide compile for someone who
//! depends on one adapter crate only, public docs do not say "the reference" (jargon for
//! cano 0.12), and `cargo test --workspace` has no colliding example names.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The fenced code blocks of a Markdown file: (info string, first line number, code).
fn code_blocks(markdown: &str) -> Vec<(String, usize, String)> {
    let mut blocks = Vec::new();
    let mut open: Option<(String, usize, String)> = None;
    for (n, line) in markdown.lines().enumerate() {
        let trimmed = line.trim_start();
        match (&mut open, trimmed.strip_prefix("```")) {
            (None, Some(info)) => open = Some((info.trim().to_string(), n + 1, String::new())),
            (Some(_), Some(_)) => blocks.push(open.take().unwrap()),
            (Some((_, _, code)), None) => {
                code.push_str(line);
                code.push('\n');
            }
            (None, None) => {}
        }
    }
    assert!(open.is_none(), "an unclosed code block");
    blocks
}

/// rustdoc runs a block whose info string is empty or `rust` (with attributes that do not
/// ignore it).
fn is_doctested(info: &str) -> bool {
    let mut parts = info.split(',').map(str::trim);
    let first = parts.next().unwrap_or("");
    (first.is_empty() || first == "rust") && !parts.any(|p| p == "ignore" || p == "text")
}

#[test]
fn readme_and_migration_guide_snippets_are_doctested_through_cano_tokio_alone() {
    let lib = read(&root().join("cano-tokio/src/lib.rs"));
    for guide in ["README.md", "MIGRATING.md"] {
        assert!(
            lib.contains(&format!("include_str!(\"../../{guide}\")")),
            "cano-tokio does not doctest {guide}"
        );
        let text = read(&root().join(guide));
        let tested: Vec<_> = code_blocks(&text)
            .into_iter()
            .filter(|(info, _, _)| is_doctested(info))
            .collect();
        assert!(!tested.is_empty(), "{guide} has no tested Rust snippet");
        for (_, line, code) in tested {
            for other in ["cano_core", "cano_smol", "cano_embassy", "cano::"] {
                assert!(
                    !code.contains(other),
                    "{guide}:{line}: a tested snippet names `{other}`; a user of cano-tokio \
                     alone writes `cano_tokio::`"
                );
            }
        }
    }
}

/// Lines that belong to files another branch restructures; drop an entry once its text is
/// gone (the test then fails on a stale entry, so the list cannot rot).
const PENDING_ELSEWHERE: &[(&str, &str)] = &[];

#[test]
fn public_docs_say_cano_012_not_the_reference() {
    let mut files = vec![root().join("README.md"), root().join("MIGRATING.md")];
    for krate in [
        "cano-core",
        "cano-tokio",
        "cano-smol",
        "cano-embassy",
        "cano-redb",
    ] {
        let mut stack = vec![root().join(krate).join("src")];
        while let Some(dir) = stack.pop() {
            for entry in fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    stack.push(path);
                } else if path.extension().is_some_and(|e| e == "rs") {
                    files.push(path);
                }
            }
        }
    }
    let mut pending_seen = vec![false; PENDING_ELSEWHERE.len()];
    let mut offenders = Vec::new();
    for path in files {
        let text = read(&path);
        let relative = path
            .strip_prefix(root())
            .unwrap()
            .to_string_lossy()
            .to_string();
        let markdown = relative.ends_with(".md");
        // Doc comments, joined so a phrase broken over two lines is still found.
        let docs: Vec<(usize, &str)> = text
            .lines()
            .enumerate()
            .filter_map(|(n, line)| {
                let t = line.trim_start();
                let doc = if markdown {
                    Some(t)
                } else {
                    t.strip_prefix("///").or_else(|| t.strip_prefix("//!"))
                };
                doc.map(|d| (n + 1, d.trim()))
            })
            .collect();
        for (i, &(line, doc)) in docs.iter().enumerate() {
            let next = docs.get(i + 1).map_or("", |&(_, d)| d);
            let joined = format!("{doc} {next}").to_lowercase();
            let Some(at) = joined.find("the reference") else {
                continue;
            };
            if at >= doc.len() {
                continue; // starts on the next line; reported there
            }
            if let Some(k) = PENDING_ELSEWHERE
                .iter()
                .position(|&(file, text)| relative == file && joined.contains(&text.to_lowercase()))
            {
                pending_seen[k] = true;
                continue;
            }
            offenders.push(format!("{relative}:{line}: {doc}"));
        }
    }
    assert!(
        offenders.is_empty(),
        "say \"cano 0.12\" (or what is meant) instead of \"the reference\":\n{}",
        offenders.join("\n")
    );
    for (seen, (file, text)) in pending_seen.iter().zip(PENDING_ELSEWHERE) {
        assert!(
            seen,
            "{file} no longer says {text:?}: drop it from PENDING_ELSEWHERE"
        );
    }
}

#[test]
fn example_names_are_unique_across_the_workspace() {
    let mut owners: BTreeMap<String, Vec<&str>> = BTreeMap::new();
    for krate in [
        "cano-core",
        "cano-tokio",
        "cano-smol",
        "cano-embassy",
        "cano-redb",
        "tests",
    ] {
        let manifest = read(&root().join(krate).join("Cargo.toml"));
        let mut names: Vec<String> = manifest
            .split("[[example]]")
            .skip(1)
            .filter_map(|section| {
                let line = section
                    .lines()
                    .find(|l| l.trim_start().starts_with("name"))?;
                Some(line.split('"').nth(1)?.to_string())
            })
            .collect();
        if let Ok(dir) = fs::read_dir(root().join(krate).join("examples")) {
            for entry in dir {
                let path = entry.unwrap().path();
                if path.extension().is_some_and(|e| e == "rs") {
                    names.push(path.file_stem().unwrap().to_string_lossy().to_string());
                }
            }
        }
        names.sort();
        names.dedup();
        for name in names {
            owners.entry(name).or_default().push(krate);
        }
    }
    let collisions: Vec<_> = owners
        .iter()
        .filter(|(_, crates)| crates.len() > 1)
        .collect();
    assert!(
        collisions.is_empty(),
        "example names used by several crates: {collisions:?}"
    );
    assert!(owners.contains_key("quickstart") && owners.contains_key("smol_quickstart"));
}
