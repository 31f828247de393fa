//! `gw502ctl pki revoke` and `gw502ctl pki list`: offline operations on the
//! PKI directory's revocation list (`crl.pem`), which every collector
//! reloads by itself when the file changes.

use std::io::Write;
use std::path::Path;

use gw502_pki::{self as pki, RevokeReason, Serial};
use serde::Serialize;
use time::format_description::well_known::Rfc3339;

use crate::args::ReasonArg;
use crate::error::CtlError;

/// The `--json` shape of `pki revoke`.
#[derive(Debug, Serialize)]
struct RevokedJson {
    serial: String,
    identity: Option<String>,
    already_revoked: bool,
    crl: String,
    crl_number: u64,
}

/// The `--json` shape of one `pki list` row.
#[derive(Debug, Serialize)]
struct CertJson {
    identity: Option<String>,
    serial: String,
    not_after: Option<String>,
    cert: Option<String>,
    revoked_at: Option<String>,
    reason: Option<&'static str>,
}

/// Revokes by name or by serial.
pub fn revoke(
    dir: &Path,
    name: Option<&str>,
    serial: Option<&str>,
    reason: ReasonArg,
    as_json: bool,
    out: &mut (dyn Write + Send),
) -> Result<(), CtlError> {
    let reason = reason_of(reason);
    let (identity, outcome) = match (name, serial) {
        (Some(name), _) => {
            let (identity, outcome) = pki::inventory::revoke_name(dir, name, reason)?;
            (Some(identity), outcome)
        }
        (None, Some(serial)) => {
            let serial: Serial = serial.parse()?;
            (None, pki::crl::revoke_serial(dir, &serial, reason)?)
        }
        (None, None) => {
            return Err(CtlError::Config(
                "pki revoke needs a NAME or --serial HEX".into(),
            ));
        }
    };
    if as_json {
        let json = RevokedJson {
            serial: outcome.serial.to_string(),
            identity: identity.as_ref().map(|i| i.uri()),
            already_revoked: outcome.already,
            crl: outcome.crl.display().to_string(),
            crl_number: outcome.number,
        };
        serde_json::to_writer_pretty(&mut *out, &json).map_err(std::io::Error::from)?;
        writeln!(out)?;
        return Ok(());
    }
    let who = identity
        .map(|i| format!("{i} (serial {})", outcome.serial))
        .unwrap_or_else(|| format!("serial {}", outcome.serial));
    if outcome.already {
        writeln!(
            out,
            "{who} was already revoked; {} unchanged",
            outcome.crl.display()
        )?;
    } else {
        writeln!(
            out,
            "revoked {who}\nwrote {} (crl number {}); collectors reload it by themselves",
            outcome.crl.display(),
            outcome.number
        )?;
    }
    Ok(())
}

/// Lists issued certificates and CRL entries.
pub fn list(dir: &Path, as_json: bool, out: &mut (dyn Write + Send)) -> Result<(), CtlError> {
    let inventory = pki::inventory::list(dir)?;
    let stamp = |t: time::OffsetDateTime| t.format(&Rfc3339).unwrap_or_default();
    let mut rows: Vec<CertJson> = inventory
        .issued
        .iter()
        .map(|c| CertJson {
            identity: Some(c.identity.to_string()),
            serial: c.serial.to_string(),
            not_after: Some(stamp(c.not_after)),
            cert: Some(c.cert.display().to_string()),
            revoked_at: c.revoked.as_ref().map(|r| stamp(r.revoked_at)),
            reason: c
                .revoked
                .as_ref()
                .and_then(|r| r.reason.map(RevokeReason::as_str)),
        })
        .collect();
    rows.extend(inventory.revoked_elsewhere.iter().map(|r| CertJson {
        identity: None,
        serial: r.serial.to_string(),
        not_after: None,
        cert: None,
        revoked_at: Some(stamp(r.revoked_at)),
        reason: r.reason.map(RevokeReason::as_str),
    }));
    if as_json {
        serde_json::to_writer_pretty(&mut *out, &rows).map_err(std::io::Error::from)?;
        writeln!(out)?;
        return Ok(());
    }
    writeln!(
        out,
        "{:<32} {:<42} {:<22} STATUS",
        "IDENTITY", "SERIAL", "EXPIRES"
    )?;
    for row in &rows {
        let status = match (&row.revoked_at, row.reason) {
            (Some(at), Some(reason)) => format!("revoked {at} ({reason})"),
            (Some(at), None) => format!("revoked {at}"),
            (None, _) => "valid".to_owned(),
        };
        writeln!(
            out,
            "{:<32} {:<42} {:<22} {status}",
            row.identity.as_deref().unwrap_or("(not on disk)"),
            row.serial,
            row.not_after.as_deref().unwrap_or("-"),
        )?;
    }
    Ok(())
}

fn reason_of(arg: ReasonArg) -> RevokeReason {
    match arg {
        ReasonArg::Unspecified => RevokeReason::Unspecified,
        ReasonArg::KeyCompromise => RevokeReason::KeyCompromise,
        ReasonArg::AffiliationChanged => RevokeReason::AffiliationChanged,
        ReasonArg::Superseded => RevokeReason::Superseded,
        ReasonArg::CessationOfOperation => RevokeReason::CessationOfOperation,
        ReasonArg::PrivilegeWithdrawn => RevokeReason::PrivilegeWithdrawn,
    }
}
