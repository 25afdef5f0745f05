//! Full verification of a repository with conex's verdicts (conex 1.0
//! `Conex.verify_root`, `verify_timestamp`, `verify_snapshot`, `verify`).
//!
//! The work that grows with the repository runs in parallel on all cores:
//! targets files are read, parsed and their signatures checked concurrently,
//! and the data directory is walked and hashed concurrently (file contents
//! are streamed, so memory does not depend on file sizes). Results are
//! consumed in the same order as a sequential run, so verdicts and warnings
//! are exactly those of the sequential algorithm. Each distinct signature
//! is verified once ([`SigCache`]).

use super::expr::{id_equal, Expr, KeyRef};
use super::key::{Digest, KeyDataError};
use super::resource::{
    conex_timestamp, path_to_string, valid_opam_path_str, Path, Resource, Root, Snapshot, Target,
    Targets, Timestamp,
};
use super::targets_fast::TargetsView;
use super::wire::{Wire, WireMap};
use rayon::prelude::*;
use sha2::{Digest as _, Sha256};
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::io::{self, Read};
use std::sync::{Arc, Mutex};

mod error;
mod full;
mod incremental;
mod packed;
mod read;
mod roles;
mod signatures;
mod source;
pub mod state;
mod targets;

pub use error::{StateError, VerifyError};
pub use incremental::{verify_diffs, KnownHeaders};
use packed::Checked;
pub use read::{parse_resource, read_resource};
pub use signatures::{
    valid_signatures, valid_signatures_cached, valid_signatures_over, SigCache, Tbs,
};
pub use source::{
    hash_file, hash_reader, sha256_reader, DirHandle, DirSource, Listed, MemSource, Source,
};
use targets::{check_view, read_targets_view, Loader};
pub use targets::{FastExpr, ReadView};

/// Runs `side` on a thread of its own (named `name`) while `here` runs on
/// this one, and returns both results; both here, one after the other, if
/// no thread can be made. A pool thread left to pick up `side` can take
/// milliseconds to; a thread of its own starts at once.
pub fn beside_thread<A: Send, B>(
    name: &str,
    side: impl FnOnce() -> A + Send,
    here: impl FnOnce() -> B,
) -> (A, B) {
    // taken by the thread, or here when no thread can be made
    let side = std::sync::Mutex::new(Some(side));
    let run = || {
        let f = side
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        f.map(|f| f())
    };
    let (a, b) = std::thread::scope(|s| {
        match std::thread::Builder::new()
            .name(name.to_string())
            .spawn_scoped(s, run)
        {
            Ok(h) => {
                let b = here();
                let a = h.join().unwrap_or_else(|p| std::panic::resume_unwind(p));
                (a, b)
            }
            Err(_) => (run(), here()),
        }
    });
    // `side` ran exactly once, on the thread or here
    (a.expect("the side ran"), b)
}

/// Verification options (the verifier's command-line flags).
#[derive(Clone, Debug)]
pub struct Options {
    /// Trust anchors (root key ids).
    pub anchors: BTreeSet<Digest>,
    /// Minimum number of distinct anchored root signers.
    pub quorum: Option<usize>,
    /// Seconds a timestamp may lie in the future.
    pub expiry: i64,
    /// The current time (unix seconds).
    pub now: i64,
    /// Check opam repository path rules.
    pub opam: bool,
    /// Tolerate unsigned packages nobody signed anything in.
    pub ignore_missing: bool,
    /// Name of the root file.
    pub root_name: String,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            anchors: BTreeSet::new(),
            quorum: None,
            expiry: 900,
            now: 0,
            opam: true,
            ignore_missing: false,
            root_name: "root".into(),
        }
    }
}

/// What a successful verification established.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct Summary {
    /// Root key ids whose anchored signatures counted.
    pub root_signers: Vec<String>,
    /// Root counter.
    pub root_counter: u64,
    /// The timestamp file's id, counter and epoch, when present.
    pub timestamp: Option<(String, u64, u64)>,
    /// The snapshot file's id, counter and epoch, when present.
    pub snapshot: Option<(String, u64, u64)>,
    /// Targets files that verified.
    pub targets_files: Vec<String>,
    /// Files under the data directory that matched.
    pub files: usize,
}

type Loaded = (Result<Arc<Checked>, VerifyError>, Vec<String>);

/// The verifier: accumulates conex's warnings while it works.
pub struct Verifier<'a> {
    src: &'a dyn Source,
    opts: Options,
    /// Warnings, in order (conex's `[WARNING]` lines).
    pub warnings: Vec<String>,
    cache: HashMap<String, Result<Arc<Checked>, VerifyError>>,
    /// Targets files loaded ahead (in parallel), with their warnings, not
    /// yet consumed in sequential order.
    pending: HashMap<String, Loaded>,
    sigs: Arc<SigCache>,
    /// Whether [`Self::verify_full`] keeps a [`VerifiedTree`].
    capture: bool,
    captured: Option<VerifiedTree>,
}

/// What a clean full verification established about the tree, kept for a
/// verified state ([`state`]): only made when the
/// maintainer level gave no warning at all and nothing is delegated, so
/// that the state is exactly "every targets file verified, every file
/// matched".
#[derive(Clone, Debug)]
pub struct VerifiedTree {
    /// The verified root.
    pub root: Root,
    /// The verified snapshot.
    pub snapshot: Snapshot,
    /// The targets files of the maintainer expression, all verified.
    pub targets: Vec<Arc<Targets>>,
    /// Every file under the data directory: path, digest and size.
    pub disk: DiskFiles,
    /// The summary of the verification.
    pub summary: Summary,
}

/// Signed files: path (joined with `/`) → accepted (digest `alg=data`,
/// size), in (digest, size) order per path, borrowed from the verified
/// targets files. A hash map: nothing
/// needs the paths in order except the messages, which are sorted where
/// they are made.
type TargetTree<'t> = FastMap<&'t str, Vec<(&'t str, u64)>>;
/// A hash map with a fast, randomly seeded hash (foldhash): the keys come
/// from the repository, so the seed keeps colliding keys from being made.
type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;
/// A set with the same hasher.
type FastSet<K> = std::collections::HashSet<K, foldhash::fast::RandomState>;
/// One delegation level whose targets files were collected: its path, the
/// expression, the ids it delegates to (key digest, epoch), its verified
/// targets files, and where its warnings go among the others.
struct Level {
    path: Path,
    expr: Expr,
    id_d: BTreeMap<String, (Digest, u64)>,
    targets: Vec<Arc<Checked>>,
    warnings_at: usize,
}
/// The files under the data directory: path, digest and size.
pub type DiskFiles = Vec<(Path, (Digest, u64))>;
/// Verified targets files of one delegation level: key digest → (id,
/// epoch), id → (key digest, epoch), the files.
type Collected = (
    HashMap<Digest, (String, u64)>,
    BTreeMap<String, (Digest, u64)>,
    Vec<Arc<Checked>>,
);
/// A delegation entry: (expression, terminating, id, key digest, epoch).
type DelegationEntry = (Expr, bool, String, Digest, u64);
/// Supporters of one delegation expression: (terminating, id, key digest, epoch).
type DelegationSups = Vec<(bool, String, Digest, u64)>;

impl<'a> Verifier<'a> {
    /// A verifier for `src`.
    pub fn new(src: &'a dyn Source, opts: Options) -> Verifier<'a> {
        Verifier {
            src,
            opts,
            warnings: Vec::new(),
            cache: HashMap::new(),
            pending: HashMap::new(),
            sigs: Arc::new(SigCache::new()),
            capture: false,
            captured: None,
        }
    }

    /// Keeps a [`VerifiedTree`] after a clean full verification (see
    /// [`Self::take_verified_tree`]).
    pub fn capturing(mut self) -> Verifier<'a> {
        self.capture = true;
        self
    }

    /// The tree a clean [`Self::verify_full`] established, when capturing.
    pub fn take_verified_tree(&mut self) -> Option<VerifiedTree> {
        self.captured.take()
    }

    /// Uses (and fills) a shared signature cache.
    pub fn with_sig_cache(mut self, sigs: Arc<SigCache>) -> Verifier<'a> {
        self.sigs = sigs;
        self
    }

    /// The signature cache of this verifier.
    pub fn sig_cache(&self) -> &Arc<SigCache> {
        &self.sigs
    }
}

#[cfg(test)]
mod beside_tests {
    use super::beside_thread;

    /// `side` runs on a thread of its own, named, borrowing what `here`
    /// borrows; `here` runs on the caller's thread; a panic on the side
    /// reaches the caller once `here` is done.
    #[test]
    fn the_side_runs_on_a_thread_of_its_own_and_its_panic_reaches_the_caller() {
        let data = [1u64, 2, 3];
        let me = std::thread::current().id();
        let (side, here) = beside_thread(
            "arca-test",
            || {
                let t = std::thread::current();
                (
                    t.name().map(str::to_string),
                    t.id(),
                    data.iter().sum::<u64>(),
                )
            },
            || (std::thread::current().id(), data.len()),
        );
        assert_eq!(side.0.as_deref(), Some("arca-test"));
        assert_ne!(side.1, me);
        assert_eq!((side.2, here), (6, (me, 3)));
        let ran_here = std::sync::atomic::AtomicBool::new(false);
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            beside_thread(
                "arca-test",
                || -> u8 { panic!("on the side") },
                || ran_here.store(true, std::sync::atomic::Ordering::SeqCst),
            )
        }));
        let msg = r.expect_err("the panic reaches the caller");
        assert_eq!(msg.downcast_ref::<&str>(), Some(&"on the side"));
        assert!(ran_here.load(std::sync::atomic::Ordering::SeqCst));
    }
}
