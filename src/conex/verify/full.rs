//! Full verification (`--dir`): the delegation levels, the entries of
//! each level against its expression, and the data directory against the
//! signed files.

use super::*;

fn subpath(parent: &[String], p: &[String]) -> bool {
    p.len() > parent.len() && p.starts_with(parent)
}

/// One file of the data directory, judged against the signed files where
/// it was hashed (so that the walk keeps no path or digest it does not
/// need).
struct Seen<'t> {
    /// The signed path it is, when it is one.
    key: Option<&'t Path>,
    /// What is wrong with it: its path, the message, and the package when
    /// it is only on disk.
    problem: Option<(Path, String, Option<String>)>,
    /// The file, when the verified tree is kept.
    file: Option<(Path, (Digest, u64))>,
}

/// One entry of the data directory walk, in sequential walk order.
enum Walked<'t> {
    File(Seen<'t>),
    Failed(VerifyError),
}

/// What the walk checks each file against.
struct Judge<'t, 'r> {
    tree: &'r TargetTree<'t>,
    datadir: &'r [String],
    keep: bool,
}

impl<'t> Judge<'t, '_> {
    /// Compares one file on disk with the signed files (conex's
    /// comparison of the disk tree with the targets tree, for one path).
    fn judge(&self, path: Path, (dgst, len): (Digest, u64)) -> Seen<'t> {
        let mut problem = None;
        let key = match self.tree.get_key_value(&path) {
            None => {
                let t = Target {
                    filename: path.clone(),
                    digest: vec![],
                    size: 0,
                };
                if t.is_opam_file(self.datadir) {
                    // conex 1.0 tolerates the file when nothing is
                    // signed below the path's *first* component (for
                    // an opam repository: `packages`)
                    let pkg = path.first().cloned();
                    let m = format!("path {} only exists on disk", path_to_string(&path));
                    problem = Some((path.clone(), m, pkg));
                }
                None
            }
            Some((k, xs)) => {
                if !xs.iter().any(|(d, l)| **d == dgst && *l == len) {
                    let m = format!(
                        "no matching digest for {} (on disk {len} bytes, {dgst}; signed {})",
                        path_to_string(&path),
                        xs.iter()
                            .map(|(d, l)| format!("{l} bytes, {d}"))
                            .collect::<Vec<_>>()
                            .join("; ")
                    );
                    problem = Some((path.clone(), m, None));
                }
                Some(*k)
            }
        };
        Seen {
            key,
            problem,
            file: self.keep.then_some((path, (dgst, len))),
        }
    }
}

/// Walks `prefix` depth-first in directory order, hashing files and
/// judging each; the subdirectories and files are processed in parallel but
/// the result keeps the sequential order.
fn walk_and_hash<'t>(
    src: &dyn Source,
    prefix: &[String],
    judge: &Judge<'t, '_>,
) -> Vec<Walked<'t>> {
    if let Some(dir) = src.open_dir(prefix) {
        return walk_dir(dir, prefix, judge);
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
                walk_and_hash(src, &p, judge)
            } else {
                vec![match hash_file(src, &p) {
                    Ok(x) => Walked::File(judge.judge(p, x)),
                    Err(e) => Walked::Failed(VerifyError::from(format!(
                        "cannot read {}: {e}",
                        path_to_string(&p)
                    ))),
                }]
            }
        })
        .collect()
}

/// [`walk_and_hash`] on a directory on disk: each directory and file is
/// opened relative to its parent.
fn walk_dir<'t>(
    dir: io::Result<DirHandle>,
    prefix: &[String],
    judge: &Judge<'t, '_>,
) -> Vec<Walked<'t>> {
    let listed = dir.and_then(|mut d| d.list().map(|items| (d, items)));
    let (dir, items) = match listed {
        Ok(x) => x,
        Err(e) => {
            return vec![Walked::Failed(VerifyError::from(format!(
                "cannot list {}: {e}",
                display_path(prefix)
            )))]
        }
    };
    let dir = &dir;
    items
        .into_par_iter()
        .flat_map_iter(|(name, is_dir)| {
            let mut p = prefix.to_vec();
            if is_dir {
                let sub = dir.subdir(&name);
                p.push(name);
                walk_dir(sub, &p, judge)
            } else {
                let h = dir.open_file(&name).and_then(|mut f| hash_reader(&mut f));
                p.push(name);
                vec![match h {
                    Ok(x) => Walked::File(judge.judge(p, x)),
                    Err(e) => Walked::Failed(VerifyError::from(format!(
                        "cannot read {}: {e}",
                        path_to_string(&p)
                    ))),
                }]
            }
        })
        .collect()
}

impl<'a> Verifier<'a> {
    /// Full verification (`--dir`).
    pub fn verify_full(&mut self) -> Result<Summary, VerifyError> {
        let (root, signers) = self.verify_root()?;
        let ts = self.verify_timestamp(&root)?;
        let snap = self.verify_snapshot(&root, ts.as_ref())?;
        let warnings_before_targets = self.warnings.len();
        let mut top_level: Vec<Arc<Targets>> = Vec::new();
        let mut delegated = false;
        let expr = root
            .roles
            .get(&crate::conex::Role::Maintainer)
            .cloned()
            .ok_or("no delegation for maintainers")?;
        let mut queue: VecDeque<(Path, Expr, bool)> = VecDeque::new();
        queue.push_back((vec![], expr, false));
        let mut seen_files = BTreeSet::new();
        // the levels are collected first and their entries checked after,
        // so that the tree of signed files can borrow from the targets
        // files; each level's warnings are put where a level-by-level run
        // gives them
        let mut levels: Vec<Level> = Vec::new();
        while let Some((path, expr, terminating)) = queue.pop_front() {
            let (dm, id_d, targets) = self.collect_targets(&root, snap.as_ref(), &expr);
            seen_files.extend(targets.iter().map(|t| t.header.name.clone()));
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
                    top_level = targets.clone();
                }
                delegated |= targets.iter().any(|t| !t.delegations.is_empty());
            }
            if !terminating {
                for d in self.validate_delegations(&id_d, &path, &expr, &targets) {
                    queue.push_back(d);
                }
            }
            levels.push(Level {
                path,
                expr,
                id_d,
                targets,
                warnings_at,
            });
        }
        let mut tree: TargetTree = FastMap::default();
        let mut level_warnings = Vec::with_capacity(levels.len());
        for l in &levels {
            let mut w = Vec::new();
            validate_targets(&mut tree, &mut w, &l.id_d, &l.path, &l.expr, &l.targets);
            level_warnings.push(w);
        }
        for (l, w) in levels.iter().zip(level_warnings).rev() {
            self.warnings.splice(l.warnings_at..l.warnings_at, w);
        }
        let (files, on_disk) = self.compare_with_disk(&root, &tree)?;
        let summary = Summary {
            root_signers: signers,
            root_counter: root.header.counter,
            timestamp: ts
                .as_ref()
                .map(|t| (t.header.name.clone(), t.header.counter, t.header.epoch)),
            snapshot: snap
                .as_ref()
                .map(|s| (s.header.name.clone(), s.header.counter, s.header.epoch)),
            targets_files: seen_files.into_iter().collect(),
            files,
        };
        if self.capture && !delegated && self.warnings.len() == warnings_before_targets {
            if let (Some(snapshot), Some(_)) = (snap, ts) {
                self.captured = Some(VerifiedTree {
                    root,
                    snapshot,
                    targets: top_level,
                    disk: on_disk,
                    summary: summary.clone(),
                });
            }
        }
        Ok(summary)
    }

    fn validate_delegations(
        &mut self,
        id_d: &BTreeMap<String, (Digest, u64)>,
        parent: &[String],
        expr: &Expr,
        targets: &[Arc<Targets>],
    ) -> Vec<(Path, Expr, bool)> {
        // path -> [(expression, terminating, id, keydigest, epoch)]
        let mut dtree: BTreeMap<Path, Vec<DelegationEntry>> = BTreeMap::new();
        for t in targets {
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
    ) -> Result<(usize, DiskFiles), VerifyError> {
        let judge = Judge {
            tree,
            datadir: &root.datadir,
            keep: self.capture,
        };
        let mut on_disk: DiskFiles = Vec::new();
        // problems in path order: files on disk first, then signed files
        // missing on disk
        let mut disk_problems: Vec<(Path, String, Option<String>)> = Vec::new(); // path, message, package if only-on-disk
        let mut present: Vec<&Path> = Vec::new();
        let mut files = 0usize;
        for w in walk_and_hash(self.src, &root.datadir, &judge) {
            let seen = match w {
                Walked::Failed(m) => return Err(m),
                Walked::File(seen) => seen,
            };
            files += 1;
            present.extend(seen.key);
            disk_problems.extend(seen.problem);
            on_disk.extend(seen.file);
        }
        disk_problems.sort_by(|a, b| a.0.cmp(&b.0));
        let mut problems: Vec<(String, Option<String>)> =
            disk_problems.into_iter().map(|(_, m, p)| (m, p)).collect();
        // paths on disk are distinct: when as many of them are signed as
        // there are signed paths, none is missing
        let mut missing: Vec<&Path> = if present.len() == tree.len() {
            Vec::new()
        } else {
            let present: std::collections::HashSet<&Path, foldhash::fast::RandomState> =
                present.into_iter().collect();
            tree.keys()
                .copied()
                .filter(|p| !present.contains(p))
                .collect()
        };
        missing.sort();
        for path in missing {
            problems.push((
                format!("path {} only exists in targets", path_to_string(path)),
                None,
            ));
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
        let signed_pkgs: BTreeSet<&String> = tree.keys().filter_map(|p| p.first()).collect();
        let strict: Vec<_> = problems
            .iter()
            .filter(|(_, pkg)| match pkg {
                Some(pkg) => signed_pkgs.contains(pkg),
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
    targets: &'t [Arc<Targets>],
) {
    // path -> [(digest, size, supporter id, key digest, epoch)], in the
    // order of the targets files and their entries
    type Entry<'t> = (&'t Digest, u64, &'t String, &'t Digest, u64);
    let mut groups: FastMap<&Path, Vec<Entry>> = FastMap::default();
    for t in targets {
        let Some((kd, epoch)) = id_d.get(&t.header.name) else {
            warnings.push(format!(
                "couldn't find id {} among the delegated ids",
                t.header.name
            ));
            continue;
        };
        groups.reserve(t.targets.len());
        for chk in &t.targets {
            if !subpath(parent, &chk.filename) {
                warnings.push(format!(
                    "ignoring target {} of {} (not below {})",
                    path_to_string(&chk.filename),
                    t.header.name,
                    display_path(parent)
                ));
                continue;
            }
            let g = groups.entry(&chk.filename).or_default();
            for d in &chk.digest {
                g.push((d, chk.size, &t.header.name, kd, *epoch));
            }
        }
    }
    let fast = FastExpr::new(expr);
    // each path is judged on its own: in parallel, in chunks (the
    // accepted entries go into the tree and the failures are sorted after,
    // so the result does not depend on the order)
    type Judged<'t> = (
        Vec<(&'t Path, Vec<(&'t Digest, u64)>)>,
        Vec<(&'t Path, &'t Digest, u64)>,
    );
    let groups: Vec<(&Path, Vec<Entry>)> = groups.into_iter().collect();
    let judged: Vec<Judged> = groups
        .into_par_iter()
        .with_min_len(1024)
        .fold(
            || (Vec::new(), Vec::new(), Vec::new()),
            |(mut ok, mut failed, mut sups): (_, _, Vec<(&String, &Digest, u64)>),
             (path, mut entries)| {
                // stable: supporters keep their order
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
    let mut failed: Vec<(&Path, &Digest, u64)> = Vec::new();
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
    failed.sort();
    for (path, dgst, len) in failed {
        warnings.push(format!(
            "expression {expr} is not satisfied for {} ({dgst}, {len} bytes)",
            path_to_string(path)
        ));
    }
}

fn display_path(p: &[String]) -> String {
    if p.is_empty() {
        "the repository".into()
    } else {
        path_to_string(p)
    }
}
