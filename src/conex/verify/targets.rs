//! Targets files: read, checked against the snapshot and their own
//! expression, loaded in parallel and consumed in order; the expressions
//! that judge their entries.

use super::*;

/// What reading and checking a targets file needs: the tree, the
/// options, the verified root and snapshot, the signature cache.
#[derive(Clone, Copy)]
pub(super) struct Loader<'a> {
    pub src: &'a dyn Source,
    pub opts: &'a Options,
    pub root: &'a Root,
    pub snap: Option<&'a Snapshot>,
    pub sigs: &'a SigCache,
}

impl Loader<'_> {
    /// Reads, parses and checks one targets file (conex's `verify_targets`
    /// without its cache) with the general parser. Pure: warnings go to
    /// `warnings`.
    pub fn targets(&self, id: &str, warnings: &mut Vec<String>) -> Result<Targets, VerifyError> {
        let path = self.path(id);
        let bytes = self.src.read(&path).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => format!("{id} (type targets) was not found in repository"),
            // a patch section that does not apply, a FIFO, …
            _ => format!("{id} (type targets) cannot be read: {e}"),
        })?;
        self.targets_of(id, &path, bytes, warnings)
    }

    /// [`Self::targets`] of the file's `bytes`, read from `path`.
    pub fn targets_of(
        &self,
        id: &str,
        path: &Path,
        bytes: Vec<u8>,
        warnings: &mut Vec<String>,
    ) -> Result<Targets, VerifyError> {
        let Loader {
            opts,
            root,
            snap,
            sigs,
            ..
        } = *self;
        let parse = |bytes: Vec<u8>| {
            let mut w = Vec::new();
            (parse_resource::<Targets>(bytes, id, &mut w), w)
        };
        // a large file is parsed from a copy while it is hashed
        let (tgt, (t, w)) = if is_large(&bytes) {
            self.hashed_beside(path, &bytes, || parse(bytes.clone()))
        } else {
            let (tgt, ()) = self.hashed_beside(path, &bytes, || ());
            (tgt, parse(bytes))
        };
        warnings.extend(w);
        let t = t?;
        let bad = opts
            .opam
            .then(|| t.targets.iter().find(|x| !x.valid_opam_path(&root.datadir)))
            .flatten()
            .map(|x| path_to_string(&x.filename));
        let signed = t.canonical_signed();
        check_loaded(
            &t,
            &|id, created, alg| {
                Tbs::Whole(super::signatures::wrap_signed(
                    &t, &signed, id, created, alg,
                ))
            },
            bad,
            snap,
            tgt.as_ref(),
            id,
            sigs,
            warnings,
        )?;
        Ok(t)
    }

    /// `<keydir>/<id>`.
    pub fn path(&self, id: &str) -> Path {
        let mut path = self.root.keydir.clone();
        path.push(id.to_string());
        path
    }

    /// The snapshot's entry for `bytes` (the file at `path`), when there
    /// is a snapshot to vouch for them, made beside `read` (on the other
    /// core for a large file), and what `read` gives.
    pub fn hashed_beside<T: Send>(
        &self,
        path: &Path,
        bytes: &[u8],
        read: impl FnOnce() -> T + Send,
    ) -> (Option<Target>, T) {
        let hash = || self.snap.map(|_| Target::of_bytes(path.clone(), bytes));
        if is_large(bytes) {
            rayon::join(hash, read)
        } else {
            (hash(), read())
        }
    }
}

/// Whether a targets file is large enough to hash on another core while it
/// is read.
fn is_large(bytes: &[u8]) -> bool {
    bytes.len() >= 1 << 20
}

/// conex's checks of a parsed targets file `t` (for a file read in place,
/// the file without its entries), in conex's order: no invalid opam path
/// (`bad`, the first one), the snapshot's entry for its bytes (`tgt`), and
/// its own expression over its valid signatures (over the bytes `tbs`
/// makes for each).
#[allow(clippy::too_many_arguments)]
fn check_loaded<'t>(
    t: &Targets,
    tbs: &dyn Fn(&str, &str, crate::conex::SigAlg) -> Tbs<'t>,
    bad: Option<String>,
    snap: Option<&Snapshot>,
    tgt: Option<&Target>,
    id: &str,
    sigs: &SigCache,
    warnings: &mut Vec<String>,
) -> Result<(), VerifyError> {
    if let Some(bad) = bad {
        return Err(VerifyError::from(format!(
            "{id} contains an invalid path {bad}"
        )));
    }
    if let (Some(snap), Some(tgt)) = (snap, tgt) {
        if !snap.targets.iter().any(|x| x.same(tgt)) {
            return Err(VerifyError::from(format!(
                "couldn't validate target {id}: no match in snapshot targets"
            )));
        }
    }
    let valid = super::signatures::valid_signatures_by(t, tbs, warnings, sigs);
    let ids: BTreeSet<String> = valid.into_values().collect();
    if t.valid.eval(&HashMap::new(), &ids) {
        Ok(())
    } else {
        Err(VerifyError::from(format!(
            "couldn't validate expression in targets {id}"
        )))
    }
}

/// A targets file read in place ([`read_targets_view`]), not yet checked.
pub struct ReadView<'b> {
    /// The file.
    pub view: TargetsView<'b>,
    /// The warnings of reading it.
    pub warnings: Vec<String>,
    /// Its first invalid opam path, when opam paths are checked.
    bad: Option<String>,
}

/// Reads a targets file in place from `text`, its bytes: `None` when it is
/// not in the shape [`crate::conex::targets_fast::parse_view`] reads (then
/// load it with [`Loader::targets`]). [`check_view`] makes the
/// checks [`Loader::targets`] makes.
pub(super) fn read_targets_view<'b>(
    opts: &Options,
    root: &Root,
    text: &'b str,
) -> Option<ReadView<'b>> {
    let (view, warnings) = crate::conex::targets_fast::parse_view(text)?;
    let bad = first_bad_path(opts, root, &view);
    Some(ReadView {
        view,
        warnings,
        bad,
    })
}

/// [`read_targets_view`] without the check of its opam paths (the caller
/// makes it with [`first_bad_path`]), for a file that nothing else is
/// done with meanwhile (a large one is read in halves).
pub(super) fn parse_targets_view(text: &str) -> Option<ReadView<'_>> {
    let (view, warnings) = crate::conex::targets_fast::parse_view_alone(text)?;
    Some(ReadView {
        view,
        warnings,
        bad: None,
    })
}

/// The first path of `view` that is not an opam path, when the options
/// check them.
pub(super) fn first_bad_path(
    opts: &Options,
    root: &Root,
    view: &TargetsView<'_>,
) -> Option<String> {
    opts.opam
        .then(|| {
            view.entries
                .iter()
                .find(|e| !valid_opam_path_str(e.path, &root.datadir))
        })
        .flatten()
        .map(|e| e.path.to_string())
}

/// conex's checks of targets file `id` read in place, in the order of
/// [`Loader::targets`]: its name, its paths, the snapshot's entry for its
/// bytes (`tgt`, made from them, when there is a snapshot), its signatures
/// and its expression. The outcome, and the warnings (those of reading it
/// first).
pub(super) fn check_view(
    snap: Option<&Snapshot>,
    id: &str,
    read: &ReadView<'_>,
    tgt: Option<&Target>,
    sigs: &SigCache,
) -> (Result<(), VerifyError>, Vec<String>) {
    let mut warnings = read.warnings.clone();
    let head = &read.view.head;
    // a file signed once (a large targets file: its janitor's) has the
    // bytes its signature covers written in pieces and hashed as they are
    // (never held whole); otherwise the canonical string is written once
    // for all signatures
    let once = head.signatures.len() == 1;
    let signed = std::sync::OnceLock::new();
    let tbs = |id: &str, created: &str, alg| match super::signatures::wrapper(id, created, alg) {
        Some((before, after)) if once => Tbs::Pieces(Box::new(move |sink| {
            read.view.stream_canonical_signed(&before, &after, sink)
        })),
        _ => {
            let signed = signed.get_or_init(|| read.view.canonical_signed());
            Tbs::Whole(super::signatures::wrap_signed(
                head, signed, id, created, alg,
            ))
        }
    };
    let r = super::read::check_name(head, id).and_then(|()| {
        check_loaded(
            head,
            &tbs,
            read.bad.clone(),
            snap,
            tgt,
            id,
            sigs,
            &mut warnings,
        )
    });
    (r, warnings)
}

/// An expression prepared for evaluating many times against small sets of
/// supporters (remote references indexed by digest): the same result as
/// [`Expr::eval`] with no local signatures, without scanning every
/// reference of a large quorum for each file.
pub enum FastExpr {
    /// A quorum of remote references, indexed by key digest.
    Quorum(i64, HashMap<Digest, Vec<(String, u64)>>),
    /// Both.
    And(Box<FastExpr>, Box<FastExpr>),
    /// Either.
    Or(Box<FastExpr>, Box<FastExpr>),
}

impl FastExpr {
    /// Prepares `e`.
    pub fn new(e: &Expr) -> FastExpr {
        match e {
            Expr::Quorum(n, refs) => {
                let mut remotes: HashMap<Digest, Vec<(String, u64)>> = HashMap::new();
                for r in refs {
                    match r {
                        KeyRef::Local(_) => {}
                        KeyRef::Remote { id, digest, epoch } => remotes
                            .entry(digest.clone())
                            .or_default()
                            .push((id.clone(), *epoch)),
                    }
                }
                FastExpr::Quorum(*n, remotes)
            }
            Expr::And(a, b) => {
                FastExpr::And(Box::new(FastExpr::new(a)), Box::new(FastExpr::new(b)))
            }
            Expr::Or(a, b) => FastExpr::Or(Box::new(FastExpr::new(a)), Box::new(FastExpr::new(b))),
        }
    }

    /// Same as `eval` with `dm` built from `sups` in order (a later
    /// supporter with the same key digest replaces an earlier one) and no
    /// local signatures.
    pub fn eval_supporters(&self, sups: &[(&String, &Digest, u64)]) -> bool {
        match self {
            FastExpr::Quorum(n, remotes) => {
                let mut good = 0i64;
                for (i, (id2, d, e2)) in sups.iter().enumerate() {
                    if sups[i + 1..].iter().any(|(_, d2, _)| d2 == d) {
                        continue;
                    }
                    if let Some(v) = remotes.get(*d) {
                        good += v
                            .iter()
                            .filter(|(id, e)| id_equal(id, id2) && e == e2)
                            .count() as i64;
                    }
                }
                good >= *n
            }
            FastExpr::And(a, b) => a.eval_supporters(sups) && b.eval_supporters(sups),
            FastExpr::Or(a, b) => a.eval_supporters(sups) || b.eval_supporters(sups),
        }
    }
}

impl<'a> Verifier<'a> {
    /// A [`Loader`] of this verifier's tree against `root` and `snap`.
    pub(super) fn loader<'l>(&'l self, root: &'l Root, snap: Option<&'l Snapshot>) -> Loader<'l> {
        Loader {
            src: self.src,
            opts: &self.opts,
            root,
            snap,
            sigs: &self.sigs,
        }
    }

    fn verify_targets(
        &mut self,
        root: &Root,
        snap: Option<&Snapshot>,
        id: &str,
    ) -> Result<Arc<Checked>, VerifyError> {
        if let Some(r) = self.cache.get(id) {
            return r.clone();
        }
        let (r, warnings) = match self.pending.remove(id) {
            Some(loaded) => loaded,
            None => {
                let mut w = Vec::new();
                let r = self.loader(root, snap).checked(id, &mut w);
                (r.map(Arc::new), w)
            }
        };
        self.warnings.extend(warnings);
        self.cache.insert(id.to_string(), r.clone());
        r
    }

    /// Loads the not yet loaded targets files among `ids` in parallel;
    /// [`Self::verify_targets`] then consumes them in sequential order.
    fn prefetch_targets(&mut self, root: &Root, snap: Option<&Snapshot>, ids: &[&String]) {
        let todo: Vec<&String> = ids
            .iter()
            .copied()
            .filter(|id| !self.cache.contains_key(*id) && !self.pending.contains_key(*id))
            .collect();
        let loader = self.loader(root, snap);
        let loaded: Vec<(String, Loaded)> = todo
            .par_iter()
            .map(|id| {
                let mut w = Vec::new();
                let r = loader.checked(id, &mut w);
                ((*id).clone(), (r.map(Arc::new), w))
            })
            .collect();
        self.pending.extend(loaded);
    }

    /// Loads and checks the targets files an expression refers to.
    pub(super) fn collect_targets(
        &mut self,
        root: &Root,
        snap: Option<&Snapshot>,
        expr: &Expr,
    ) -> Collected {
        let mut dm = HashMap::new();
        let mut id_d = BTreeMap::new();
        let mut out = Vec::new();
        let remotes = expr.remotes();
        let ids: Vec<&String> = remotes.keys().collect();
        self.prefetch_targets(root, snap, &ids);
        for (id, (dgst, epoch)) in remotes {
            let t = match self.verify_targets(root, snap, &id) {
                Ok(t) => t,
                Err(msg) => {
                    self.warnings
                        .push(format!("couldn't load or verify target {id}: {msg}"));
                    continue;
                }
            };
            match t.head.valid_hash() {
                Err(e) => self.warnings.push(e.to_string()),
                Ok(h) if t.head.header.epoch == epoch && h == dgst => {
                    id_d.insert(id.clone(), (dgst.clone(), epoch));
                    dm.insert(dgst, (id, epoch));
                    out.push(t);
                }
                Ok(_) => self.warnings.push(format!(
                    "dropping {id} since epoch ({epoch} vs {}) or digest mismatch",
                    t.head.header.epoch
                )),
            }
        }
        (dm, id_d, out)
    }
}
