//! The lexer and grammar of opam-file-format, restricted to what conex
//! decodes.

use super::*;

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
                .map(|c| crate::conex::shown(&c.to_string()))
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
pub(in crate::conex) fn lex_string(
    s: &[u8],
    at: usize,
    triple: bool,
) -> Result<(String, usize), ConexError> {
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
