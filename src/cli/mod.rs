//! The command line: clap definitions mapped onto the library. No logic of
//! its own beyond choosing keys and printing.

use crate::conex::resource::{format_time, parse_time, Resource};
use crate::conex::verify::{self, DirSource, Verifier};
use crate::conex::{Digest, KeyAlg, PublicKey, Role, Snapshot, Timestamp};
use crate::error::{ArcaError, Result};
use crate::keys::{self, file::FileLocation, KeyLocation, KeySpec, Signer};
use crate::repository::{Counter, Repo};
mod bundle;
mod online;

use clap::{Args, Parser, Subcommand};
use std::collections::BTreeSet;
use std::path::PathBuf;

/// arca — the offline root of a conex-signed opam repository.
#[derive(Parser, Debug)]
#[command(name = "arca", version, about, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    cmd: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
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
enum TokenCmd {
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
enum PivCmd {
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
enum CeremonyCmd {
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
struct Common {
    /// The repository directory.
    #[arg(short = 'r', long = "repository", default_value = ".")]
    repository: PathBuf,
    /// Name of the root file.
    #[arg(long = "root", default_value = "root")]
    root: String,
    /// Compute and report, write nothing.
    #[arg(long = "dry-run")]
    dry_run: bool,
    /// Time to write as `created` (RFC 3339); default: SOURCE_DATE_EPOCH, else now.
    #[arg(long = "created")]
    created: Option<String>,
    /// Directory of private key files (default: ~/.conex).
    #[arg(long = "key-store")]
    key_store: Option<PathBuf>,
}

/// Options of the read-only commands (`status`, `hash`): no `--dry-run`
/// and no `--created`, as they write nothing. `--key-store` is kept, so
/// that one set of options serves every command of a script.
#[derive(Args, Debug, Clone)]
struct ReadCommon {
    /// The repository directory.
    #[arg(short = 'r', long = "repository", default_value = ".")]
    repository: PathBuf,
    /// Name of the root file.
    #[arg(long = "root", default_value = "root")]
    root: String,
    /// Directory of private key files (default: ~/.conex).
    #[arg(long = "key-store")]
    key_store: Option<PathBuf>,
}

impl ReadCommon {
    fn common(&self) -> Common {
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
struct KeySel {
    /// The key id (file `<id>.sha256=….private` in the key store, unless --on).
    #[arg(long = "id")]
    id: String,
    /// Where the private key lives: pkcs11:…, piv:…, or file:PATH.
    #[arg(long = "on")]
    on: Option<String>,
}

#[derive(Subcommand, Debug)]
enum KeyCmd {
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
struct PubSource {
    /// Key id.
    #[arg(long = "id")]
    id: String,
    /// Where the key lives (pkcs11:…, piv:…, file:PATH).
    #[arg(long = "on", conflicts_with = "key_data")]
    on: Option<String>,
    /// A file with the public key: `alg=keydata`, or the key data with --key-algorithm.
    #[arg(long = "key-data")]
    key_data: Option<PathBuf>,
    /// Algorithm of --key-data when the file has no `alg=` prefix.
    #[arg(long = "key-algorithm")]
    key_alg: Option<String>,
}

#[derive(Subcommand, Debug)]
enum RootCmd {
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
struct RoleArgs {
    #[command(flatten)]
    common: Common,
    /// maintainer (janitor), snapshot or timestamp.
    #[arg(long)]
    role: String,
    #[command(flatten)]
    src: RolePub,
    /// Epoch of the referenced file.
    #[arg(long, default_value_t = 0)]
    epoch: u64,
    /// New quorum of the role.
    #[arg(long)]
    quorum: Option<i64>,
}

#[derive(Args, Debug)]
struct RolePub {
    /// Id of the janitor / snapshot / timestamp key.
    #[arg(long = "id")]
    id: String,
    /// The digest to reference (hex or sha256=hex); default: computed.
    #[arg(long = "key-hash")]
    key_hash: Option<String>,
    /// Where the key lives, to compute the digest.
    #[arg(long = "on")]
    on: Option<String>,
}

#[derive(Args, Debug, Clone, Copy)]
struct CounterArgs {
    /// Do not increment the counter (join the current signing round).
    #[arg(long = "no-incr", conflicts_with = "incr")]
    no_incr: bool,
    /// Always increment the counter (start a new signing round).
    #[arg(long = "incr")]
    incr: bool,
}

impl CounterArgs {
    fn root_mode(self) -> Counter {
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
enum TargetsCmd {
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
enum OnlineCmd {
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
struct VerifyArgs {
    /// Repository to verify (full mode).
    #[arg(long = "dir")]
    dir: Option<PathBuf>,
    /// Old repository (incremental mode).
    #[arg(long = "repository")]
    repository: Option<PathBuf>,
    /// Patch (git diff) to apply to the old repository (incremental mode).
    #[arg(long = "patch")]
    patch: Option<PathBuf>,
    /// Incremental mode.
    #[arg(long = "incremental")]
    incremental: bool,
    /// Verified-state cache: a full verification writes the verified state
    /// of the tree there; an incremental one uses it for the old tree when
    /// it matches the bytes on disk (else it verifies the whole tree) and
    /// replaces it with the new tree's.
    #[arg(long = "cache", value_name = "FILE")]
    cache: Option<PathBuf>,
    /// Trust anchors: root key ids, sha256=…, repeatable or comma-separated.
    #[arg(short = 't', long = "trust-anchors", value_delimiter = ',')]
    anchors: Vec<String>,
    /// At least this many distinct anchored root signatures.
    #[arg(long)]
    quorum: Option<usize>,
    /// Seconds a timestamp may lie in the future.
    #[arg(long, default_value_t = 900)]
    expiry: i64,
    /// Do not check opam repository rules.
    #[arg(long = "no-opam")]
    no_opam: bool,
    /// Tolerate unsigned files below a top-level directory nobody signed
    /// anything in (conex 1.0's rule; `--nostrict` is its other name).
    #[arg(long = "ignore-missing", alias = "nostrict")]
    ignore_missing: bool,
    /// Name of the root file.
    #[arg(long = "root", default_value = "root")]
    root: String,
    /// Print conex's warnings.
    #[arg(short = 'v', long = "verbose")]
    verbose: bool,
    /// Machine-readable output.
    #[arg(long)]
    json: bool,
    /// The current time (RFC 3339), for rehearsals and tests.
    #[arg(long, hide = true)]
    now: Option<String>,
}

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

impl Common {
    fn created(&self) -> Result<String> {
        if let Some(c) = &self.created {
            parse_time(c).ok_or_else(|| {
                ArcaError::Input(format!("--created {c:?}: not an RFC 3339 time"))
            })?;
            return Ok(c.clone());
        }
        if let Ok(s) = std::env::var("SOURCE_DATE_EPOCH") {
            let secs: i64 = s.trim().parse().map_err(|_| {
                ArcaError::Input(format!("SOURCE_DATE_EPOCH {s:?}: not a number of seconds"))
            })?;
            return Ok(format_time(secs));
        }
        Ok(format_time(now_secs()))
    }
    fn repo(&self) -> Result<Repo> {
        let mut r = Repo::new(self.repository.clone(), self.created()?);
        r.root_name = self.root.clone();
        r.dry_run = self.dry_run;
        Ok(r)
    }
    fn store(&self) -> Result<PathBuf> {
        match &self.key_store {
            Some(d) => Ok(d.clone()),
            None => Ok(keys::file::default_dir()?),
        }
    }
    fn location(&self, id: &str, on: Option<&str>) -> Result<KeyLocation> {
        match on {
            Some(on) => Ok(KeyLocation::parse(on)?),
            None => Ok(KeyLocation::File(FileLocation::Id {
                dir: self.store()?,
                id: id.into(),
            })),
        }
    }
    /// Opens the private key, returning it with the `created` time conex
    /// records for it (file keys: the file's modification time).
    fn signer(&self, id: &str, on: Option<&str>) -> Result<(Box<dyn Signer>, String)> {
        let loc = self.location(id, on)?;
        let mut secrets = crate::operator::secrets();
        let created = match &loc {
            KeyLocation::File(FileLocation::Id { dir, id }) => {
                file_created(&keys::file::find(dir, id)?)
            }
            KeyLocation::File(FileLocation::Path(p)) => file_created(p),
            _ => self.created()?,
        };
        Ok((keys::open(&loc, secrets.as_mut())?, created))
    }
}

impl Common {
    /// The public key at a location: YubiKeys are read without a PIN.
    fn public(&self, id: &str, on: Option<&str>) -> Result<(PublicKey, String)> {
        let loc = self.location(id, on)?;
        if let KeyLocation::Piv(p) = &loc {
            let mut secrets = crate::operator::secrets();
            return Ok((keys::piv::public_key(p, secrets.as_mut())?, self.created()?));
        }
        let (s, created) = self.signer(id, on)?;
        Ok((s.public_key().clone(), created))
    }
}

fn file_created(p: &std::path::Path) -> String {
    std::fs::metadata(p)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| format_time(d.as_secs() as i64))
        .unwrap_or_else(|| format_time(0))
}

fn flush(repo: &mut Repo) {
    for n in repo.notices.drain(..) {
        eprintln!("arca: {n}");
    }
}

fn parse_role(s: &str) -> Result<Role> {
    Role::parse(s).ok_or_else(|| {
        ArcaError::Input(format!(
            "--role {s:?}: expected maintainer (janitor), snapshot or timestamp"
        ))
    })
}

/// Trust anchors as given on the command line or pasted at a prompt: each
/// string may hold several, comma-separated (`-t a,b` or `-t a -t b`), with
/// spaces around them. A malformed anchor is bad command-line input (exit 2).
pub(crate) fn parse_anchors(v: &[String]) -> Result<BTreeSet<Digest>> {
    v.iter()
        .flat_map(|a| a.split(','))
        .map(str::trim)
        .filter(|a| !a.is_empty())
        .map(|a| {
            let shown = crate::conex::shown_max(a, 80);
            if !a.starts_with("sha256=") {
                return Err(ArcaError::Input(format!(
                    "trust anchor \"{shown}\": expected sha256=<64 hex digits>"
                )));
            }
            Digest::parse_key_hash(a).map_err(|_| {
                ArcaError::Input(format!(
                    "trust anchor \"{shown}\": expected sha256=<64 hex digits>"
                ))
            })
        })
        .collect()
}

/// Trust anchors for `arca verify`, read as conex_verify reads them: each
/// comma-separated piece is compared exactly with the root key ids
/// (`sha256=` and 64 lower-case hex digits). A piece that is an anchor in
/// another spelling (upper-case hex, spaces around it) matches no key, as in
/// conex: arca says so on stderr and leaves it out, and the verdict is
/// conex's. A piece that is no anchor at all (cut short, no `sha256=`
/// prefix) is a typing mistake: bad command-line input (exit 2), named.
fn verify_anchors(v: &[String]) -> Result<BTreeSet<Digest>> {
    let mut out = BTreeSet::new();
    for a in v.iter().flat_map(|a| a.split(',')) {
        let exact = a.strip_prefix("sha256=").is_some_and(|h| {
            h.len() == 64
                && h.bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        });
        if exact {
            out.insert(Digest::parse_key_hash(a)?);
        } else if !a.is_empty() {
            // an anchor in another spelling, or no anchor at all
            parse_anchors(&[a.to_string()])?;
            eprintln!(
                "arca: trust anchor {:?} is not sha256= and 64 lower-case hex digits: it matches no root key (conex compares anchors exactly)",
                crate::conex::shown(a)
            );
        }
    }
    Ok(out)
}

fn read_pub(src: &PubSource, common: &Common) -> Result<PublicKey> {
    if let Some(f) = &src.key_data {
        let text = std::fs::read_to_string(f).map_err(|e| ArcaError::io(f, e))?;
        let text = text.trim_end_matches('\n');
        let pk = match &src.key_alg {
            Some(a) => PublicKey {
                alg: KeyAlg::parse(a).ok_or_else(|| {
                    ArcaError::Input(format!("--key-algorithm {a:?}: rsa or ed25519"))
                })?,
                data: text.to_string(),
            },
            None => PublicKey::parse_conex(text).map_err(|e| e.in_file(f.display()))?,
        };
        pk.validate()
            .map_err(|e| ArcaError::Input(format!("{}: {e}", f.display())))?;
        return Ok(pk);
    }
    Ok(common.public(&src.id, src.on.as_deref())?.0)
}

mod menu;

/// Runs the command line; returns the process exit code.
pub fn run() -> i32 {
    use std::io::IsTerminal as _;
    let cli = Cli::parse();
    let Some(cmd) = cli.cmd else {
        if std::io::stdin().is_terminal() && std::io::stderr().is_terminal() {
            return menu::run();
        }
        eprintln!("arca: no command given and no terminal for the menu; see `arca --help`");
        return 2;
    };
    match dispatch(cmd) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("arca: {e}");
            e.exit_code()
        }
    }
}

fn dispatch(cmd: Command) -> Result<()> {
    match cmd {
        Command::Key { cmd } => key_cmd(cmd),
        Command::Root { cmd } => root_cmd(cmd),
        Command::Targets { cmd } => targets_cmd(cmd),
        Command::Snapshot { cmd } => online_cmd::<Snapshot>(cmd, Role::Snapshot),
        Command::Timestamp { cmd } => online_cmd::<Timestamp>(cmd, Role::Timestamp),
        Command::Verify(a) => verify_cmd(a),
        Command::Ceremony { cmd } => ceremony_cmd(cmd),
        Command::Token { cmd } => token_cmd(cmd),
        Command::Completions { shell } => {
            let mut c = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(shell, &mut c, "arca", &mut std::io::stdout());
            Ok(())
        }
        Command::Man => {
            let c = <Cli as clap::CommandFactory>::command();
            clap_mangen::Man::new(c)
                .render(&mut std::io::stdout())
                .map_err(|e| ArcaError::io("stdout", e))
        }
        Command::Piv { cmd } => piv_cmd(cmd),
        Command::Bundle { cmd } => bundle::bundle_cmd(cmd),
        Command::Qr { cmd } => bundle::qr_cmd(cmd),
        Command::SignRequest { cmd } => bundle::sign_request_cmd(cmd),
        Command::Online { cmd } => online::online_cmd(cmd),
    }
}

fn key_cmd(cmd: KeyCmd) -> Result<()> {
    match cmd {
        KeyCmd::New { common, key, alg } => {
            let common = common.common();
            crate::repository::check_ident(&key.id)?;
            let spec = KeySpec::parse(&alg).ok_or_else(|| {
                ArcaError::Input(format!(
                    "--key-algorithm {alg:?}: ed25519, rsa, rsa3072 or rsa2048"
                ))
            })?;
            let loc = common.location(&key.id, key.on.as_deref())?;
            let mut secrets = crate::operator::secrets();
            let s = keys::generate(&loc, spec, secrets.as_mut())?;
            println!(
                "created key {} {} ({})",
                key.id,
                s.public_key().key_id(),
                s.describe()
            );
            Ok(())
        }
        KeyCmd::Pub {
            common,
            created,
            key,
            json,
        } => {
            let common = Common {
                created,
                ..common.common()
            };
            let (pk, created) = common.public(&key.id, key.on.as_deref())?;
            let v = serde_json::json!({
                "id": key.id, "created": created, "key": pk.conex_string(), "key_id": pk.key_id().to_string(),
            });
            output(json, &v, |_| {
                format!(
                    "[{} \"{}\" \"{}\"]\n{}\n",
                    key.id,
                    created,
                    pk.conex_string(),
                    pk.key_id()
                )
            });
            Ok(())
        }
    }
}

fn root_cmd(cmd: RootCmd) -> Result<()> {
    match cmd {
        RootCmd::Create { common, force } => {
            let mut repo = common.repo()?;
            let r = repo.root_create(force);
            flush(&mut repo);
            r.map(|_| ())
        }
        RootCmd::AddKey {
            common,
            src,
            quorum,
        } => {
            let pk = read_pub(&src, &common)?;
            let mut repo = common.repo()?;
            let now = repo.now.clone();
            let r = repo.root_add_key(&src.id, pk.clone(), &now, quorum);
            flush(&mut repo);
            let root = r?;
            println!(
                "root key {} {} added; valid: {}",
                src.id,
                pk.key_id(),
                root.valid
            );
            Ok(())
        }
        RootCmd::RemoveKey { common, id, quorum } => {
            let mut repo = common.repo()?;
            let r = repo.root_remove_key(&id, quorum);
            flush(&mut repo);
            let root = r?;
            println!("root key {id} removed; valid: {}", root.valid);
            Ok(())
        }
        RootCmd::AddToRole(a) => role_cmd(a, false),
        RootCmd::SetRole(a) => role_cmd(a, true),
        RootCmd::RemoveFromRole {
            common,
            role,
            id,
            quorum,
        } => {
            let role = parse_role(&role)?;
            let mut repo = common.repo()?;
            let r = repo.root_remove_from_role(role, &id, quorum);
            flush(&mut repo);
            r.map(|_| ())
        }
        RootCmd::Sign {
            common,
            key,
            counter,
        } => {
            let (mut s, _) = common.signer(&key.id, key.on.as_deref())?;
            let mut repo = common.repo()?;
            let r = repo.root_sign(&key.id, s.as_mut(), counter.root_mode());
            flush(&mut repo);
            let root = r?;
            println!(
                "root signed by {} at counter {}",
                key.id, root.header.counter
            );
            Ok(())
        }
        RootCmd::Status {
            common,
            anchors,
            json,
        } => {
            let anchors = parse_anchors(&anchors)?;
            let mut repo = common.common().repo()?;
            let r = repo.root();
            flush(&mut repo);
            let st = crate::status::root_status(&r?, &anchors);
            output(json, &st, |s| s.render());
            Ok(())
        }
    }
}

fn role_cmd(a: RoleArgs, set: bool) -> Result<()> {
    let role = parse_role(&a.role)?;
    let mut repo = a.common.repo()?;
    let digest = match &a.src.key_hash {
        Some(h) => Digest::parse_key_hash(h)?,
        None => {
            let rel = repo.targets_rel(&a.src.id)?;
            let targets_file = a
                .common
                .repository
                .join(crate::conex::resource::path_to_string(&rel));
            if role == Role::Maintainer && targets_file.exists() {
                let t: crate::conex::Targets = repo.read(&rel)?;
                t.valid_hash()?
            } else {
                a.common.public(&a.src.id, a.src.on.as_deref())?.0.key_id()
            }
        }
    };
    let r = if set {
        repo.root_set_role(role, &a.src.id, digest.clone(), a.epoch)
    } else {
        repo.root_add_to_role(role, &a.src.id, digest.clone(), a.epoch, a.quorum)
    };
    flush(&mut repo);
    let root = r?;
    println!(
        "{role}: {} ({} epoch {})",
        root.roles[&role], digest, a.epoch
    );
    Ok(())
}

fn targets_cmd(cmd: TargetsCmd) -> Result<()> {
    match cmd {
        TargetsCmd::Create { common, key } => {
            let (pk, created) = common.public(&key.id, key.on.as_deref())?;
            let mut repo = common.repo()?;
            let r = repo.targets_create(&key.id, pk, &created);
            flush(&mut repo);
            r.map(|_| ())
        }
        TargetsCmd::Compute {
            common,
            id,
            pkg,
            no_opam,
        } => {
            let mut repo = common.repo()?;
            let r = repo.targets_compute(&id, pkg.as_deref(), !no_opam);
            flush(&mut repo);
            r.map(|_| ())
        }
        TargetsCmd::Sign {
            common,
            key,
            no_incr,
        } => {
            let (mut s, _) = common.signer(&key.id, key.on.as_deref())?;
            let mut repo = common.repo()?;
            let r = repo.targets_sign(&key.id, s.as_mut(), file_counter(no_incr));
            flush(&mut repo);
            let t = r?;
            println!("targets {} signed at counter {}", key.id, t.header.counter);
            Ok(())
        }
        TargetsCmd::Hash { common, id } => {
            let mut repo = common.common().repo()?;
            let t = repo.targets(&id);
            flush(&mut repo);
            println!("{}", t?.valid_hash()?);
            Ok(())
        }
        TargetsCmd::Status { common, id, json } => {
            let mut repo = common.common().repo()?;
            let t = repo.targets(&id);
            flush(&mut repo);
            let st = crate::status::file_status(&t?);
            output(json, &st, |s| s.render());
            Ok(())
        }
    }
}

fn role_id(repo: &mut Repo, role: Role, id: Option<String>) -> Result<String> {
    if let Some(id) = id {
        return Ok(id);
    }
    let root = repo.root()?;
    match root.single_role(role).map_err(ArcaError::Input)? {
        Some((id, _, _)) => Ok(id),
        None => Err(ArcaError::Input(format!(
            "the root has no {role} role; give --id"
        ))),
    }
}

fn online_cmd<R: Resource + OnlineCreate>(cmd: OnlineCmd, role: Role) -> Result<()> {
    match cmd {
        OnlineCmd::Create {
            common,
            id,
            on,
            epoch,
        } => {
            let mut repo = common.repo()?;
            let id = role_id(&mut repo, role, id)?;
            let epoch = online_epoch::<R>(&mut repo, role, &id, epoch)?;
            let (s, created) = common.signer(&id, on.as_deref())?;
            let r = R::create(&mut repo, &id, s.public_key().clone(), &created, epoch);
            flush(&mut repo);
            r
        }
        OnlineCmd::Sign {
            common,
            id,
            on,
            no_incr,
        } => {
            let mut repo = common.repo()?;
            let id = role_id(&mut repo, role, id)?;
            let (mut s, _) = common.signer(&id, on.as_deref())?;
            let r = repo.online_sign::<R>(&id, s.as_mut(), file_counter(no_incr));
            flush(&mut repo);
            let f = r?;
            println!("{} {id} signed at counter {}", R::TYP, f.header().counter);
            Ok(())
        }
        OnlineCmd::Status { common, id, json } => {
            let mut repo = common.common().repo()?;
            let id = role_id(&mut repo, role, id)?;
            let f: R = repo.read(&[id])?;
            let root = repo.root();
            flush(&mut repo);
            let st = match root {
                Ok(root) => crate::status::online_status(&f, &root, role),
                Err(_) => crate::status::file_status(&f),
            };
            output(json, &st, |s| s.render());
            Ok(())
        }
    }
}

/// The epoch a re-made snapshot or timestamp file gets. Without `--epoch`
/// it follows the epoch the root's role names (after a bump-epoch ceremony
/// the next `create` moves to the new epoch, and its counter restarts);
/// an explicit `--epoch` other than the root's is made as asked, with a
/// warning that `arca verify` refuses the file until the root names it.
fn online_epoch<R: Resource>(
    repo: &mut Repo,
    role: Role,
    id: &str,
    given: Option<u64>,
) -> Result<Option<u64>> {
    let root = repo.root()?;
    let Ok(Some((rid, _, want))) = root.single_role(role) else {
        return Ok(given);
    };
    if !crate::conex::expr::id_equal(&rid, id) {
        return Ok(given);
    }
    match given {
        Some(e) if e != want => {
            repo.notices.push(format!(
                "warning: the root's {role} role names epoch {want}; `arca verify` refuses a {} with epoch {e} (\"{} with bad epoch\")",
                R::TYP,
                R::TYP
            ));
            Ok(Some(e))
        }
        Some(e) => Ok(Some(e)),
        None => {
            let path = repo.dir.join(id);
            let current = if path.exists() {
                repo.read::<R>(&[id.to_string()])
                    .ok()
                    .map(|f| f.header().epoch)
            } else {
                None
            };
            match current {
                Some(c) if c > want => {
                    repo.notices.push(format!(
                        "warning: {id} has epoch {c} but the root's {role} role names epoch {want}; \
                         `arca verify` refuses it until the root names epoch {c}"
                    ));
                    Ok(None)
                }
                Some(c) if c < want => {
                    repo.notices.push(format!(
                        "{id}: following the root's {role} role to epoch {want}"
                    ));
                    Ok(Some(want))
                }
                _ => Ok(Some(want)),
            }
        }
    }
}

/// How `create` works for the two online files.
trait OnlineCreate {
    fn create(
        repo: &mut Repo,
        id: &str,
        key: PublicKey,
        created: &str,
        epoch: Option<u64>,
    ) -> Result<()>;
}
impl OnlineCreate for Snapshot {
    fn create(
        repo: &mut Repo,
        id: &str,
        key: PublicKey,
        created: &str,
        epoch: Option<u64>,
    ) -> Result<()> {
        repo.snapshot_create(id, key, created, epoch).map(|_| ())
    }
}
impl OnlineCreate for Timestamp {
    fn create(
        repo: &mut Repo,
        id: &str,
        key: PublicKey,
        created: &str,
        epoch: Option<u64>,
    ) -> Result<()> {
        let snap = role_id(repo, Role::Snapshot, None)?;
        repo.timestamp_create(id, &snap, key, created, epoch)
            .map(|_| ())
    }
}

fn verify_cmd(a: VerifyArgs) -> Result<()> {
    let now = match &a.now {
        Some(t) => parse_time(t)
            .ok_or_else(|| ArcaError::Input(format!("--now {t:?}: not an RFC 3339 time")))?,
        None => now_secs(),
    };
    let opts = verify::Options {
        anchors: verify_anchors(&a.anchors)?,
        quorum: a.quorum,
        expiry: a.expiry,
        now,
        opam: !a.no_opam,
        ignore_missing: a.ignore_missing,
        root_name: a.root.clone(),
    };
    if a.incremental || a.patch.is_some() {
        let (Some(old), Some(patch)) = (&a.repository, &a.patch) else {
            return Err(ArcaError::Input(
                "incremental mode needs --repository OLD and --patch FILE".into(),
            ));
        };
        let out = crate::incremental::verify_incremental(old, patch, opts, a.cache.as_deref())?;
        if a.verbose && !a.json {
            for n in &out.notes {
                eprintln!("{n}");
            }
        }
        let (warnings, r) = (out.verdict.warnings, out.verdict.result);
        return report(&warnings, r.map_err(|e| e.to_string()), a.verbose, a.json);
    }
    let dir = a.dir.clone().or(a.repository.clone()).ok_or_else(|| {
        ArcaError::Input("give --dir DIR (or --incremental --repository OLD --patch FILE)".into())
    })?;
    let src = DirSource(dir);
    let Some(cache) = &a.cache else {
        let mut v = Verifier::new(&src, opts);
        let r = v.verify_full().map_err(|e| e.to_string());
        return report(&v.warnings, r, a.verbose, a.json);
    };
    let mut v = Verifier::new(&src, opts.clone()).capturing();
    let r = v.verify_full();
    if r.is_ok() {
        let state = v
            .take_verified_tree()
            .and_then(|t| crate::verify_cache::State::of_tree(&src, &opts, &t));
        let note = crate::incremental::store_note(cache, state);
        if a.verbose && !a.json {
            eprintln!("{note}");
        }
    }
    report(&v.warnings, r.map_err(|e| e.to_string()), a.verbose, a.json)
}

/// Prints a verification outcome.
pub fn report(
    warnings: &[String],
    r: std::result::Result<verify::Summary, String>,
    verbose: bool,
    json: bool,
) -> Result<()> {
    if verbose {
        for w in warnings {
            eprintln!("warning: {w}");
        }
    }
    match r {
        Ok(s) => {
            if json {
                println!(
                    "{}",
                    serde_json::json!({"verified": true, "summary": s, "warnings": warnings})
                );
            } else {
                println!(
                    "verified: root counter {} signed by {}; {} targets file(s); {} file(s) match",
                    s.root_counter,
                    s.root_signers.join(", "),
                    s.targets_files.len(),
                    s.files
                );
            }
            Ok(())
        }
        Err(msg) => {
            let msg = explain(&msg, warnings);
            if json {
                println!(
                    "{}",
                    serde_json::json!({"verified": false, "error": msg, "warnings": warnings})
                );
            }
            Err(ArcaError::Verify(msg))
        }
    }
}

/// A verdict with what people need to act on it: the cause of a failed
/// comparison (which conex gives only among its warnings), and what is
/// missing when the online files are not there yet.
fn explain(msg: &str, warnings: &[String]) -> String {
    let mut out = msg.to_string();
    if msg.contains("comparison failed: ") {
        // why the signed tree lacks the path: targets files not used
        let causes: Vec<&str> = warnings
            .iter()
            .map(String::as_str)
            .filter(|w| {
                w.starts_with("couldn't load or verify target ")
                    || w.starts_with("dropping ")
                    || (w.starts_with("expression ") && w.contains(" is not satisfied"))
            })
            .collect();
        if causes.is_empty() {
            if msg.contains(" only exists on disk") {
                out.push_str(" (no targets file signs it)");
            }
        } else {
            out.push_str(&format!(" (because {})", causes.join("; ")));
            if causes
                .iter()
                .any(|c| c.contains("no match in snapshot targets"))
            {
                out.push_str(
                    "; the snapshot predates that targets file: the online signer runs `arca online sign`",
                );
            }
        }
    }
    for typ in ["timestamp", "snapshot"] {
        if msg.ends_with(&format!("(type {typ}) was not found in repository")) {
            out.push_str(&format!(
                ": the online signer has not made the {typ} file yet (`arca online sign` on the online side); \
                 to check your own targets file meanwhile: `arca targets status --id YOUR-ID`"
            ));
        }
    }
    out
}

fn ceremony_cmd(cmd: CeremonyCmd) -> Result<()> {
    use crate::ceremony::{profile::Profile, script::Ceremony};
    match cmd {
        CeremonyCmd::Check {
            file,
            profile,
            json,
        } => {
            let c = Ceremony::load(&file)?;
            if let Some(p) = profile {
                let prof = Profile::load(&p)?;
                prof.check_holders(&p.display().to_string(), &c.holders())?;
            }
            let d = crate::ceremony::digest(c.text.as_bytes());
            let plan = crate::ceremony::kinds::plan(&c);
            // a warning, not a refusal: the root is good for conex, only
            // not for the online signer conex runs in production
            let mirror = c.opam_mirror_problems();
            for p in &mirror {
                eprintln!(
                    "arca: warning: {}: opam-mirror cannot serve the root this ceremony makes: {p}",
                    file.display()
                );
            }
            let v = serde_json::json!({
                "file": file.display().to_string(), "kind": c.kind(), "title": c.title(), "digest": d,
                "steps": plan.iter().map(|p| p.step.to_string()).collect::<Vec<_>>(),
                "plan": plan.iter().map(|p| p.to_string()).collect::<Vec<_>>(),
                "opam_mirror_problems": mirror,
            });
            output(json, &v, |_| {
                format!(
                    "{}: {} ceremony \"{}\" is valid; {} steps; digest {d}\n{}\n",
                    file.display(),
                    c.kind(),
                    c.title(),
                    plan.len(),
                    crate::ceremony::grouped_lines(&d, "    ")
                )
            });
            Ok(())
        }
        CeremonyCmd::VerifyTranscript { path, json } => {
            let j = if path.is_dir() {
                path.join("journal.jsonl")
            } else {
                path
            };
            // a journal that cannot be read is an I/O error (3); one that
            // reads but whose chain does not hold failed verification (1)
            let entries = crate::journal::read_chain(&j).map_err(|e| {
                if e.line == 0 {
                    ArcaError::io(&j, &e.msg)
                } else {
                    ArcaError::Verify(e.to_string())
                }
            })?;
            let last = entries.last().map(|e| e.step.clone()).unwrap_or_default();
            let head = entries.last().map(|e| e.hash.clone()).unwrap_or_default();
            let v = serde_json::json!({
                "journal": j.display().to_string(), "steps": entries.len(), "last_step": last, "last_hash": head,
            });
            output(json, &v, |_| {
                format!(
                    "{}: {} step(s), chain intact, last step {last} ({head})\n",
                    j.display(),
                    entries.len()
                )
            });
            Ok(())
        }
        CeremonyCmd::Run(a) => ceremony_run(a, false),
        CeremonyCmd::Resume(a) => ceremony_run(a, true),
    }
}

/// The built-in create-root example (`ceremonies/create-root.toml`).
pub(crate) fn builtin_ceremony() -> Result<crate::ceremony::script::Ceremony> {
    Ok(crate::ceremony::script::Ceremony::parse(
        std::path::Path::new("create-root.toml (built in)"),
        include_str!("../../ceremonies/create-root.toml").to_string(),
    )?)
}

/// `s` quoted for a shell when it needs it.
fn shell_word(s: &str) -> String {
    if !s.is_empty()
        && s.bytes()
            .all(|c| c.is_ascii_alphanumeric() || b"-_./=:,+@".contains(&c))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// The exact command that resumes this ceremony.
fn resume_command(a: &CeremonyRun) -> String {
    let mut v = vec!["arca".to_string(), "ceremony".into(), "resume".into()];
    if let Some(f) = &a.file {
        v.push(shell_word(&f.display().to_string()));
    }
    if a.rehearse {
        v.push("--rehearse".into());
    }
    if let Some(p) = &a.profile {
        v.push("--profile".into());
        v.push(shell_word(&p.display().to_string()));
    }
    if let Some(f) = &a.answers {
        v.push("--answers".into());
        v.push(shell_word(&f.display().to_string()));
    }
    if a.yes {
        v.push("--yes".into());
    }
    if let Some(b) = &a.base {
        v.push("--base".into());
        v.push(shell_word(&b.display().to_string()));
    }
    v.join(" ")
}

/// Set in the process that runs a rehearsal for another arca process.
const REHEARSAL_CHILD: &str = "ARCA_REHEARSAL_CHILD";

/// Runs a rehearsal in a process of its own with the rehearsal's SoftHSM
/// configuration: a PKCS#11 module this process loaded earlier (the menu's
/// token list, say) keeps the configuration it was loaded with, and a
/// rehearsal must never write to a token store it did not make.
fn rehearse_in_child(a: &CeremonyRun, base: &std::path::Path, resume: bool) -> Result<()> {
    use std::os::unix::process::CommandExt as _;
    let exe = std::env::current_exe().map_err(|e| ArcaError::io("arca's own executable", e))?;
    let mut cmd = std::process::Command::new(exe);
    cmd.args(["ceremony", if resume { "resume" } else { "run" }]);
    if let Some(f) = &a.file {
        cmd.arg(f);
    }
    cmd.arg("--rehearse").arg("--base").arg(base);
    if let Some(f) = &a.answers {
        cmd.arg("--answers").arg(f);
    }
    if a.yes {
        cmd.arg("--yes");
    }
    cmd.env(REHEARSAL_CHILD, "1").env(
        "SOFTHSM2_CONF",
        base.join(".rehearsal-tokens").join("softhsm2.conf"),
    );
    // SAFETY: only resets a signal disposition between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            libc::signal(libc::SIGINT, libc::SIG_DFL);
            Ok(())
        });
    }
    // Ctrl-C is the child's to handle (it says where it stopped)
    // SAFETY: plain signal disposition changes.
    let old = unsafe { libc::signal(libc::SIGINT, libc::SIG_IGN) };
    let st = cmd.status();
    // SAFETY: restores the disposition saved above.
    unsafe { libc::signal(libc::SIGINT, old) };
    let st = st.map_err(|e| ArcaError::io("the rehearsal process", e))?;
    use std::os::unix::process::ExitStatusExt as _;
    if st.signal() == Some(libc::SIGINT) || st.code() == Some(130) {
        std::process::exit(130);
    }
    let msg = "the rehearsal stopped (its messages are above)".to_string();
    match st.code() {
        Some(0) => Ok(()),
        Some(1) => Err(ArcaError::Verify(msg)),
        Some(2) => Err(ArcaError::Input(msg)),
        Some(3) => Err(ArcaError::io("rehearsal", msg)),
        Some(5) => Err(ArcaError::Key(keys::KeyError::Declined(msg))),
        Some(6) => Err(ArcaError::Refused(msg)),
        _ => Err(ArcaError::Key(keys::KeyError::Device(msg))),
    }
}

pub(crate) fn ceremony_run(a: CeremonyRun, resume: bool) -> Result<()> {
    use crate::ceremony::{profile::Profile, rehearse, script::Ceremony};
    use crate::operator::{scripted::Scripted, terminal::TerminalOperator, Operator};
    use std::io::IsTerminal as _;
    let c = match &a.file {
        Some(f) => Ceremony::load(f)?,
        None => builtin_ceremony()?,
    };
    if a.rehearse && std::env::var_os(REHEARSAL_CHILD).is_none() {
        let base = match &a.base {
            Some(b) => b.clone(),
            None => tempfile::Builder::new()
                .prefix("arca-rehearsal-")
                .tempdir()
                .map_err(|e| ArcaError::io("temporary folder", e))?
                .keep(),
        };
        if let Some(f) = &a.answers {
            // a bad answers file is refused before anything is made
            Scripted::from_file(f).map_err(ArcaError::Input)?;
        }
        return rehearse_in_child(&a, &base, resume);
    }
    let (profile, base, mut op): (Profile, PathBuf, Box<dyn Operator>) = if a.rehearse {
        let base = a
            .base
            .clone()
            .ok_or_else(|| ArcaError::Input("--base FOLDER is required".into()))?;
        let interactive = a.answers.is_none() && !a.yes && std::io::stdin().is_terminal();
        let op: Box<dyn Operator> = match (&a.answers, interactive) {
            (Some(f), _) => Box::new(Scripted::from_file(f).map_err(ArcaError::Input)?),
            (None, true) => {
                eprintln!(
                    "Rehearsal: every holder's device is a throw-away SoftHSM token; their PIN is {:?}.",
                    rehearse::REHEARSAL_PIN
                );
                Box::new(TerminalOperator::new())
            }
            (None, false) => Box::new(Scripted::yes(Default::default())),
        };
        let profile = rehearse::prepare(&c, &base.join(".rehearsal-tokens"), !interactive)?;
        (profile, base, op)
    } else {
        let profile = Profile::load(
            a.profile
                .as_deref()
                .ok_or_else(|| ArcaError::Input("--profile FILE is required".into()))?,
        )?;
        let op: Box<dyn Operator> = match &a.answers {
            Some(f) => Box::new(Scripted::from_file(f).map_err(ArcaError::Input)?),
            None if std::io::stdin().is_terminal() => Box::new(TerminalOperator::new()),
            None => {
                return Err(ArcaError::Key(keys::KeyError::Declined(
                    "no terminal to ask the people in the room: give --answers FILE (see docs/ceremonies.md)".into(),
                )))
            }
        };
        (
            profile,
            a.base.clone().unwrap_or_else(|| PathBuf::from(".")),
            op,
        )
    };
    crate::operator::install_interrupt_handler();
    let mut again = CeremonyRun {
        file: a.file.clone(),
        profile: a.profile.clone(),
        answers: a.answers.clone(),
        rehearse: a.rehearse,
        yes: a.yes,
        base: a.base.clone(),
    };
    if a.rehearse {
        again.base = Some(base.clone());
    }
    let out = crate::ceremony::run(
        &c,
        &profile,
        op.as_mut(),
        &base,
        resume,
        a.rehearse,
        resume_command(&again),
    )?;
    if out.finished_before {
        println!("finished before: {}", out.root.display());
    } else {
        println!("root written: {}", out.root.display());
    }
    println!("trust anchors: {}", out.anchors.join(","));
    if let Some(ns) = &out.next_steps {
        print!("{ns}");
    }
    Ok(())
}

/// Prints a read-only result as JSON or as text for people.
fn output<T: serde::Serialize>(json: bool, v: &T, text: impl Fn(&T) -> String) {
    if json {
        print_json(v);
    } else {
        print!("{}", text(v));
    }
}

/// `--no-incr` for targets, snapshot and timestamp files.
fn file_counter(no_incr: bool) -> Counter {
    if no_incr {
        Counter::Keep
    } else {
        Counter::Increment
    }
}

fn print_json<T: serde::Serialize>(v: &T) {
    println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
}

fn token_cmd(cmd: TokenCmd) -> Result<()> {
    match cmd {
        TokenCmd::List { module, json } => {
            let tokens = keys::pkcs11::list_tokens(module.as_deref())?;
            if json {
                print_json(&tokens);
            } else if tokens.is_empty() {
                println!("no token present");
            } else {
                for t in &tokens {
                    if !t.initialized {
                        // SoftHSM always shows one such slot
                        println!(
                            "uninitialised slot {} ({} {}): no token yet; initialise it with the vendor's tool",
                            t.slot_id,
                            t.manufacturer,
                            if t.model.is_empty() { &t.slot_description } else { &t.model }
                        );
                        continue;
                    }
                    println!(
                        "{} — {} {} serial {}",
                        t.label, t.manufacturer, t.model, t.serial
                    );
                    println!(
                        "    PIN: {}{}{}; can generate: {}",
                        if t.user_pin_locked {
                            "LOCKED"
                        } else if t.user_pin_final_try {
                            "FINAL TRY"
                        } else {
                            "ok"
                        },
                        if t.user_pin_count_low {
                            ", wrong PIN entered before"
                        } else {
                            ""
                        },
                        if t.user_pin_initialized {
                            ""
                        } else {
                            ", not set"
                        },
                        t.can_generate.join(", ")
                    );
                    println!("    {}", t.uri);
                }
            }
            Ok(())
        }
        TokenCmd::Keys { on, json } => {
            let KeyLocation::Pkcs11(u) = KeyLocation::parse(&on)? else {
                return Err(ArcaError::Input("--on needs a pkcs11: URI".into()));
            };
            let mut secrets = crate::operator::secrets();
            let list = keys::pkcs11::list_keys(&u, secrets.as_mut())?;
            if json {
                print_json(&list);
            } else if list.is_empty() {
                println!("no keys on this token");
            } else {
                for k in &list {
                    println!(
                        "{} {}{} {}",
                        k.label.as_deref().unwrap_or("(no label)"),
                        k.key_type,
                        k.bits.map(|b| format!(" {b}")).unwrap_or_default(),
                        k.key_id.as_deref().unwrap_or("(no conex key id)")
                    );
                    for p in &k.problems {
                        println!("    PROBLEM: {p}");
                    }
                    if !k.uri.is_empty() {
                        println!("    {}", k.uri);
                    }
                }
            }
            Ok(())
        }
    }
}

fn piv_cmd(cmd: PivCmd) -> Result<()> {
    let piv_loc = |on: &str| -> Result<keys::piv::PivLocation> {
        match KeyLocation::parse(on)? {
            KeyLocation::Piv(p) => Ok(p),
            _ => Err(ArcaError::Input("--on needs a piv: location".into())),
        }
    };
    match cmd {
        PivCmd::List { json } => {
            let devs = keys::piv::list()?;
            if json {
                print_json(&devs);
            } else if devs.is_empty() {
                println!("no YubiKey present");
            } else {
                for d in &devs {
                    println!(
                        "YubiKey serial {} firmware {} in {}; PIN tries left {}",
                        d.serial,
                        d.firmware,
                        d.reader,
                        d.pin_retries
                            .map(|n| n.to_string())
                            .unwrap_or_else(|| "?".into())
                    );
                    for s in &d.slots {
                        println!("    slot {}: {}", s.slot, s.algorithm);
                    }
                }
            }
            Ok(())
        }
        PivCmd::Setup { on } => {
            let p = piv_loc(&on)?;
            let mut secrets = crate::operator::secrets();
            let r = keys::piv::setup(&p, secrets.as_mut())?;
            println!(
                "YubiKey {} (firmware {}): new {} management key stored PIN-protected; PIN and PUK changed{}",
                r.serial,
                r.firmware,
                r.management_key_algorithm,
                if r.had_default_management_key { " (the factory management key is gone)" } else { "" }
            );
            Ok(())
        }
        PivCmd::Attest { on, out } => {
            let p = piv_loc(&on)?;
            let a = keys::piv::attest(&p)?;
            let mut secrets = crate::operator::secrets();
            let pk = keys::piv::public_key(&p, secrets.as_mut())?;
            a.check(&pk)?;
            if let Some(dir) = out {
                crate::repository::write_new(
                    &dir.join(format!("attestation-{}-{:02x}.der", a.serial, a.slot)),
                    &a.certificate,
                )?;
                crate::repository::write_new(
                    &dir.join(format!("attestation-{}-f9.der", a.serial)),
                    &a.intermediate,
                )?;
            }
            println!(
                "slot {:02x} of YubiKey {}: attested key {} matches",
                a.slot,
                a.serial,
                pk.key_id()
            );
            Ok(())
        }
    }
}

/// Full verification of a folder (the menu's "verify a repository"): the
/// warnings and the verdict, for [`report`].
pub(crate) fn verify_dir(
    dir: PathBuf,
    anchors: BTreeSet<Digest>,
    quorum: Option<usize>,
) -> (Vec<String>, std::result::Result<verify::Summary, String>) {
    let opts = verify::Options {
        anchors,
        quorum,
        now: now_secs(),
        ..verify::Options::default()
    };
    let src = DirSource(dir);
    let mut v = Verifier::new(&src, opts);
    let r = v.verify_full().map_err(|e| e.to_string());
    (v.warnings, r)
}

/// A janitor signs their targets file (the menu's janitor item).
pub(crate) fn janitor_sign(
    repo: PathBuf,
    id: &str,
    on: Option<&str>,
    recompute: bool,
) -> Result<()> {
    let common = Common {
        repository: repo,
        root: "root".into(),
        dry_run: false,
        created: None,
        key_store: None,
    };
    let mut r = common.repo()?;
    if recompute {
        let t = r.targets_compute(id, None, true);
        flush(&mut r);
        t?;
    }
    let (mut s, _) = common.signer(id, on)?;
    let t = r.targets_sign(id, s.as_mut(), Counter::Increment);
    flush(&mut r);
    let t = t?;
    println!(
        "targets {id} signed at counter {} ({} entries)",
        t.header.counter,
        t.targets.len()
    );
    Ok(())
}
