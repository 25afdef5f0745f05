//! The layer order of `src/lib.rs`'s crate doc, enforced: every `crate::`
//! path (and every `super::` path that climbs out of its module) in every
//! file under `src/` is checked against the table there. A module imports
//! only modules of lower layers; modules of one layer import each other in
//! one direction only. And README's Layout block names the tree as it is.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Imports against the order that are known and being removed, as (file,
/// module imported). Empty this list as they go: an entry that no longer
/// occurs fails the test, so the list never outlives its imports.
const KNOWN: &[(&str, &str)] = &[];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The layer table of `src/lib.rs`: module → layer, and the names the crate
/// root re-exports (`pub use error::{ArcaError, Result}`) → their module.
struct Table {
    layer: BTreeMap<String, usize>,
    reexport: BTreeMap<String, String>,
}

fn table(lib: &str) -> Table {
    let mut layer = BTreeMap::new();
    for l in lib.lines() {
        let Some(row) = l.strip_prefix("//! |") else {
            continue;
        };
        let cells: Vec<&str> = row.split('|').map(str::trim).collect();
        let Ok(n) = cells[0].parse::<usize>() else {
            continue;
        };
        for m in cells[1].split(',') {
            layer.insert(m.trim().to_string(), n);
        }
    }
    let mut reexport = BTreeMap::new();
    for l in lib.lines() {
        let Some(rest) = l.trim().strip_prefix("pub use ") else {
            continue;
        };
        let rest = rest.trim_end_matches(';');
        if let Some((m, names)) = rest.split_once("::") {
            for n in names.trim_matches(|c| c == '{' || c == '}').split(',') {
                reexport.insert(n.trim().to_string(), m.to_string());
            }
        }
    }
    Table { layer, reexport }
}

#[derive(Debug, PartialEq)]
enum Tok {
    Ident(String),
    Sep, // ::
    Open,
    Close,
    Comma,
    Dollar,
    Other,
}

/// Tokens with their lines; comments, strings and character literals are
/// skipped, so `"crate::cli"` in a message or a comment is no import.
fn tokens(text: &str) -> Vec<(usize, Tok)> {
    let c: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let (mut i, mut line) = (0, 1);
    let skip_to = |i: &mut usize, line: &mut usize, end: usize| {
        for &ch in &c[*i..end.min(c.len())] {
            if ch == '\n' {
                *line += 1;
            }
        }
        *i = end.min(c.len());
    };
    while i < c.len() {
        let ch = c[i];
        let next = c.get(i + 1).copied();
        if ch == '\n' {
            line += 1;
            i += 1;
        } else if ch.is_whitespace() {
            i += 1;
        } else if ch == '/' && next == Some('/') {
            while i < c.len() && c[i] != '\n' {
                i += 1;
            }
        } else if ch == '/' && next == Some('*') {
            let (mut depth, mut j) = (0, i);
            while j < c.len() {
                if c[j] == '/' && c.get(j + 1) == Some(&'*') {
                    depth += 1;
                    j += 2;
                } else if c[j] == '*' && c.get(j + 1) == Some(&'/') {
                    depth -= 1;
                    j += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    j += 1;
                }
            }
            skip_to(&mut i, &mut line, j);
        } else if ch == '"' {
            let mut j = i + 1;
            while j < c.len() && c[j] != '"' {
                j += if c[j] == '\\' { 2 } else { 1 };
            }
            skip_to(&mut i, &mut line, j + 1);
        } else if ch == '\'' {
            // a character literal ('a', '\n', '\''), else a lifetime
            if next == Some('\\') {
                let mut j = i + 2;
                while j < c.len() && c[j] != '\'' {
                    j += if c[j] == '\\' { 2 } else { 1 };
                }
                skip_to(&mut i, &mut line, j + 1);
            } else if c.get(i + 2) == Some(&'\'') {
                i += 3;
            } else {
                i += 1;
            }
        } else if ch.is_alphanumeric() || ch == '_' {
            let mut j = i;
            while j < c.len() && (c[j].is_alphanumeric() || c[j] == '_') {
                j += 1;
            }
            let word: String = c[i..j].iter().collect();
            // raw strings: r"…", r#"…"#, br"…"
            if (word == "r" || word == "br") && matches!(c.get(j), Some('"') | Some('#')) {
                let mut hashes = 0;
                while c.get(j + hashes) == Some(&'#') {
                    hashes += 1;
                }
                if c.get(j + hashes) == Some(&'"') {
                    let close: String = std::iter::once('"')
                        .chain("#".repeat(hashes).chars())
                        .collect();
                    let rest: String = c[j + hashes + 1..].iter().collect();
                    let end = rest
                        .find(&close)
                        .map(|p| rest[..p].chars().count())
                        .unwrap_or(rest.chars().count());
                    skip_to(&mut i, &mut line, j + hashes + 1 + end + close.len());
                    continue;
                }
            }
            if word == "b" && c.get(j) == Some(&'"') {
                i = j;
                continue;
            }
            out.push((line, Tok::Ident(word)));
            i = j;
        } else {
            let t = match ch {
                ':' if next == Some(':') => {
                    i += 1;
                    Tok::Sep
                }
                '{' => Tok::Open,
                '}' => Tok::Close,
                ',' => Tok::Comma,
                '$' => Tok::Dollar,
                _ => Tok::Other,
            };
            out.push((line, t));
            i += 1;
        }
    }
    out
}

/// One path that names another top-level module.
#[derive(Debug, Clone, PartialEq)]
struct Import {
    file: String,
    line: usize,
    module: String,
    path: String,
}

/// The top-level module of a file under src/ and how deep the file's module
/// is (src/a.rs and src/a/mod.rs: 1; src/a/b.rs: 2).
fn module_of(rel: &str) -> (String, usize) {
    let parts: Vec<&str> = rel.trim_start_matches("src/").split('/').collect();
    let top = parts[0].trim_end_matches(".rs").to_string();
    let depth = parts.len() - usize::from(parts.last() == Some(&"mod.rs"));
    (top, depth)
}

/// The first name of each item of a `{…}` group starting at `toks[i]`.
fn group(toks: &[(usize, Tok)], mut i: usize) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut depth = 0;
    let mut item_start = true;
    while i < toks.len() {
        match &toks[i].1 {
            Tok::Open => {
                depth += 1;
                item_start = depth == 1;
            }
            Tok::Close => {
                depth -= 1;
                if depth == 0 {
                    break;
                }
            }
            Tok::Comma if depth == 1 => item_start = true,
            Tok::Ident(w) if item_start && depth == 1 => {
                out.push((toks[i].0, w.clone()));
                item_start = false;
            }
            _ => {}
        }
        i += 1;
    }
    out
}

/// Every path in the file that reaches the crate root: `crate::x`,
/// `crate::{x, y}`, and `super::…` chains that climb out of the file's
/// top-level module.
fn imports(rel: &str, text: &str, t: &Table) -> Vec<Import> {
    let (_, file_depth) = module_of(rel);
    let toks = tokens(text);
    let mut out = Vec::new();
    let mut brace = 0usize;
    let mut inline_mods: Vec<usize> = Vec::new(); // brace depth where each `mod x {` opened
    let mut pending_mod = false;
    let name = |w: &str| t.reexport.get(w).cloned().unwrap_or_else(|| w.to_string());
    let mut i = 0;
    while i < toks.len() {
        let (line, tok) = &toks[i];
        let ident = |k: usize| match toks.get(k) {
            Some((_, Tok::Ident(w))) => Some(w.as_str()),
            _ => None,
        };
        let sep = |k: usize| matches!(toks.get(k), Some((_, Tok::Sep)));
        match tok {
            Tok::Open => {
                brace += 1;
                if pending_mod {
                    inline_mods.push(brace);
                    pending_mod = false;
                }
            }
            Tok::Close => {
                if inline_mods.last() == Some(&brace) {
                    inline_mods.pop();
                }
                brace = brace.saturating_sub(1);
            }
            Tok::Ident(w) if w == "mod" => {
                pending_mod =
                    ident(i + 1).is_some() && matches!(toks.get(i + 2), Some((_, Tok::Open)));
            }
            Tok::Ident(w) if w == "crate" && sep(i + 1) => {
                let after_dollar = i > 0 && toks[i - 1].1 == Tok::Dollar;
                let before_sep = i > 0 && toks[i - 1].1 == Tok::Sep;
                if !after_dollar && !before_sep {
                    if let Some(m) = ident(i + 2) {
                        out.push(Import {
                            file: rel.into(),
                            line: *line,
                            module: name(m),
                            path: format!("crate::{m}"),
                        });
                    } else if matches!(toks.get(i + 2), Some((_, Tok::Open))) {
                        for (l, m) in group(&toks, i + 2) {
                            out.push(Import {
                                file: rel.into(),
                                line: l,
                                module: name(&m),
                                path: format!("crate::{{{m}…}}"),
                            });
                        }
                    }
                }
            }
            Tok::Ident(w) if w == "super" && !(i > 0 && toks[i - 1].1 == Tok::Sep) => {
                let mut k = i;
                let mut n = 0;
                while ident(k) == Some("super") && sep(k + 1) {
                    n += 1;
                    k += 2;
                }
                // climbing n levels from a module `file_depth + inline` deep
                // reaches the crate root when n ≥ that depth
                if n > 0 && n >= file_depth + inline_mods.len() {
                    if let Some(m) = ident(k) {
                        out.push(Import {
                            file: rel.into(),
                            line: *line,
                            module: name(m),
                            path: format!("{}{m}", "super::".repeat(n)),
                        });
                    }
                }
                i = k.max(i + 1);
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    out
}

/// The problems of a set of files (path under the crate, text) against the
/// table; `known` as [`KNOWN`].
fn check(files: &[(String, String)], t: &Table, known: &[(&str, &str)]) -> Vec<String> {
    let mut problems = Vec::new();
    let mut tolerated: BTreeSet<(String, String)> = BTreeSet::new();
    let mut same_level: BTreeMap<String, BTreeMap<String, Import>> = BTreeMap::new();
    for (rel, text) in files {
        let (own, _) = module_of(rel);
        if rel == "src/lib.rs" || rel == "src/main.rs" {
            continue;
        }
        let Some(&mine) = t.layer.get(&own) else {
            problems.push(format!(
                "{rel}: module {own} is in no layer of src/lib.rs's table"
            ));
            continue;
        };
        for imp in imports(rel, text, t) {
            if imp.module == own {
                continue;
            }
            let Some(&theirs) = t.layer.get(&imp.module) else {
                problems.push(format!(
                    "{}:{}: {}: no module {} in src/lib.rs's layer table",
                    imp.file, imp.line, imp.path, imp.module
                ));
                continue;
            };
            if theirs > mine {
                if known.contains(&(rel.as_str(), imp.module.as_str())) {
                    tolerated.insert((rel.clone(), imp.module.clone()));
                    continue;
                }
                problems.push(format!(
                    "{}:{}: {} imports {} (layer {theirs}) from {own} (layer {mine}): upward",
                    imp.file, imp.line, imp.path, imp.module
                ));
            } else if theirs == mine {
                same_level
                    .entry(own.clone())
                    .or_default()
                    .entry(imp.module.clone())
                    .or_insert(imp);
            }
        }
    }
    // modules of one layer: an import back along a path of imports is a cycle
    for (from, tos) in &same_level {
        for (to, imp) in tos {
            let mut seen = BTreeSet::new();
            let mut stack = vec![to.clone()];
            while let Some(m) = stack.pop() {
                if !seen.insert(m.clone()) {
                    continue;
                }
                if let Some(next) = same_level.get(&m) {
                    stack.extend(next.keys().cloned());
                }
            }
            if seen.contains(from) {
                problems.push(format!(
                    "{}:{}: {} imports {to} of its own layer, which imports {from} back: a cycle",
                    imp.file, imp.line, imp.path
                ));
            }
        }
    }
    for (file, module) in known {
        if !tolerated.contains(&(file.to_string(), module.to_string())) {
            problems.push(format!(
                "{file} no longer imports {module}: remove it from KNOWN in tests/layers.rs"
            ));
        }
    }
    problems
}

fn rs_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rs_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

fn sources() -> Vec<(String, String)> {
    let mut paths = Vec::new();
    rs_files(&root().join("src"), &mut paths);
    paths.sort();
    paths
        .iter()
        .map(|p| {
            let rel = p
                .strip_prefix(root())
                .unwrap()
                .to_str()
                .unwrap()
                .to_string();
            (rel, std::fs::read_to_string(p).unwrap())
        })
        .collect()
}

fn lib_table() -> Table {
    table(&std::fs::read_to_string(root().join("src/lib.rs")).unwrap())
}

#[test]
fn no_file_imports_against_the_layer_order() {
    let t = lib_table();
    assert!(
        t.layer.len() >= 10,
        "src/lib.rs's layer table not found: {:?}",
        t.layer
    );
    let problems = check(&sources(), &t, KNOWN);
    assert!(problems.is_empty(), "\n{}\n", problems.join("\n"));
}

#[test]
fn every_module_declared_in_lib_rs_has_a_layer() {
    let t = lib_table();
    let lib = std::fs::read_to_string(root().join("src/lib.rs")).unwrap();
    for l in lib.lines() {
        if let Some(m) = l.trim().strip_prefix("pub mod ") {
            let m = m.trim_end_matches(';');
            assert!(
                t.layer.contains_key(m),
                "src/lib.rs: pub mod {m} has no layer in the table"
            );
        }
    }
}

/// The checker itself: it finds what it must, and only that.
#[test]
fn the_checker_finds_upward_imports_and_cycles() {
    let t = lib_table();
    let files = |v: &[(&str, &str)]| -> Vec<(String, String)> {
        v.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    };
    // upward, plain and in a group, with the line
    let p = check(
        &files(&[
            ("src/conex/x.rs", "//! doc\nuse crate::cli::run;\n"),
            (
                "src/keys/y.rs",
                "fn f() {\n    crate::{conex::A,\n journal::B};\n}\n",
            ),
        ]),
        &t,
        &[],
    );
    assert_eq!(p.len(), 2, "{p:#?}");
    assert!(
        p[0].starts_with(
            "src/conex/x.rs:2: crate::cli imports cli (layer 10) from conex (layer 1)"
        ),
        "{p:#?}"
    );
    assert!(
        p[1].starts_with("src/keys/y.rs:3: crate::{journal…} imports journal"),
        "{p:#?}"
    );
    // comments, strings, raw strings, lifetimes, $crate and nested paths are no imports
    let p = check(
        &files(&[(
            "src/conex/z.rs",
            "// crate::cli\n/* crate::cli /* nested */ crate::cli */\nconst A: &str = \"crate::cli \\\" crate::cli\";\nconst B: &str = r#\"crate::cli \"# ;\nfn f<'a>(x: &'a str) -> char { '\"' }\nmacro_rules! m { () => { $crate::cli::run() } }\nuse other::crate::cli;\n",
        )]),
        &t,
        &[],
    );
    assert!(p.is_empty(), "{p:#?}");
    // super:: that leaves the top-level module; super:: inside it is fine
    let p = check(
        &files(&[
            (
                "src/conex/mod.rs",
                "use super::cli::run;\nmod tests { use super::*; }\n",
            ),
            (
                "src/conex/a.rs",
                "use super::b::X;\nfn f() { super::super::ceremony::g() }\n",
            ),
        ]),
        &t,
        &[],
    );
    assert_eq!(p.len(), 2, "{p:#?}");
    assert!(
        p[0].starts_with("src/conex/mod.rs:1: super::cli imports cli"),
        "{p:#?}"
    );
    assert!(
        p[1].starts_with("src/conex/a.rs:2: super::super::ceremony imports ceremony"),
        "{p:#?}"
    );
    // the crate root's re-exports count as their module
    let p = check(
        &files(&[("src/conex/r.rs", "use crate::Result;\n")]),
        &t,
        &[],
    );
    assert_eq!(p.len(), 1, "{p:#?}");
    assert!(p[0].contains("imports error (layer 4)"), "{p:#?}");
    // one direction within a layer is fine, both ways a cycle
    let one = [(
        "src/verify_cache.rs",
        "use crate::repository::write_atomic;\n",
    )];
    assert!(check(&files(&one), &t, &[]).is_empty());
    let p = check(
        &files(&[
            one[0],
            ("src/repository.rs", "\n\nuse crate::verify_cache::State;\n"),
        ]),
        &t,
        &[],
    );
    assert_eq!(p.len(), 2, "{p:#?}");
    assert!(
        p.iter().any(|l| l.starts_with(
            "src/repository.rs:3: crate::verify_cache imports verify_cache of its own layer"
        )),
        "{p:#?}"
    );
    // a module in no layer; a known import that is gone
    let p = check(
        &files(&[("src/extra.rs", "")]),
        &t,
        &[("src/conex/x.rs", "cli")],
    );
    assert_eq!(p.len(), 2, "{p:#?}");
    assert!(p[0].contains("module extra is in no layer"), "{p:#?}");
    assert!(
        p[1].contains("no longer imports cli: remove it from KNOWN"),
        "{p:#?}"
    );
}

/// The first word of each line of README's Layout block.
fn layout_names() -> Vec<String> {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let block = readme
        .split("## Layout")
        .nth(1)
        .expect("README has a Layout section")
        .split("```")
        .nth(1)
        .expect("the Layout section has a code block");
    block
        .lines()
        .filter(|l| !l.starts_with(' ') && !l.trim().is_empty())
        .filter_map(|l| l.split_whitespace().next())
        .map(String::from)
        .collect()
}

fn entries(dir: &Path) -> Vec<(String, bool)> {
    let mut v: Vec<(String, bool)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (e.file_name().into_string().unwrap(), e.path().is_dir())
        })
        .collect();
    v.sort();
    v
}

/// README's Layout names every file and folder of src/, every folder of
/// tests/, every top-level folder and script; and everything it names under
/// src/ exists.
#[test]
fn readme_layout_is_the_tree() {
    let names: BTreeSet<String> = layout_names().into_iter().collect();
    let shown = |p: &str, dir: bool| if dir { format!("{p}/") } else { p.to_string() };
    let mut missing = Vec::new();
    for (n, dir) in entries(&root().join("src")) {
        let p = shown(&format!("src/{n}"), dir);
        if !names.contains(&p) {
            missing.push(p);
        }
    }
    for (n, dir) in entries(&root().join("tests")) {
        let p = shown(&format!("tests/{n}"), dir);
        if dir && !names.contains(&p) {
            missing.push(p);
        }
    }
    let not_named = [
        ".git",
        "target",
        "src",
        "tests",
        "Cargo.toml",
        "Cargo.lock",
        "README.md",
        ".gitignore",
    ];
    for (n, dir) in entries(&root()) {
        if not_named.contains(&n.as_str()) || (n.starts_with('.') && !dir) {
            continue;
        }
        let p = shown(&n, dir);
        if !names.contains(&p) {
            missing.push(p);
        }
    }
    assert!(
        missing.is_empty(),
        "README's Layout does not name: {missing:?}"
    );
    let stale: Vec<&String> = names
        .iter()
        .filter(|n| n.starts_with("src/") && !root().join(n.trim_end_matches('/')).exists())
        .collect();
    assert!(
        stale.is_empty(),
        "README's Layout names what is not there: {stale:?}"
    );
}
