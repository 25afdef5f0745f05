//! The root, timestamp and snapshot (conex's `verify_root`,
//! `verify_timestamp`, `verify_snapshot`).

use super::*;

fn target_of_file(src: &dyn Source, path: Path) -> Result<Target, VerifyError> {
    let (digest, size) = hash_file(src, &path)
        .map_err(|e| VerifyError::from(format!("cannot read {}: {e}", path_to_string(&path))))?;
    Ok(Target {
        filename: path,
        digest: vec![digest],
        size,
    })
}

impl<'a> Verifier<'a> {
    /// Reads the root and checks its signatures against the anchors, its
    /// `valid` expression and the requested quorum.
    pub fn verify_root(&mut self) -> Result<(Root, Vec<String>), VerifyError> {
        let name = self.opts.root_name.clone();
        let root: Root = read_resource(
            self.src,
            std::slice::from_ref(&name),
            &name,
            &mut self.warnings,
        )?;
        let sigs = valid_signatures_cached(&root, &mut self.warnings, &self.sigs);
        let mut ids = BTreeSet::new();
        for (kid, id) in sigs {
            if self.opts.anchors.contains(&kid) {
                ids.insert(id);
            } else {
                self.warnings.push(format!(
                    "{id} ({kid}) is not a valid root key (not a trust anchor)"
                ));
            }
        }
        let quorum_ok = self.opts.quorum.is_none_or(|q| q <= ids.len());
        if !root.valid.eval(&HashMap::new(), &ids) {
            if self.opts.anchors.is_empty() {
                return Err("couldn't validate root role: no trust anchors were given (none in the exact form sha256=<64 lower-case hex digits>)".into());
            }
            return Err(VerifyError::from(format!(
                "couldn't validate root role: {} valid signature(s) by trust anchors, the root needs {}",
                ids.len(),
                root.valid
            )));
        }
        if !quorum_ok {
            return Err(VerifyError::from(format!(
                "provided quorum was not matched: {} valid signature(s) by trust anchors, {} needed",
                ids.len(),
                self.opts.quorum.unwrap_or(0)
            )));
        }
        if root.valid.min_signers() < 1 {
            self.warnings
                .push("root valid expression is satisfied without any signature (quorum 0)".into());
        }
        Ok((root, ids.into_iter().collect()))
    }

    fn check_role_file<R: Resource>(
        &mut self,
        role: (String, Digest, u64),
        what: &str,
    ) -> Result<R, VerifyError> {
        let (id, dgst, epoch) = role;
        let r: R = read_resource(self.src, std::slice::from_ref(&id), &id, &mut self.warnings)?;
        let sigs = valid_signatures_cached(&r, &mut self.warnings, &self.sigs);
        match sigs.get(&dgst) {
            None => Err(VerifyError::from(format!(
                "couldn't validate {what} signature"
            ))),
            Some(id2) if !id_equal(&id, id2) => {
                self.warnings.push(format!(
                    "delegated public key was not used for signature on {what}"
                ));
                Err(VerifyError::from(format!("no valid signature on {what}")))
            }
            Some(_) if r.header().epoch != epoch => {
                self.warnings.push(format!(
                    "{what} epoch mismatch: root {epoch}, {what} {}",
                    r.header().epoch
                ));
                Err(VerifyError::from(format!("{what} with bad epoch")))
            }
            Some(_) => Ok(r),
        }
    }

    /// Verifies the timestamp file named by the root's timestamp role.
    pub fn verify_timestamp(&mut self, root: &Root) -> Result<Option<Timestamp>, VerifyError> {
        let Some(role) = root.single_role(crate::conex::Role::Timestamp)? else {
            self.warnings.push("no timestamp role found in root".into());
            return Ok(None);
        };
        let ts: Timestamp = self.check_role_file(role, "timestamp")?;
        let created = conex_timestamp(&ts.header.created).ok_or_else(|| {
            format!(
                "cannot parse the timestamp's created time {:?}",
                ts.header.created
            )
        })?;
        if created > self.opts.now {
            self.warnings.push(format!(
                "timestamp is in the future ({})",
                ts.header.created
            ));
        }
        if created > self.opts.now + self.opts.expiry {
            self.warnings
                .push(format!("timestamp is invalid ({})", ts.header.created));
            return Err("timestamp is no longer valid".into());
        }
        Ok(Some(ts))
    }

    /// Verifies the snapshot file named by the root's snapshot role, and
    /// that the timestamp vouches for its exact bytes.
    pub fn verify_snapshot(
        &mut self,
        root: &Root,
        ts: Option<&Timestamp>,
    ) -> Result<Option<Snapshot>, VerifyError> {
        let Some(role) = root.single_role(crate::conex::Role::Snapshot)? else {
            self.warnings.push("no snapshot role found in root".into());
            return Ok(None);
        };
        let id = role.0.clone();
        let snap: Snapshot = self.check_role_file(role, "snapshot")?;
        match ts {
            None => self
                .warnings
                .push("no timestamp provided, taking snapshot as is".into()),
            Some(ts) => {
                let tgt = target_of_file(self.src, vec![id])?;
                if !ts.targets.iter().any(|t| t.same(&tgt)) {
                    return Err("couldn't validate snapshot: no match in timestamp target".into());
                }
            }
        }
        Ok(Some(snap))
    }
}
