//! The clap definitions: every verb, its arguments and their help.

use super::bundle;
use super::online;
use crate::repository::Counter;
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

/// arca — the offline root of a conex-signed opam repository.
#[derive(Parser, Debug)]
#[command(name = "arca", version, about, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub(super) cmd: Option<Command>,
}

#[derive(Subcommand, Debug)]
pub(super) enum Command {
    /// Private keys: generate, show public keys (conex_key).
    Key {
        #[command(subcommand)]
        cmd: KeyCmd,
    },
    /// The root file (conex_root).
    Root {
        #[command(subcommand)]
        cmd: RootCmd,
    },
    /// A janitor's targets file (conex_targets).
    Targets {
        #[command(subcommand)]
        cmd: TargetsCmd,
    },
    /// The snapshot file (conex_snapshot).
    Snapshot {
        #[command(subcommand)]
        cmd: OnlineCmd,
    },
    /// The timestamp file (conex_timestamp).
    Timestamp {
        #[command(subcommand)]
        cmd: OnlineCmd,
    },
    /// Verify a repository with conex's verdicts (drop-in for conex_verify_*).
    Verify(VerifyArgs),
    /// PKCS#11 tokens: list tokens and the keys on them.
    Token {
        #[command(subcommand)]
        cmd: TokenCmd,
    },
    /// YubiKeys (PIV): list, set up, attest.
    Piv {
        #[command(subcommand)]
        cmd: PivCmd,
    },
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff).
    Man,
    /// Scripted key ceremonies (ceremonies/*.toml).
    Ceremony {
        #[command(subcommand)]
        cmd: CeremonyCmd,
    },
    /// Air-gap bundles: verify, open on the online side, pack as tar.
    Bundle {
        #[command(subcommand)]
        cmd: bundle::BundleCmd,
    },
    /// QR codes: render files as numbered frames, read them back.
    Qr {
        #[command(subcommand)]
        cmd: bundle::QrCmd,
    },
    /// Detached root signatures by absent holders: export, sign, import.
    SignRequest {
        #[command(subcommand)]
        cmd: bundle::SignRequestCmd,
    },
    /// The online side: generate the snapshot/timestamp keys; make and sign
    /// the snapshot and timestamp in one go.
    Online {
        #[command(subcommand)]
        cmd: online::OnlineCmd,
    },
}

#[derive(Subcommand, Debug)]
pub(super) enum TokenCmd {
    /// Slots and tokens of a PKCS#11 module, with PIN state and mechanisms.
    List {
        /// The module (default: ARCA_PKCS11_MODULE).
        #[arg(long = "module")]
        module: Option<PathBuf>,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Key pairs on a token with their conex key ids (logs in).
    Keys {
        /// The token: pkcs11:token=LABEL[?module-path=…&pin-source=file:…].
        #[arg(long = "on")]
        on: String,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand, Debug)]
pub(super) enum PivCmd {
    /// Readers and YubiKeys: serial, firmware, slots in use, PIN tries left.
    List {
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Replace the factory management key, PIN and PUK (typed twice).
    Setup {
        /// The YubiKey: piv:serial=N.
        #[arg(long = "on")]
        on: String,
    },
    /// Read and check the slot's attestation against its public key.
    Attest {
        /// The slot: piv:serial=N;slot=9c.
        #[arg(long = "on")]
        on: String,
        /// Write the attestation and F9 certificates (DER) into this folder.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

#[derive(Subcommand, Debug)]
pub(super) enum CeremonyCmd {
    /// Validate a ceremony file (and a device profile) without opening any device.
    Check {
        /// The ceremony file.
        file: PathBuf,
        /// The device profile.
        #[arg(long)]
        profile: Option<PathBuf>,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Run a ceremony.
    Run(CeremonyRun),
    /// Resume a ceremony that stopped, from the journal in its output folder.
    ///
    /// Give the same file, profile (or --rehearse) and --base as the run;
    /// a ceremony that stops prints this exact command. Steps in the journal
    /// are not done again; the change summary is shown again before any
    /// signature. A finished ceremony says so and where its outputs are.
    Resume(CeremonyRun),
    /// Check a ceremony journal's hash chain.
    VerifyTranscript {
        /// The journal (journal.jsonl) or the ceremony output folder.
        path: PathBuf,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Args, Debug)]
pub(crate) struct CeremonyRun {
    /// The ceremony file (with --rehearse it may be left out for the
    /// built-in create-root example).
    #[arg(required_unless_present = "rehearse")]
    pub(crate) file: Option<PathBuf>,
    /// The device profile (machine-local; maps holders to devices).
    #[arg(long, required_unless_present = "rehearse")]
    pub(crate) profile: Option<PathBuf>,
    /// An answers file instead of prompts (CI, scripts).
    #[arg(long)]
    pub(crate) answers: Option<PathBuf>,
    /// Run against throw-away SoftHSM tokens (on a terminal the people type
    /// the answers and the rehearsal PIN; otherwise every answer is yes).
    #[arg(long)]
    pub(crate) rehearse: bool,
    /// Answer yes to every question (rehearsals only; real ceremonies need
    /// people or an --answers file).
    #[arg(long, requires = "rehearse")]
    pub(crate) yes: bool,
    /// Folder the ceremony's paths are relative to (default: current; for
    /// rehearsals: a new temporary folder).
    #[arg(long)]
    pub(crate) base: Option<PathBuf>,
}

/// Options every repository command takes.
#[derive(Args, Debug, Clone)]
pub(super) struct Common {
    /// The repository directory.
    #[arg(short = 'r', long = "repository", default_value = ".")]
    pub(super) repository: PathBuf,
    /// Name of the root file.
    #[arg(long = "root", default_value = "root")]
    pub(super) root: String,
    /// Compute and report, write nothing.
    #[arg(long = "dry-run")]
    pub(super) dry_run: bool,
    /// Time to write as `created` (RFC 3339); default: SOURCE_DATE_EPOCH, else now.
    #[arg(long = "created")]
    pub(super) created: Option<String>,
    /// Directory of private key files (default: ~/.conex).
    #[arg(long = "key-store")]
    pub(super) key_store: Option<PathBuf>,
}

/// Options of the read-only commands (`status`, `hash`): no `--dry-run`
/// and no `--created`, as they write nothing. `--key-store` is kept, so
/// that one set of options serves every command of a script.
#[derive(Args, Debug, Clone)]
pub(super) struct ReadCommon {
    /// The repository directory.
    #[arg(short = 'r', long = "repository", default_value = ".")]
    pub(super) repository: PathBuf,
    /// Name of the root file.
    #[arg(long = "root", default_value = "root")]
    pub(super) root: String,
    /// Directory of private key files (default: ~/.conex).
    #[arg(long = "key-store")]
    pub(super) key_store: Option<PathBuf>,
}

impl ReadCommon {
    pub(super) fn common(&self) -> Common {
        Common {
            repository: self.repository.clone(),
            root: self.root.clone(),
            dry_run: false,
            created: None,
            key_store: self.key_store.clone(),
        }
    }
}

/// Which key signs or provides a public key.
#[derive(Args, Debug, Clone)]
pub(super) struct KeySel {
    /// The key id (file `<id>.sha256=….private` in the key store, unless --on).
    #[arg(long = "id")]
    pub(super) id: String,
    /// Where the private key lives: pkcs11:…, piv:…, or file:PATH.
    #[arg(long = "on")]
    pub(super) on: Option<String>,
}

#[derive(Subcommand, Debug)]
pub(super) enum KeyCmd {
    /// Generate a key (in the key store, or on a token / YubiKey with --on).
    New {
        #[command(flatten)]
        common: ReadCommon,
        #[command(flatten)]
        key: KeySel,
        /// ed25519 (default), rsa (4096), rsa3072, rsa2048.
        #[arg(long = "key-algorithm", default_value = "ed25519")]
        alg: String,
    },
    /// Print the public key triple and key id.
    Pub {
        #[command(flatten)]
        common: ReadCommon,
        /// Time to print as `created` for a key on a token or YubiKey (RFC
        /// 3339); default: SOURCE_DATE_EPOCH, else now.
        #[arg(long = "created")]
        created: Option<String>,
        #[command(flatten)]
        key: KeySel,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Args, Debug)]
pub(super) struct PubSource {
    /// Key id.
    #[arg(long = "id")]
    pub(super) id: String,
    /// Where the key lives (pkcs11:…, piv:…, file:PATH).
    #[arg(long = "on", conflicts_with = "key_data")]
    pub(super) on: Option<String>,
    /// A file with the public key: `alg=keydata`, or the key data with --key-algorithm.
    #[arg(long = "key-data")]
    pub(super) key_data: Option<PathBuf>,
    /// Algorithm of --key-data when the file has no `alg=` prefix.
    #[arg(long = "key-algorithm")]
    pub(super) key_alg: Option<String>,
}

#[derive(Subcommand, Debug)]
pub(super) enum RootCmd {
    /// Create an empty root (counter 0, no keys).
    Create {
        #[command(flatten)]
        common: Common,
        /// Replace an existing root.
        #[arg(long)]
        force: bool,
    },
    /// Add (or replace) a root key.
    AddKey {
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        src: PubSource,
        /// New quorum of the root's valid expression.
        #[arg(long)]
        quorum: Option<i64>,
    },
    /// Remove a root key.
    RemoveKey {
        #[command(flatten)]
        common: Common,
        /// Key id.
        #[arg(long = "id")]
        id: String,
        /// New quorum.
        #[arg(long)]
        quorum: Option<i64>,
    },
    /// Add a key reference to a role (maintainer, snapshot, timestamp).
    AddToRole(RoleArgs),
    /// Make a role exactly one key reference.
    SetRole(RoleArgs),
    /// Remove a key reference from a role.
    RemoveFromRole {
        #[command(flatten)]
        common: Common,
        /// maintainer (janitor), snapshot or timestamp.
        #[arg(long)]
        role: String,
        /// Id to remove.
        #[arg(long = "id")]
        id: String,
        /// New quorum.
        #[arg(long)]
        quorum: Option<i64>,
    },
    /// Sign the root.
    Sign {
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        key: KeySel,
        #[command(flatten)]
        counter: CounterArgs,
    },
    /// Show the root: keys, roles, signatures, who still must sign.
    Status {
        #[command(flatten)]
        common: ReadCommon,
        /// Trust anchors (sha256=…), repeatable or comma-separated.
        #[arg(short = 't', long = "trust-anchors", value_delimiter = ',')]
        anchors: Vec<String>,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Args, Debug)]
pub(super) struct RoleArgs {
    #[command(flatten)]
    pub(super) common: Common,
    /// maintainer (janitor), snapshot or timestamp.
    #[arg(long)]
    pub(super) role: String,
    #[command(flatten)]
    pub(super) src: RolePub,
    /// Epoch of the referenced file.
    #[arg(long, default_value_t = 0)]
    pub(super) epoch: u64,
    /// New quorum of the role.
    #[arg(long)]
    pub(super) quorum: Option<i64>,
}

#[derive(Args, Debug)]
pub(super) struct RolePub {
    /// Id of the janitor / snapshot / timestamp key.
    #[arg(long = "id")]
    pub(super) id: String,
    /// The digest to reference (hex or sha256=hex); default: computed.
    #[arg(long = "key-hash")]
    pub(super) key_hash: Option<String>,
    /// Where the key lives, to compute the digest.
    #[arg(long = "on")]
    pub(super) on: Option<String>,
}

#[derive(Args, Debug, Clone, Copy)]
pub(super) struct CounterArgs {
    /// Do not increment the counter (join the current signing round).
    #[arg(long = "no-incr", conflicts_with = "incr")]
    pub(super) no_incr: bool,
    /// Always increment the counter (start a new signing round).
    #[arg(long = "incr")]
    pub(super) incr: bool,
}

impl CounterArgs {
    pub(super) fn root_mode(self) -> Counter {
        if self.no_incr {
            Counter::Keep
        } else if self.incr {
            Counter::Increment
        } else {
            Counter::Auto
        }
    }
}

#[derive(Subcommand, Debug)]
pub(super) enum TargetsCmd {
    /// Create a janitor's targets file with its key.
    Create {
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        key: KeySel,
    },
    /// Compute the entries of a package (or all packages).
    Compute {
        #[command(flatten)]
        common: Common,
        /// Janitor id.
        #[arg(long = "id")]
        id: String,
        /// Package name (default: all packages).
        #[arg(long = "pkg")]
        pkg: Option<String>,
        /// Do not check opam repository paths.
        #[arg(long = "no-opam")]
        no_opam: bool,
    },
    /// Sign the targets file.
    Sign {
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        key: KeySel,
        /// Do not increment the counter.
        #[arg(long = "no-incr")]
        no_incr: bool,
    },
    /// Print the hash of the valid expression (what the root references).
    Hash {
        #[command(flatten)]
        common: ReadCommon,
        /// Janitor id.
        #[arg(long = "id")]
        id: String,
    },
    /// Show the targets file and check its signatures.
    Status {
        #[command(flatten)]
        common: ReadCommon,
        /// Janitor id.
        #[arg(long = "id")]
        id: String,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand, Debug)]
pub(super) enum OnlineCmd {
    /// Create (or refresh) the file.
    Create {
        #[command(flatten)]
        common: Common,
        /// Key id (default: the id the root's role names).
        #[arg(long = "id")]
        id: Option<String>,
        /// Where the private key lives.
        #[arg(long = "on")]
        on: Option<String>,
        /// Epoch of the file (a higher epoch restarts the counter).
        #[arg(long)]
        epoch: Option<u64>,
    },
    /// Sign the file.
    Sign {
        #[command(flatten)]
        common: Common,
        /// Key id (default: the id the root's role names).
        #[arg(long = "id")]
        id: Option<String>,
        /// Where the private key lives.
        #[arg(long = "on")]
        on: Option<String>,
        /// Do not increment the counter.
        #[arg(long = "no-incr")]
        no_incr: bool,
    },
    /// Show the file and check its signature.
    Status {
        #[command(flatten)]
        common: ReadCommon,
        /// Key id (default: the id the root's role names).
        #[arg(long = "id")]
        id: Option<String>,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
}

/// `arca verify`, with conex_verify's flags.
#[derive(Args, Debug)]
pub(super) struct VerifyArgs {
    /// Repository to verify (full mode).
    #[arg(long = "dir")]
    pub(super) dir: Option<PathBuf>,
    /// Old repository (incremental mode).
    #[arg(long = "repository")]
    pub(super) repository: Option<PathBuf>,
    /// Patch (git diff) to apply to the old repository (incremental mode).
    #[arg(long = "patch")]
    pub(super) patch: Option<PathBuf>,
    /// Incremental mode.
    #[arg(long = "incremental")]
    pub(super) incremental: bool,
    /// Verified-state cache: a full verification writes the verified state
    /// of the tree there; an incremental one uses it for the old tree when
    /// it matches the bytes on disk (else it verifies the whole tree) and
    /// replaces it with the new tree's.
    #[arg(long = "cache", value_name = "FILE")]
    pub(super) cache: Option<PathBuf>,
    /// Trust anchors: root key ids, sha256=…, repeatable or comma-separated.
    #[arg(short = 't', long = "trust-anchors", value_delimiter = ',')]
    pub(super) anchors: Vec<String>,
    /// At least this many distinct anchored root signatures.
    #[arg(long)]
    pub(super) quorum: Option<usize>,
    /// Seconds a timestamp may lie in the future.
    #[arg(long, default_value_t = 900)]
    pub(super) expiry: i64,
    /// Do not check opam repository rules.
    #[arg(long = "no-opam")]
    pub(super) no_opam: bool,
    /// Tolerate unsigned files below a top-level directory nobody signed
    /// anything in (conex 1.0's rule; `--nostrict` is its other name).
    #[arg(long = "ignore-missing", alias = "nostrict")]
    pub(super) ignore_missing: bool,
    /// Name of the root file.
    #[arg(long = "root", default_value = "root")]
    pub(super) root: String,
    /// Print conex's warnings.
    #[arg(short = 'v', long = "verbose")]
    pub(super) verbose: bool,
    /// Machine-readable output.
    #[arg(long)]
    pub(super) json: bool,
    /// The current time (RFC 3339), for rehearsals and tests.
    #[arg(long, hide = true)]
    pub(super) now: Option<String>,
}
