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

// ---------------------------------------------------------------- lexer

#[derive(Clone, Debug, PartialEq, Eq)]
enum Tok {
    Colon,
    LBrace,
    RBrace,
    LBracket,
    RBracket,
    LPar,
    RPar,
    Str(String),
    Bool(bool),
    Int(i64),
    Ident(String),
    Relop,
    And,
    Or,
    Pfxop,
    Envop,
    Eof,
}

fn syntax(pos: Pos, msg: impl Into<String>) -> ConexError {
    ConexError::msg(format!(
        "line {}, column {}: {}",
        pos.line,
        pos.col,
        msg.into()
    ))
}

struct Lexer<'a> {
    s: &'a [u8],
    i: usize,
    line: usize,
    bol: usize,
}

fn is_alpha(c: u8) -> bool {
    c.is_ascii_alphabetic()
}
fn is_ichar(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b'-'
}

impl<'a> Lexer<'a> {
    fn new(s: &'a [u8]) -> Self {
        Lexer {
            s,
            i: 0,
            line: 1,
            bol: 0,
        }
    }
    fn pos(&self) -> Pos {
        Pos {
            line: self.line,
            col: self.i - self.bol + 1,
        }
    }
    fn at(&self, k: usize) -> Option<u8> {
        self.s.get(k).copied()
    }
    fn newline(&mut self, next: usize) {
        self.line += 1;
        self.bol = next;
    }

    /// Length of an `id` (`ichar* alpha ichar*`) at `k`, 0 if none.
    fn id_len(&self, k: usize) -> usize {
        let mut j = k;
        let mut alpha = false;
        while let Some(c) = self.at(j) {
            if !is_ichar(c) {
                break;
            }
            alpha |= is_alpha(c);
            j += 1;
        }
        if alpha {
            j - k
        } else {
            0
        }
    }
    /// `(id | '_')` at `k`.
    fn id_or_underscore(&self, k: usize) -> usize {
        let n = self.id_len(k);
        if n > 0 {
            n
        } else if self.at(k) == Some(b'_') {
            1
        } else {
            0
        }
    }
    fn ident_len(&self, k: usize) -> usize {
        let mut n = self.id_or_underscore(k);
        if n == 0 {
            return 0;
        }
        while self.at(k + n) == Some(b'+') {
            let m = self.id_or_underscore(k + n + 1);
            if m == 0 {
                break;
            }
            n += 1 + m;
        }
        if self.at(k + n) == Some(b':') {
            let m = self.id_len(k + n + 1);
            if m > 0 {
                n += 1 + m;
            }
        }
        n
    }
    fn int_len(&self, k: usize) -> usize {
        let mut j = k;
        if self.at(j) == Some(b'-') {
            j += 1;
        }
        let start = j;
        while matches!(self.at(j), Some(c) if c.is_ascii_digit() || c == b'_') {
            j += 1;
        }
        if j == start {
            0
        } else {
            j - k
        }
    }
    fn relop_len(&self, k: usize) -> usize {
        match (self.at(k), self.at(k + 1)) {
            (Some(b'!'), Some(b'=')) => 2,
            (Some(b'<' | b'>'), Some(b'=')) => 2,
            (Some(b'=' | b'<' | b'>' | b'~'), _) => 1,
            _ => 0,
        }
    }
    fn envop_len(&self, k: usize) -> usize {
        match (self.at(k), self.at(k + 1), self.at(k + 2)) {
            (Some(b'='), Some(b'+' | b':'), Some(b'=')) => 3,
            (Some(b'='), Some(b'+' | b':'), _) => 2,
            (Some(b'+' | b':'), Some(b'='), _) => 2,
            _ => 0,
        }
    }

    fn next(&mut self) -> Result<(Tok, Pos), ConexError> {
        loop {
            match self.at(self.i) {
                Some(b' ' | b'\t') => self.i += 1,
                Some(b'\n') => {
                    self.i += 1;
                    self.newline(self.i);
                }
                Some(b'\r') if self.at(self.i + 1) == Some(b'\n') => {
                    self.i += 2;
                    self.newline(self.i);
                }
                Some(b'(') if self.at(self.i + 1) == Some(b'*') => {
                    let p = self.pos();
                    self.i += 2;
                    self.comment(p)?;
                }
                Some(b'#') => {
                    while let Some(c) = self.at(self.i) {
                        self.i += 1;
                        if c == b'\n' {
                            self.newline(self.i);
                            break;
                        }
                    }
                }
                _ => break,
            }
        }
        let p = self.pos();
        let k = self.i;
        let Some(c) = self.at(k) else {
            return Ok((Tok::Eof, p));
        };
        // Candidates by length; ties go to the earlier rule, as in ocamllex.
        let simple = match c {
            b'{' => Some(Tok::LBrace),
            b'}' => Some(Tok::RBrace),
            b'[' => Some(Tok::LBracket),
            b']' => Some(Tok::RBracket),
            b'(' => Some(Tok::LPar),
            b')' => Some(Tok::RPar),
            b'&' => Some(Tok::And),
            b'|' => Some(Tok::Or),
            _ => None,
        };
        if let Some(t) = simple {
            self.i += 1;
            return Ok((t, p));
        }
        if c == b'"' {
            let triple = self.at(k + 1) == Some(b'"') && self.at(k + 2) == Some(b'"');
            self.i += if triple { 3 } else { 1 };
            let s = self.string(triple, p)?;
            return Ok((Tok::Str(s), p));
        }
        let colon = usize::from(c == b':');
        let int = self.int_len(k);
        let ident = self.ident_len(k);
        let relop = self.relop_len(k);
        let pfx = usize::from(c == b'!' || c == b'?');
        let envop = self.envop_len(k);
        let word = |w: &str| self.s[k..].starts_with(w.as_bytes());
        let tf = if word("true") {
            4
        } else if word("false") {
            5
        } else {
            0
        };
        // rule order: colon, bool, int, ident, relop, pfxop, envop
        let cands = [colon, tf, int, ident, relop, pfx, envop];
        let best = *cands.iter().max().unwrap_or(&0);
        if best == 0 {
            let ch = std::str::from_utf8(&self.s[k..])
                .ok()
                .and_then(|s| s.chars().next())
                .map(|c| c.to_string())
                .unwrap_or_else(|| format!("\\x{c:02x}"));
            return Err(syntax(p, format!("'{ch}' is not a valid token")));
        }
        let rule = cands.iter().position(|&n| n == best).unwrap_or(0);
        let text = &self.s[k..k + best];
        self.i += best;
        let tok = match rule {
            0 => Tok::Colon,
            1 => Tok::Bool(best == 4),
            2 => {
                let t: String = text
                    .iter()
                    .filter(|&&b| b != b'_')
                    .map(|&b| b as char)
                    .collect();
                let v = t
                    .parse::<i64>()
                    .ok()
                    .filter(|v| (-(1i64 << 62)..(1i64 << 62)).contains(v))
                    .ok_or_else(|| syntax(p, "integer out of range"))?;
                Tok::Int(v)
            }
            3 => Tok::Ident(String::from_utf8_lossy(text).into_owned()),
            4 => Tok::Relop,
            5 => Tok::Pfxop,
            _ => Tok::Envop,
        };
        Ok((tok, p))
    }

    fn comment(&mut self, start: Pos) -> Result<(), ConexError> {
        let mut depth = 1;
        loop {
            match self.at(self.i) {
                None => return Err(syntax(start, "unterminated comment")),
                Some(b'*') if self.at(self.i + 1) == Some(b')') => {
                    self.i += 2;
                    depth -= 1;
                    if depth == 0 {
                        return Ok(());
                    }
                }
                Some(b'(') if self.at(self.i + 1) == Some(b'*') => {
                    self.i += 2;
                    depth += 1;
                }
                Some(b'\n') => {
                    self.i += 1;
                    self.newline(self.i);
                }
                Some(_) => self.i += 1,
            }
        }
    }

    fn string(&mut self, triple: bool, start: Pos) -> Result<String, ConexError> {
        let mut b: Vec<u8> = Vec::new();
        loop {
            let Some(c) = self.at(self.i) else {
                return Err(syntax(start, "unterminated string"));
            };
            if c == b'"' {
                if !triple {
                    self.i += 1;
                    break;
                }
                if self.at(self.i + 1) == Some(b'"') && self.at(self.i + 2) == Some(b'"') {
                    self.i += 3;
                    break;
                }
            }
            if c == b'\r' && self.at(self.i + 1) == Some(b'\n') {
                self.i += 2;
                self.newline(self.i);
                b.push(b'\n');
                continue;
            }
            if c == b'\n' {
                self.i += 1;
                self.newline(self.i);
                b.push(b'\n');
                continue;
            }
            if c == b'\\' {
                self.i += 1;
                let ep = self.pos();
                match self.at(self.i) {
                    Some(b'\n') | Some(b'\r') => {
                        if self.at(self.i) == Some(b'\r') {
                            if self.at(self.i + 1) != Some(b'\n') {
                                return Err(syntax(ep, "illegal escape sequence"));
                            }
                            self.i += 1;
                        }
                        self.i += 1;
                        self.newline(self.i);
                        while matches!(self.at(self.i), Some(b' ' | b'\t')) {
                            self.i += 1;
                        }
                    }
                    Some(e @ (b'\\' | b'"' | b'\'' | b' ')) => {
                        b.push(e);
                        self.i += 1;
                    }
                    Some(b'n') => {
                        b.push(b'\n');
                        self.i += 1;
                    }
                    Some(b'r') => {
                        b.push(b'\r');
                        self.i += 1;
                    }
                    Some(b't') => {
                        b.push(b'\t');
                        self.i += 1;
                    }
                    Some(b'b') => {
                        b.push(8);
                        self.i += 1;
                    }
                    Some(d) if d.is_ascii_digit() => {
                        let ds = self.s.get(self.i..self.i + 3).unwrap_or(&[]);
                        if ds.len() != 3 || !ds.iter().all(u8::is_ascii_digit) {
                            return Err(syntax(ep, "illegal escape sequence"));
                        }
                        let v = ds.iter().fold(0u32, |a, d| a * 10 + u32::from(d - b'0'));
                        if v > 255 {
                            return Err(syntax(ep, "illegal escape sequence"));
                        }
                        b.push(v as u8);
                        self.i += 3;
                    }
                    Some(b'x') => {
                        let hs = self.s.get(self.i + 1..self.i + 3).unwrap_or(&[]);
                        let v = std::str::from_utf8(hs)
                            .ok()
                            .filter(|h| h.len() == 2)
                            .and_then(|h| u8::from_str_radix(h, 16).ok())
                            .ok_or_else(|| syntax(ep, "illegal escape sequence"))?;
                        b.push(v);
                        self.i += 3;
                    }
                    _ => return Err(syntax(ep, "illegal escape sequence")),
                }
                continue;
            }
            b.push(c);
            self.i += 1;
        }
        String::from_utf8(b).map_err(|_| syntax(start, "string is not valid UTF-8"))
    }
}

// ---------------------------------------------------------------- parser

struct Parser<'a> {
    lx: Lexer<'a>,
    tok: Tok,
    pos: Pos,
    depth: usize,
}

/// Nesting limit: far above anything conex writes, low enough that a hostile
/// file cannot exhaust the stack.
const MAX_DEPTH: usize = 200;

impl<'a> Parser<'a> {
    fn bump(&mut self) -> Result<(), ConexError> {
        let (t, p) = self.lx.next()?;
        self.tok = t;
        self.pos = p;
        Ok(())
    }

    fn unsupported(&self) -> ConexError {
        let what = match &self.tok {
            Tok::Relop => "comparison operators",
            Tok::Envop => "environment update operators",
            Tok::Pfxop => "prefix operators",
            Tok::LBrace | Tok::RBrace => "braces (options or sections)",
            Tok::Colon => "':' here",
            Tok::Eof => return syntax(self.pos, "unexpected end of file"),
            Tok::RBracket => "']' here",
            Tok::RPar => "')' here",
            _ => "this token here",
        };
        syntax(
            self.pos,
            format!("unexpected {what}: conex files do not use it"),
        )
    }

    fn file(&mut self) -> Result<OpamFile, ConexError> {
        let mut items = Vec::new();
        loop {
            match &self.tok {
                Tok::Eof => break,
                Tok::Ident(name) => {
                    let name = name.clone();
                    let p = self.pos;
                    self.bump()?;
                    if self.tok != Tok::Colon {
                        if matches!(self.tok, Tok::LBrace | Tok::Str(_)) {
                            return Err(syntax(p, format!("unexpected section {name}")));
                        }
                        return Err(syntax(self.pos, format!("expected ':' after {name}")));
                    }
                    self.bump()?;
                    let v = self.value()?;
                    items.push((name, v, p));
                }
                _ => return Err(syntax(self.pos, "expected a variable name")),
            }
        }
        Ok(OpamFile { items })
    }

    /// One level deeper in the value being built; refused past MAX_DEPTH.
    fn deeper(&mut self) -> Result<(), ConexError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(syntax(self.pos, "values nested too deeply"));
        }
        Ok(())
    }

    fn value(&mut self) -> Result<Value, ConexError> {
        let outer = self.depth;
        self.deeper()?;
        let mut l = self.and_value()?;
        while self.tok == Tok::Or {
            self.bump()?;
            // every operator of a chain nests the tree one level deeper
            // (`a | b | c` is `(a | b) | c`): counted like brackets, so
            // that a long chain cannot build a tree too deep to walk
            self.deeper()?;
            let r = self.and_value()?;
            l = Value::Logop(LogOp::Or, Box::new(l), Box::new(r));
        }
        self.depth = outer;
        Ok(l)
    }

    fn and_value(&mut self) -> Result<Value, ConexError> {
        let outer = self.depth;
        let mut l = self.primary()?;
        while self.tok == Tok::And {
            self.bump()?;
            self.deeper()?;
            let r = self.primary()?;
            l = Value::Logop(LogOp::And, Box::new(l), Box::new(r));
        }
        self.depth = outer;
        Ok(l)
    }

    fn primary(&mut self) -> Result<Value, ConexError> {
        let v = match std::mem::replace(&mut self.tok, Tok::Eof) {
            Tok::Ident(s) => {
                self.bump()?;
                Value::Ident(s)
            }
            Tok::Int(i) => {
                self.bump()?;
                Value::Int(i)
            }
            Tok::Bool(b) => {
                self.bump()?;
                Value::Bool(b)
            }
            Tok::Str(s) => {
                self.bump()?;
                Value::Str(s)
            }
            Tok::LBracket => {
                self.bump()?;
                Value::List(self.values(Tok::RBracket)?)
            }
            Tok::LPar => {
                self.bump()?;
                Value::Group(self.values(Tok::RPar)?)
            }
            other => {
                self.tok = other;
                return Err(self.unsupported());
            }
        };
        if matches!(self.tok, Tok::Relop | Tok::Envop | Tok::LBrace | Tok::Pfxop) {
            return Err(self.unsupported());
        }
        Ok(v)
    }

    fn values(&mut self, close: Tok) -> Result<Vec<Value>, ConexError> {
        let mut vs = Vec::new();
        loop {
            if self.tok == close {
                self.bump()?;
                return Ok(vs);
            }
            if self.tok == Tok::Eof {
                return Err(syntax(
                    self.pos,
                    format!(
                        "unexpected end of file: missing '{}'",
                        if close == Tok::RBracket { ']' } else { ')' }
                    ),
                ));
            }
            vs.push(self.value()?);
        }
    }
}

/// The string token whose body starts at byte `at` of `s` (after its
/// opening `"`, or `"""` when `triple`), read as the lexer reads it
/// (escapes, line continuations, CR LF): the string and the byte after its
/// closing quote.
pub(super) fn lex_string(s: &[u8], at: usize, triple: bool) -> Result<(String, usize), ConexError> {
    let mut lx = Lexer::new(s);
    lx.i = at;
    let v = lx.string(triple, Pos::default())?;
    Ok((v, lx.i))
}

/// Parses opam-file-format text.
pub fn parse(text: &str) -> Result<OpamFile, ConexError> {
    let mut p = Parser {
        lx: Lexer::new(text.as_bytes()),
        tok: Tok::Eof,
        pos: Pos::default(),
        depth: 0,
    };
    p.bump()?;
    p.file()
}

// ---------------------------------------------------------------- decode / encode

/// OCaml's `String.trim`: space, tab, CR, LF and FF at both ends.
pub fn ocaml_trim(s: &str) -> &str {
    s.trim_matches(|c| matches!(c, ' ' | '\t' | '\r' | '\n' | '\x0c'))
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

/// Prints a top-level wire map exactly as conex writes files.
pub fn encode(file: &WireMap) -> String {
    let mut f = Fmt::new();
    // format_items: a vertical box, items separated by cuts
    f.open_box(0, BoxType::V);
    for (n, (k, v)) in file.iter().rev().enumerate() {
        if n > 0 {
            f.print_break(0, 0);
        }
        format_item(&mut f, k, &encode_value(v));
    }
    f.close_box();
    f.print_newline();
    f.out
}

fn format_item(f: &mut Fmt, name: &str, v: &Value) {
    match v {
        Value::List(l) if l.is_empty() => {}
        Value::List(l) if matches!(l.as_slice(), [Value::List(x)] if x.is_empty()) => {}
        Value::List(l) => {
            let ty = if l.iter().any(|x| matches!(x, Value::List(_))) {
                BoxType::V
            } else {
                BoxType::HV
            };
            f.open_box(0, ty);
            f.text(name);
            f.text(": [");
            f.print_break(0, 2);
            f.open_box(0, ty);
            format_values(f, l);
            f.close_box();
            f.print_break(0, 0);
            f.text("]");
            f.close_box();
        }
        Value::Str(s) if s.contains('\n') => {
            f.open_box(0, BoxType::HOV);
            f.text(name);
            f.text(": ");
            format_value(f, v);
            f.close_box();
        }
        _ => {
            f.open_box(2, BoxType::HOV);
            f.text(name);
            f.text(":");
            f.print_break(1, 0);
            format_value(f, v);
            f.close_box();
        }
    }
}

fn escape_string(s: &str, triple: bool) -> String {
    let b = s.as_bytes();
    let len = b.len();
    let mut out = String::with_capacity(len + 8);
    for (i, ch) in s.char_indices() {
        match ch {
            '"' if !triple
                || (i + 2 < len && b[i + 1] == b'"' && b[i + 2] == b'"')
                || i + 1 == len =>
            {
                out.push('\\')
            }
            '\\' => out.push('\\'),
            // the lexer reads a raw CR LF in a string as LF (as OCaml's
            // does); `\r` keeps the CR. Only CR before LF needs it, so any
            // other string prints exactly as conex prints it.
            '\r' if b.get(i + 1) == Some(&b'\n') => {
                out.push_str("\\r");
                continue;
            }
            _ => {}
        }
        out.push(ch);
    }
    out
}

fn format_value(f: &mut Fmt, v: &Value) {
    match v {
        Value::Logop(op, l, r) => {
            f.open_box(0, BoxType::HV);
            format_value(f, l);
            f.text(" ");
            f.text(match op {
                LogOp::And => "&",
                LogOp::Or => "|",
            });
            f.print_break(1, 0);
            format_value(f, r);
            f.close_box();
        }
        Value::Ident(s) => f.text(s),
        Value::Int(i) => f.text(&i.to_string()),
        Value::Bool(b) => f.text(if *b { "true" } else { "false" }),
        Value::Str(s) => {
            if s.contains('\n') {
                f.text("\"\"\"");
                f.text(if s.starts_with('\n') { "" } else { "\\\n" });
                f.text(&escape_string(s, true));
                f.text("\"\"\"");
            } else {
                f.text("\"");
                f.text(&escape_string(s, false));
                f.text("\"");
            }
        }
        Value::List(l) => {
            f.open_box(0, BoxType::HV);
            f.text("[");
            f.print_break(0, 2);
            f.open_box(0, BoxType::HV);
            format_values(f, l);
            f.close_box();
            f.print_break(0, 0);
            f.text("]");
            f.close_box();
        }
        Value::Group(g) => {
            f.open_box(0, BoxType::HV);
            f.text("(");
            format_values(f, g);
            f.text(")");
            f.close_box();
        }
    }
}

fn format_values(f: &mut Fmt, vs: &[Value]) {
    for (n, v) in vs.iter().enumerate() {
        if n > 0 {
            f.print_break(1, 0);
        }
        format_value(f, v);
    }
}

// ---------------------------------------------------------------- OCaml Format

/// Box kinds of OCaml's Format module.
#[allow(clippy::upper_case_acronyms)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum BoxType {
    #[allow(dead_code)]
    H,
    V,
    HV,
    HOV,
    Fits,
}

#[derive(Clone, Debug)]
enum FTok {
    Text(String),
    Break { width: i64, offset: i64 },
    Begin { indent: i64, ty: BoxType },
    End,
}

#[derive(Clone, Debug)]
struct Elem {
    size: i64,
    tok: FTok,
    length: i64,
}

const INFINITY: i64 = 1_000_000_010;

/// A port of the pretty-printing engine of OCaml's `Format` (token queue,
/// scan stack, format stack), for the subset of features opam's printer uses.
struct Fmt {
    out: String,
    q: Vec<Elem>,
    head: usize,
    scan: Vec<(i64, Option<usize>)>,
    fstack: Vec<(BoxType, i64)>,
    margin: i64,
    max_indent: i64,
    space_left: i64,
    current_indent: i64,
    left_total: i64,
    right_total: i64,
    curr_depth: i64,
}

impl Fmt {
    fn new() -> Fmt {
        let margin = 78;
        let mut f = Fmt {
            out: String::new(),
            q: Vec::new(),
            head: 0,
            scan: Vec::new(),
            fstack: Vec::new(),
            margin,
            max_indent: margin - 10,
            space_left: margin,
            current_indent: 0,
            left_total: 1,
            right_total: 1,
            curr_depth: 1,
        };
        // the system box
        f.q.push(Elem {
            size: -1,
            tok: FTok::Begin {
                indent: 0,
                ty: BoxType::HOV,
            },
            length: 0,
        });
        f.init_scan();
        f.scan.push((1, Some(0)));
        f
    }

    fn init_scan(&mut self) {
        self.scan.clear();
        self.scan.push((-1, None));
    }

    fn blanks(&mut self, n: i64) {
        for _ in 0..n.max(0) {
            self.out.push(' ');
        }
    }

    fn break_new_line(&mut self, offset: i64, width: i64) {
        self.out.push('\n');
        let indent = self.margin - width + offset;
        let real = indent.min(self.max_indent);
        self.current_indent = real;
        self.space_left = self.margin - real;
        self.blanks(real);
    }

    fn break_same_line(&mut self, width: i64) {
        self.space_left -= width;
        self.blanks(width);
    }

    fn force_break_line(&mut self) {
        match self.fstack.last().copied() {
            None => self.out.push('\n'),
            Some((ty, width)) => {
                if width > self.space_left && !matches!(ty, BoxType::Fits | BoxType::H) {
                    self.break_new_line(0, width);
                }
            }
        }
    }

    fn format_token(&mut self, size: i64, tok: FTok) {
        match tok {
            FTok::Text(s) => {
                self.space_left -= size;
                self.out.push_str(&s);
            }
            FTok::Begin { indent, ty } => {
                let insertion_point = self.margin - self.space_left;
                if insertion_point > self.max_indent {
                    self.force_break_line();
                }
                let width = self.space_left - indent;
                let box_type = match ty {
                    BoxType::V => BoxType::V,
                    _ if size > self.space_left => ty,
                    _ => BoxType::Fits,
                };
                self.fstack.push((box_type, width));
            }
            FTok::End => {
                self.fstack.pop();
            }
            FTok::Break { width, offset } => {
                if let Some((ty, box_width)) = self.fstack.last().copied() {
                    match ty {
                        BoxType::HOV => {
                            if size > self.space_left {
                                self.break_new_line(offset, box_width)
                            } else {
                                self.break_same_line(width)
                            }
                        }
                        BoxType::HV | BoxType::V => self.break_new_line(offset, box_width),
                        BoxType::Fits | BoxType::H => self.break_same_line(width),
                    }
                }
            }
        }
    }

    fn advance_left(&mut self) {
        while self.head < self.q.len() {
            let (size, length) = (self.q[self.head].size, self.q[self.head].length);
            let pending = self.right_total - self.left_total;
            if !(size >= 0 || pending >= self.space_left) {
                break;
            }
            let tok = std::mem::replace(&mut self.q[self.head].tok, FTok::End);
            self.head += 1;
            let size = if size >= 0 { size } else { INFINITY };
            self.format_token(size, tok);
            self.left_total += length;
        }
    }

    fn enqueue(&mut self, e: Elem) -> usize {
        self.right_total += e.length;
        self.q.push(e);
        self.q.len() - 1
    }

    fn set_size(&mut self, is_break: bool) {
        let Some(&(left_total, idx)) = self.scan.last() else {
            return;
        };
        if left_total < self.left_total {
            self.init_scan();
            return;
        }
        let Some(idx) = idx else { return };
        let matches = match self.q[idx].tok {
            FTok::Break { .. } => is_break,
            FTok::Begin { .. } => !is_break,
            _ => false,
        };
        if matches {
            self.q[idx].size += self.right_total;
            self.scan.pop();
        }
    }

    fn scan_push(&mut self, is_break: bool, e: Elem) {
        let idx = self.enqueue(e);
        if is_break {
            self.set_size(true);
        }
        self.scan.push((self.right_total, Some(idx)));
    }

    fn open_box(&mut self, indent: i64, ty: BoxType) {
        self.curr_depth += 1;
        let e = Elem {
            size: -self.right_total,
            tok: FTok::Begin { indent, ty },
            length: 0,
        };
        self.scan_push(false, e);
    }

    fn close_box(&mut self) {
        if self.curr_depth > 1 {
            self.enqueue(Elem {
                size: 0,
                tok: FTok::End,
                length: 0,
            });
            self.set_size(true);
            self.set_size(false);
            self.curr_depth -= 1;
        }
    }

    fn print_break(&mut self, width: i64, offset: i64) {
        let e = Elem {
            size: -self.right_total,
            tok: FTok::Break { width, offset },
            length: width,
        };
        self.scan_push(true, e);
    }

    fn text(&mut self, s: &str) {
        let len = s.len() as i64;
        self.enqueue(Elem {
            size: len,
            tok: FTok::Text(s.to_string()),
            length: len,
        });
        self.advance_left();
    }

    fn print_newline(&mut self) {
        while self.curr_depth > 1 {
            self.close_box();
        }
        self.right_total = INFINITY;
        self.advance_left();
        self.out.push('\n');
    }
}

#[cfg(test)]
mod tests {
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
