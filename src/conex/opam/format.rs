//! Printing: `OpamPrinter.FullPos.format_opamfile` on OCaml's `Format`
//! engine (margin 78, max indent 68).

use super::*;

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

pub(super) fn escape_string(s: &str, triple: bool) -> String {
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
