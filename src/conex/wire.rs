//! Canonical wire values and their string: the exact bytes conex signs.

use std::collections::BTreeMap;

/// A conex wire value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Wire {
    /// String-keyed map; canonical order is byte order of the keys.
    Map(BTreeMap<String, Wire>),
    /// Ordered list.
    List(Vec<Wire>),
    /// Bare identifier.
    Ident(String),
    /// Data string (`len'bytes`).
    Data(String),
    /// Unsigned 64-bit integer (`0x` + uppercase hex).
    Bigint(u64),
    /// Small integer (decimal).
    Smallint(i64),
    /// Pair, rendered `(ab)`.
    Pair(Box<Wire>, Box<Wire>),
    /// Conjunction, rendered `(a&&b)`.
    And(Box<Wire>, Box<Wire>),
    /// Disjunction, rendered `(a||b)`.
    Or(Box<Wire>, Box<Wire>),
}

/// Renders an unsigned integer as conex does: `0x` and uppercase hex.
pub fn uint_to_string(v: u64) -> String {
    format!("0x{v:X}")
}

/// Parses conex's `0x…` unsigned integers as OCaml's `Int64.of_string`
/// reads them: hex digits of either case, `_` allowed after the first
/// digit, at most 2^64 - 1.
pub fn uint_of_string(s: &str) -> Option<u64> {
    let digits = s.strip_prefix("0x")?;
    if !digits.as_bytes().first()?.is_ascii_hexdigit() {
        return None;
    }
    let mut v: u64 = 0;
    for b in digits.bytes() {
        if b == b'_' {
            continue;
        }
        let d = (b as char).to_digit(16)?;
        v = v.checked_mul(16)?.checked_add(u64::from(d))?;
    }
    Some(v)
}

/// OCaml's `int_of_string` (63-bit ints): optional sign, `0x`/`0o`/`0b`/`0u`
/// prefix, digits with `_` after the first; the prefixed forms read up to
/// 2^63 - 1 and wrap.
pub fn ocaml_int_of_string(s: &[u8]) -> Option<i64> {
    let (neg, s) = match s.first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let (base, signed, s) = match s {
        [b'0', b'x' | b'X', rest @ ..] => (16, false, rest),
        [b'0', b'o' | b'O', rest @ ..] => (8, false, rest),
        [b'0', b'b' | b'B', rest @ ..] => (2, false, rest),
        [b'0', b'u' | b'U', rest @ ..] => (10, false, rest),
        _ => (10, true, s),
    };
    let first = *s.first()?;
    (first as char).to_digit(base)?;
    let mut v: u64 = 0;
    for &c in s {
        if c == b'_' {
            continue;
        }
        let d = u64::from((c as char).to_digit(base)?);
        v = v.checked_mul(u64::from(base))?.checked_add(d)?;
        if v >= 1 << 63 {
            return None;
        }
    }
    if signed && (v > 1 << 62 || (!neg && v == 1 << 62)) {
        return None;
    }
    let r = if v >= 1 << 62 {
        // the 63-bit wrap: v - 2^63
        (v as i64) - (1 << 62) - (1 << 62)
    } else {
        v as i64
    };
    Some(if neg { r.wrapping_neg() } else { r })
}

impl Wire {
    /// The canonical string of this value.
    pub fn canonical(&self) -> String {
        let mut out = String::new();
        self.write_canonical(&mut out);
        out
    }

    /// Appends the canonical string of this value to `out`.
    pub fn write_canonical(&self, out: &mut String) {
        match self {
            Wire::Bigint(v) => out.push_str(&uint_to_string(*v)),
            Wire::Smallint(i) => out.push_str(&i.to_string()),
            Wire::Data(s) => {
                out.push_str(&s.len().to_string());
                out.push('\'');
                out.push_str(s);
            }
            Wire::Ident(i) => out.push_str(i),
            Wire::List(xs) => {
                out.push('[');
                for (n, x) in xs.iter().enumerate() {
                    if n > 0 {
                        out.push(';');
                    }
                    x.write_canonical(out);
                }
                out.push(']');
            }
            Wire::Map(m) => {
                out.push('{');
                for (n, (k, v)) in m.iter().enumerate() {
                    if n > 0 {
                        out.push(';');
                    }
                    out.push_str(k);
                    out.push(':');
                    v.write_canonical(out);
                }
                out.push('}');
            }
            Wire::Pair(a, b) => {
                out.push('(');
                a.write_canonical(out);
                b.write_canonical(out);
                out.push(')');
            }
            Wire::And(a, b) => {
                out.push('(');
                a.write_canonical(out);
                out.push_str("&&");
                b.write_canonical(out);
                out.push(')');
            }
            Wire::Or(a, b) => {
                out.push('(');
                a.write_canonical(out);
                out.push_str("||");
                b.write_canonical(out);
                out.push(')');
            }
        }
    }

    /// A short name of the value's kind, for error messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Wire::Map(_) => "map",
            Wire::List(_) => "list",
            Wire::Ident(_) => "identifier",
            Wire::Data(_) => "string",
            Wire::Bigint(_) => "0x integer",
            Wire::Smallint(_) => "integer",
            Wire::Pair(..) => "pair",
            Wire::And(..) => "conjunction",
            Wire::Or(..) => "disjunction",
        }
    }
}

/// A wire map under construction.
pub type WireMap = BTreeMap<String, Wire>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_empty_root_matches_upstream_expectation() {
        let mut signed = WireMap::new();
        signed.insert("counter".into(), Wire::Bigint(0));
        signed.insert("created".into(), Wire::Data("now".into()));
        signed.insert("datadir".into(), Wire::Data("here".into()));
        signed.insert("epoch".into(), Wire::Bigint(0));
        signed.insert("keydir".into(), Wire::Data("there".into()));
        signed.insert("keys".into(), Wire::List(vec![]));
        signed.insert("name".into(), Wire::Data("root".into()));
        signed.insert("roles".into(), Wire::Map(WireMap::new()));
        signed.insert("typ".into(), Wire::Ident("root".into()));
        signed.insert(
            "valid".into(),
            Wire::Pair(Box::new(Wire::Smallint(0)), Box::new(Wire::List(vec![]))),
        );
        signed.insert("version".into(), Wire::Smallint(1));
        let mut file = WireMap::new();
        file.insert("signatures".into(), Wire::List(vec![]));
        file.insert("signed".into(), Wire::Map(signed));
        assert_eq!(
            Wire::Map(file).canonical(),
            "{signatures:[];signed:{counter:0x0;created:3'now;datadir:4'here;epoch:0x0;keydir:5'there;keys:[];name:4'root;roles:{};typ:root;valid:(0[]);version:1}}"
        );
    }

    #[test]
    fn uints() {
        assert_eq!(uint_to_string(0x1ff), "0x1FF");
        assert_eq!(uint_of_string("0x1ff"), Some(0x1ff));
        assert_eq!(uint_of_string("0xFFFFFFFFFFFFFFFF"), Some(u64::MAX));
        assert_eq!(uint_of_string("0x10000000000000000"), None);
        assert_eq!(uint_of_string("0x"), None);
        assert_eq!(uint_of_string("0xg"), None);
        // OCaml's Int64.of_string reads underscores after the first digit
        assert_eq!(uint_of_string("0x0_1"), Some(1));
        assert_eq!(uint_of_string("0x1__F"), Some(0x1f));
        assert_eq!(uint_of_string("0x_1"), None);
        assert_eq!(uint_of_string("0x1_0000_0000_0000_0000"), None);
    }
}
