//! The root file.

use super::*;

/// The root file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Root {
    /// Header.
    pub header: Header,
    /// Data directory (`packages`).
    pub datadir: Path,
    /// Key directory (`keys`).
    pub keydir: Path,
    /// Root keys by id.
    pub keys: BTreeMap<String, Key>,
    /// Which root keys must sign.
    pub valid: Expr,
    /// Delegated roles.
    pub roles: BTreeMap<Role, Expr>,
    /// Signatures by id.
    pub signatures: BTreeMap<String, Signature>,
}

impl Root {
    /// A fresh root as `conex_root create` makes it.
    pub fn new(created: &str) -> Root {
        Root {
            header: Header {
                created: created.into(),
                counter: 0,
                epoch: 0,
                name: "root".into(),
            },
            datadir: vec!["packages".into()],
            keydir: vec!["keys".into()],
            keys: BTreeMap::new(),
            valid: Expr::Quorum(0, vec![]),
            roles: BTreeMap::new(),
            signatures: BTreeMap::new(),
        }
    }

    /// The single remote reference of the snapshot or timestamp role.
    pub fn single_role(&self, role: Role) -> Result<Option<(String, Digest, u64)>, String> {
        match self.roles.get(&role) {
            None => Ok(None),
            Some(Expr::Quorum(1, refs)) if refs.len() == 1 => match &refs[0] {
                crate::conex::KeyRef::Remote { id, digest, epoch } => {
                    Ok(Some((id.clone(), digest.clone(), *epoch)))
                }
                crate::conex::KeyRef::Local(_) => Err(format!(
                    "only a single remote key expression allowed for {role}"
                )),
            },
            Some(_) => Err(format!(
                "only a single key expression with quorum 1 allowed for {role}"
            )),
        }
    }
}

/// The accessors every resource implements the same way.
impl Resource for Root {
    const TYP: &'static str = "root";
    const VERSION: i64 = 1;
    common_resource!();
    fn signed_wire(&self) -> WireMap {
        let mut m = header_wire(&self.header, Self::TYP, Self::VERSION);
        m.insert("datadir".into(), Wire::Data(path_to_string(&self.datadir)));
        m.insert("keydir".into(), Wire::Data(path_to_string(&self.keydir)));
        m.insert("keys".into(), desc_list(&self.keys, Key::to_wire));
        m.insert("valid".into(), self.valid.to_wire());
        let roles = self
            .roles
            .iter()
            .map(|(r, e)| (r.as_str().to_string(), e.to_wire()))
            .collect();
        m.insert("roles".into(), Wire::Map(roles));
        m
    }
    fn from_file_wire(file: &WireMap, warnings: &mut Vec<String>) -> Result<Root, ConexError> {
        let (signed, sigs) = split_signed(file)?;
        let go = |warnings: &mut Vec<String>| -> Result<Root, ConexError> {
            check_keys(
                signed,
                true,
                &["datadir", "keydir", "keys", "roles", "valid"],
                "a root",
            )?;
            let header = header_of(signed, Self::TYP, Self::VERSION)?;
            let datadir = path_field(signed, "datadir")?;
            let keydir = path_field(signed, "keydir")?;
            let keys =
                keys_of_wire(list(signed, "keys")?, warnings).map_err(|e| e.within("keys"))?;
            let roles_w = match get(signed, "roles")? {
                Wire::Map(m) => m,
                w => {
                    return Err(ConexError::field(
                        "roles",
                        format!("expected a map, found {}", w.kind()),
                    ))
                }
            };
            let valid = expr_field(signed, "valid", warnings)?;
            check_keys(
                roles_w,
                false,
                &["timestamp", "snapshot", "maintainer"],
                "roles",
            )
            .map_err(|e| e.within("roles"))?;
            let mut roles = BTreeMap::new();
            for (k, v) in roles_w {
                let role = Role::parse(k)
                    .ok_or_else(|| ConexError::field(format!("roles.{k}"), "invalid role"))?;
                let e = Expr::of_wire(v, warnings).map_err(|e| e.within(k).within("roles"))?;
                roles.insert(role, e);
            }
            Ok(Root {
                header,
                datadir,
                keydir,
                keys,
                valid,
                roles,
                signatures: BTreeMap::new(),
            })
        };
        let mut root = go(warnings).map_err(|e| e.within("signed"))?;
        root.signatures = sigs_of_wire(sigs, warnings).map_err(|e| e.within("signatures"))?;
        Ok(root)
    }
}
