//! Full verification (`--dir`): the delegation levels, the entries of
//! each level against its expression, and the data directory against the
//! signed files.

use super::*;

fn subpath(parent: &[String], p: &[String]) -> bool {
    p.len() > parent.len() && p.starts_with(parent)
}

/// The delegation levels of a full verification ([`Verifier::collect_levels`]).
#[derive(Default)]
struct Levels {
    /// The levels whose expression is satisfied, in the order checked.
    levels: Vec<Level>,
    /// Every targets file that verified.
    seen_files: BTreeSet<String>,
    /// The top level's targets files, when the verified tree is kept.
    top: Vec<Arc<Checked>>,
    /// Whether a kept level delegates.
    delegated: bool,
}

/// A file of the data directory as the walk found it: its path (the
/// components joined with `/`), SHA-256 and size.
struct WalkedFile {
    path: String,
    sha256: [u8; 32],
    size: u64,
}

/// One entry of the data directory walk, in sequential walk order.
enum Walked {
    File(WalkedFile),
    Failed(VerifyError),
}

/// What is wrong with a file of the data directory: its path, the message,
/// and the package when it is only on disk.
type Problem = (Path, String, Option<String>);

/// One file of the data directory judged against the signed files.
struct Seen<'t> {
    /// The signed path it is, when it is one.
    key: Option<&'t str>,
    /// What is wrong with it.
    problem: Option<Box<Problem>>,
}

/// Splits a path joined with `/` into its components.
fn split_joined(p: &str) -> Path {
    p.split('/').map(str::to_string).collect()
}

/// What the walk checks each file against.
struct Judge<'t, 'r> {
    tree: &'r TargetTree<'t>,
    datadir: &'r [String],
}

impl<'t> Judge<'t, '_> {
    /// Compares one file on disk with the signed files (conex's
    /// comparison of the disk tree with the targets tree, for one path).
    fn judge(&self, f: &WalkedFile) -> Seen<'t> {
        let mut problem = None;
        let key = match self.tree.get_key_value(f.path.as_str()) {
            None => {
                let t = Target {
                    filename: split_joined(&f.path),
                    digest: vec![],
                    size: 0,
                };
                if t.is_opam_file(self.datadir) {
                    // conex 1.0 tolerates the file when nothing is
                    // signed below the path's *first* component (for
                    // an opam repository: `packages`)
                    let pkg = t.filename.first().cloned();
                    let m = format!("path {} only exists on disk", f.path);
                    problem = Some(Box::new((t.filename, m, pkg)));
                }
                None
            }
            Some((k, xs)) => {
                if !xs
                    .iter()
                    .any(|(d, l)| *l == f.size && is_sha256_of(d, &f.sha256))
                {
                    let m = format!(
                        "no matching digest for {} (on disk {} bytes, {}; signed {})",
                        f.path,
                        f.size,
                        Digest::of_sha256(&f.sha256),
                        xs.iter()
                            .map(|(d, l)| format!("{l} bytes, {d}"))
                            .collect::<Vec<_>>()
                            .join("; ")
                    );
                    problem = Some(Box::new((split_joined(&f.path), m, None)));
                }
                Some(*k)
            }
        };
        Seen { key, problem }
    }
}

/// `prefix/name`, or `name` at the top.
fn join(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        return name.to_string();
    }
    let mut p = String::with_capacity(prefix.len() + 1 + name.len());
    p.push_str(prefix);
    p.push('/');
    p.push_str(name);
    p
}

/// How a failure names a directory of the walk.
fn display_joined(p: &str) -> &str {
    if p.is_empty() {
        "the repository"
    } else {
        p
    }
}

/// Walks `prefix` depth-first in directory order, hashing files; the
/// subdirectories and files are processed in parallel but the result keeps
/// the sequential order.
fn walk_and_hash(src: &dyn Source, prefix: &[String]) -> Vec<Walked> {
    if let Some(dir) = src.open_dir(prefix) {
        return walk_dir(dir, &path_to_string(prefix));
    }
    let items = match src.list(prefix) {
        Ok(items) => items,
        Err(e) => {
            return vec![Walked::Failed(VerifyError::from(format!(
                "cannot list {}: {e}",
                display_path(prefix)
            )))]
        }
    };
    items
        .into_par_iter()
        .flat_map_iter(|(name, is_dir)| {
            let mut p = prefix.to_vec();
            p.push(name);
            if is_dir {
                walk_and_hash(src, &p)
            } else {
                let h = src.open(&p).and_then(|mut r| sha256_reader(&mut r));
                vec![walked(path_to_string(&p), h)]
            }
        })
        .collect()
}

/// A file of the walk, or the failure to read it.
fn walked(path: String, h: io::Result<([u8; 32], u64)>) -> Walked {
    match h {
        Ok((sha256, size)) => Walked::File(WalkedFile { path, sha256, size }),
        Err(e) => Walked::Failed(VerifyError::from(format!("cannot read {path}: {e}"))),
    }
}

/// [`walk_and_hash`] on a directory on disk: each directory and file is
/// opened relative to its parent.
fn walk_dir(dir: io::Result<DirHandle>, prefix: &str) -> Vec<Walked> {
    let listed = dir.and_then(|mut d| d.list().map(|items| (d, items)));
    let (dir, items) = match listed {
        Ok(x) => x,
        Err(e) => {
            return vec![Walked::Failed(VerifyError::from(format!(
                "cannot list {}: {e}",
                display_joined(prefix)
            )))]
        }
    };
    let dir = &dir;
    items
        .into_par_iter()
        .flat_map_iter(|(name, listed)| {
            let p = join(prefix, &name);
            match listed {
                Listed::Dir => walk_dir(dir.subdir(&name), &p),
                Listed::File { linked } => vec![walked(p, dir.sha256_file(&name, linked))],
            }
        })
        .collect()
}

/// Walks the data directory `datadir` of `src` on a pool of its own (the
/// signed files are read and checked meanwhile on the global one), or on
/// the global pool when no thread can be made.
fn walk_beside(src: &dyn Source, datadir: &[String]) -> Vec<Walked> {
    match rayon::ThreadPoolBuilder::new()
        .num_threads(rayon::current_num_threads())
        .thread_name(|i| format!("arca-walk-{i}"))
        .build()
    {
        Ok(pool) => pool.install(|| walk_and_hash(src, datadir)),
        Err(_) => walk_and_hash(src, datadir),
    }
}

impl<'a> Verifier<'a> {
    /// Full verification (`--dir`).
    pub fn verify_full(&mut self) -> Result<Summary, VerifyError> {
        let (root, signers) = self.verify_root()?;
        let ts = self.verify_timestamp(&root)?;
        let snap = self.verify_snapshot(&root, ts.as_ref())?;
        let warnings_before_targets = self.warnings.len();
        let expr = root
            .roles
            .get(&crate::conex::Role::Maintainer)
            .cloned()
            .ok_or("no delegation for maintainers")?;
        // the data directory is walked and hashed while the signed files
        // are read and checked; its files are judged once they are
        let src = self.src;
        let datadir = root.datadir.clone();
        let datadir: &[String] = &datadir;
        std::thread::scope(|s| {
            let walk = s.spawn(move || walk_beside(src, datadir));
            let levels = self.collect_levels(&root, snap.as_ref(), expr);
            let tree = self.signed_tree(&levels.levels);
            let walked = walk.join().unwrap_or_else(|p| std::panic::resume_unwind(p));
            let (files, on_disk) = self.compare_with_disk(&root, &tree, walked)?;
            let summary = Summary {
                root_signers: signers,
                root_counter: root.header.counter,
                timestamp: ts
                    .as_ref()
                    .map(|t| (t.header.name.clone(), t.header.counter, t.header.epoch)),
                snapshot: snap
                    .as_ref()
                    .map(|s| (s.header.name.clone(), s.header.counter, s.header.epoch)),
                targets_files: levels.seen_files.into_iter().collect(),
                files,
            };
            if self.capture && !levels.delegated && self.warnings.len() == warnings_before_targets {
                if let (Some(snapshot), Some(_)) = (snap, ts) {
                    self.captured = Some(VerifiedTree {
                        root,
                        snapshot,
                        targets: levels
                            .top
                            .iter()
                            .map(|t| Arc::new(t.to_targets()))
                            .collect(),
                        disk: on_disk,
                        summary: summary.clone(),
                    });
                }
            }
            Ok(summary)
        })
    }

    /// The delegation levels from the maintainer expression `expr` down,
    /// each with its verified targets files. The levels are collected
    /// first and their entries checked after ([`Self::signed_tree`]), so
    /// that the tree of signed files can borrow from the targets files.
    fn collect_levels(&mut self, root: &Root, snap: Option<&Snapshot>, expr: Expr) -> Levels {
        let mut out = Levels::default();
        let mut queue: VecDeque<(Path, Expr, bool)> = VecDeque::new();
        queue.push_back((vec![], expr, false));
        while let Some((path, expr, terminating)) = queue.pop_front() {
            let (dm, id_d, targets) = self.collect_targets(root, snap, &expr);
            out.seen_files
                .extend(targets.iter().map(|t| t.head.header.name.clone()));
            if !expr.eval(&dm, &BTreeSet::new()) {
                self.warnings.push(format!(
                    "expression {expr} is not satisfied for {}",
                    display_path(&path)
                ));
                continue;
            }
            let warnings_at = self.warnings.len();
            if self.capture {
                if path.is_empty() {
                    out.top = targets.clone();
                }
                out.delegated |= targets.iter().any(|t| !t.head.delegations.is_empty());
            }
            if !terminating {
                for d in self.validate_delegations(&id_d, &path, &expr, &targets) {
                    queue.push_back(d);
                }
            }
            out.levels.push(Level {
                path,
                expr,
                id_d,
                targets,
                warnings_at,
            });
        }
        out
    }

    /// The signed files of `levels`, each level's entries checked against
    /// its expression; each level's warnings are put where a level-by-level
    /// run gives them.
    fn signed_tree<'l>(&mut self, levels: &'l [Level]) -> TargetTree<'l> {
        let mut tree: TargetTree = TargetTree::default();
        let mut level_warnings = Vec::with_capacity(levels.len());
        for l in levels {
            let mut w = Vec::new();
            validate_targets(&mut tree, &mut w, &l.id_d, &l.path, &l.expr, &l.targets);
            level_warnings.push(w);
        }
        for (l, w) in levels.iter().zip(level_warnings).rev() {
            self.warnings.splice(l.warnings_at..l.warnings_at, w);
        }
        tree
    }

    fn validate_delegations(
        &mut self,
        id_d: &BTreeMap<String, (Digest, u64)>,
        parent: &[String],
        expr: &Expr,
        targets: &[Arc<Checked>],
    ) -> Vec<(Path, Expr, bool)> {
        // path -> [(expression, terminating, id, keydigest, epoch)]
        let mut dtree: BTreeMap<Path, Vec<DelegationEntry>> = BTreeMap::new();
        for t in targets.iter().map(|t| &t.head) {
            let Some((kd, epoch)) = id_d.get(&t.header.name) else {
                continue;
            };
            for d in &t.delegations {
                for p in &d.paths {
                    if subpath(parent, p) {
                        dtree.entry(p.clone()).or_default().push((
                            d.valid.clone(),
                            d.terminating,
                            t.header.name.clone(),
                            kd.clone(),
                            *epoch,
                        ));
                    } else {
                        self.warnings.push(format!(
                            "ignoring delegation of {} by {} (not below {})",
                            path_to_string(p),
                            t.header.name,
                            display_path(parent)
                        ));
                    }
                }
            }
        }
        let mut out = Vec::new();
        for (path, entries) in dtree {
            let mut by_expr: Vec<(Expr, DelegationSups)> = Vec::new();
            for (e, term, id, kd, ep) in entries {
                match by_expr.iter_mut().find(|(x, _)| *x == e) {
                    Some((_, v)) => v.push((term, id, kd, ep)),
                    None => by_expr.push((e, vec![(term, id, kd, ep)])),
                }
            }
            for (e, sups) in by_expr {
                let dm_of = |term: bool| -> HashMap<Digest, (String, u64)> {
                    sups.iter()
                        .filter(|s| s.0 == term)
                        .map(|(_, id, kd, ep)| (kd.clone(), (id.clone(), *ep)))
                        .collect()
                };
                if expr.eval(&dm_of(true), &BTreeSet::new()) {
                    out.push((path.clone(), e, true));
                } else if expr.eval(&dm_of(false), &BTreeSet::new()) {
                    out.push((path.clone(), e, false));
                } else {
                    self.warnings.push(format!(
                        "delegation {e} for {} is not supported by {expr}",
                        path_to_string(&path)
                    ));
                }
            }
        }
        out
    }

    fn compare_with_disk(
        &mut self,
        root: &Root,
        tree: &TargetTree<'_>,
        walked: Vec<Walked>,
    ) -> Result<(usize, DiskFiles), VerifyError> {
        let judge = Judge {
            tree,
            datadir: &root.datadir,
        };
        // the first file that could not be read, in walk order, fails it
        if let Some(Walked::Failed(e)) = walked.iter().find(|w| matches!(w, Walked::Failed(_))) {
            return Err(e.clone());
        }
        let files: Vec<&WalkedFile> = walked
            .iter()
            .filter_map(|w| match w {
                Walked::File(f) => Some(f),
                Walked::Failed(_) => None,
            })
            .collect();
        let seen: Vec<Seen> = files.par_iter().map(|f| judge.judge(f)).collect();
        let on_disk: DiskFiles = if self.capture {
            files
                .iter()
                .map(|f| {
                    (
                        split_joined(&f.path),
                        (Digest::of_sha256(&f.sha256), f.size),
                    )
                })
                .collect()
        } else {
            Vec::new()
        };
        let files = files.len();
        // problems in path order: files on disk first, then signed files
        // missing on disk
        let mut disk_problems: Vec<Problem> = Vec::new(); // path, message, package if only-on-disk
        let mut present: Vec<&str> = Vec::with_capacity(seen.len());
        for s in seen {
            present.extend(s.key);
            disk_problems.extend(s.problem.map(|p| *p));
        }
        disk_problems.sort_by(|a, b| a.0.cmp(&b.0));
        let mut problems: Vec<(String, Option<String>)> =
            disk_problems.into_iter().map(|(_, m, p)| (m, p)).collect();
        // paths on disk are distinct: when as many of them are signed as
        // there are signed paths, none is missing
        let mut missing: Vec<&str> = if present.len() == tree.len() {
            Vec::new()
        } else {
            let present: FastSet<&str> = present.into_iter().collect();
            tree.keys()
                .copied()
                .filter(|p| !present.contains(p))
                .collect()
        };
        missing.sort_by(|a, b| by_components(a, b));
        for path in missing {
            problems.push((format!("path {path} only exists in targets"), None));
        }
        for (m, _) in &problems {
            self.warnings.push(m.clone());
        }
        if problems.is_empty() {
            return Ok((files, on_disk));
        }
        if !self.opts.ignore_missing {
            return Err(VerifyError::from(format!(
                "comparison failed: {}",
                problems[0].0
            )));
        }
        let signed_pkgs: BTreeSet<&str> = tree.keys().filter_map(|p| p.split('/').next()).collect();
        let strict: Vec<_> = problems
            .iter()
            .filter(|(_, pkg)| match pkg {
                Some(pkg) => signed_pkgs.contains(pkg.as_str()),
                None => true,
            })
            .collect();
        match strict.first() {
            None => Ok((files, Vec::new())),
            Some((m, _)) => Err(VerifyError::from(format!(
                "non-strict comparison failed: {m}"
            ))),
        }
    }
}

/// Checks one level's entries against its expression and adds the
/// accepted ones to `tree` (conex's `validate_targets`).
fn validate_targets<'t>(
    tree: &mut TargetTree<'t>,
    warnings: &mut Vec<String>,
    id_d: &'t BTreeMap<String, (Digest, u64)>,
    parent: &[String],
    expr: &Expr,
    targets: &'t [Arc<Checked>],
) {
    // path -> [(digest, size, supporter id, key digest, epoch)], in the
    // order of the targets files and their entries
    type Entry<'t> = (&'t str, u64, &'t String, &'t Digest, u64);
    let mut groups: FastMap<&str, Vec<Entry>> = FastMap::default();
    let below = path_to_string(parent);
    for t in targets {
        let name = &t.head.header.name;
        let Some((kd, epoch)) = id_d.get(name) else {
            warnings.push(format!("couldn't find id {name} among the delegated ids"));
            continue;
        };
        groups.reserve(t.entries.len());
        for e in t.entries.iter() {
            if !joined_subpath(&below, e.path) {
                warnings.push(format!(
                    "ignoring target {} of {name} (not below {})",
                    e.path,
                    display_path(parent)
                ));
                continue;
            }
            let g = groups.entry(e.path).or_default();
            for d in e.digests() {
                g.push((d, e.size, name, kd, *epoch));
            }
        }
    }
    let fast = FastExpr::new(expr);
    // each path is judged on its own: in parallel, in chunks (the
    // accepted entries go into the tree and the failures are sorted after,
    // so the result does not depend on the order)
    type Judged<'t> = (
        Vec<(&'t str, Vec<(&'t str, u64)>)>,
        Vec<(&'t str, &'t str, u64)>,
    );
    let groups: Vec<(&str, Vec<Entry>)> = groups.into_iter().collect();
    let judged: Vec<Judged> = groups
        .into_par_iter()
        .with_min_len(1024)
        .fold(
            || (Vec::new(), Vec::new(), Vec::new()),
            |(mut ok, mut failed, mut sups): (_, _, Vec<(&String, &Digest, u64)>),
             (path, mut entries)| {
                // stable: supporters keep their order (every digest is
                // `sha256=…`: its text orders as the digest does)
                if entries.len() > 1 {
                    entries.sort_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
                }
                let mut accepted = Vec::new();
                for group in entries.chunk_by(|a, b| (a.0, a.1) == (b.0, b.1)) {
                    let (dgst, len) = (group[0].0, group[0].1);
                    sups.clear();
                    sups.extend(group.iter().map(|e| (e.2, e.3, e.4)));
                    if fast.eval_supporters(&sups) {
                        accepted.push((dgst, len));
                    } else {
                        failed.push((path, dgst, len));
                    }
                }
                if !accepted.is_empty() {
                    ok.push((path, accepted));
                }
                (ok, failed, sups)
            },
        )
        .map(|(ok, failed, _)| (ok, failed))
        .collect();
    let mut failed: Vec<(&str, &str, u64)> = Vec::new();
    tree.reserve(judged.iter().map(|(ok, _)| ok.len()).sum());
    for (ok, f) in judged {
        for (path, accepted) in ok {
            match tree.entry(path) {
                std::collections::hash_map::Entry::Occupied(mut e) => e.get_mut().extend(accepted),
                std::collections::hash_map::Entry::Vacant(e) => {
                    e.insert(accepted);
                }
            }
        }
        failed.extend(f);
    }
    failed.sort_by(|a, b| by_components(a.0, b.0).then((a.1, a.2).cmp(&(b.1, b.2))));
    for (path, dgst, len) in failed {
        warnings.push(format!(
            "expression {expr} is not satisfied for {path} ({dgst}, {len} bytes)"
        ));
    }
}

/// Whether `p` (components joined by `/`) lies strictly below `parent`
/// (joined the same way): conex's subpath test on components.
fn joined_subpath(parent: &str, p: &str) -> bool {
    parent.is_empty()
        || (p.len() > parent.len() && p.starts_with(parent) && p.as_bytes()[parent.len()] == b'/')
}

/// Whether `d` (`alg=data`) is the conex form of the raw SHA-256 `raw`.
fn is_sha256_of(d: &str, raw: &[u8; 32]) -> bool {
    let mut hexed = [0u8; 64];
    // a 32-byte input always fits 64 hex digits
    let _ = hex::encode_to_slice(raw, &mut hexed);
    d.strip_prefix("sha256=")
        .is_some_and(|h| h.as_bytes() == hexed)
}

/// Orders paths joined with `/` as their components are ordered.
fn by_components(a: &str, b: &str) -> std::cmp::Ordering {
    a.split('/').cmp(b.split('/'))
}

fn display_path(p: &[String]) -> String {
    if p.is_empty() {
        "the repository".into()
    } else {
        path_to_string(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joined_paths_are_ordered_as_their_components() {
        let mut v = vec!["a/b", "a-c", "a/b/c", "a", "a.b/c", "a/-"];
        v.sort_by(|a, b| by_components(a, b));
        let mut w: Vec<Path> = v.iter().map(|p| split_joined(p)).collect();
        w.sort();
        let w: Vec<String> = w.iter().map(|p| path_to_string(p)).collect();
        assert_eq!(v, w);
        assert_eq!(v, ["a", "a/-", "a/b", "a/b/c", "a-c", "a.b/c"]);
    }

    #[test]
    fn a_joined_path_is_below_its_parents_only() {
        for (parent, p, below) in [
            ("", "packages", true),
            ("", "", true),
            ("packages", "packages/a/opam", true),
            ("packages", "packages/", true),
            ("packages", "packages", false),
            ("packages", "packagesx/a", false),
            ("packages/a", "packages/a/a.1/opam", true),
            ("packages/a", "packages/ab/opam", false),
            ("packages/a", "packages", false),
        ] {
            let components = |s: &str| -> Path {
                if s.is_empty() {
                    vec![]
                } else {
                    split_joined(s)
                }
            };
            assert_eq!(
                subpath(&components(parent), &split_joined(p)),
                below,
                "{parent} {p}"
            );
            assert_eq!(joined_subpath(parent, p), below, "{parent} {p}");
        }
    }

    #[test]
    fn a_digest_text_is_compared_with_the_raw_hash() {
        let raw: [u8; 32] = Sha256::digest(b"x").into();
        let d = Digest::of_sha256(&raw).to_string();
        assert!(is_sha256_of(&d, &raw));
        assert!(!is_sha256_of(&d.to_uppercase(), &raw));
        assert!(!is_sha256_of(&d[..d.len() - 1], &raw));
        assert!(!is_sha256_of(&d.replacen("sha256", "sha512", 1), &raw));
        let other: [u8; 32] = Sha256::digest(b"y").into();
        assert!(!is_sha256_of(&d, &other));
    }
}
