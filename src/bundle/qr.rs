//! QR codes across the air gap.
//!
//! Short things (trust anchors, a key triple, a MANIFEST digest) are one
//! plain QR code. Longer things (a root file, a sign request) are cut into
//! numbered frames, each a QR code whose content is
//!
//! ```text
//! ARCA1 <n>/<N> <sha256 hex of the whole payload> <chunk bytes>
//! ```
//!
//! Frames can be read in any order; [`Assembler`] puts them together and
//! checks the digest of the result.

use crate::error::{ArcaError, Result};
use qrcode::{EcLevel, QrCode};
use std::path::Path;

/// The first word of every frame.
pub const MAGIC: &str = "ARCA1";

/// The most frames one payload may announce (at the default chunk size,
/// 6 MB — far more than a root or a sign request): a hostile frame cannot
/// make the assembler count to 2^64.
pub const MAX_FRAMES: usize = 10_000;

/// Default payload bytes per frame (a version ≈ 25 code at level M).
pub const DEFAULT_CHUNK: usize = 600;

/// Cuts `data` into frames of at most `chunk` payload bytes.
pub fn frames(data: &[u8], chunk: usize) -> Vec<Vec<u8>> {
    let chunk = chunk.max(1);
    let digest = super::manifest::sha256_hex(data);
    let parts: Vec<&[u8]> = if data.is_empty() {
        vec![&[][..]]
    } else {
        data.chunks(chunk).collect()
    };
    let total = parts.len();
    parts
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let mut f = format!("{MAGIC} {}/{total} {digest} ", i + 1).into_bytes();
            f.extend_from_slice(c);
            f
        })
        .collect()
}

fn code(data: &[u8]) -> Result<QrCode> {
    QrCode::with_error_correction_level(data, EcLevel::M)
        .or_else(|_| QrCode::with_error_correction_level(data, EcLevel::L))
        .map_err(|e| ArcaError::Input(format!("{} bytes do not fit in a QR code: {e}", data.len())))
}

/// Renders `data` as one QR code in a PNG file.
pub fn save_png(data: &[u8], path: &Path) -> Result<()> {
    let img = code(data)?
        .render::<image::Luma<u8>>()
        .quiet_zone(true)
        .module_dimensions(4, 4)
        .build();
    let mut bytes = Vec::new();
    img.write_to(
        &mut std::io::Cursor::new(&mut bytes),
        image::ImageFormat::Png,
    )
    .map_err(|e| ArcaError::unusable(path, e))?;
    crate::repository::write_new(path, &bytes)
}

/// Renders `data` as a QR code for a terminal (half-block characters).
pub fn terminal(data: &[u8]) -> String {
    use qrcode::render::unicode::Dense1x2;
    match code(data) {
        Ok(c) => c
            .render::<Dense1x2>()
            .dark_color(Dense1x2::Light)
            .light_color(Dense1x2::Dark)
            .quiet_zone(true)
            .build(),
        Err(e) => format!("(no QR code: {e})"),
    }
}

/// Reads every QR code in a PNG (or other image) file: with the built-in
/// decoder, else with `zbarimg` when it is installed.
pub fn read_image(path: &Path) -> Result<Vec<Vec<u8>>> {
    let img = image::open(path)
        .map_err(|e| ArcaError::unusable(path, format!("not a readable image: {e}")))?
        .to_luma8();
    let mut prepared = rqrr::PreparedImage::prepare(img);
    let mut out = Vec::new();
    for g in prepared.detect_grids() {
        let mut buf = Vec::new();
        if g.decode_to(&mut buf).is_ok() {
            out.push(buf);
        }
    }
    if out.is_empty() {
        if let Some(b) = zbarimg(path) {
            out.push(b);
        }
    }
    if out.is_empty() {
        return Err(ArcaError::Input(format!(
            "{}: no QR code could be read",
            path.display()
        )));
    }
    Ok(out)
}

/// Decodes one QR code with `zbarimg --raw -Sbinary` (byte-exact), when
/// zbarimg is on the PATH. Only QR codes are looked for: zbarimg's linear
/// symbologies can find a spurious code in a QR code's modules (a Codabar
/// "A6:B") and would add its text to the output.
pub fn zbarimg(path: &Path) -> Option<Vec<u8>> {
    let o = std::process::Command::new("zbarimg")
        .args([
            "--nodbus",
            "--raw",
            "-q",
            "-Sdisable",
            "-Sqrcode.enable",
            "-Sbinary",
        ])
        .arg(path)
        .stdin(std::process::Stdio::null())
        .output()
        .ok()?;
    if o.status.success() && !o.stdout.is_empty() {
        Some(o.stdout)
    } else {
        None
    }
}

/// One parsed frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// Position, from 1.
    pub n: usize,
    /// Number of frames.
    pub total: usize,
    /// SHA-256 hex of the whole payload.
    pub digest: String,
    /// This frame's bytes of the payload.
    pub chunk: Vec<u8>,
}

/// Parses a frame; `None` when `bytes` is not an `ARCA1` frame (a plain code).
pub fn parse_frame(bytes: &[u8]) -> std::result::Result<Option<Frame>, String> {
    let Some(rest) = bytes.strip_prefix(format!("{MAGIC} ").as_bytes()) else {
        return Ok(None);
    };
    let mut it = rest.splitn(3, |b| *b == b' ');
    let (Some(pos), Some(digest), Some(chunk)) = (it.next(), it.next(), it.next()) else {
        return Err("frame header is not \"ARCA1 n/N digest \"".into());
    };
    let pos = std::str::from_utf8(pos).map_err(|_| "frame position is not text".to_string())?;
    let (n, total) = pos
        .split_once('/')
        .and_then(|(a, b)| Some((a.parse::<usize>().ok()?, b.parse::<usize>().ok()?)))
        .filter(|(n, t)| *n >= 1 && n <= t)
        .ok_or_else(|| format!("frame position {pos:?} is not n/N with 1 ≤ n ≤ N"))?;
    if total > MAX_FRAMES {
        return Err(format!(
            "frame position {pos:?}: more than {MAX_FRAMES} frames announced"
        ));
    }
    let digest = std::str::from_utf8(digest)
        .ok()
        .filter(|d| d.len() == 64 && d.bytes().all(|c| c.is_ascii_hexdigit()))
        .ok_or_else(|| "frame digest is not 64 hex digits".to_string())?
        .to_ascii_lowercase();
    Ok(Some(Frame {
        n,
        total,
        digest,
        chunk: chunk.to_vec(),
    }))
}

/// Collects frames in any order and reassembles the payload.
#[derive(Default, Debug)]
pub struct Assembler {
    frames: std::collections::BTreeMap<usize, Frame>,
    plain: Option<Vec<u8>>,
}

impl Assembler {
    /// Adds one decoded QR code (a frame, or a plain code when it is the only one).
    pub fn add(&mut self, bytes: &[u8]) -> std::result::Result<(), String> {
        let Some(f) = parse_frame(bytes)? else {
            if self.plain.is_some() || !self.frames.is_empty() {
                return Err("a plain QR code among others; read it alone".into());
            }
            self.plain = Some(bytes.to_vec());
            return Ok(());
        };
        if self.plain.is_some() {
            return Err("a frame after a plain QR code".into());
        }
        if let Some(other) = self.frames.values().next() {
            if other.digest != f.digest || other.total != f.total {
                return Err(format!(
                    "frame {}/{} belongs to another payload (sha256 {}…, not {}…)",
                    f.n,
                    f.total,
                    &f.digest[..16],
                    &other.digest[..16]
                ));
            }
        }
        if let Some(old) = self.frames.get(&f.n) {
            if old.chunk != f.chunk {
                return Err(format!(
                    "frame {}/{} read twice with different content",
                    f.n, f.total
                ));
            }
            return Ok(());
        }
        self.frames.insert(f.n, f);
        Ok(())
    }

    /// The payload, once every frame is there and the digest matches.
    pub fn finish(self) -> std::result::Result<Vec<u8>, String> {
        if let Some(p) = self.plain {
            return Ok(p);
        }
        let Some(first) = self.frames.values().next() else {
            return Err("no QR code read".into());
        };
        let (total, digest) = (first.total, first.digest.clone());
        let missing: Vec<String> = (1..=total)
            .filter(|n| !self.frames.contains_key(n))
            .map(|n| n.to_string())
            .collect();
        if !missing.is_empty() {
            return Err(format!(
                "missing frame(s) {} of {total}",
                missing.join(", ")
            ));
        }
        let data: Vec<u8> = self.frames.into_values().flat_map(|f| f.chunk).collect();
        let got = super::manifest::sha256_hex(&data);
        if got != digest {
            return Err(format!(
                "the reassembled payload hashes to sha256={got}, the frames announce sha256={digest}"
            ));
        }
        Ok(data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frame_announcing_too_many_frames_is_refused() {
        let d = "ab".repeat(32);
        let e = parse_frame(format!("ARCA1 1/18446744073709551615 {d} x").as_bytes()).unwrap_err();
        assert!(e.contains("more than 10000 frames"), "{e}");
        assert!(parse_frame(format!("ARCA1 1/{MAX_FRAMES} {d} x").as_bytes()).is_ok());
    }

    #[test]
    fn frames_reassemble_in_any_order() {
        let data: Vec<u8> = (0..2500u32).map(|i| (i * 7 % 256) as u8).collect();
        let mut fs = frames(&data, 600);
        assert_eq!(fs.len(), 5);
        fs.reverse();
        let mut a = Assembler::default();
        for f in &fs {
            a.add(f).unwrap();
        }
        assert_eq!(a.finish().unwrap(), data);
        let mut a = Assembler::default();
        a.add(&fs[0]).unwrap();
        assert!(a.finish().unwrap_err().contains("missing frame"));
    }

    #[test]
    fn png_round_trip_is_byte_exact() {
        let dir = tempfile::tempdir().unwrap();
        let data: Vec<u8> = (0..1400u32).map(|i| (i * 31 % 256) as u8).collect();
        let mut a = Assembler::default();
        for (i, f) in frames(&data, DEFAULT_CHUNK).iter().enumerate() {
            let p = dir.path().join(format!("f{i}.png"));
            save_png(f, &p).unwrap();
            let codes = read_image(&p).unwrap();
            assert_eq!(codes.len(), 1);
            assert_eq!(&codes[0], f);
            if let Some(z) = zbarimg(&p) {
                assert_eq!(&z, f, "zbarimg reads the same bytes");
            }
            a.add(&codes[0]).unwrap();
        }
        assert_eq!(a.finish().unwrap(), data);
    }
}
