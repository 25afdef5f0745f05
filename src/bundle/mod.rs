//! The air-gap bundle: what the offline side hands to the online signer.
//!
//! A bundle is a folder (or one ustar file with the same entries) holding
//!
//! | file | what |
//! |---|---|
//! | `MANIFEST` | `sha256=<hex> <size> <path>` for every other file, sorted |
//! | `root` | the signed root |
//! | `root.img` | the root zero-padded to a multiple of 512 bytes (raw block device) |
//! | `anchors.txt` | the root keys' `sha256=…`, comma-separated |
//! | `opam.txt` | opam's `repository-validation-command` and `opam repository add` |
//! | `online.toml` | the online signer's settings, derived from the root |
//! | `journal.jsonl` | the ceremony transcript (hash-chained) |
//! | `attestations/…` | PIV attestation certificates, when any |
//! | `online-keys/…` | online keys generated offline, encrypted PKCS#8 only |
//!
//! The SHA-256 of the MANIFEST file is the bundle's digest: people compare
//! it by eye (text and QR) on both sides of the gap.

pub mod manifest;
pub mod opam_mirror;
pub mod qr;

use crate::conex::resource::Resource;
use crate::conex::verify::{MemSource, Options, Verifier};
use crate::conex::{shown_max, Digest, KeyRef, PublicKey, Role, Root};
use crate::error::{ArcaError, Result};
use manifest::{path_problem, sha256_hex, Manifest};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::io::Write as _;
use std::path::Path;
use zeroize::Zeroizing;

/// Files every bundle carries.
pub const REQUIRED: &[&str] = &[
    "root",
    "root.img",
    "anchors.txt",
    "opam.txt",
    "online.toml",
    "journal.jsonl",
];

/// Largest file arca reads from a bundle (a root is a few kilobytes).
pub const MAX_FILE: u64 = 64 << 20;

/// One online role (snapshot or timestamp) as the root delegates it.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct OnlineRole {
    /// The file name / key id of the role (`snap`, `ts`).
    pub id: String,
    /// The key id the root expects (`sha256=…`).
    pub key: String,
    /// The epoch the role's file must carry.
    pub epoch: u64,
}

/// `online.toml`: what the online signer needs from the root.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct OnlineSettings {
    /// The counter of the root this bundle carries.
    pub root_counter: u64,
    /// The repository's data directory (`packages`).
    pub datadir: String,
    /// The repository's key directory (`keys`).
    pub keydir: String,
    /// The snapshot role.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<OnlineRole>,
    /// The timestamp role.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<OnlineRole>,
}

fn single_remote(root: &Root, role: Role) -> Option<OnlineRole> {
    match root.roles.get(&role)? {
        crate::conex::Expr::Quorum(1, refs) if refs.len() == 1 => match &refs[0] {
            KeyRef::Remote { id, digest, epoch } => Some(OnlineRole {
                id: id.clone(),
                key: digest.to_string(),
                epoch: *epoch,
            }),
            KeyRef::Local(_) => None,
        },
        _ => None,
    }
}

impl OnlineSettings {
    /// The settings a root implies.
    pub fn of(root: &Root) -> OnlineSettings {
        OnlineSettings {
            root_counter: root.header.counter,
            datadir: root.datadir.join("/"),
            keydir: root.keydir.join("/"),
            snapshot: single_remote(root, Role::Snapshot),
            timestamp: single_remote(root, Role::Timestamp),
        }
    }

    /// The `online.toml` text.
    pub fn render(&self) -> String {
        let body = toml::to_string(self).unwrap_or_default();
        format!(
            "# Settings for the online signer (arca snapshot/timestamp sign), derived\n\
             # from the root in this bundle. Keys are named by their key id.\n{body}"
        )
    }
}

/// The trust anchors of a root: the key ids of the keys in its `valid`.
pub fn anchors(root: &Root) -> Vec<String> {
    root.valid
        .local_ids()
        .iter()
        .filter_map(|id| root.keys.get(id))
        .map(|k| k.key_id().to_string())
        .collect()
}

/// The `opam.txt` text: opam's `repository-validation-command` with arca
/// and with conex's own verifiers, and the `opam repository add` line.
pub fn opam_text(quorum: i64, anchors_line: &str) -> String {
    format!(
        "# opam configuration for this root (quorum {quorum})\n\
         repository-validation-command: [\"arca\" \"verify\" \"--quorum=%{{quorum}}%\" \"--trust-anchors=%{{anchors}}%\" \"--repository=%{{repo}}%\" {{incremental}} \"--patch=%{{patch}}%\" {{incremental}} \"--incremental\" {{incremental}} \"--dir=%{{dir}}%\" {{!incremental}}]\n\
         # or, with conex's verifiers (conex_verify_mirage_crypto takes the same flags):\n\
         # repository-validation-command: [\"conex_verify_openssl\" \"--quorum=%{{quorum}}%\" \"--trust-anchors=%{{anchors}}%\" \"--repository=%{{repo}}%\" {{incremental}} \"--patch=%{{patch}}%\" {{incremental}} \"--incremental\" {{incremental}} \"--dir=%{{dir}}%\" {{!incremental}}]\n\
         # opam repository add NAME URL {quorum} {anchors_line}\n"
    )
}

/// `bytes` zero-padded to a multiple of 512 (at least one block).
pub fn pad_512(bytes: &[u8]) -> Vec<u8> {
    let mut v = bytes.to_vec();
    let len = v.len().div_ceil(512).max(1) * 512;
    v.resize(len, 0);
    v
}

/// The files of a bundle, in memory.
#[derive(Default, Debug, Clone)]
pub struct Contents {
    files: BTreeMap<String, Vec<u8>>,
}

impl Contents {
    /// A bundle for a signed root, with its transcript.
    pub fn for_root(root_text: &str, journal: &[u8]) -> Result<Contents> {
        let root = Root::parse(root_text, &mut Vec::new()).map_err(|e| e.in_file("root"))?;
        let anchors = anchors(&root);
        let line = anchors.join(",");
        let mut c = Contents::default();
        c.add("root", root_text.as_bytes())?;
        c.add("root.img", &pad_512(root_text.as_bytes()))?;
        c.add("anchors.txt", format!("{line}\n").as_bytes())?;
        c.add(
            "opam.txt",
            opam_text(root.valid.min_signers(), &line).as_bytes(),
        )?;
        c.add("online.toml", OnlineSettings::of(&root).render().as_bytes())?;
        c.add("journal.jsonl", journal)?;
        Ok(c)
    }

    /// Adds a file (relative path, no `..`).
    pub fn add(&mut self, path: &str, bytes: &[u8]) -> Result<()> {
        if let Some(why) = path_problem(path) {
            return Err(ArcaError::Input(format!("bundle file {path}: {why}")));
        }
        if path == "MANIFEST" || self.files.contains_key(path) {
            return Err(ArcaError::Input(format!("bundle file {path}: added twice")));
        }
        self.files.insert(path.to_string(), bytes.to_vec());
        Ok(())
    }

    /// Adds an online key; refuses anything but an encrypted PKCS#8 PEM.
    pub fn add_online_key(&mut self, id: &str, key_id: &Digest, pem: &str) -> Result<()> {
        if !is_encrypted_pem(pem) {
            return Err(ArcaError::Refused(format!(
                "online key {id}: only encrypted PKCS#8 may go into a bundle"
            )));
        }
        self.add(&online_key_name(id, key_id), pem.as_bytes())
    }

    /// The MANIFEST text.
    pub fn manifest(&self) -> String {
        Manifest::of(self.files.iter().map(|(p, b)| (p.as_str(), b.as_slice()))).render()
    }

    /// The bundle digest: `sha256=` of the MANIFEST.
    pub fn digest(&self) -> String {
        format!("sha256={}", sha256_hex(self.manifest().as_bytes()))
    }

    /// Every file with the MANIFEST.
    pub fn all(&self) -> BTreeMap<String, Vec<u8>> {
        let mut m = self.files.clone();
        m.insert("MANIFEST".into(), self.manifest().into_bytes());
        m
    }

    /// Writes the bundle folder atomically (a temporary sibling, then
    /// rename); never over an existing bundle, except one with the very same
    /// MANIFEST (a resumed ceremony). Returns the digest.
    pub fn write_dir(&self, dir: &Path) -> Result<String> {
        let digest = self.digest();
        if dir.exists() || dir.symlink_metadata().is_ok() {
            let same = std::fs::read(dir.join("MANIFEST"))
                .map(|m| m == self.manifest().as_bytes())
                .unwrap_or(false);
            if same && verify(dir, &VerifyOptions::default())?.problems.is_empty() {
                return Ok(digest);
            }
            return Err(ArcaError::Refused(format!(
                "{}: a bundle (or other file) exists already; arca never writes over one",
                dir.display()
            )));
        }
        let parent = crate::repository::parent_dir(dir);
        std::fs::create_dir_all(parent).map_err(|e| ArcaError::io(parent, e))?;
        let tmp = tempfile::Builder::new()
            .prefix(".bundle-")
            .tempdir_in(parent)
            .map_err(|e| ArcaError::io(parent, e))?;
        for (rel, bytes) in self.all() {
            let p = tmp.path().join(&rel);
            if let Some(d) = p.parent() {
                std::fs::create_dir_all(d).map_err(|e| ArcaError::io(d, e))?;
            }
            let mut f = std::fs::File::create_new(&p).map_err(|e| ArcaError::io(&p, e))?;
            f.write_all(&bytes)
                .and_then(|_| f.sync_all())
                .map_err(|e| ArcaError::io(&p, e))?;
        }
        let kept = tmp.keep();
        if let Err(e) = std::fs::rename(&kept, dir) {
            let _ = std::fs::remove_dir_all(&kept);
            return Err(ArcaError::io(dir, e));
        }
        if let Ok(d) = std::fs::File::open(parent) {
            let _ = d.sync_all();
        }
        Ok(digest)
    }

    /// The bundle as one ustar archive (fixed mode and time, sorted).
    pub fn tar_bytes(&self) -> Result<Vec<u8>> {
        let mut b = tar::Builder::new(Vec::new());
        for (rel, bytes) in self.all() {
            let mut h = tar::Header::new_ustar();
            h.set_path(&rel)
                .map_err(|e| ArcaError::Input(format!("bundle file {rel}: {e}")))?;
            h.set_size(bytes.len() as u64);
            h.set_mode(0o644);
            h.set_mtime(0);
            h.set_entry_type(tar::EntryType::Regular);
            h.set_cksum();
            b.append(&h, bytes.as_slice())
                .map_err(|e| ArcaError::Input(format!("bundle file {rel}: {e}")))?;
        }
        b.into_inner()
            .map_err(|e| ArcaError::Input(format!("tar: {e}")))
    }

    /// Writes the bundle as one tar file, never over an existing file.
    pub fn write_tar(&self, path: &Path) -> Result<String> {
        crate::repository::write_new(path, &self.tar_bytes()?)?;
        Ok(self.digest())
    }
}

/// The name of an encrypted online key in a bundle.
pub fn online_key_name(id: &str, key_id: &Digest) -> String {
    format!("online-keys/{id}.{key_id}.encrypted.pem")
}

fn is_encrypted_pem(text: &str) -> bool {
    text.trim_start()
        .starts_with("-----BEGIN ENCRYPTED PRIVATE KEY-----")
        && !text.contains("-----BEGIN PRIVATE KEY-----")
        && !text.contains("-----BEGIN RSA PRIVATE KEY-----")
}

/// Encrypts a clear PKCS#8 DER private key with a passphrase: PBES2 with
/// scrypt (log n 14, r 8, p 1) and AES-256-CBC, as PEM.
pub fn encrypt_pkcs8(der: &[u8], passphrase: &[u8]) -> Result<Zeroizing<String>> {
    let info = pkcs8::PrivateKeyInfoRef::try_from(der)
        .map_err(|e| ArcaError::Input(format!("not a PKCS#8 key: {e}")))?;
    let mut rng = getrandom::SysRng;
    let doc = info
        .encrypt_with_rng(&mut rng, passphrase)
        .map_err(|e| ArcaError::Input(format!("encrypting the key failed: {e}")))?;
    let pem = doc
        .to_pem("ENCRYPTED PRIVATE KEY", pkcs8::LineEnding::LF)
        .map_err(|e| ArcaError::Input(format!("encoding the key failed: {e}")))?;
    Ok(pem)
}

/// Decrypts an encrypted PKCS#8 PEM: the clear key as PKCS#8 PEM and its
/// public key. A wrong passphrase is a [`crate::keys::KeyError::WrongPin`].
pub fn decrypt_pkcs8(
    name: &str,
    pem: &str,
    passphrase: &[u8],
) -> Result<(Zeroizing<String>, PublicKey)> {
    let bad = |why: String| ArcaError::Input(format!("{name}: {why}"));
    let (label, doc) =
        pkcs8::der::Document::from_pem(pem).map_err(|e| bad(format!("not PEM: {e}")))?;
    if label != "ENCRYPTED PRIVATE KEY" {
        return Err(bad(format!("PEM label {label}, not ENCRYPTED PRIVATE KEY")));
    }
    let clear = pkcs8::EncryptedPrivateKeyInfoRef::try_from(doc.as_bytes())
        .map_err(|e| bad(format!("not an encrypted PKCS#8 key: {e}")))?
        .decrypt(passphrase)
        .map_err(|_| {
            ArcaError::Key(crate::keys::KeyError::WrongPin(format!(
                "{name}: wrong passphrase"
            )))
        })?;
    let pk = crate::keys::pkcs8::decode(clear.as_bytes())
        .map_err(|e| bad(e.to_string()))?
        .public_key()
        .map_err(|e| bad(e.to_string()))?;
    let pem = clear
        .to_pem("PRIVATE KEY", pkcs8::LineEnding::LF)
        .map_err(|e| bad(e.to_string()))?;
    Ok((pem, pk))
}

/// A new Ed25519 key made in memory: its clear PKCS#8 DER (zeroized on
/// drop) and public key. Nothing is written.
pub fn ed25519_in_memory() -> Result<(Zeroizing<Vec<u8>>, PublicKey)> {
    use ed25519_dalek::pkcs8::{EncodePrivateKey as _, KeypairBytes};
    let mut seed = Zeroizing::new([0u8; 32]);
    getrandom::fill(seed.as_mut()).map_err(|e| ArcaError::Input(format!("no randomness: {e}")))?;
    let sk = ed25519_dalek::SigningKey::from_bytes(&seed);
    let pk = PublicKey::from_ed25519(&sk.verifying_key().to_bytes());
    let doc = KeypairBytes {
        secret_key: sk.to_bytes(),
        public_key: None,
    }
    .to_pkcs8_der()
    .map_err(|e| ArcaError::Input(e.to_string()))?;
    Ok((Zeroizing::new(doc.as_bytes().to_vec()), pk))
}

/// What `verify` is told besides the bundle.
#[derive(Debug, Default, Clone)]
pub struct VerifyOptions {
    /// The digest the person was shown on the offline side.
    pub expect_digest: Option<String>,
    /// Trust anchors instead of the bundle's `anchors.txt`.
    pub anchors: Option<BTreeSet<Digest>>,
    /// A quorum instead of the root's own.
    pub quorum: Option<usize>,
}

/// The outcome of verifying a bundle.
#[derive(Debug, Default)]
pub struct Checked {
    /// `sha256=` of the MANIFEST (empty when there is none).
    pub digest: String,
    /// One line per problem; empty when the bundle is good.
    pub problems: Vec<String>,
    /// The files read (MANIFEST included).
    pub files: BTreeMap<String, Vec<u8>>,
    /// The root, when it parsed.
    pub root: Option<Root>,
    /// Who signed the root, when it verified.
    pub signers: Vec<String>,
}

fn read_dir_tree(
    dir: &Path,
    rel: &str,
    files: &mut BTreeMap<String, Vec<u8>>,
    problems: &mut Vec<String>,
) -> Result<()> {
    let rd = std::fs::read_dir(dir).map_err(|e| ArcaError::io(dir, e))?;
    let mut entries: Vec<_> = rd.filter_map(|e| e.ok()).collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let name = e.file_name().to_string_lossy().into_owned();
        let r = if rel.is_empty() {
            name
        } else {
            format!("{rel}/{name}")
        };
        let p = e.path();
        let meta = std::fs::symlink_metadata(&p).map_err(|err| ArcaError::io(&p, err))?;
        let ft = meta.file_type();
        if ft.is_symlink() {
            problems.push(format!(
                "{r}: a symbolic link (bundles hold plain files only)"
            ));
        } else if ft.is_dir() {
            read_dir_tree(&p, &r, files, problems)?;
        } else if !ft.is_file() {
            problems.push(format!("{r}: not a plain file"));
        } else if meta.len() > MAX_FILE {
            problems.push(format!(
                "{r}: {} bytes, larger than a bundle file may be",
                meta.len()
            ));
        } else {
            let b = std::fs::read(&p).map_err(|err| ArcaError::io(&p, err))?;
            files.insert(r, b);
        }
    }
    Ok(())
}

/// Reads the entries of a tar file (`path` names it in errors).
fn read_tar(
    f: impl std::io::Read,
    path: &Path,
    files: &mut BTreeMap<String, Vec<u8>>,
    problems: &mut Vec<String>,
) -> Result<()> {
    use std::io::Read as _;
    let mut a = tar::Archive::new(f);
    let entries = a
        .entries()
        .map_err(|e| ArcaError::unusable(path, format!("not a tar file: {}", tar_error(&e))))?;
    for e in entries {
        let mut e =
            e.map_err(|err| ArcaError::unusable(path, format!("tar entry: {}", tar_error(&err))))?;
        let raw = String::from_utf8_lossy(&e.path_bytes()).into_owned();
        let name = raw.strip_prefix("./").unwrap_or(&raw).to_string();
        let kind = e.header().entry_type();
        if kind.is_dir() {
            if !name.is_empty() {
                if let Some(why) = path_problem(name.trim_end_matches('/')) {
                    problems.push(format!("{}: {why} (in the tar file)", shown_max(&raw, 120)));
                }
            }
            continue;
        }
        if let Some(why) = path_problem(&name) {
            problems.push(format!("{}: {why} (in the tar file)", shown_max(&raw, 120)));
            continue;
        }
        if kind.is_symlink() || kind.is_hard_link() {
            problems.push(format!("{name}: a link (bundles hold plain files only)"));
            continue;
        }
        if !kind.is_file() {
            problems.push(format!(
                "{name}: not a plain file (tar entry type {:?})",
                kind.as_byte() as char
            ));
            continue;
        }
        let size = e.header().size().unwrap_or(u64::MAX);
        if size > MAX_FILE {
            problems.push(format!(
                "{name}: {size} bytes, larger than a bundle file may be"
            ));
            continue;
        }
        let mut b = Vec::new();
        e.read_to_end(&mut b)
            .map_err(|err| ArcaError::unusable(path, format!("{name}: {}", tar_error(&err))))?;
        if files.insert(name.clone(), b).is_some() {
            problems.push(format!("{name}: appears twice in the tar file"));
        }
    }
    Ok(())
}

/// The tar reader's errors can quote bytes of the file: shown escaped, on one
/// line, so a file cannot send control characters to the terminal.
fn tar_error(e: &std::io::Error) -> String {
    shown_max(&e.to_string(), 200)
}

fn parse_anchor_line(text: &str) -> std::result::Result<BTreeSet<Digest>, String> {
    let mut out = BTreeSet::new();
    for a in text
        .trim()
        .split(',')
        .map(str::trim)
        .filter(|a| !a.is_empty())
    {
        if !a.starts_with("sha256=") {
            return Err(format!("{a:?} is not sha256=<hex>"));
        }
        out.insert(Digest::parse_key_hash(a).map_err(|e| format!("{a:?}: {e}"))?);
    }
    if out.is_empty() {
        return Err("no trust anchor".into());
    }
    Ok(out)
}

/// Verifies a bundle folder or tar file: every digest and size, no missing
/// or extra files, no links or escaping paths, the root's signatures
/// against the anchors with the quorum, the derived files, the journal's
/// hash chain, and that online keys are encrypted. `Err` only when the
/// bundle cannot be read at all.
pub fn verify(path: &Path, opts: &VerifyOptions) -> Result<Checked> {
    let mut c = Checked::default();
    let meta = std::fs::symlink_metadata(path).map_err(|e| ArcaError::io(path, e))?;
    if meta.file_type().is_symlink() {
        c.problems.push(format!(
            "{}: a symbolic link; give the bundle itself",
            path.display()
        ));
        return Ok(c);
    }
    if meta.is_dir() {
        read_dir_tree(path, "", &mut c.files, &mut c.problems)?;
    } else {
        let f = std::fs::File::open(path).map_err(|e| ArcaError::io(path, e))?;
        read_tar(f, path, &mut c.files, &mut c.problems)?;
    }
    check_files(c, opts)
}

/// Verifies a bundle given as the bytes of its tar file (`label` names it
/// in errors), as [`verify`] does a tar file on disk.
pub fn verify_tar_bytes(bytes: &[u8], label: &Path, opts: &VerifyOptions) -> Result<Checked> {
    let mut c = Checked::default();
    read_tar(bytes, label, &mut c.files, &mut c.problems)?;
    check_files(c, opts)
}

/// Everything [`verify`] checks once the files are read.
fn check_files(mut c: Checked, opts: &VerifyOptions) -> Result<Checked> {
    let Some(mtext) = c.files.get("MANIFEST").cloned() else {
        c.problems.push("MANIFEST: missing".into());
        return Ok(c);
    };
    c.digest = format!("sha256={}", sha256_hex(&mtext));
    if let Some(want) = &opts.expect_digest {
        let want_norm = want.trim().replace(' ', "").to_ascii_lowercase();
        let want_norm = if want_norm.starts_with("sha256=") {
            want_norm
        } else {
            format!("sha256={want_norm}")
        };
        if want_norm != c.digest {
            c.problems.push(format!(
                "MANIFEST: digest {} is not the expected {want_norm}",
                c.digest
            ));
        }
    }
    let Ok(mtext) = String::from_utf8(mtext) else {
        c.problems.push("MANIFEST: not UTF-8 text".into());
        return Ok(c);
    };
    let (m, probs) = Manifest::parse(&mtext);
    c.problems.extend(probs);
    let mut listed = BTreeSet::new();
    for l in &m.lines {
        listed.insert(l.path.clone());
        match c.files.get(&l.path) {
            None => c
                .problems
                .push(format!("{}: listed in MANIFEST but missing", l.path)),
            Some(b) if b.len() as u64 != l.size => c.problems.push(format!(
                "{}: {} bytes, MANIFEST says {}",
                l.path,
                b.len(),
                l.size
            )),
            Some(b) if sha256_hex(b) != l.sha256 => c.problems.push(format!(
                "{}: sha256={} but MANIFEST says sha256={}",
                l.path,
                sha256_hex(b),
                l.sha256
            )),
            Some(_) => {}
        }
    }
    for f in c.files.keys() {
        if f != "MANIFEST" && !listed.contains(f) {
            c.problems
                .push(format!("{f}: not listed in MANIFEST (extra file)"));
        }
    }
    for r in REQUIRED {
        if !listed.contains(*r) && c.files.contains_key(*r) {
            continue; // reported as extra already
        }
        if !listed.contains(*r) {
            c.problems
                .push(format!("{r}: missing (every bundle carries it)"));
        }
    }
    check_content(&mut c, opts);
    Ok(c)
}

fn text<'a>(c: &'a Checked, name: &str) -> Option<&'a str> {
    c.files.get(name).and_then(|b| std::str::from_utf8(b).ok())
}

fn check_content(c: &mut Checked, opts: &VerifyOptions) {
    let mut probs = Vec::new();
    // the root, against the anchors and quorum
    let root = match text(c, "root") {
        None if c.files.contains_key("root") => {
            probs.push("root: not UTF-8 text".to_string());
            None
        }
        None => None,
        Some(t) => {
            let mut w = Vec::new();
            match Root::parse(t, &mut w) {
                Ok(r) => {
                    for x in w {
                        probs.push(format!("root: {x}"));
                    }
                    Some((t.to_string(), r))
                }
                Err(e) => {
                    probs.push(e.in_file("root").to_string());
                    None
                }
            }
        }
    };
    let file_anchors = text(c, "anchors.txt").map(|t| (t.to_string(), parse_anchor_line(t)));
    if let Some((_, Err(e))) = &file_anchors {
        probs.push(format!("anchors.txt: {e}"));
    }
    if let Some((rtext, root)) = &root {
        if let Some(img) = c.files.get("root.img") {
            if *img != pad_512(rtext.as_bytes()) {
                probs.push(
                    "root.img: not the root zero-padded to a multiple of 512 bytes".to_string(),
                );
            }
        }
        let use_anchors = match (&opts.anchors, &file_anchors) {
            (Some(a), _) => Some(a.clone()),
            (None, Some((_, Ok(a)))) => Some(a.clone()),
            _ => None,
        };
        if let Some(anchors) = use_anchors {
            let quorum = opts
                .quorum
                .unwrap_or_else(|| root.valid.min_signers().max(1) as usize);
            let src = MemSource([(vec!["root".to_string()], rtext.as_bytes().to_vec())].into());
            let mut v = Verifier::new(
                &src,
                Options {
                    anchors,
                    quorum: Some(quorum),
                    ..Options::default()
                },
            );
            match v.verify_root() {
                Ok((_, signers)) => c.signers = signers,
                Err(m) => probs.push(format!(
                    "root: does not verify against the trust anchors with quorum {quorum}: {m}"
                )),
            }
        }
        if let Some((atext, Ok(_))) = &file_anchors {
            let want = format!("{}\n", anchors(root).join(","));
            if *atext != want {
                probs.push("anchors.txt: not the key ids of the root's keys".to_string());
            }
            let line = want.trim_end();
            if let Some(o) = text(c, "opam.txt") {
                if o != opam_text(root.valid.min_signers(), line) {
                    probs
                        .push("opam.txt: does not match the root's quorum and anchors".to_string());
                }
            }
        }
        if let Some(o) = text(c, "online.toml") {
            match toml::from_str::<OnlineSettings>(o) {
                Ok(s) if s == OnlineSettings::of(root) => {}
                Ok(_) => probs.push(
                    "online.toml: does not match the root's snapshot/timestamp roles".to_string(),
                ),
                Err(e) => {
                    let (line, msg) = crate::repository::toml_error(o, &e);
                    let at = line.map(|l| format!(":{l}")).unwrap_or_default();
                    probs.push(format!("online.toml{at}: {msg}"))
                }
            }
        }
        // online keys: encrypted only, named after a role key of the root
        let settings = OnlineSettings::of(root);
        let roles: Vec<&OnlineRole> = settings
            .snapshot
            .iter()
            .chain(settings.timestamp.iter())
            .collect();
        for (name, bytes) in &c.files {
            let Some(file) = name.strip_prefix("online-keys/") else {
                continue;
            };
            let ok_text = std::str::from_utf8(bytes)
                .map(is_encrypted_pem)
                .unwrap_or(false);
            if !ok_text {
                probs.push(format!(
                    "{name}: not an encrypted PKCS#8 key (clear private keys never go into a bundle)"
                ));
            }
            if !roles
                .iter()
                .any(|r| file == format!("{}.{}.encrypted.pem", r.id, r.key))
            {
                probs.push(format!(
                    "{name}: not named <id>.<key id>.encrypted.pem after a snapshot/timestamp key of the root"
                ));
            }
        }
        c.root = Some(root.clone());
    }
    // the journal's chain, and that it recorded this root
    if let Some(j) = c.files.get("journal.jsonl") {
        match tempfile::tempdir() {
            Ok(dir) => {
                let p = dir.path().join("journal.jsonl");
                if std::fs::write(&p, j).is_ok() {
                    match crate::journal::read_chain(&p) {
                        Ok(entries) => {
                            if let Some((rtext, _)) = &root {
                                let d = crate::conex::Digest::sha256(rtext.as_bytes()).to_string();
                                let recorded = entries
                                    .iter()
                                    .filter_map(|e| e.outputs.get("root"))
                                    .next_back();
                                if let Some(r) = recorded {
                                    if *r != d {
                                        probs.push(format!(
                                            "journal.jsonl: the ceremony wrote a root with {r}, the bundle's root is {d}"
                                        ));
                                    }
                                }
                            }
                        }
                        Err(e) => probs.push(format!("journal.jsonl:{}: {}", e.line, e.msg)),
                    }
                }
            }
            Err(e) => probs.push(format!("temporary folder: {e}")),
        }
    }
    c.problems.extend(probs);
}

/// Settings and files `open` wrote.
#[derive(Debug)]
pub struct Opened {
    /// Key files written (clear PKCS#8, 0400).
    pub keys: Vec<std::path::PathBuf>,
    /// The settings.
    pub settings: OnlineSettings,
    /// How to start opam-mirror with this root (`opam-mirror.txt`).
    pub opam_mirror: std::path::PathBuf,
    /// Why opam-mirror cannot serve this root, one line each (empty when
    /// it can).
    pub opam_mirror_problems: Vec<String>,
}

/// After a clean verification: writes what the online signer needs into
/// `out`: `root`, `anchors.txt`, `opam.txt`, `online.toml`, and each online
/// key decrypted into `out/key-store/` in conex's layout (0700/0400).
pub fn open(
    checked: &Checked,
    out: &Path,
    passphrase: &mut dyn FnMut() -> Result<Zeroizing<String>>,
) -> Result<Opened> {
    if !checked.problems.is_empty() {
        return Err(ArcaError::Refused(
            "the bundle did not verify; nothing was opened".into(),
        ));
    }
    let root = checked
        .root
        .as_ref()
        .ok_or_else(|| ArcaError::Refused("the bundle has no root".into()))?;
    let settings = OnlineSettings::of(root);
    let mut keys = Vec::new();
    let key_dir = out.join("key-store");
    let mut pass: Option<Zeroizing<String>> = None;
    let mut decrypted: Vec<(std::path::PathBuf, Zeroizing<String>)> = Vec::new();
    let mut online: Vec<(String, String, crate::conex::KeyAlg)> = Vec::new();
    for (name, bytes) in &checked.files {
        let Some(file) = name.strip_prefix("online-keys/") else {
            continue;
        };
        let pem = std::str::from_utf8(bytes)
            .map_err(|_| ArcaError::Input(format!("{name}: not text")))?;
        if pass.is_none() {
            pass = Some(passphrase()?);
        }
        let p = pass.as_ref().map(|p| p.as_bytes()).unwrap_or_default();
        let (clear, pk) = decrypt_pkcs8(name, pem, p)?;
        let id = file.split('.').next().unwrap_or_default();
        let want = file
            .strip_suffix(".encrypted.pem")
            .and_then(|s| s.split_once('.'))
            .map(|(_, k)| k.to_string())
            .unwrap_or_default();
        if pk.key_id().to_string() != want {
            return Err(ArcaError::Refused(format!(
                "{name}: the decrypted key has key id {}, not {want}",
                pk.key_id()
            )));
        }
        let path = key_dir.join(format!("{id}.{}.private", pk.key_id()));
        online.push((id.to_string(), pk.key_id().to_string(), pk.alg));
        decrypted.push((path, clear));
    }
    // every key decrypted and checked before the first is written
    for (path, clear) in decrypted {
        crate::keys::file::write_private(&key_dir, &path, clear.as_bytes())?;
        keys.push(path);
    }
    for f in ["root", "root.img", "anchors.txt", "opam.txt", "online.toml"] {
        if let Some(b) = checked.files.get(f) {
            crate::repository::write_new(&out.join(f), b)?;
        }
    }
    let opam_mirror = out.join(opam_mirror::FILE);
    let text = opam_mirror::start_file(root, &key_dir, &online);
    crate::repository::write_new(&opam_mirror, text.as_bytes())?;
    Ok(Opened {
        keys,
        settings,
        opam_mirror,
        opam_mirror_problems: opam_mirror::problems(root, &online),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pad() {
        assert_eq!(pad_512(b"").len(), 512);
        assert_eq!(pad_512(&[1; 512]).len(), 512);
        assert_eq!(pad_512(&[1; 513]).len(), 1024);
    }

    #[test]
    fn encrypted_keys_open_only_with_the_passphrase() {
        let (der, pk) = ed25519_in_memory().unwrap();
        let pem = encrypt_pkcs8(&der, b"correct horse").unwrap();
        assert!(is_encrypted_pem(&pem));
        assert!(!pem.contains("BEGIN PRIVATE KEY"));
        let (clear, pk2) = decrypt_pkcs8("k", &pem, b"correct horse").unwrap();
        assert_eq!(pk, pk2);
        assert!(clear.contains("BEGIN PRIVATE KEY"));
        let e = decrypt_pkcs8("k", &pem, b"wrong").unwrap_err();
        assert!(e.to_string().contains("wrong passphrase"), "{e}");
    }
}
