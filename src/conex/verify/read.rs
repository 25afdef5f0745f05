//! Reading a conex file: its bytes, the parse, its name.

use super::*;

/// Parses a resource from its bytes and checks its name.
pub fn parse_resource<R: Resource>(
    bytes: Vec<u8>,
    name: &str,
    warnings: &mut Vec<String>,
) -> Result<R, VerifyError> {
    let not_utf8 = || {
        format!(
            "parse error while parsing {name} (type {}): not UTF-8",
            R::TYP
        )
    };
    let (text, marked) = match String::from_utf8(bytes) {
        Ok(t) => (t, false),
        Err(e) => (mark_invalid_utf8(e.as_bytes()), true),
    };
    let mut r = R::parse(&text, warnings).map_err(|e| {
        VerifyError::from(format!(
            "parse error while parsing {name} (type {}): {e}",
            R::TYP
        ))
    })?;
    if marked {
        // conex reads bytes: a byte that is not UTF-8 inside a signature
        // only spoils that signature (conex ignores it); anywhere in the
        // signed part it would change what the signatures cover, and arca
        // refuses the file
        if r.canonical_signed().chars().any(is_marker) {
            return Err(not_utf8().into());
        }
        let spoiled: Vec<String> = r
            .signatures()
            .iter()
            .filter(|(id, s)| {
                id.chars().any(is_marker)
                    || s.created.chars().any(is_marker)
                    || s.value.chars().any(is_marker)
            })
            .map(|(id, _)| id.clone())
            .collect();
        for id in spoiled {
            r.signatures_mut().remove(&id);
            warnings.push(format!(
                "{} {name}: ignoring the signature of {} (not UTF-8)",
                R::TYP,
                crate::conex::shown(&id)
            ));
        }
    }
    check_name(&r, name)?;
    Ok(r)
}

/// The stand-in for a byte that is not UTF-8 (`0x80..=0xff` to
/// `U+10FF80..=U+10FFFF`, private use), so that a file can be parsed and
/// the bytes found again.
fn mark_invalid_utf8(b: &[u8]) -> String {
    let mut out = String::with_capacity(b.len() + 16);
    for chunk in b.utf8_chunks() {
        out.push_str(chunk.valid());
        for &x in chunk.invalid() {
            out.push(char::from_u32(0x10FF00 + u32::from(x)).unwrap_or('\u{FFFD}'));
        }
    }
    out
}

fn is_marker(c: char) -> bool {
    ('\u{10FF80}'..='\u{10FFFF}').contains(&c)
}

/// Reads a resource at `path`, parses it and checks its name (conex's
/// `read_root`/`read_targets`/… messages).
pub fn read_resource<R: Resource>(
    src: &dyn Source,
    path: &[String],
    name: &str,
    warnings: &mut Vec<String>,
) -> Result<R, VerifyError> {
    let limit = crate::conex::resource::MAX_FILE_BYTES;
    let mut bytes = Vec::new();
    src.open(path)
        .and_then(|r| r.take(limit + 1).read_to_end(&mut bytes))
        .map_err(|_| {
            VerifyError::from(format!(
                "{name} (type {}) was not found in repository",
                R::TYP
            ))
        })?;
    if bytes.len() as u64 > limit {
        return Err(VerifyError::from(format!(
            "{name} (type {}) is larger than {} MiB, the limit for a conex file",
            R::TYP,
            limit / (1024 * 1024)
        )));
    }
    parse_resource(bytes, name, warnings)
}

/// conex's check that a resource read from the file `name` is named so
/// (ignoring case).
pub(super) fn check_name<R: Resource>(r: &R, name: &str) -> Result<(), VerifyError> {
    if !id_equal(&r.header().name, name) {
        return Err(VerifyError::from(format!(
            "{name} (type {}) is named {}",
            R::TYP,
            crate::conex::shown(&r.header().name)
        )));
    }
    Ok(())
}
