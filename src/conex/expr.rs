//! Quorum expressions: key references, evaluation, and the maintainer
//! expression hash.

use super::key::{Digest, DigestParseError};
use super::wire::{uint_to_string, Wire};
use super::ConexError;
use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;

/// A reference to a key: local to the file, or a remote file by digest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyRef {
    /// A key of the same file, by id.
    Local(String),
    /// Another file (a targets, snapshot or timestamp file) by id, digest
    /// (key id or `valid` expression hash) and epoch.
    Remote {
        /// File / key id.
        id: String,
        /// Digest the referenced thing must have.
        digest: Digest,
        /// Epoch the referenced file must have.
        epoch: u64,
    },
}

/// Case-insensitive comparison, as conex compares ids.
pub fn cmp_insensitive(a: &str, b: &str) -> Ordering {
    a.bytes()
        .map(|c| c.to_ascii_lowercase())
        .cmp(b.bytes().map(|c| c.to_ascii_lowercase()))
}

/// Case-insensitive equality of ids.
pub fn id_equal(a: &str, b: &str) -> bool {
    a.eq_ignore_ascii_case(b)
}

impl KeyRef {
    /// conex's canonical order: locals (by lowercased id) before remotes
    /// (by epoch, lowercased id, digest).
    pub fn canonical_cmp(&self, other: &KeyRef) -> Ordering {
        match (self, other) {
            (KeyRef::Local(a), KeyRef::Local(b)) => cmp_insensitive(a, b),
            (KeyRef::Local(_), KeyRef::Remote { .. }) => Ordering::Less,
            (KeyRef::Remote { .. }, KeyRef::Local(_)) => Ordering::Greater,
            (
                KeyRef::Remote {
                    id: a,
                    digest: da,
                    epoch: ea,
                },
                KeyRef::Remote {
                    id: b,
                    digest: db,
                    epoch: eb,
                },
            ) => ea
                .cmp(eb)
                .then_with(|| cmp_insensitive(a, b))
                .then_with(|| da.data.cmp(&db.data)),
        }
    }

    /// The id this reference names.
    pub fn id(&self) -> &str {
        match self {
            KeyRef::Local(id) | KeyRef::Remote { id, .. } => id,
        }
    }

    fn to_wire(&self) -> Wire {
        match self {
            KeyRef::Local(id) => Wire::Ident(id.clone()),
            KeyRef::Remote { id, digest, epoch } => Wire::List(vec![
                Wire::Ident(id.clone()),
                Wire::Data(digest.to_string()),
                Wire::Bigint(*epoch),
            ]),
        }
    }

    /// Parses one key reference. `Ok(None)` is a remote reference with an
    /// unknown digest algorithm, which conex ignores with a warning.
    fn of_wire(w: &Wire, warnings: &mut Vec<String>) -> Result<Option<KeyRef>, ConexError> {
        match w {
            Wire::Ident(id) => Ok(Some(KeyRef::Local(id.clone()))),
            Wire::List(xs) => match xs.as_slice() {
                [Wire::Ident(id), d, Wire::Bigint(epoch)] => {
                    let Wire::Data(d) = d else {
                        return Err(ConexError::msg(format!(
                            "key reference {id}: digest must be a string, found {}",
                            d.kind()
                        )));
                    };
                    match Digest::parse(d) {
                        Ok(digest) => Ok(Some(KeyRef::Remote {
                            id: id.clone(),
                            digest,
                            epoch: *epoch,
                        })),
                        Err(DigestParseError::UnknownAlg(a)) => {
                            warnings.push(format!(
                                "unknown digest algorithm {} in key reference {id}, ignoring it",
                                super::shown(&a)
                            ));
                            Ok(None)
                        }
                        Err(DigestParseError::Malformed) => Err(ConexError::msg(format!(
                            "key reference {id}: digest {d:?} is not alg=value"
                        ))),
                    }
                }
                _ => Err(ConexError::msg(
                    "malformed key reference: expected an identifier or [id \"sha256=…\" 0xEPOCH]",
                )),
            },
            other => Err(ConexError::msg(format!(
                "malformed key reference: found {}",
                other.kind()
            ))),
        }
    }
}

impl fmt::Display for KeyRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyRef::Local(id) => f.write_str(id),
            KeyRef::Remote { id, digest, epoch } => write!(f, "{id} ({digest}, epoch {epoch})"),
        }
    }
}

/// A quorum expression.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Expr {
    /// At least `n` of the (canonically ordered, distinct) key references.
    Quorum(i64, Vec<KeyRef>),
    /// Both.
    And(Box<Expr>, Box<Expr>),
    /// Either.
    Or(Box<Expr>, Box<Expr>),
}

fn insert_ref(set: &mut Vec<KeyRef>, r: KeyRef) -> bool {
    match set.binary_search_by(|x| x.canonical_cmp(&r)) {
        Ok(_) => false,
        Err(pos) => {
            set.insert(pos, r);
            true
        }
    }
}

impl Expr {
    /// A quorum over the given references, in canonical order without
    /// duplicates.
    pub fn quorum(n: i64, refs: impl IntoIterator<Item = KeyRef>) -> Expr {
        let mut set = Vec::new();
        for r in refs {
            insert_ref(&mut set, r);
        }
        Expr::Quorum(n, set)
    }

    /// Parses an expression from its wire value (conex's rules, including
    /// the bare single-reference form).
    pub fn of_wire(w: &Wire, warnings: &mut Vec<String>) -> Result<Expr, ConexError> {
        let single = |w: &Wire, warnings: &mut Vec<String>| -> Result<Vec<KeyRef>, ConexError> {
            Ok(KeyRef::of_wire(w, warnings)?.into_iter().collect())
        };
        let multi = |ws: &[Wire], warnings: &mut Vec<String>| -> Result<Vec<KeyRef>, ConexError> {
            let mut set = Vec::new();
            for w in ws {
                if let Some(r) = KeyRef::of_wire(w, warnings)? {
                    if !insert_ref(&mut set, r.clone()) {
                        warnings.push(format!("key reference {r} listed twice, counted once"));
                    }
                }
            }
            Ok(set)
        };
        match w {
            Wire::Pair(n, s) => {
                let Wire::Smallint(n) = **n else {
                    return Err(ConexError::msg(format!(
                        "quorum must be an integer, found {}",
                        n.kind()
                    )));
                };
                let refs = match &**s {
                    Wire::List(xs) => match xs.as_slice() {
                        [] => vec![],
                        [Wire::List(_), ..] => multi(xs, warnings)?,
                        [e @ Wire::Ident(_)] => single(e, warnings)?,
                        [Wire::Ident(_), Wire::Data(_), ..] => single(s, warnings)?,
                        [Wire::Ident(_), ..] => multi(xs, warnings)?,
                        _ => return Err(ConexError::msg("malformed quorum key list")),
                    },
                    Wire::Ident(_) => single(s, warnings)?,
                    other => {
                        return Err(ConexError::msg(format!(
                            "malformed quorum: expected a key list, found {}",
                            other.kind()
                        )))
                    }
                };
                if n > refs.len() as i64 {
                    return Err(ConexError::msg(format!(
                        "insufficient keys for quorum: quorum {n} over {} distinct key(s)",
                        refs.len()
                    )));
                }
                Ok(Expr::Quorum(n, refs))
            }
            Wire::And(a, b) => Ok(Expr::And(
                Box::new(Expr::of_wire(a, warnings)?),
                Box::new(Expr::of_wire(b, warnings)?),
            )),
            Wire::Or(a, b) => Ok(Expr::Or(
                Box::new(Expr::of_wire(a, warnings)?),
                Box::new(Expr::of_wire(b, warnings)?),
            )),
            Wire::Ident(_) => Ok(Expr::Quorum(1, single(w, warnings)?)),
            Wire::List(xs) if matches!(xs.first(), Some(Wire::Ident(_))) => {
                Ok(Expr::Quorum(1, single(w, warnings)?))
            }
            other => Err(ConexError::msg(format!(
                "malformed expression: found {}",
                other.kind()
            ))),
        }
    }

    /// The wire value of this expression.
    pub fn to_wire(&self) -> Wire {
        match self {
            Expr::Quorum(1, refs) if refs.len() == 1 => refs[0].to_wire(),
            Expr::Quorum(n, refs) => Wire::Pair(
                Box::new(Wire::Smallint(*n)),
                Box::new(Wire::List(refs.iter().map(KeyRef::to_wire).collect())),
            ),
            Expr::And(a, b) => Wire::And(Box::new(a.to_wire()), Box::new(b.to_wire())),
            Expr::Or(a, b) => Wire::Or(Box::new(a.to_wire()), Box::new(b.to_wire())),
        }
    }

    /// The string whose SHA-256 is the expression hash (conex's
    /// `Expression.hash`): locals replaced by `alg=keydata` from `keys`.
    pub fn hash_input(&self, keys: &BTreeMap<String, String>) -> Result<String, ConexError> {
        let map = |r: &KeyRef| -> Result<String, ConexError> {
            match r {
                KeyRef::Remote { id, digest, epoch } => {
                    Ok(format!("{id}:{digest}:{}", uint_to_string(*epoch)))
                }
                KeyRef::Local(id) => keys.get(id).cloned().ok_or_else(|| {
                    ConexError::msg(format!("{id} was not found among the file's keys"))
                }),
            }
        };
        Ok(match self {
            Expr::And(a, b) => format!("({}&{})", a.hash_input(keys)?, b.hash_input(keys)?),
            Expr::Or(a, b) => format!("({}|{})", a.hash_input(keys)?, b.hash_input(keys)?),
            Expr::Quorum(1, refs) if refs.len() == 1 => map(&refs[0])?,
            Expr::Quorum(n, refs) => {
                let items = refs.iter().rev().map(map).collect::<Result<Vec<_>, _>>()?;
                format!("({n}[{}])", items.join(","))
            }
        })
    }

    /// The expression hash: `sha256=` of [`Expr::hash_input`].
    pub fn hash(&self, keys: &BTreeMap<String, String>) -> Result<Digest, ConexError> {
        Ok(Digest::sha256(self.hash_input(keys)?.as_bytes()))
    }

    /// Evaluates the expression: a local reference counts when its id is in
    /// `sigs`; a remote one when `remotes` maps its digest to the same id
    /// (case-insensitively) and epoch.
    pub fn eval(&self, remotes: &HashMap<Digest, (String, u64)>, sigs: &BTreeSet<String>) -> bool {
        match self {
            Expr::Quorum(n, refs) => {
                let good = refs
                    .iter()
                    .filter(|r| match r {
                        KeyRef::Local(id) => sigs.contains(id),
                        KeyRef::Remote { id, digest, epoch } => remotes
                            .get(digest)
                            .is_some_and(|(id2, e2)| id_equal(id, id2) && epoch == e2),
                    })
                    .count() as i64;
                good >= *n
            }
            Expr::And(a, b) => a.eval(remotes, sigs) && b.eval(remotes, sigs),
            Expr::Or(a, b) => a.eval(remotes, sigs) || b.eval(remotes, sigs),
        }
    }

    /// Every key reference in the expression.
    pub fn refs(&self) -> Vec<&KeyRef> {
        match self {
            Expr::Quorum(_, r) => r.iter().collect(),
            Expr::And(a, b) | Expr::Or(a, b) => {
                let mut v = a.refs();
                v.extend(b.refs());
                v
            }
        }
    }

    /// Ids of local references.
    pub fn local_ids(&self) -> BTreeSet<String> {
        self.refs()
            .into_iter()
            .filter_map(|r| match r {
                KeyRef::Local(id) => Some(id.clone()),
                _ => None,
            })
            .collect()
    }

    /// Remote references by id; where an id appears twice the higher epoch
    /// wins (as in conex).
    pub fn remotes(&self) -> BTreeMap<String, (Digest, u64)> {
        let mut m: BTreeMap<String, (Digest, u64)> = BTreeMap::new();
        for r in self.refs() {
            if let KeyRef::Remote { id, digest, epoch } = r {
                match m.get(id) {
                    Some((_, e)) if e >= epoch => {}
                    _ => {
                        m.insert(id.clone(), (digest.clone(), *epoch));
                    }
                }
            }
        }
        m
    }

    /// The smallest number of distinct references that can satisfy it, and
    /// whether it is satisfiable at all (quorum ≤ refs everywhere).
    pub fn min_signers(&self) -> i64 {
        match self {
            Expr::Quorum(n, _) => (*n).max(0),
            Expr::And(a, b) => a.min_signers() + b.min_signers(),
            Expr::Or(a, b) => a.min_signers().min(b.min_signers()),
        }
    }
}

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expr::Quorum(1, r) if r.len() == 1 => write!(f, "{}", r[0].id()),
            Expr::Quorum(n, r) => {
                let ids: Vec<&str> = r.iter().map(KeyRef::id).collect();
                write!(f, "{n} of [{}]", ids.join(", "))
            }
            Expr::And(a, b) => write!(f, "({a} and {b})"),
            Expr::Or(a, b) => write!(f, "({a} or {b})"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_order_and_wire() {
        let e = Expr::quorum(
            2,
            [
                KeyRef::Local("rootB".into()),
                KeyRef::Local("rootA".into()),
                KeyRef::Local("rootA".into()),
            ],
        );
        assert_eq!(e.to_wire().canonical(), "(2[rootA;rootB])");
        let mut w = Vec::new();
        assert_eq!(Expr::of_wire(&e.to_wire(), &mut w).unwrap(), e);
    }

    #[test]
    fn quorum_above_keys_is_refused() {
        let w = Wire::Pair(
            Box::new(Wire::Smallint(3)),
            Box::new(Wire::List(vec![
                Wire::Ident("a".into()),
                Wire::Ident("b".into()),
            ])),
        );
        assert!(Expr::of_wire(&w, &mut vec![]).is_err());
    }

    #[test]
    fn hash_of_single_local_is_key_id() {
        let e = Expr::quorum(1, [KeyRef::Local("m1".into())]);
        let mut keys = BTreeMap::new();
        keys.insert(
            "m1".to_string(),
            "ed25519=XE99Nq6FqHtIKtYiTLPb/yoZkft9WH4pyXETYbGV0ks=".to_string(),
        );
        assert_eq!(
            e.hash(&keys).unwrap().to_string(),
            "sha256=0686abff33894b828b3b765b1b110918968a443ef46e58a51f60b9a437bfd7af"
        );
    }
}
