//! A virtual YubiKey PIV card for tests.
//!
//! The card runs in a thread of the test process and plugs itself into
//! `vsmartcard-vpcd`, the virtual reader driver of pcscd: it connects to
//! vpcd's TCP port (35963 for the first virtual reader, 35964 for the
//! second) and answers what pcscd forwards. The vpcd protocol is a 2-byte
//! big-endian length followed by the payload; a 1-byte payload is a control
//! code (0 power off, 1 power on, 2 reset, 4 send the ATR), anything longer
//! is a command APDU answered with a response APDU.
//!
//! So arca's PIV code runs unmodified: `yubikey` crate → PC/SC → pcscd →
//! vpcd → this card.
//!
//! Implemented (enough for the `yubikey` crate and arca):
//! SELECT, GET VERSION (FD), GET SERIAL (F8), VERIFY (20) with a 3-try
//! counter and lockout, CHANGE REFERENCE DATA (24) for PIN and PUK, RESET
//! RETRY COUNTER (2C), management-key mutual authentication (87 … 9B) with
//! 3DES or AES-192, SET MANAGEMENT KEY (FF), GENERATE ASYMMETRIC (47) for
//! Ed25519 and RSA-2048/3072/4096 (3072/4096/Ed25519 only on firmware ≥ 5.7)
//! and ECDSA P-256, with PIN and touch policy, GENERAL AUTHENTICATE signing
//! (raw RSA on the padded block, Ed25519 over the message, ECDSA over a
//! digest), per-slot PIN policy (never/once/always), GET DATA / PUT DATA
//! (CB/DB, the PIN-protected "printed" object needs the PIN), ATTEST (F9)
//! with an emulated attestation key (ECDSA P-256 or RSA-2048) and its
//! certificate in object 5FFF01, GET METADATA (F7), command chaining (CLA 0x10) and
//! GET RESPONSE (C0).
//!
//! Also IMPORT ASYMMETRIC KEY (FE), SET PIN RETRIES (FA) and RESET (FB, only
//! with PIN and PUK blocked), generation of P-384 and (firmware ≥ 5.7)
//! X25519 keys. Replies follow ISO 7816-4 as a YubiKey's do: at most Le
//! bytes, then `61 XX` with XX the bytes left (`00` for 256 or more).
//! Other instructions answer `6D00`, unknown algorithms `6A80`, as a
//! YubiKey does.
//!
//! Not modelled: touch (a touch policy is stored and reported but never
//! waited for), the Yubico attestation CA (the F9 certificate here is
//! self-signed, with basicConstraints cA TRUE), timing, the OTP/management
//! applets.

#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;

use cipher::{BlockCipherDecrypt, BlockCipherEncrypt, KeyInit};
use rsa::traits::PublicKeyParts;

/// vpcd's ports: one per virtual reader ("Yubico YubiKey vpcd 00 00/01").
/// The first is 35963 unless `ARCA_VPCD_PORT` says otherwise (it must match
/// the port `tests/support/pcscd-vpcd.sh` gave pcscd); the second follows it.
pub fn vpcd_ports() -> [u16; 2] {
    let first = std::env::var("ARCA_VPCD_PORT")
        .ok()
        .and_then(|p| p.parse::<u16>().ok())
        .filter(|p| *p < u16::MAX)
        .unwrap_or(35963);
    [first, first + 1]
}

/// The ATR of a YubiKey 5 NFC (T=1).
const ATR: [u8; 23] = [
    0x3b, 0xfd, 0x13, 0x00, 0x00, 0x81, 0x31, 0xfe, 0x15, 0x80, 0x73, 0xc0, 0x21, 0xc0, 0x57, 0x59,
    0x75, 0x62, 0x69, 0x4b, 0x65, 0x79, 0x40,
];

/// The factory management key of every YubiKey (3DES or AES-192).
pub const DEFAULT_MGM_KEY: [u8; 24] = [
    1, 2, 3, 4, 5, 6, 7, 8, 1, 2, 3, 4, 5, 6, 7, 8, 1, 2, 3, 4, 5, 6, 7, 8,
];

const PIV_AID: [u8; 5] = [0xa0, 0x00, 0x00, 0x03, 0x08];
const OBJ_PRINTED: u32 = 0x5f_c109;
const OBJ_ATTESTATION: u32 = 0x5f_ff01;
const MAX_TRIES: u8 = 3;

/// Management key algorithm of the card.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MgmAlg {
    /// 3DES (firmware before 5.7).
    TripleDes,
    /// AES-192 (firmware 5.7 and later).
    Aes192,
}

impl MgmAlg {
    fn id(self) -> u8 {
        match self {
            MgmAlg::TripleDes => 0x03,
            MgmAlg::Aes192 => 0x0a,
        }
    }
    fn block(self) -> usize {
        match self {
            MgmAlg::TripleDes => 8,
            MgmAlg::Aes192 => 16,
        }
    }
}

/// How a virtual card starts.
#[derive(Clone, Debug)]
pub struct CardConfig {
    /// Firmware version (major, minor, patch).
    pub version: [u8; 3],
    /// Serial number.
    pub serial: u32,
    /// Management key algorithm.
    pub mgm_alg: MgmAlg,
    /// Management key.
    pub mgm_key: [u8; 24],
    /// PIN.
    pub pin: Vec<u8>,
    /// PUK.
    pub puk: Vec<u8>,
    /// vpcd port (reader) to plug into.
    pub port: u16,
    /// Kind of attestation (F9) key.
    pub f9: F9Kind,
}

/// Kind of the emulated attestation key in slot F9.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum F9Kind {
    /// ECDSA P-256, certificates signed with ecdsa-with-SHA256.
    P256,
    /// RSA-2048, certificates signed with sha256WithRSAEncryption.
    Rsa2048,
}

enum F9Key {
    P256(Box<p256::ecdsa::SigningKey>),
    Rsa(Box<rsa::RsaPrivateKey>),
}

impl CardConfig {
    /// A factory-fresh YubiKey 5 with firmware 5.7.1 (AES-192 management key).
    pub fn fw57(serial: u32) -> CardConfig {
        CardConfig {
            version: [5, 7, 1],
            serial,
            mgm_alg: MgmAlg::Aes192,
            mgm_key: DEFAULT_MGM_KEY,
            pin: b"123456".to_vec(),
            puk: b"12345678".to_vec(),
            port: vpcd_ports()[0],
            f9: F9Kind::P256,
        }
    }
    /// A factory-fresh YubiKey 5 with firmware 5.4.3 (3DES management key).
    pub fn fw54(serial: u32) -> CardConfig {
        CardConfig {
            version: [5, 4, 3],
            mgm_alg: MgmAlg::TripleDes,
            ..CardConfig::fw57(serial)
        }
    }
}

enum KeyKind {
    Rsa(Box<rsa::RsaPrivateKey>),
    Ed25519(Box<ed25519_dalek::SigningKey>),
    P256(Box<p256::ecdsa::SigningKey>),
    P384(Box<p384::ecdsa::SigningKey>),
    /// X25519 (key agreement only): the public key.
    X25519([u8; 32]),
}

struct SlotKey {
    alg: u8,
    key: KeyKind,
    pin_policy: u8,
    touch_policy: u8,
    /// 1 generated on the card, 2 imported.
    origin: u8,
}

impl SlotKey {
    /// The public key as the card encodes it inside 7F49 / metadata tag 04.
    fn public_tlvs(&self) -> Vec<u8> {
        match &self.key {
            KeyKind::Rsa(k) => {
                let n = k.n().to_be_bytes_trimmed_vartime();
                let e = k.e().to_be_bytes_trimmed_vartime();
                let mut v = tlv(0x81, &n);
                v.extend(tlv(0x82, &e));
                v
            }
            KeyKind::Ed25519(k) => tlv(0x86, k.verifying_key().as_bytes()),
            KeyKind::P256(k) => tlv(0x86, k.verifying_key().to_sec1_point(false).as_bytes()),
            KeyKind::P384(k) => tlv(0x86, k.verifying_key().to_sec1_point(false).as_bytes()),
            KeyKind::X25519(public) => tlv(0x86, public),
        }
    }

    fn spki_der(&self) -> Vec<u8> {
        match &self.key {
            KeyKind::Rsa(k) => {
                use rsa::pkcs8::EncodePublicKey;
                k.to_public_key()
                    .to_public_key_der()
                    .expect("RSA SPKI encodes")
                    .as_bytes()
                    .to_vec()
            }
            KeyKind::Ed25519(k) => {
                let mut v = vec![
                    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
                ];
                v.extend_from_slice(k.verifying_key().as_bytes());
                v
            }
            KeyKind::P256(k) => {
                use p256::pkcs8::EncodePublicKey;
                k.verifying_key()
                    .to_public_key_der()
                    .expect("P-256 SPKI encodes")
                    .as_bytes()
                    .to_vec()
            }
            KeyKind::P384(k) => {
                use p384::pkcs8::EncodePublicKey;
                k.verifying_key()
                    .to_public_key_der()
                    .expect("P-384 SPKI encodes")
                    .as_bytes()
                    .to_vec()
            }
            KeyKind::X25519(public) => {
                let mut v = vec![
                    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x6e, 0x03, 0x21, 0x00,
                ];
                v.extend_from_slice(public);
                v
            }
        }
    }
}

/// What the card has seen, for assertions.
#[derive(Default, Debug, Clone)]
pub struct Trace {
    /// INS byte of every command (after chaining is resolved).
    pub ins: Vec<u8>,
    /// Length of the data of every signing GENERAL AUTHENTICATE.
    pub sign_inputs: Vec<usize>,
    /// Number of chained command parts (CLA 0x10) received.
    pub chained_parts: usize,
    /// Number of GET RESPONSE commands answered.
    pub get_responses: usize,
    /// Le of every command APDU (256 for a short `00` or none).
    pub le: Vec<usize>,
    /// VERIFY commands that carried a PIN (not the empty status query).
    pub pins_sent: usize,
}

/// The card's state (persistent and volatile).
pub struct Card {
    version: [u8; 3],
    serial: u32,
    pin: Vec<u8>,
    pin_tries: u8,
    pin_max: u8,
    puk: Vec<u8>,
    puk_tries: u8,
    puk_max: u8,
    pin_verified: bool,
    /// Set by a successful VERIFY, consumed by one signature with PIN
    /// policy "always".
    pin_fresh: bool,
    mgm_alg: MgmAlg,
    mgm_key: Vec<u8>,
    mgm_authenticated: bool,
    mgm_witness: Option<Vec<u8>>,
    slots: HashMap<u8, SlotKey>,
    objects: HashMap<u32, Vec<u8>>,
    f9_key: F9Key,
    f9_name: Vec<u8>,
    f9_cert: Vec<u8>,
    chain: Vec<u8>,
    pending: Vec<u8>,
    /// What the card has seen.
    pub trace: Trace,
}

/// A running virtual card plugged into a vpcd reader. Dropping it (or
/// [`VirtualCard::stop`]) pulls the card out of the reader.
pub struct VirtualCard {
    stream: TcpStream,
    thread: Option<JoinHandle<()>>,
    state: Arc<Mutex<Card>>,
    /// The card's serial number.
    pub serial: u32,
}

impl VirtualCard {
    /// Creates the card and plugs it into vpcd (`cfg.port`).
    pub fn start(cfg: CardConfig) -> std::io::Result<VirtualCard> {
        let card = Card::new(&cfg);
        let stream = TcpStream::connect(("127.0.0.1", cfg.port))?;
        stream.set_nodelay(true)?;
        let state = Arc::new(Mutex::new(card));
        let reader = stream.try_clone()?;
        let st = Arc::clone(&state);
        let thread = std::thread::Builder::new()
            .name(format!("vpiv-{}", cfg.serial))
            .spawn(move || serve(reader, st))?;
        Ok(VirtualCard {
            stream,
            thread: Some(thread),
            state,
            serial: cfg.serial,
        })
    }

    /// The card's state, e.g. to read the trace or the PIN counter.
    pub fn card(&self) -> MutexGuard<'_, Card> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Pulls the card out of the reader.
    pub fn stop(self) {}
}

impl Drop for VirtualCard {
    fn drop(&mut self) {
        let _ = self.stream.shutdown(Shutdown::Both);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// vpcd writes the length and the payload of a message separately; with
/// Nagle on its side and delayed ACKs on ours every APDU would wait ~40 ms.
/// Asking for immediate ACKs before each read avoids that.
fn quick_ack(stream: &TcpStream) {
    use std::os::fd::AsRawFd;
    let one: libc::c_int = 1;
    // SAFETY: setsockopt on a socket we own, with a valid int option value.
    unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_QUICKACK,
            (&one as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
}

fn serve(mut stream: TcpStream, state: Arc<Mutex<Card>>) {
    loop {
        quick_ack(&stream);
        let mut len = [0u8; 2];
        if stream.read_exact(&mut len).is_err() {
            return;
        }
        quick_ack(&stream);
        let mut buf = vec![0u8; u16::from_be_bytes(len) as usize];
        if stream.read_exact(&mut buf).is_err() {
            return;
        }
        let mut card = state.lock().unwrap_or_else(|e| e.into_inner());
        let resp = if buf.len() == 1 {
            match buf[0] {
                0 | 2 => {
                    card.reset_volatile();
                    continue;
                }
                4 => ATR.to_vec(),
                _ => continue,
            }
        } else {
            card.process(&buf)
        };
        drop(card);
        let mut out = (resp.len() as u16).to_be_bytes().to_vec();
        out.extend(resp);
        if stream.write_all(&out).is_err() {
            return;
        }
    }
}

// ---------------------------------------------------------------- encoding

/// BER-TLV with a one-byte tag (length in 1, 2 or 3 bytes).
fn tlv(tag: u8, value: &[u8]) -> Vec<u8> {
    let mut v = vec![tag];
    v.extend(len_bytes(value.len()));
    v.extend_from_slice(value);
    v
}

fn len_bytes(n: usize) -> Vec<u8> {
    if n < 0x80 {
        vec![n as u8]
    } else if n < 0x100 {
        vec![0x81, n as u8]
    } else {
        vec![0x82, (n >> 8) as u8, n as u8]
    }
}

/// Parses a sequence of one-byte-tag BER-TLVs.
fn parse_tlvs(mut data: &[u8]) -> Option<Vec<(u8, &[u8])>> {
    let mut out = vec![];
    while !data.is_empty() {
        let tag = data[0];
        let (len, hdr) = match *data.get(1)? {
            n if n < 0x80 => (n as usize, 2),
            0x81 => (*data.get(2)? as usize, 3),
            0x82 => (((*data.get(2)? as usize) << 8) | *data.get(3)? as usize, 4),
            _ => return None,
        };
        let value = data.get(hdr..hdr + len)?;
        out.push((tag, value));
        data = &data[hdr + len..];
    }
    Some(out)
}

fn find<'a>(tlvs: &[(u8, &'a [u8])], tag: u8) -> Option<&'a [u8]> {
    tlvs.iter().find(|(t, _)| *t == tag).map(|(_, v)| *v)
}

fn random<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    getrandom::fill(&mut b).expect("system RNG");
    b
}

type Sw = u16;
const SW_OK: Sw = 0x9000;
const SW_WRONG_LENGTH: Sw = 0x6700;
const SW_SECURITY: Sw = 0x6982;
const SW_BLOCKED: Sw = 0x6983;
const SW_INCORRECT_DATA: Sw = 0x6a80;
const SW_NOT_FOUND: Sw = 0x6a82;
const SW_REF_NOT_FOUND: Sw = 0x6a88;
const SW_WRONG_P1P2: Sw = 0x6b00;
const SW_INS_NOT_SUPPORTED: Sw = 0x6d00;

fn valid_key_slot(slot: u8) -> bool {
    matches!(slot, 0x9a | 0x9c | 0x9d | 0x9e | 0x82..=0x95)
}

fn default_pin_policy(slot: u8) -> u8 {
    match slot {
        0x9c => 3,
        0x9e => 1,
        _ => 2,
    }
}

fn pad_pin(pin: &[u8]) -> [u8; 8] {
    let mut p = [0xffu8; 8];
    p[..pin.len().min(8)].copy_from_slice(&pin[..pin.len().min(8)]);
    p
}

fn unpad_pin(p: &[u8]) -> Vec<u8> {
    p.iter().copied().take_while(|b| *b != 0xff).collect()
}

/// Splits a command APDU into its data and Le (the number of bytes the
/// reader accepts: 256 for a short Le of `00` or none, 65536 for an extended
/// Le of `00 00`). `None` for a malformed APDU.
fn split_apdu(apdu: &[u8]) -> Option<(&[u8], usize)> {
    let body = apdu.get(4..)?;
    let short_le = |b: u8| if b == 0 { 256 } else { b as usize };
    let ext_le = |hi: u8, lo: u8| match u16::from_be_bytes([hi, lo]) {
        0 => 65536,
        n => n as usize,
    };
    match body {
        [] => Some((&[], 256)),
        [le] => Some((&[], short_le(*le))),
        [0, hi, lo] => Some((&[], ext_le(*hi, *lo))),
        [0, hi, lo, rest @ ..] if !rest.is_empty() => {
            let lc = u16::from_be_bytes([*hi, *lo]) as usize;
            match rest.len().checked_sub(lc)? {
                0 => Some((&rest[..lc], 65536)),
                2 => Some((&rest[..lc], ext_le(rest[lc], rest[lc + 1]))),
                _ => None,
            }
        }
        [lc, rest @ ..] => {
            let lc = *lc as usize;
            match rest.len().checked_sub(lc)? {
                0 => Some((&rest[..lc], 256)),
                1 => Some((&rest[..lc], short_le(rest[lc]))),
                _ => None,
            }
        }
    }
}

// ------------------------------------------------------------------- card

impl Card {
    fn new(cfg: &CardConfig) -> Card {
        let f9_key = match cfg.f9 {
            F9Kind::P256 => F9Key::P256(Box::new(loop {
                if let Ok(k) = p256::ecdsa::SigningKey::from_slice(&random::<32>()) {
                    break k;
                }
            })),
            F9Kind::Rsa2048 => F9Key::Rsa(Box::new(gen_rsa(2048))),
        };
        let f9_name = name("Yubico PIV Attestation (virtual card)");
        let mut card = Card {
            version: cfg.version,
            serial: cfg.serial,
            pin: cfg.pin.clone(),
            pin_tries: MAX_TRIES,
            pin_max: MAX_TRIES,
            puk: cfg.puk.clone(),
            puk_tries: MAX_TRIES,
            puk_max: MAX_TRIES,
            pin_verified: false,
            pin_fresh: false,
            mgm_alg: cfg.mgm_alg,
            mgm_key: cfg.mgm_key.to_vec(),
            mgm_authenticated: false,
            mgm_witness: None,
            slots: HashMap::new(),
            objects: HashMap::new(),
            f9_key,
            f9_name,
            f9_cert: vec![],
            chain: vec![],
            pending: vec![],
            trace: Trace::default(),
        };
        card.f9_cert = card.f9_certificate();
        let mut obj = tlv(0x70, &card.f9_cert);
        obj.extend([0x71, 0x01, 0x00, 0xfe, 0x00]);
        card.objects.insert(OBJ_ATTESTATION, obj);
        card
    }

    /// PIN tries left.
    pub fn pin_tries(&self) -> u8 {
        self.pin_tries
    }

    /// The current management key.
    pub fn mgm_key(&self) -> &[u8] {
        &self.mgm_key
    }

    /// Whether a PIN is the card's PIN.
    pub fn pin_is(&self, pin: &[u8]) -> bool {
        self.pin == pin
    }

    /// Whether a PUK is the card's PUK.
    pub fn puk_is(&self, puk: &[u8]) -> bool {
        self.puk == puk
    }

    /// The attestation (F9) certificate, DER.
    pub fn f9_cert_der(&self) -> Vec<u8> {
        self.f9_cert.clone()
    }

    /// Raw content of a data object.
    pub fn object(&self, id: u32) -> Option<&[u8]> {
        self.objects.get(&id).map(|v| v.as_slice())
    }

    fn reset_volatile(&mut self) {
        self.pin_verified = false;
        self.pin_fresh = false;
        self.mgm_authenticated = false;
        self.mgm_witness = None;
        self.chain.clear();
        self.pending.clear();
    }

    fn fw_at_least(&self, major: u8, minor: u8) -> bool {
        (self.version[0], self.version[1]) >= (major, minor)
    }

    /// Handles one command APDU and returns the response APDU.
    ///
    /// Short and extended APDUs (ISO 7816-4 cases 1–4). A reply longer than
    /// Le (short: 256 for Le `00`) is cut after Le bytes and ends with
    /// `61 XX`, XX the number of bytes left (`00` for 256 or more), as a
    /// YubiKey does; GET RESPONSE (C0) returns the next Le bytes the same
    /// way.
    pub fn process(&mut self, apdu: &[u8]) -> Vec<u8> {
        let reply = self.process_inner(apdu);
        if std::env::var_os("ARCA_VPIV_TRACE").is_some() {
            // Straight to stderr: the test harness captures eprintln!.
            use std::io::Write as _;
            let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
            let _ = writeln!(
                std::io::stderr(),
                "vpiv > {}\nvpiv < {}",
                hex(&apdu[..apdu.len().min(16)]),
                hex(&reply[reply.len().saturating_sub(2)..])
            );
        }
        reply
    }

    fn process_inner(&mut self, apdu: &[u8]) -> Vec<u8> {
        let Some((data, le)) = split_apdu(apdu) else {
            return SW_WRONG_LENGTH.to_be_bytes().to_vec();
        };
        let (cla, ins, p1, p2) = (apdu[0], apdu[1], apdu[2], apdu[3]);
        self.trace.le.push(le);
        if ins == 0xc0 {
            self.trace.get_responses += 1;
            if self.pending.is_empty() {
                return 0x6985u16.to_be_bytes().to_vec();
            }
            let rest = std::mem::take(&mut self.pending);
            return self.respond(rest, le);
        }
        self.pending.clear();
        if cla & 0x10 != 0 {
            self.trace.chained_parts += 1;
            self.chain.extend_from_slice(data);
            return SW_OK.to_be_bytes().to_vec();
        }
        let mut full = std::mem::take(&mut self.chain);
        full.extend_from_slice(data);
        self.trace.ins.push(ins);
        match self.dispatch(ins, p1, p2, &full) {
            Ok(body) => self.respond(body, le),
            Err(sw) => sw.to_be_bytes().to_vec(),
        }
    }

    fn respond(&mut self, mut body: Vec<u8>, le: usize) -> Vec<u8> {
        if body.len() <= le {
            body.extend(SW_OK.to_be_bytes());
            return body;
        }
        let rest = body.split_off(le);
        let left = if rest.len() >= 256 {
            0
        } else {
            rest.len() as u8
        };
        self.pending = rest;
        body.extend([0x61, left]);
        body
    }

    fn dispatch(&mut self, ins: u8, p1: u8, p2: u8, data: &[u8]) -> Result<Vec<u8>, Sw> {
        match ins {
            0xa4 => self.select(data),
            0xfd => Ok(self.version.to_vec()),
            0xf8 => Ok(self.serial.to_be_bytes().to_vec()),
            0x20 => self.verify(p1, p2, data),
            0x24 => self.change_reference(p2, data),
            0x2c => self.reset_retry(p2, data),
            0x87 if p2 == 0x9b => self.mgm_auth(p1, data),
            0x87 => self.sign(p1, p2, data),
            0x47 => self.generate(p2, data),
            0xcb => self.get_data(p1, p2, data),
            0xdb => self.put_data(p1, p2, data),
            0xff => self.set_mgm(p1, p2, data),
            0xf7 => self.metadata(p2),
            0xf9 => self.attest(p1),
            0xfe => self.import(p1, p2, data),
            0xfa => self.set_pin_retries(p1, p2),
            0xfb => self.reset(),
            _ => Err(SW_INS_NOT_SUPPORTED),
        }
    }

    fn select(&mut self, data: &[u8]) -> Result<Vec<u8>, Sw> {
        if !data.starts_with(&PIV_AID) {
            return Err(SW_NOT_FOUND);
        }
        self.reset_volatile();
        Ok(vec![
            0x61, 0x11, 0x4f, 0x06, 0x00, 0x00, 0x10, 0x00, 0x01, 0x00, 0x79, 0x07, 0x4f, 0x05,
            0xa0, 0x00, 0x00, 0x03, 0x08,
        ])
    }

    fn verify(&mut self, p1: u8, p2: u8, data: &[u8]) -> Result<Vec<u8>, Sw> {
        if p2 != 0x80 {
            return Err(SW_REF_NOT_FOUND);
        }
        if p1 == 0xff {
            self.pin_verified = false;
            self.pin_fresh = false;
            return Ok(vec![]);
        }
        if self.pin_tries == 0 {
            return Err(SW_BLOCKED);
        }
        if data.is_empty() {
            return if self.pin_verified {
                Ok(vec![])
            } else {
                Err(0x63c0 | self.pin_tries as u16)
            };
        }
        if data.len() != 8 {
            return Err(SW_INCORRECT_DATA);
        }
        self.trace.pins_sent += 1;
        if data == pad_pin(&self.pin) {
            self.pin_tries = self.pin_max;
            self.pin_verified = true;
            self.pin_fresh = true;
            Ok(vec![])
        } else {
            self.pin_tries -= 1;
            self.pin_verified = false;
            self.pin_fresh = false;
            Err(0x63c0 | self.pin_tries as u16)
        }
    }

    fn change_reference(&mut self, p2: u8, data: &[u8]) -> Result<Vec<u8>, Sw> {
        if data.len() != 16 {
            return Err(SW_INCORRECT_DATA);
        }
        let (old, new) = (unpad_pin(&data[..8]), unpad_pin(&data[8..]));
        let (secret, tries, max) = match p2 {
            0x80 => (&mut self.pin, &mut self.pin_tries, self.pin_max),
            0x81 => (&mut self.puk, &mut self.puk_tries, self.puk_max),
            _ => return Err(SW_REF_NOT_FOUND),
        };
        if *tries == 0 {
            return Err(SW_BLOCKED);
        }
        if old != *secret {
            *tries -= 1;
            return Err(0x63c0 | *tries as u16);
        }
        if new.len() < 6 || new.len() > 8 {
            return Err(SW_INCORRECT_DATA);
        }
        *secret = new;
        *tries = max;
        Ok(vec![])
    }

    fn reset_retry(&mut self, p2: u8, data: &[u8]) -> Result<Vec<u8>, Sw> {
        if p2 != 0x80 || data.len() != 16 {
            return Err(SW_INCORRECT_DATA);
        }
        if self.puk_tries == 0 {
            return Err(SW_BLOCKED);
        }
        if unpad_pin(&data[..8]) != self.puk {
            self.puk_tries -= 1;
            return Err(0x63c0 | self.puk_tries as u16);
        }
        let new = unpad_pin(&data[8..]);
        if new.len() < 6 {
            return Err(SW_INCORRECT_DATA);
        }
        self.puk_tries = self.puk_max;
        self.pin = new;
        self.pin_tries = self.pin_max;
        Ok(vec![])
    }

    fn mgm_cipher(&self, block: &mut [u8], encrypt: bool) {
        match self.mgm_alg {
            MgmAlg::TripleDes => {
                let c = des::TdesEde3::new_from_slice(&self.mgm_key).expect("24-byte key");
                let b = block.try_into().expect("8-byte block");
                if encrypt {
                    c.encrypt_block(b)
                } else {
                    c.decrypt_block(b)
                }
            }
            MgmAlg::Aes192 => {
                let c = aes::Aes192::new_from_slice(&self.mgm_key).expect("24-byte key");
                let b = block.try_into().expect("16-byte block");
                if encrypt {
                    c.encrypt_block(b)
                } else {
                    c.decrypt_block(b)
                }
            }
        }
    }

    fn mgm_auth(&mut self, p1: u8, data: &[u8]) -> Result<Vec<u8>, Sw> {
        if p1 != self.mgm_alg.id() {
            self.mgm_witness = None;
            return Err(SW_INCORRECT_DATA);
        }
        let outer = parse_tlvs(data).ok_or(SW_INCORRECT_DATA)?;
        let inner =
            parse_tlvs(find(&outer, 0x7c).ok_or(SW_INCORRECT_DATA)?).ok_or(SW_INCORRECT_DATA)?;
        let n = self.mgm_alg.block();
        let witness_tag = find(&inner, 0x80);
        let challenge = find(&inner, 0x81);
        match (witness_tag, challenge) {
            // Step 1: the host asks for a witness.
            (Some([]), None) => {
                self.mgm_authenticated = false;
                let witness = random::<16>()[..n].to_vec();
                let mut enc = witness.clone();
                self.mgm_cipher(&mut enc, true);
                self.mgm_witness = Some(witness);
                Ok(tlv(0x7c, &tlv(0x80, &enc)))
            }
            // Step 2: the host returns the decrypted witness and a challenge.
            (Some(decrypted), Some(chal)) => {
                let witness = self.mgm_witness.take().ok_or(SW_SECURITY)?;
                if decrypted != witness.as_slice() || chal.len() != n {
                    return Err(SW_SECURITY);
                }
                self.mgm_authenticated = true;
                let mut resp = chal.to_vec();
                self.mgm_cipher(&mut resp, true);
                Ok(tlv(0x7c, &tlv(0x82, &resp)))
            }
            _ => Err(SW_INCORRECT_DATA),
        }
    }

    fn sign(&mut self, p1: u8, slot: u8, data: &[u8]) -> Result<Vec<u8>, Sw> {
        let outer = parse_tlvs(data).ok_or(SW_INCORRECT_DATA)?;
        let inner =
            parse_tlvs(find(&outer, 0x7c).ok_or(SW_INCORRECT_DATA)?).ok_or(SW_INCORRECT_DATA)?;
        let input = find(&inner, 0x81).ok_or(SW_INCORRECT_DATA)?;
        self.trace.sign_inputs.push(input.len());
        let key = self.slots.get(&slot).ok_or(SW_INCORRECT_DATA)?;
        if key.alg != p1 {
            return Err(SW_INCORRECT_DATA);
        }
        let pin_ok = match key.pin_policy {
            1 => true,
            3 => self.pin_verified && self.pin_fresh,
            _ => self.pin_verified,
        };
        if !pin_ok {
            return Err(SW_SECURITY);
        }
        let sig = match &key.key {
            KeyKind::Ed25519(k) => {
                use ed25519_dalek::Signer;
                k.sign(input).to_bytes().to_vec()
            }
            KeyKind::Rsa(k) => {
                let size = k.size();
                if input.len() != size {
                    return Err(SW_WRONG_LENGTH);
                }
                if rsa::BoxedUint::from_be_slice_vartime(input) >= *k.n().as_ref() {
                    return Err(SW_INCORRECT_DATA);
                }
                let m = rsa::BoxedUint::from_be_slice(input, k.n().bits_precision())
                    .map_err(|_| SW_INCORRECT_DATA)?;
                let s = rsa::hazmat::rsa_decrypt_and_check(
                    k.as_ref(),
                    None::<&mut rsa::rand_core::UnwrapErr<getrandom::SysRng>>,
                    &m,
                )
                .map_err(|_| 0x6f00u16)?;
                let raw = s.to_be_bytes_trimmed_vartime();
                let mut out = vec![0u8; size - raw.len()];
                out.extend_from_slice(&raw);
                out
            }
            KeyKind::P256(k) => {
                use p256::ecdsa::signature::hazmat::PrehashSigner;
                let sig: p256::ecdsa::Signature =
                    k.sign_prehash(input).map_err(|_| SW_INCORRECT_DATA)?;
                sig.to_der().as_bytes().to_vec()
            }
            KeyKind::P384(k) => {
                use p384::ecdsa::signature::hazmat::PrehashSigner;
                let sig: p384::ecdsa::Signature =
                    k.sign_prehash(input).map_err(|_| SW_INCORRECT_DATA)?;
                sig.to_der().as_bytes().to_vec()
            }
            // X25519 keys only agree on secrets (tag 85), never sign.
            KeyKind::X25519(_) => return Err(SW_INCORRECT_DATA),
        };
        if key.pin_policy == 3 {
            self.pin_fresh = false;
        }
        Ok(tlv(0x7c, &tlv(0x82, &sig)))
    }

    fn generate(&mut self, slot: u8, data: &[u8]) -> Result<Vec<u8>, Sw> {
        if !self.mgm_authenticated {
            return Err(SW_SECURITY);
        }
        if !valid_key_slot(slot) {
            return Err(SW_WRONG_P1P2);
        }
        let outer = parse_tlvs(data).ok_or(SW_INCORRECT_DATA)?;
        let inner =
            parse_tlvs(find(&outer, 0xac).ok_or(SW_INCORRECT_DATA)?).ok_or(SW_INCORRECT_DATA)?;
        let alg = *find(&inner, 0x80)
            .and_then(|a| a.first())
            .ok_or(SW_INCORRECT_DATA)?;
        let pin_policy = match find(&inner, 0xaa).and_then(|v| v.first()) {
            None | Some(0) => default_pin_policy(slot),
            Some(p @ 1..=3) => *p,
            Some(_) => return Err(SW_INCORRECT_DATA),
        };
        let touch_policy = match find(&inner, 0xab).and_then(|v| v.first()) {
            None | Some(0) => 1,
            Some(t @ 1..=3) => *t,
            Some(_) => return Err(SW_INCORRECT_DATA),
        };
        let new57 = self.fw_at_least(5, 7);
        let key = match alg {
            0x07 => KeyKind::Rsa(Box::new(gen_rsa(2048))),
            0x11 => KeyKind::P256(Box::new(loop {
                if let Ok(k) = p256::ecdsa::SigningKey::from_slice(&random::<32>()) {
                    break k;
                }
            })),
            0x05 if new57 => KeyKind::Rsa(Box::new(gen_rsa(3072))),
            0x16 if new57 => KeyKind::Rsa(Box::new(gen_rsa(4096))),
            0x14 => KeyKind::P384(Box::new(loop {
                if let Ok(k) = p384::ecdsa::SigningKey::from_slice(&random::<48>()) {
                    break k;
                }
            })),
            0xe0 if new57 => KeyKind::Ed25519(Box::new(ed25519_dalek::SigningKey::from_bytes(
                &random::<32>(),
            ))),
            0xe1 if new57 => KeyKind::X25519(x25519_public(&random::<32>())),
            _ => return Err(SW_INCORRECT_DATA),
        };
        let sk = SlotKey {
            alg,
            key,
            pin_policy,
            touch_policy,
            origin: 1,
        };
        let body = tlv_7f49(&sk.public_tlvs());
        self.slots.insert(slot, sk);
        Ok(body)
    }

    /// IMPORT ASYMMETRIC KEY (FE): P1 the algorithm, P2 the slot; RSA as
    /// the CRT parts (tags 01–05), ECC as the private scalar (06), Ed25519
    /// (07) and X25519 (08) as the 32-byte secret; PIN and touch policy in
    /// AA and AB.
    fn import(&mut self, alg: u8, slot: u8, data: &[u8]) -> Result<Vec<u8>, Sw> {
        if !self.mgm_authenticated {
            return Err(SW_SECURITY);
        }
        if !valid_key_slot(slot) {
            return Err(SW_WRONG_P1P2);
        }
        let tlvs = parse_tlvs(data).ok_or(SW_INCORRECT_DATA)?;
        let part = |tag: u8| find(&tlvs, tag).ok_or(SW_INCORRECT_DATA);
        let new57 = self.fw_at_least(5, 7);
        let key = match alg {
            0x07 | 0x05 | 0x16 => {
                let bits = match alg {
                    0x07 => 2048,
                    0x05 if new57 => 3072,
                    0x16 if new57 => 4096,
                    _ => return Err(SW_INCORRECT_DATA),
                };
                let prime = |tag| {
                    part(tag).and_then(|b| {
                        rsa::BoxedUint::from_be_slice(b, (b.len() * 8) as u32)
                            .map_err(|_| SW_INCORRECT_DATA)
                    })
                };
                let k = rsa::RsaPrivateKey::from_primes(
                    vec![prime(0x01)?, prime(0x02)?],
                    rsa::BoxedUint::from(65537u32),
                )
                .map_err(|_| SW_INCORRECT_DATA)?;
                if k.n().bits() as usize != bits {
                    return Err(SW_INCORRECT_DATA);
                }
                KeyKind::Rsa(Box::new(k))
            }
            0x11 => KeyKind::P256(Box::new(
                p256::ecdsa::SigningKey::from_slice(part(0x06)?).map_err(|_| SW_INCORRECT_DATA)?,
            )),
            0x14 => KeyKind::P384(Box::new(
                p384::ecdsa::SigningKey::from_slice(part(0x06)?).map_err(|_| SW_INCORRECT_DATA)?,
            )),
            0xe0 if new57 => {
                let seed: [u8; 32] = part(0x07)?.try_into().map_err(|_| SW_INCORRECT_DATA)?;
                KeyKind::Ed25519(Box::new(ed25519_dalek::SigningKey::from_bytes(&seed)))
            }
            0xe1 if new57 => {
                let secret: [u8; 32] = part(0x08)?.try_into().map_err(|_| SW_INCORRECT_DATA)?;
                KeyKind::X25519(x25519_public(&secret))
            }
            _ => return Err(SW_INCORRECT_DATA),
        };
        let pin_policy = match find(&tlvs, 0xaa).and_then(|v| v.first()) {
            None | Some(0) => default_pin_policy(slot),
            Some(p @ 1..=3) => *p,
            Some(_) => return Err(SW_INCORRECT_DATA),
        };
        let touch_policy = match find(&tlvs, 0xab).and_then(|v| v.first()) {
            None | Some(0) => 1,
            Some(t @ 1..=3) => *t,
            Some(_) => return Err(SW_INCORRECT_DATA),
        };
        self.slots.insert(
            slot,
            SlotKey {
                alg,
                key,
                pin_policy,
                touch_policy,
                origin: 2,
            },
        );
        Ok(vec![])
    }

    /// SET PIN RETRIES (FA): P1 PIN tries, P2 PUK tries. Needs the
    /// management key and the PIN; sets PIN and PUK back to their defaults,
    /// as a YubiKey does.
    fn set_pin_retries(&mut self, pin_tries: u8, puk_tries: u8) -> Result<Vec<u8>, Sw> {
        if !self.mgm_authenticated || !self.pin_verified {
            return Err(SW_SECURITY);
        }
        if pin_tries == 0 || puk_tries == 0 {
            return Err(SW_WRONG_P1P2);
        }
        self.pin_max = pin_tries;
        self.puk_max = puk_tries;
        self.pin_tries = pin_tries;
        self.puk_tries = puk_tries;
        self.pin = b"123456".to_vec();
        self.puk = b"12345678".to_vec();
        Ok(vec![])
    }

    /// RESET (FB): only once both PIN and PUK are blocked (else 6985, as a
    /// YubiKey answers); back to factory state, attestation key kept.
    fn reset(&mut self) -> Result<Vec<u8>, Sw> {
        if self.pin_tries != 0 || self.puk_tries != 0 {
            return Err(0x6985);
        }
        self.pin = b"123456".to_vec();
        self.puk = b"12345678".to_vec();
        self.pin_max = MAX_TRIES;
        self.puk_max = MAX_TRIES;
        self.pin_tries = MAX_TRIES;
        self.puk_tries = MAX_TRIES;
        self.mgm_alg = if self.fw_at_least(5, 7) {
            MgmAlg::Aes192
        } else {
            MgmAlg::TripleDes
        };
        self.mgm_key = DEFAULT_MGM_KEY.to_vec();
        self.slots.clear();
        let attestation = self.objects.remove(&OBJ_ATTESTATION);
        self.objects.clear();
        if let Some(a) = attestation {
            self.objects.insert(OBJ_ATTESTATION, a);
        }
        self.reset_volatile();
        Ok(vec![])
    }

    fn object_id(data: &[u8]) -> Result<(u32, &[u8]), Sw> {
        if data.len() < 2 || data[0] != 0x5c {
            return Err(SW_INCORRECT_DATA);
        }
        let n = data[1] as usize;
        let id = data.get(2..2 + n).ok_or(SW_INCORRECT_DATA)?;
        let id = id.iter().fold(0u32, |a, b| (a << 8) | *b as u32);
        Ok((id, &data[2 + n..]))
    }

    fn get_data(&mut self, p1: u8, p2: u8, data: &[u8]) -> Result<Vec<u8>, Sw> {
        if (p1, p2) != (0x3f, 0xff) {
            return Err(SW_WRONG_P1P2);
        }
        let (id, _) = Card::object_id(data)?;
        if id == OBJ_PRINTED && !self.pin_verified {
            return Err(SW_SECURITY);
        }
        let obj = self.objects.get(&id).ok_or(SW_NOT_FOUND)?;
        Ok(tlv(0x53, obj))
    }

    fn put_data(&mut self, p1: u8, p2: u8, data: &[u8]) -> Result<Vec<u8>, Sw> {
        if (p1, p2) != (0x3f, 0xff) {
            return Err(SW_WRONG_P1P2);
        }
        if !self.mgm_authenticated {
            return Err(SW_SECURITY);
        }
        let (id, rest) = Card::object_id(data)?;
        let tlvs = parse_tlvs(rest).ok_or(SW_INCORRECT_DATA)?;
        let content = find(&tlvs, 0x53).ok_or(SW_INCORRECT_DATA)?;
        if content.is_empty() {
            self.objects.remove(&id);
        } else {
            self.objects.insert(id, content.to_vec());
        }
        Ok(vec![])
    }

    fn set_mgm(&mut self, p1: u8, p2: u8, data: &[u8]) -> Result<Vec<u8>, Sw> {
        if p1 != 0xff || !(p2 == 0xff || p2 == 0xfe) {
            return Err(SW_WRONG_P1P2);
        }
        if !self.mgm_authenticated {
            return Err(SW_SECURITY);
        }
        if data.len() != 27 || data[1] != 0x9b || data[2] != 24 {
            return Err(SW_INCORRECT_DATA);
        }
        self.mgm_alg = match data[0] {
            0x03 => MgmAlg::TripleDes,
            0x0a if self.fw_at_least(5, 4) => MgmAlg::Aes192,
            _ => return Err(SW_INCORRECT_DATA),
        };
        self.mgm_key = data[3..].to_vec();
        Ok(vec![])
    }

    fn metadata(&mut self, slot: u8) -> Result<Vec<u8>, Sw> {
        if !self.fw_at_least(5, 3) {
            return Err(SW_INS_NOT_SUPPORTED);
        }
        match slot {
            0x9b => {
                let mut v = tlv(0x01, &[self.mgm_alg.id()]);
                v.extend(tlv(0x02, &[0x00, 0x01]));
                v.extend(tlv(0x05, &[(self.mgm_key == DEFAULT_MGM_KEY) as u8]));
                Ok(v)
            }
            0x80 | 0x81 => {
                let (default, tries, max) = if slot == 0x80 {
                    (self.pin == b"123456", self.pin_tries, self.pin_max)
                } else {
                    (self.puk == b"12345678", self.puk_tries, self.puk_max)
                };
                let mut v = tlv(0x01, &[0xff]);
                v.extend(tlv(0x05, &[default as u8]));
                v.extend(tlv(0x06, &[max, tries]));
                Ok(v)
            }
            s if valid_key_slot(s) => {
                let k = self.slots.get(&s).ok_or(SW_REF_NOT_FOUND)?;
                let mut v = tlv(0x01, &[k.alg]);
                v.extend(tlv(0x02, &[k.pin_policy, k.touch_policy]));
                v.extend(tlv(0x03, &[k.origin]));
                v.extend(tlv(0x04, &k.public_tlvs()));
                Ok(v)
            }
            _ => Err(SW_WRONG_P1P2),
        }
    }

    fn attest(&mut self, slot: u8) -> Result<Vec<u8>, Sw> {
        let k = self.slots.get(&slot).ok_or(SW_REF_NOT_FOUND)?;
        let exts = [
            extension(&yubico_oid(3), &self.version),
            extension(&yubico_oid(7), &der_integer(&self.serial.to_be_bytes())),
            extension(&yubico_oid(8), &[k.pin_policy, k.touch_policy]),
            extension(&yubico_oid(9), &[0x81]),
        ]
        .concat();
        let subject = name(&format!("YubiKey PIV Attestation {slot:02x}"));
        Ok(self.certificate(&subject, &k.spki_der(), Some(&exts)))
    }

    fn f9_certificate(&self) -> Vec<u8> {
        let spki = match &self.f9_key {
            F9Key::P256(k) => {
                use p256::pkcs8::EncodePublicKey;
                k.verifying_key()
                    .to_public_key_der()
                    .expect("P-256 SPKI encodes")
                    .into_vec()
            }
            F9Key::Rsa(k) => {
                use rsa::pkcs8::EncodePublicKey;
                k.to_public_key()
                    .to_public_key_der()
                    .expect("RSA SPKI encodes")
                    .into_vec()
            }
        };
        // basicConstraints (2.5.29.19), critical, cA TRUE: the F9 key issues
        // the slots' attestation certificates, so verifiers (`openssl
        // verify`) must accept it as a CA.
        let basic_constraints = der(
            0x30,
            &[
                vec![0x06, 0x03, 0x55, 0x1d, 0x13, 0x01, 0x01, 0xff],
                der(0x04, &der(0x30, &[0x01, 0x01, 0xff])),
            ]
            .concat(),
        );
        self.certificate(&self.f9_name, &spki, Some(&basic_constraints))
    }

    /// An X.509 v3 certificate for `spki`, issued by the F9 key.
    fn certificate(&self, subject: &[u8], spki: &[u8], exts: Option<&[u8]>) -> Vec<u8> {
        let mut serial = random::<16>();
        serial[0] &= 0x7f;
        serial[0] |= 0x01;
        let sig_alg = match &self.f9_key {
            // ecdsa-with-SHA256
            F9Key::P256(_) => der(
                0x30,
                &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02],
            ),
            // sha256WithRSAEncryption, NULL parameters
            F9Key::Rsa(_) => der(
                0x30,
                &[
                    0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b, 0x05, 0x00,
                ],
            ),
        };
        let validity = der(
            0x30,
            &[der(0x17, b"160314000000Z"), der(0x18, b"99991231235959Z")].concat(),
        );
        let mut tbs = [
            der(0xa0, &der_integer(&[2])),
            der_integer(&serial),
            sig_alg.clone(),
            self.f9_name.clone(),
            validity,
            subject.to_vec(),
            spki.to_vec(),
        ]
        .concat();
        if let Some(e) = exts {
            tbs.extend(der(0xa3, &der(0x30, e)));
        }
        let tbs = der(0x30, &tbs);
        let mut bits = vec![0u8];
        match &self.f9_key {
            F9Key::P256(k) => {
                use p256::ecdsa::signature::Signer;
                let sig: p256::ecdsa::Signature = k.sign(&tbs);
                bits.extend_from_slice(sig.to_der().as_bytes());
            }
            F9Key::Rsa(k) => {
                use sha2::Digest;
                let digest = sha2::Sha256::digest(&tbs);
                let sig = k
                    .sign(rsa::Pkcs1v15Sign::new::<sha2::Sha256>(), &digest)
                    .expect("RSA PKCS#1 v1.5 signature");
                bits.extend_from_slice(&sig);
            }
        }
        der(0x30, &[tbs, sig_alg, der(0x03, &bits)].concat())
    }
}

/// The X25519 public key of a 32-byte secret (RFC 7748 clamping).
fn x25519_public(secret: &[u8; 32]) -> [u8; 32] {
    // An Ed25519 key's scalar is the clamped hash of its seed; X25519 only
    // needs some clamped scalar, so the Montgomery form of an Ed25519 key
    // made from the secret is a valid X25519 public key.
    ed25519_dalek::SigningKey::from_bytes(secret)
        .verifying_key()
        .to_montgomery()
        .to_bytes()
}

fn gen_rsa(bits: usize) -> rsa::RsaPrivateKey {
    let mut rng = rsa::rand_core::UnwrapErr(getrandom::SysRng);
    rsa::RsaPrivateKey::new(&mut rng, bits).expect("RSA key generation")
}

fn tlv_7f49(inner: &[u8]) -> Vec<u8> {
    let mut v = vec![0x7f, 0x49];
    v.extend(len_bytes(inner.len()));
    v.extend_from_slice(inner);
    v
}

/// DER TLV with a one-byte tag.
fn der(tag: u8, content: &[u8]) -> Vec<u8> {
    tlv(tag, content)
}

fn der_integer(be: &[u8]) -> Vec<u8> {
    let mut v: Vec<u8> = be.iter().copied().skip_while(|b| *b == 0).collect();
    if v.is_empty() || v[0] & 0x80 != 0 {
        v.insert(0, 0);
    }
    der(0x02, &v)
}

/// A Name with a single CN (UTF8String).
fn name(cn: &str) -> Vec<u8> {
    let atv = der(
        0x30,
        &[vec![0x06, 0x03, 0x55, 0x04, 0x03], der(0x0c, cn.as_bytes())].concat(),
    );
    der(0x30, &der(0x31, &atv))
}

/// DER OID 1.3.6.1.4.1.41482.3.`last` (Yubico PIV attestation extensions).
fn yubico_oid(last: u8) -> Vec<u8> {
    vec![
        0x06, 0x0a, 0x2b, 0x06, 0x01, 0x04, 0x01, 0x82, 0xc4, 0x0a, 0x03, last,
    ]
}

fn extension(oid: &[u8], value: &[u8]) -> Vec<u8> {
    der(0x30, &[oid.to_vec(), der(0x04, value)].concat())
}
