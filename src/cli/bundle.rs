//! `arca bundle`, `arca qr`, `arca sign-request` and `arca online`: carrying
//! things across the air gap.

use super::common::created;
use crate::bundle::{self as b, qr};
use crate::conex::Digest;
use crate::error::{ArcaError, Result};
use crate::keys::{self, file::FileLocation, KeyLocation, KeySpec, SecretRequest};
use crate::operator::Question;
use crate::repository::sign_request::{self, Imported, SignRequest, SignatureFile};
use clap::Subcommand;
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

#[derive(Subcommand, Debug)]
pub(super) enum BundleCmd {
    /// Check a bundle folder or tar file: digests, sizes, missing/extra
    /// files, links and paths, the root's signatures, the journal's chain.
    Verify {
        /// The bundle folder or tar file.
        path: PathBuf,
        /// The digest shown on the offline side (sha256=…, spaces allowed).
        #[arg(long = "expect-digest")]
        expect_digest: Option<String>,
        /// Trust anchors instead of the bundle's anchors.txt (repeatable, comma-separated).
        #[arg(short = 't', long = "trust-anchors", alias = "anchors")]
        anchors: Vec<String>,
        /// Root signatures needed instead of the root's own quorum.
        #[arg(long)]
        quorum: Option<usize>,
    },
    /// Verify, then write what the online signer needs (root, settings,
    /// online keys decrypted into OUT/key-store in conex's layout).
    Open {
        /// The bundle folder or tar file.
        path: PathBuf,
        /// Where to write (must not exist yet, or be empty).
        #[arg(long)]
        out: PathBuf,
        /// The digest shown on the offline side.
        #[arg(long = "expect-digest")]
        expect_digest: Option<String>,
        /// Read the online keys' passphrase from this file (else: prompt).
        #[arg(long = "passphrase-file")]
        passphrase_file: Option<PathBuf>,
    },
    /// Verify a bundle folder and write it as one tar file (same MANIFEST,
    /// same digest).
    Pack {
        /// The bundle folder.
        path: PathBuf,
        /// The tar file to write (never over an existing file).
        #[arg(long)]
        out: PathBuf,
    },
}

#[derive(Subcommand, Debug)]
pub(super) enum QrCmd {
    /// Render a file (or text) as QR codes: numbered frames for anything
    /// long, one plain code with --single.
    Write {
        /// The file to render.
        file: Option<PathBuf>,
        /// Render this text instead of a file.
        #[arg(long, conflicts_with = "file")]
        text: Option<String>,
        /// Folder for the PNG files (frame-01-of-03.png …); without it the
        /// codes are drawn on the terminal (stderr).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Payload bytes per frame.
        #[arg(long, default_value_t = qr::DEFAULT_CHUNK)]
        chunk: usize,
        /// One plain code (anchors, a key, a digest), no frame header.
        #[arg(long)]
        single: bool,
    },
    /// Read QR codes from images (frames in any order), check the digest,
    /// and print or write the bytes.
    Read {
        /// PNG files.
        #[arg(required = true)]
        images: Vec<PathBuf>,
        /// Write the bytes here (never over an existing file); default stdout.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

#[derive(Subcommand, Debug)]
pub(super) enum SignRequestCmd {
    /// Write what one absent root holder must sign: the pending root, a
    /// summary, and the digest of its signed content.
    Export {
        /// The holder's root key id.
        #[arg(long)]
        id: String,
        /// The repository.
        #[arg(short = 'r', long = "repository", default_value = ".")]
        repository: PathBuf,
        /// Name of the root file.
        #[arg(long = "root", default_value = "root")]
        root: String,
        /// The last signed root, to summarise what changes.
        #[arg(long)]
        last: Option<PathBuf>,
        /// Write the request here (default: stdout).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// On the holder's machine: show the request, confirm, sign with the
    /// holder's key and write a signature file.
    Sign {
        /// The sign request.
        file: PathBuf,
        /// The holder's root key id (must be the request's).
        #[arg(long)]
        id: String,
        /// Where the private key lives: pkcs11:…, piv:…, or file:PATH.
        #[arg(long = "on")]
        on: Option<String>,
        /// Directory of private key files (default: ~/.conex).
        #[arg(long = "key-store")]
        key_store: Option<PathBuf>,
        /// Write the signature here (default: stdout).
        #[arg(long)]
        out: Option<PathBuf>,
        /// An answers file instead of prompts (scripts, tests).
        #[arg(long)]
        answers: Option<PathBuf>,
        /// Signature time (RFC 3339); default: SOURCE_DATE_EPOCH, else now.
        #[arg(long)]
        created: Option<String>,
    },
    /// Add a signature to the pending root, only if it covers exactly its
    /// current signed content.
    Import {
        /// The signature file.
        file: PathBuf,
        /// The repository.
        #[arg(short = 'r', long = "repository", default_value = ".")]
        repository: PathBuf,
        /// Name of the root file.
        #[arg(long = "root", default_value = "root")]
        root: String,
    },
}

#[derive(Subcommand, Debug)]
pub(super) enum OnlineCmd {
    /// On the online machine: generate the snapshot/timestamp keys and print
    /// their public keys (text and QR) for the ceremony file.
    Keygen {
        /// Key ids (repeatable: --id snap --id ts).
        #[arg(long = "id", required = true)]
        ids: Vec<String>,
        /// Directory of private key files (default: ~/.conex).
        #[arg(long = "key-store")]
        key_store: Option<PathBuf>,
        /// ed25519 (default), rsa (4096), rsa3072, rsa2048.
        #[arg(long = "key-algorithm", default_value = "ed25519")]
        alg: String,
        /// Also write each public key as a QR code PNG (<id>.png) here.
        #[arg(long = "qr-out")]
        qr_out: Option<PathBuf>,
    },
}

fn anchors_of(v: &[String]) -> Result<Option<std::collections::BTreeSet<Digest>>> {
    let out = super::parse_anchors(v)?;
    Ok(if out.is_empty() { None } else { Some(out) })
}

fn checked(path: &Path, opts: &b::VerifyOptions) -> Result<b::Checked> {
    let c = b::verify(path, opts)?;
    if !c.problems.is_empty() {
        for p in &c.problems {
            eprintln!("{}: {p}", path.display());
        }
        return Err(ArcaError::Verify(format!(
            "{}: {} problem(s); do not use this bundle",
            path.display(),
            c.problems.len()
        )));
    }
    Ok(c)
}

pub(super) fn bundle_cmd(cmd: BundleCmd) -> Result<()> {
    match cmd {
        BundleCmd::Verify {
            path,
            expect_digest,
            anchors,
            quorum,
        } => {
            let opts = b::VerifyOptions {
                expect_digest,
                anchors: anchors_of(&anchors)?,
                quorum,
            };
            let c = checked(&path, &opts)?;
            let counter = c.root.as_ref().map(|r| r.header.counter).unwrap_or(0);
            println!(
                "{}: bundle verified; root counter {counter} signed by {}",
                path.display(),
                c.signers.join(", ")
            );
            println!("digest {}", c.digest);
            println!("       {}", crate::repository::grouped(&c.digest));
            if opts.expect_digest.is_none() {
                println!("compare this digest with the one shown at the end of the ceremony");
            }
            Ok(())
        }
        BundleCmd::Open {
            path,
            out,
            expect_digest,
            passphrase_file,
        } => {
            let opts = b::VerifyOptions {
                expect_digest,
                ..Default::default()
            };
            let c = checked(&path, &opts)?;
            if out.exists()
                && std::fs::read_dir(&out)
                    .map(|mut d| d.next().is_some())
                    .unwrap_or(true)
            {
                return Err(ArcaError::Refused(format!(
                    "{}: exists and is not empty; choose a new folder",
                    out.display()
                )));
            }
            std::fs::create_dir_all(&out).map_err(|e| ArcaError::io(&out, e))?;
            let mut ask = || -> Result<Zeroizing<String>> {
                match &passphrase_file {
                    Some(f) => Ok(crate::keys::read_secret_file(f, "passphrase file")?),
                    None => Ok(crate::operator::secrets().secret(&SecretRequest {
                        what: "passphrase for the online keys".into(),
                        retries_left: None,
                        final_try: false,
                    })?),
                }
            };
            let o = b::open(&c, &out, &mut ask)?;
            println!("{}: bundle verified, digest {}", path.display(), c.digest);
            for k in &o.keys {
                println!("key written: {}", k.display());
            }
            println!("settings written: {}", out.join("online.toml").display());
            println!(
                "how to start opam-mirror with this root: {}",
                o.opam_mirror.display()
            );
            for p in &o.opam_mirror_problems {
                eprintln!("warning: {p}");
            }
            Ok(())
        }
        BundleCmd::Pack { path, out } => {
            let c = checked(&path, &b::VerifyOptions::default())?;
            let mut contents = b::Contents::default();
            for (name, bytes) in &c.files {
                if name != "MANIFEST" {
                    contents.add(name, bytes)?;
                }
            }
            if contents.digest() != c.digest {
                return Err(ArcaError::Refused(
                    "the MANIFEST is not in arca's canonical form; not packed".into(),
                ));
            }
            let d = contents.write_tar(&out)?;
            println!("{}: written, digest {d}", out.display());
            Ok(())
        }
    }
}

pub(super) fn qr_cmd(cmd: QrCmd) -> Result<()> {
    match cmd {
        QrCmd::Write {
            file,
            text,
            out,
            chunk,
            single,
        } => {
            let data = match (&file, &text) {
                (Some(f), _) => std::fs::read(f).map_err(|e| ArcaError::io(f, e))?,
                (None, Some(t)) => t.as_bytes().to_vec(),
                (None, None) => return Err(ArcaError::Input("give a FILE or --text".into())),
            };
            let codes = if single {
                vec![data.clone()]
            } else {
                let n = data.len().div_ceil(chunk.max(1));
                if n > qr::MAX_FRAMES {
                    return Err(ArcaError::Input(format!(
                        "{} bytes in chunks of {chunk} make {n} frames; a reader takes at most {}",
                        data.len(),
                        qr::MAX_FRAMES
                    )));
                }
                qr::frames(&data, chunk)
            };
            let n = codes.len();
            for (i, c) in codes.iter().enumerate() {
                match &out {
                    Some(dir) => {
                        std::fs::create_dir_all(dir).map_err(|e| ArcaError::io(dir, e))?;
                        let name = if single {
                            "code.png".to_string()
                        } else {
                            format!("frame-{:02}-of-{n:02}.png", i + 1)
                        };
                        let p = dir.join(name);
                        qr::save_png(c, &p)?;
                        println!("{}", p.display());
                    }
                    None => {
                        eprintln!("frame {}/{n}:", i + 1);
                        eprintln!("{}", qr::terminal(c));
                    }
                }
            }
            println!(
                "{} byte(s) in {n} code(s); sha256={}",
                data.len(),
                b::manifest::sha256_hex(&data)
            );
            Ok(())
        }
        QrCmd::Read { images, out } => {
            let mut a = qr::Assembler::default();
            for p in &images {
                for code in qr::read_image(p)? {
                    a.add(&code)
                        .map_err(|e| ArcaError::Input(format!("{}: {e}", p.display())))?;
                }
            }
            let data = a.finish().map_err(ArcaError::Input)?;
            match out {
                Some(f) => {
                    crate::repository::write_new(&f, &data)?;
                    eprintln!(
                        "{}: {} byte(s), sha256={}",
                        f.display(),
                        data.len(),
                        b::manifest::sha256_hex(&data)
                    );
                }
                None => {
                    use std::io::{IsTerminal as _, Write as _};
                    let mut out = std::io::stdout();
                    out.write_all(&data)
                        .map_err(|e| ArcaError::io("stdout", e))?;
                    // on a terminal the output ends with a newline (the
                    // prompt starts on its own line); into a pipe or a file
                    // the bytes are exactly the ones read
                    if out.is_terminal() && !data.ends_with(b"\n") {
                        out.write_all(b"\n")
                            .map_err(|e| ArcaError::io("stdout", e))?;
                    }
                }
            }
            Ok(())
        }
    }
}

fn emit(out: Option<&Path>, bytes: &[u8]) -> Result<()> {
    match out {
        Some(f) => {
            crate::repository::write_new(f, bytes)?;
            eprintln!("written: {}", f.display());
            Ok(())
        }
        None => {
            use std::io::Write as _;
            std::io::stdout()
                .write_all(bytes)
                .map_err(|e| ArcaError::io("stdout", e))
        }
    }
}

pub(super) fn sign_request_cmd(cmd: SignRequestCmd) -> Result<()> {
    match cmd {
        SignRequestCmd::Export {
            id,
            repository,
            root,
            last,
            out,
        } => {
            let req = SignRequest::export(
                &repository.join(&root),
                &id,
                last.as_deref(),
                crate::ceremony::summary::describe_change,
            )?;
            eprintln!("── sign request for {id}, counter {} ──", req.counter);
            eprintln!("{}", req.summary);
            eprintln!("signed content digest (the holder's machine shows the same):");
            eprintln!("{}", qr::terminal(req.signed_digest.as_bytes()));
            emit(out.as_deref(), req.to_json().as_bytes())
        }
        SignRequestCmd::Sign {
            file,
            id,
            on,
            key_store,
            out,
            answers,
            created: when,
        } => {
            let req = SignRequest::read(&file)?;
            let root = req.open(&file.display().to_string(), &id)?;
            let (mut op, _) = crate::operator::choose(
                answers.as_deref(),
                false,
                crate::operator::NoTerminal::Fail(ArcaError::Input(
                    "no terminal to confirm the signature: give --answers FILE".into(),
                )),
            )?;
            op.show(
                &format!("Root to sign as {id}, counter {}", root.header.counter),
                &format!(
                    "{}{}",
                    crate::ceremony::what_is_signed(None, &root),
                    sign_request::keys_text(&root)
                ),
            );
            op.show("Summary from the exporting side", &req.summary);
            if !op.ask(&Question::destructive(
                format!("sign:{id}"),
                format!("sign this root as {id} at counter {}?", root.header.counter),
            ))? {
                return Err(ArcaError::Key(keys::KeyError::Declined(format!(
                    "{id} declined to sign; nothing was signed"
                ))));
            }
            let loc = match on {
                Some(on) => KeyLocation::parse(&on)?.for_key(&id)?,
                None => KeyLocation::File(FileLocation::Id {
                    dir: match key_store {
                        Some(d) => d,
                        None => keys::file::default_dir()?,
                    },
                    id: id.clone(),
                }),
            };
            let mut signer = {
                let mut s = crate::operator::Subjected {
                    op: op.as_mut(),
                    subject: crate::operator::secret_subject(&loc),
                };
                keys::open(&loc, &mut s)?
            };
            let t = created(when.as_deref())?;
            let (sig, notes) = sign_request::sign(&root, &id, &t, signer.as_mut())?;
            for n in notes {
                eprintln!("{n}");
            }
            eprintln!(
                "signed as {id}: counter {}, signed content {}",
                sig.counter, sig.signed_digest
            );
            emit(out.as_deref(), sig.to_json().as_bytes())
        }
        SignRequestCmd::Import {
            file,
            repository,
            root,
        } => {
            let s = SignatureFile::read(&file)?;
            let rp = repository.join(&root);
            match s.import(&file.display().to_string(), &rp)? {
                Imported::Already => println!(
                    "{}: {} has signed already (same signature)",
                    rp.display(),
                    s.id
                ),
                Imported::Added(r) => {
                    let who: Vec<&str> = r.signatures.keys().map(String::as_str).collect();
                    println!(
                        "{}: signature of {} added (counter {}); signatures now: {}",
                        rp.display(),
                        s.id,
                        r.header.counter,
                        who.join(", ")
                    );
                }
            }
            Ok(())
        }
    }
}

pub(super) fn online_cmd(cmd: OnlineCmd) -> Result<()> {
    match cmd {
        OnlineCmd::Keygen {
            ids,
            key_store,
            alg,
            qr_out,
        } => {
            let spec = KeySpec::parse(&alg).ok_or_else(|| {
                ArcaError::Input(format!(
                    "--key-algorithm {alg:?}: ed25519, rsa, rsa3072 or rsa2048"
                ))
            })?;
            let dir = match key_store {
                Some(d) => d,
                None => keys::file::default_dir()?,
            };
            for id in &ids {
                crate::repository::check_ident(id)?;
            }
            for id in &ids {
                let loc = KeyLocation::File(FileLocation::Id {
                    dir: dir.clone(),
                    id: id.clone(),
                });
                let s = keys::generate(&loc, spec, &mut keys::NoSecrets)?;
                let pk = s.public_key().clone();
                let conex = pk.conex_string();
                println!("[ {id} \"{}\" \"{conex}\" ]", created(None)?);
                println!("# key id {}", pk.key_id());
                println!("#        {}", crate::status::read_aloud(&pk.key_id()));
                println!("# for the ceremony file: key = \"{conex}\"");
                eprintln!("{id} (scan on the offline side):");
                eprintln!("{}", qr::terminal(conex.as_bytes()));
                if let Some(q) = &qr_out {
                    std::fs::create_dir_all(q).map_err(|e| ArcaError::io(q, e))?;
                    let p = q.join(format!("{id}.png"));
                    qr::save_png(conex.as_bytes(), &p)?;
                    eprintln!("QR code written: {}", p.display());
                }
            }
            Ok(())
        }
    }
}
