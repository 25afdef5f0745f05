//! The on-disk syntax of conex files: opam-file-format, parsed and printed
//! exactly as conex 1.0 (through opam-file-format 2.1) does.
//!
//! Parsing is the lexer and grammar of opam-file-format, restricted to the
//! constructs conex can decode (identifiers, strings, integers, lists, groups,
//! `&` and `|`); anything else is refused with its line and column.
//! Printing reproduces `OpamPrinter.FullPos.format_opamfile` on OCaml's
//! `Format.str_formatter` (margin 78, max indent 68) byte for byte: the box
//! and break algorithm of OCaml's Format module is implemented in [`Fmt`].

use super::wire::{uint_of_string, uint_to_string, Wire, WireMap};
use super::ConexError;

/// A position in a source file (1-based line and column).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Pos {
    /// Line, from 1.
    pub line: usize,
    /// Column, from 1.
    pub col: usize,
}

/// Logical operators of opam values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogOp {
    /// `&`
    And,
    /// `|`
    Or,
}

/// An opam value (the subset conex uses, plus booleans so that they can be
/// refused with a clear message).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    /// Bare identifier.
    Ident(String),
    /// Integer.
    Int(i64),
    /// `true` / `false`.
    Bool(bool),
    /// String (already unescaped).
    Str(String),
    /// `[ … ]`
    List(Vec<Value>),
    /// `( … )`
    Group(Vec<Value>),
    /// `a & b`, `a | b`
    Logop(LogOp, Box<Value>, Box<Value>),
}

/// A parsed file: its variables in file order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpamFile {
    /// `name: value` items with the position of the name.
    pub items: Vec<(String, Value, Pos)>,
}

mod format;
mod lexer;

pub use format::encode;
pub(in crate::conex) use lexer::lex_string;
pub use lexer::parse;

// ---------------------------------------------------------------- decode / encode

/// OCaml's `String.trim`: space, tab, CR, LF and FF at both ends.
pub fn ocaml_trim(s: &str) -> &str {
    let blank = |c: char| matches!(c, ' ' | '\t' | '\r' | '\n' | '\x0c');
    // most values have nothing to trim
    match (s.as_bytes().first(), s.as_bytes().last()) {
        (Some(&a), Some(&b)) if !blank(char::from(a)) && !blank(char::from(b)) => s,
        _ => s.trim_matches(blank),
    }
}

/// Turns an opam value into a wire value, as conex's decoder does.
/// Duplicate map keys keep the later value, as in conex; they are reported
/// in `warnings`.
pub fn decode_value(v: &Value, warnings: &mut Vec<String>) -> Result<Wire, ConexError> {
    Ok(match v {
        Value::Ident(s) => {
            if s.starts_with("0x") {
                Wire::Bigint(uint_of_string(s).ok_or_else(|| {
                    // an overlong value is cut: the error stays one short line
                    ConexError::msg(format!(
                        "cannot parse unsigned integer: {}",
                        super::shown(s)
                    ))
                })?)
            } else if s == "emptymap" {
                Wire::Map(WireMap::new())
            } else {
                Wire::Ident(s.clone())
            }
        }
        Value::Str(s) => Wire::Data(ocaml_trim(s).to_string()),
        Value::Int(i) => Wire::Smallint(*i),
        Value::Bool(b) => {
            return Err(ConexError::msg(format!(
                "boolean {b} is not a conex value (write \"{b}\")"
            )))
        }
        Value::List(xs) if xs.is_empty() => Wire::List(vec![]),
        Value::List(xs) => {
            let is_pair = |x: &Value| matches!(x, Value::List(kv) if kv.len() == 2 && matches!(kv[0], Value::Ident(_)));
            if xs.iter().all(is_pair) {
                let mut m = WireMap::new();
                for x in xs {
                    if let Value::List(kv) = x {
                        if let Value::Ident(k) = &kv[0] {
                            let k = ocaml_trim(k).to_string();
                            let val = decode_value(&kv[1], warnings).map_err(|e| e.within(&k))?;
                            if m.insert(k.clone(), val).is_some() {
                                warnings.push(format!("duplicate key {k}: the later one is used"));
                            }
                        }
                    }
                }
                Wire::Map(m)
            } else {
                let mut out = Vec::with_capacity(xs.len());
                for (n, x) in xs.iter().enumerate() {
                    out.push(decode_value(x, warnings).map_err(|e| e.within(&format!("[{n}]")))?);
                }
                Wire::List(out)
            }
        }
        Value::Group(g) => match g.as_slice() {
            [Value::Logop(op, a, b)] => {
                let (a, b) = (decode_value(a, warnings)?, decode_value(b, warnings)?);
                logop(*op, a, b)
            }
            [a, b] => Wire::Pair(
                Box::new(decode_value(a, warnings)?),
                Box::new(decode_value(b, warnings)?),
            ),
            _ => {
                return Err(ConexError::msg(format!(
                    "a group of {} values is not a conex value",
                    g.len()
                )))
            }
        },
        Value::Logop(op, a, b) => {
            let (a, b) = (decode_value(a, warnings)?, decode_value(b, warnings)?);
            logop(*op, a, b)
        }
    })
}

fn logop(op: LogOp, a: Wire, b: Wire) -> Wire {
    match op {
        LogOp::And => Wire::And(Box::new(a), Box::new(b)),
        LogOp::Or => Wire::Or(Box::new(a), Box::new(b)),
    }
}

/// Decodes a whole file into the top-level wire map.
pub fn decode(text: &str, warnings: &mut Vec<String>) -> Result<WireMap, ConexError> {
    let file = parse(text)?;
    let mut m = WireMap::new();
    for (k, v, p) in &file.items {
        let w = decode_value(v, warnings).map_err(|e| {
            let e = e.within(k);
            ConexError {
                reason: format!("{} (in variable {k} at line {})", e.reason, p.line),
                ..e
            }
        })?;
        if m.insert(k.clone(), w).is_some() {
            warnings.push(format!(
                "duplicate variable {k} at line {}: the later one is used",
                p.line
            ));
        }
    }
    Ok(m)
}

/// Turns a wire value into the opam value conex prints.
pub fn encode_value(w: &Wire) -> Value {
    match w {
        Wire::Map(m) if m.is_empty() => Value::Ident("emptymap".into()),
        Wire::Map(m) => Value::List(
            m.iter()
                .rev()
                .map(|(k, v)| Value::List(vec![Value::Ident(k.clone()), encode_value(v)]))
                .collect(),
        ),
        Wire::List(xs) => Value::List(xs.iter().map(encode_value).collect()),
        Wire::Ident(i) => Value::Ident(i.clone()),
        Wire::Data(s) => Value::Str(s.clone()),
        Wire::Bigint(v) => Value::Ident(uint_to_string(*v)),
        Wire::Smallint(i) => Value::Int(*i),
        Wire::Pair(a, b) => Value::Group(vec![encode_value(a), encode_value(b)]),
        Wire::And(a, b) => Value::Logop(
            LogOp::And,
            Box::new(encode_operand(a, LogOp::And, false)),
            Box::new(encode_operand(b, LogOp::And, true)),
        ),
        Wire::Or(a, b) => Value::Logop(
            LogOp::Or,
            Box::new(encode_operand(a, LogOp::Or, false)),
            Box::new(encode_operand(b, LogOp::Or, true)),
        ),
    }
}

/// Parentheses where the text would otherwise read back as another tree
/// (conex prints every operand bare): a `|` under `&` (which binds
/// tighter), and a right operand of the same operator (chains read from
/// the left). A left-leaning chain prints bare, as conex prints it, and so
/// reads back at the nesting depth it was read at.
fn encode_operand(w: &Wire, parent: LogOp, right: bool) -> Value {
    let v = encode_value(w);
    match (parent, w) {
        (LogOp::And, Wire::Or(..)) => Value::Group(vec![v]),
        (LogOp::And, Wire::And(..)) | (LogOp::Or, Wire::Or(..)) if right => Value::Group(vec![v]),
        _ => v,
    }
}

#[cfg(test)]
mod tests {
    use super::format::escape_string;
    use super::*;

    fn roundtrip(text: &str) -> String {
        let mut w = Vec::new();
        let mut m = decode(text, &mut w).unwrap();
        // conex always has a signatures variable; an empty one prints nothing
        m.entry("signatures".into()).or_insert(Wire::List(vec![]));
        encode(&m)
    }

    #[test]
    fn empty_root_prints_like_conex() {
        let text = "signed: [\n  [version 1]\n  [valid (0 [])]\n  [typ root]\n  [roles emptymap]\n  [name \"root\"]\n  [keys []]\n  [keydir \"keys\"]\n  [epoch 0x0]\n  [datadir \"packages\"]\n  [created \"2026-11-21T23:33:19Z\"]\n  [counter 0x0]\n]\n\n";
        assert_eq!(roundtrip(text), text);
    }

    #[test]
    fn lexer_edge_cases() {
        assert!(parse("a: \"unterminated").is_err());
        assert!(parse("a: (* open").is_err());
        assert!(parse("a: b = c").is_err());
        assert!(parse("a: \"\\q\"").is_err());
        let f = parse("a: \"x\\\n   y\" # c\nb: 0x1F").unwrap();
        assert_eq!(f.items[0].1, Value::Str("xy".into()));
        assert_eq!(f.items[1].1, Value::Ident("0x1F".into()));
        let f = parse("v: (a & b | c)").unwrap();
        assert!(
            matches!(&f.items[0].1, Value::Group(g) if matches!(&g[0], Value::Logop(LogOp::Or, _, _)))
        );
    }

    #[test]
    fn triple_string_escapes() {
        assert_eq!(escape_string("a\"\"\"b\"", true), "a\\\"\"\"b\\\"");
        assert_eq!(escape_string("a\\b\"", false), "a\\\\b\\\"");
    }
}
