//! Properties of the conex model over generated resources:
//! * print → parse is the identity (roots, targets, snapshots, timestamps);
//! * the canonical signed string does not depend on the file's layout (entry
//!   order, whitespace, comments, string quoting, hex case);
//! * changing any signed field invalidates every signature.

use arca::conex::key::{Digest, PublicKey, SigAlg};
use arca::conex::opam::{self, LogOp, Value};
use arca::conex::resource::{
    format_time, Delegation, Header, Key, Resource, Role, Root, Signature, Snapshot, Target,
    Targets, Timestamp,
};
use arca::conex::verify::valid_signatures;
use arca::conex::{Expr, KeyRef, Wire};
use ed25519_dalek::Signer as _;
use proptest::prelude::*;
use std::collections::BTreeMap;

// ------------------------------------------------------------ generators

fn ident() -> impl Strategy<Value = String> {
    "[a-z][a-z0-9_-]{0,9}".prop_filter("reserved", |s| {
        !matches!(s.as_str(), "true" | "false" | "emptymap") && !s.starts_with("0x")
    })
}

fn component() -> impl Strategy<Value = String> {
    "[a-z][a-z0-9_.-]{0,7}".prop_filter("dots", |s| s != "." && s != "..")
}

fn path() -> impl Strategy<Value = Vec<String>> {
    prop::collection::vec(component(), 1..4)
}

/// Free text for `created` and the like: printable ASCII including quotes
/// and backslashes, no leading or trailing blanks (conex trims them).
fn text() -> impl Strategy<Value = String> {
    "[!-~]([ -~]{0,20}[!-~])?"
}

fn digest() -> impl Strategy<Value = Digest> {
    any::<[u8; 8]>().prop_map(|b| Digest::sha256(&b))
}

fn seed() -> impl Strategy<Value = [u8; 32]> {
    any::<[u8; 32]>()
}

fn sk(seed: &[u8; 32]) -> ed25519_dalek::SigningKey {
    ed25519_dalek::SigningKey::from_bytes(seed)
}

fn pubkey(seed: &[u8; 32]) -> PublicKey {
    PublicKey::from_ed25519(&sk(seed).verifying_key().to_bytes())
}

fn header(name: &'static str) -> impl Strategy<Value = Header> {
    (0i64..4_102_444_800, any::<u64>(), any::<u64>()).prop_map(move |(t, counter, epoch)| Header {
        created: format_time(t),
        counter,
        epoch,
        name: name.into(),
    })
}

/// 1–4 keys with distinct ids, and their signing seeds.
fn keyset() -> impl Strategy<Value = Vec<(String, String, [u8; 32])>> {
    prop::collection::btree_map(ident(), (text(), seed()), 1..5)
        .prop_map(|m| m.into_iter().map(|(id, (c, s))| (id, c, s)).collect())
}

fn keys_map(ks: &[(String, String, [u8; 32])]) -> BTreeMap<String, Key> {
    ks.iter()
        .map(|(id, created, s)| {
            (
                id.clone(),
                Key {
                    id: id.clone(),
                    created: created.clone(),
                    key: pubkey(s),
                },
            )
        })
        .collect()
}

fn remote() -> impl Strategy<Value = KeyRef> {
    (ident(), digest(), any::<u64>()).prop_map(|(id, digest, epoch)| KeyRef::Remote {
        id,
        digest,
        epoch,
    })
}

fn expr_over(refs: Vec<KeyRef>) -> impl Strategy<Value = Expr> {
    let n = refs.len() as i64;
    let leaf = (1..=n.max(1)).prop_map(move |q| Expr::quorum(q, refs.clone()));
    leaf.prop_recursive(3, 8, 2, |inner| {
        prop_oneof![
            (inner.clone(), inner.clone()).prop_map(|(a, b)| Expr::And(Box::new(a), Box::new(b))),
            (inner.clone(), inner).prop_map(|(a, b)| Expr::Or(Box::new(a), Box::new(b))),
        ]
    })
}

fn signatures(ids: Vec<String>) -> impl Strategy<Value = BTreeMap<String, Signature>> {
    prop::collection::vec((text(), prop::collection::vec(any::<u8>(), 64)), ids.len()).prop_map(
        move |v| {
            ids.iter()
                .zip(v)
                .map(|(id, (created, raw))| {
                    (
                        id.clone(),
                        Signature::new(id, &created, SigAlg::Ed25519, &raw),
                    )
                })
                .collect()
        },
    )
}

fn root() -> impl Strategy<Value = (Root, Vec<(String, String, [u8; 32])>)> {
    (header("root"), path(), path(), keyset())
        .prop_flat_map(|(h, datadir, keydir, ks)| {
            let locals: Vec<KeyRef> = ks.iter().map(|k| KeyRef::Local(k.0.clone())).collect();
            let n = locals.len() as i64;
            let roles = prop::collection::btree_map(
                prop_oneof![
                    Just(Role::Timestamp),
                    Just(Role::Snapshot),
                    Just(Role::Maintainer)
                ],
                prop::collection::vec(remote(), 1..3).prop_flat_map(expr_over),
                0..4,
            );
            let ids: Vec<String> = ks.iter().map(|k| k.0.clone()).collect();
            (
                Just((h, datadir, keydir, ks)),
                (1..=n).prop_map(move |q| Expr::quorum(q, locals.clone())),
                roles,
                signatures(ids),
                any::<bool>(),
            )
        })
        .prop_map(
            |((header, datadir, keydir, ks), valid, roles, sigs, signed)| {
                let root = Root {
                    header,
                    datadir,
                    keydir,
                    keys: keys_map(&ks),
                    valid,
                    roles,
                    signatures: if signed { sigs } else { BTreeMap::new() },
                };
                (root, ks)
            },
        )
}

fn target() -> impl Strategy<Value = Target> {
    (path(), prop::collection::vec(digest(), 1..3), any::<u64>()).prop_map(
        |(filename, digest, size)| Target {
            filename,
            digest,
            size,
        },
    )
}

fn targets() -> impl Strategy<Value = (Targets, Vec<(String, String, [u8; 32])>)> {
    (header("janitor"), keyset())
        .prop_flat_map(|(h, ks)| {
            let locals: Vec<KeyRef> = ks.iter().map(|k| KeyRef::Local(k.0.clone())).collect();
            let delegation = (
                prop::collection::vec(path(), 1..3),
                prop::collection::vec(prop_oneof![remote(), ident().prop_map(KeyRef::Local)], 1..3)
                    .prop_flat_map(expr_over),
                any::<bool>(),
            )
                .prop_map(|(paths, valid, terminating)| Delegation {
                    paths,
                    valid,
                    terminating,
                });
            let ids: Vec<String> = ks.iter().map(|k| k.0.clone()).collect();
            (
                Just((h, ks)),
                expr_over(locals),
                prop::collection::vec(delegation, 0..3),
                prop::collection::vec(target(), 0..5),
                signatures(ids),
            )
        })
        .prop_map(|((header, ks), valid, delegations, targets, signatures)| {
            (
                Targets {
                    header,
                    keys: keys_map(&ks),
                    valid,
                    delegations,
                    targets,
                    signatures,
                },
                ks,
            )
        })
}

fn online<R>(
    name: &'static str,
    make: fn(Header, BTreeMap<String, Key>, Vec<Target>) -> R,
) -> impl Strategy<Value = (R, Vec<(String, String, [u8; 32])>)>
where
    R: std::fmt::Debug + Clone,
{
    (
        header(name),
        (text(), seed()),
        prop::collection::vec(target(), 0..4),
    )
        .prop_map(move |(h, (c, s), targets)| {
            let ks = vec![(name.to_string(), c, s)];
            (make(h, keys_map(&ks), targets), ks)
        })
}

fn snapshot() -> impl Strategy<Value = (Snapshot, Vec<(String, String, [u8; 32])>)> {
    online("snap", |header, keys, targets| Snapshot {
        header,
        keys,
        targets,
        signatures: BTreeMap::new(),
    })
}

fn timestamp() -> impl Strategy<Value = (Timestamp, Vec<(String, String, [u8; 32])>)> {
    online("ts", |header, keys, targets| Timestamp {
        header,
        keys,
        targets,
        signatures: BTreeMap::new(),
    })
}

// ------------------------------------------------------------ print → parse

fn round_trip<R: Resource + PartialEq + std::fmt::Debug>(r: &R) -> Result<(), TestCaseError> {
    let text = r.to_file_string();
    let mut w = Vec::new();
    let back = R::parse(&text, &mut w)
        .map_err(|e| TestCaseError::fail(format!("does not parse: {e}\n{text}")))?;
    prop_assert!(w.is_empty(), "warnings {:?}\n{}", w, text);
    prop_assert_eq!(&back, r);
    prop_assert_eq!(back.to_file_string(), text);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn root_print_parse_identity((r, _) in root()) {
        round_trip(&r)?;
    }

    #[test]
    fn targets_print_parse_identity((t, _) in targets()) {
        round_trip(&t)?;
    }

    #[test]
    fn snapshot_print_parse_identity((s, _) in snapshot()) {
        round_trip(&s)?;
    }

    #[test]
    fn timestamp_print_parse_identity((t, _) in timestamp()) {
        round_trip(&t)?;
    }
}

// ------------------------------------------------------------ layout independence

/// Prints an opam value with a random layout: map entries shuffled, random
/// whitespace and comments, strings in `"…"` or `"""…"""`, hex in either
/// case. Decoding the result must give the same wire value.
struct Layout<'a> {
    rng: &'a mut u64,
}

impl Layout<'_> {
    /// xorshift64*: enough randomness for layout choices, seeded by proptest.
    fn pick(&mut self, n: u32) -> u32 {
        let mut x = *self.rng | 1;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        *self.rng = x;
        ((x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 32) as u32) % n
    }

    fn space(&mut self, out: &mut String) {
        match self.pick(8) {
            0 => out.push('\n'),
            1 => out.push_str("\n\t  "),
            2 => out.push_str(" (* a comment [ ] \" *) "),
            3 => out.push_str(" # a line comment ]\n"),
            4 => out.push_str("   "),
            5 => out.push_str("\r\n"),
            _ => out.push(' '),
        }
    }

    fn string(&mut self, s: &str, out: &mut String) {
        let plain = !s.contains('"') && !s.contains('\\') && !s.contains('\r');
        if plain && self.pick(2) == 0 {
            out.push_str("\"\"\"");
            out.push_str(s);
            out.push_str("\"\"\"");
        } else {
            out.push('"');
            for c in s.chars() {
                match c {
                    '"' => out.push_str("\\\""),
                    '\\' => out.push_str("\\\\"),
                    '\n' => out.push_str("\\n"),
                    c => out.push(c),
                }
            }
            out.push('"');
        }
    }

    fn value(&mut self, v: &Value, out: &mut String) {
        match v {
            Value::Ident(s) if s.starts_with("0x") && self.pick(2) == 0 => {
                out.push_str("0x");
                out.push_str(&s[2..].to_ascii_lowercase());
            }
            Value::Ident(s) => out.push_str(s),
            Value::Int(i) => out.push_str(&i.to_string()),
            Value::Bool(b) => out.push_str(&b.to_string()),
            Value::Str(s) => self.string(s, out),
            Value::List(xs) => {
                let mut xs: Vec<&Value> = xs.iter().collect();
                // a list of [ident value] pairs is a map: its order is free
                let is_map = !xs.is_empty()
                    && xs.iter().all(|x| matches!(x, Value::List(kv) if kv.len() == 2 && matches!(kv[0], Value::Ident(_))));
                if is_map {
                    for i in (1..xs.len()).rev() {
                        let j = self.pick(i as u32 + 1) as usize;
                        xs.swap(i, j);
                    }
                }
                out.push('[');
                for x in xs {
                    self.space(out);
                    self.value(x, out);
                }
                self.space(out);
                out.push(']');
            }
            Value::Group(xs) => {
                out.push('(');
                for (i, x) in xs.iter().enumerate() {
                    if i > 0 {
                        self.space(out);
                    }
                    self.value(x, out);
                }
                out.push(')');
            }
            Value::Logop(op, a, b) => {
                self.value(a, out);
                self.space(out);
                out.push_str(match op {
                    LogOp::And => "&",
                    LogOp::Or => "|",
                });
                self.space(out);
                self.value(b, out);
            }
        }
    }

    fn file(&mut self, file: &BTreeMap<String, Wire>) -> String {
        let mut items: Vec<(&String, &Wire)> = file.iter().collect();
        if self.pick(2) == 0 {
            items.reverse();
        }
        let mut out = String::from("# reformatted\n");
        for (k, w) in items {
            out.push_str(k);
            out.push(':');
            self.space(&mut out);
            self.value(&opam::encode_value(w), &mut out);
            out.push('\n');
        }
        out
    }
}

fn relayout<R: Resource>(r: &R, rng: &mut u64) -> Result<(), TestCaseError> {
    let text = Layout { rng }.file(&r.file_wire());
    let mut w = Vec::new();
    let back = R::parse(&text, &mut w)
        .map_err(|e| TestCaseError::fail(format!("relayout does not parse: {e}\n{text}")))?;
    prop_assert!(w.is_empty(), "warnings {:?}", w);
    prop_assert_eq!(back.canonical_signed(), r.canonical_signed());
    prop_assert_eq!(back.to_file_string(), r.to_file_string());
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn root_canonical_ignores_layout((r, _) in root(), mut s in any::<u64>()) {
        relayout(&r, &mut s)?;
    }

    #[test]
    fn targets_canonical_ignores_layout((t, _) in targets(), mut s in any::<u64>()) {
        relayout(&t, &mut s)?;
    }

    #[test]
    fn online_canonical_ignores_layout((sn, _) in snapshot(), (ts, _) in timestamp(), mut s in any::<u64>()) {
        relayout(&sn, &mut s)?;
        relayout(&ts, &mut s)?;
    }
}

// ------------------------------------------------------------ signed fields

fn sign_all<R: Resource>(r: &mut R, ks: &[(String, String, [u8; 32])]) {
    r.signatures_mut().clear();
    for (id, _, s) in ks {
        let tbs = r.to_be_signed(id, "2026-11-22T00:00:00Z", SigAlg::Ed25519);
        let sig = sk(s).sign(tbs.as_bytes());
        r.signatures_mut().insert(
            id.clone(),
            Signature::new(id, "2026-11-22T00:00:00Z", SigAlg::Ed25519, &sig.to_bytes()),
        );
    }
}

/// Every path to a leaf of a wire value, with a mutation of that leaf.
fn mutations(w: &Wire) -> Vec<Wire> {
    fn go(w: &Wire, out: &mut Vec<Wire>, rebuild: &dyn Fn(Wire) -> Wire) {
        match w {
            Wire::Map(m) => {
                for (k, v) in m {
                    let m = m.clone();
                    let k = k.clone();
                    go(v, out, &|nv| {
                        let mut m2 = m.clone();
                        m2.insert(k.clone(), nv);
                        rebuild(Wire::Map(m2))
                    });
                }
                // an added entry changes the map too
                let mut m2 = m.clone();
                m2.insert("zz-extra".into(), Wire::Smallint(1));
                out.push(rebuild(Wire::Map(m2)));
            }
            Wire::List(xs) => {
                for (i, x) in xs.iter().enumerate() {
                    let xs = xs.clone();
                    go(x, out, &|nv| {
                        let mut xs2 = xs.clone();
                        xs2[i] = nv;
                        rebuild(Wire::List(xs2))
                    });
                }
                if !xs.is_empty() {
                    let mut xs2 = xs.clone();
                    xs2.pop();
                    out.push(rebuild(Wire::List(xs2)));
                }
            }
            Wire::Pair(a, b) | Wire::And(a, b) | Wire::Or(a, b) => {
                let mk = |a: Wire, b: Wire| match w {
                    Wire::Pair(..) => Wire::Pair(Box::new(a), Box::new(b)),
                    Wire::And(..) => Wire::And(Box::new(a), Box::new(b)),
                    _ => Wire::Or(Box::new(a), Box::new(b)),
                };
                let bb = (**b).clone();
                go(a, out, &|na| rebuild(mk(na, bb.clone())));
                let aa = (**a).clone();
                go(b, out, &|nb| rebuild(mk(aa.clone(), nb)));
            }
            Wire::Ident(s) => out.push(rebuild(Wire::Ident(format!("{s}x")))),
            Wire::Data(s) => out.push(rebuild(Wire::Data(format!("{s}x")))),
            Wire::Bigint(v) => out.push(rebuild(Wire::Bigint(v ^ 1))),
            Wire::Smallint(v) => out.push(rebuild(Wire::Smallint(v ^ 1))),
        }
    }
    let mut out = Vec::new();
    go(w, &mut out, &|x| x);
    out
}

/// The signatures of `r` checked against `signed` instead of its own
/// signed map (a mutated one), with the keys of the original.
fn valid_over<R: Resource>(r: &R, signed: &BTreeMap<String, Wire>) -> usize {
    r.signatures()
        .iter()
        .filter(|(id, sig)| {
            let key = &r.keys()[*id];
            let tbs = arca::conex::resource::to_be_signed(signed, id, &sig.created, sig.alg);
            key.key
                .verify_b64(sig.alg, tbs.as_bytes(), &sig.value)
                .is_ok()
        })
        .count()
}

fn every_change_invalidates<R: Resource>(
    mut r: R,
    ks: &[(String, String, [u8; 32])],
) -> Result<(), TestCaseError> {
    sign_all(&mut r, ks);
    let mut w = Vec::new();
    prop_assert_eq!(valid_signatures(&r, &mut w).len(), ks.len(), "{:?}", w);
    let signed = Wire::Map(r.signed_wire());
    let muts = mutations(&signed);
    prop_assert!(!muts.is_empty());
    for m in muts {
        let Wire::Map(m) = m else { unreachable!() };
        if m == r.signed_wire() {
            continue;
        }
        prop_assert_eq!(valid_over(&r, &m), 0, "a signature survived a change");
    }
    // and through the file: a changed header field read back from text
    let mut changed = r.clone();
    changed.header_mut().counter ^= 1;
    let text = changed.to_file_string();
    let back = R::parse(&text, &mut Vec::new()).unwrap();
    prop_assert!(valid_signatures(&back, &mut Vec::new()).is_empty());
    let mut changed = r.clone();
    changed.header_mut().created.push('x');
    prop_assert!(valid_signatures(&changed, &mut Vec::new()).is_empty());
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn root_changes_invalidate_signatures((r, ks) in root()) {
        every_change_invalidates(r, &ks)?;
    }

    #[test]
    fn targets_changes_invalidate_signatures((t, ks) in targets()) {
        every_change_invalidates(t, &ks)?;
    }

    #[test]
    fn online_changes_invalidate_signatures((s, ks) in snapshot(), (t, ks2) in timestamp()) {
        every_change_invalidates(s, &ks)?;
        every_change_invalidates(t, &ks2)?;
    }
}
