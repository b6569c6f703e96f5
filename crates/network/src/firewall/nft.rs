//! Running `nft`: a transaction in (`nft -j -f -`), a table's listing out (`nft -j list table`).
//!
//! Listing goes through the `nftables` crate's helper. Applying does what its
//! `helper::apply_ruleset` does (serialize the typed `Nftables` value, pipe it to `nft -j -f -`)
//! but also captures nft's stderr: the helper lets it through to our own stderr and reports an
//! empty one (nftables-rs issue #209), while conductor's errors must say what nft refused.

use std::borrow::Cow;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use nftables::helper::NftablesError;
use nftables::schema::{NfObject, Nftables};

use super::FirewallError;

/// Where `nft` is: the usual sbin locations (not always in a user's PATH), else PATH.
pub(super) fn default_program() -> PathBuf {
    ["/usr/sbin/nft", "/sbin/nft", "/usr/bin/nft"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .unwrap_or_else(|| PathBuf::from("nft"))
}

/// The JSON document for a list of commands: one `nft -j -f -` run, one kernel transaction.
pub(super) fn document(objs: Vec<NfObject<'static>>) -> Result<String, FirewallError> {
    serde_json::to_string(&Nftables { objects: Cow::Owned(objs) }).map_err(|e| FirewallError::BadJson(e.to_string()))
}

/// Apply commands as one transaction: all of them take effect, or none.
pub(super) fn apply(program: &Path, objs: Vec<NfObject<'static>>, what: &str) -> Result<(), FirewallError> {
    let payload = document(objs)?;
    let spawn_err = |err| FirewallError::Spawn { program: program.display().to_string(), err };
    let mut child = Command::new(program)
        .args(["-j", "-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(spawn_err)?;
    // nft reads all of its input before it writes anything: no deadlock on the pipes.
    let mut stdin = child.stdin.take().expect("stdin is piped");
    let written = stdin.write_all(payload.as_bytes());
    drop(stdin);
    let out = child.wait_with_output().map_err(spawn_err)?;
    if !out.status.success() {
        return Err(FirewallError::Nft { what: what.to_string(), stderr: clean(&out.stderr) });
    }
    written.map_err(spawn_err)
}

/// `nft -j list table inet TABLE`; None when there is no such table.
pub(super) fn list_table(program: &Path, table: &str) -> Result<Option<String>, FirewallError> {
    match nftables::helper::get_current_ruleset_raw(Some(program), ["list", "table", "inet", table]) {
        Ok(out) => Ok(Some(out)),
        Err(NftablesError::NftFailed { stderr, .. }) if stderr.contains("No such file or directory") => Ok(None),
        Err(e) => Err(from_helper(e, &format!("listing table inet {table}"))),
    }
}

fn from_helper(e: NftablesError, what: &str) -> FirewallError {
    match e {
        NftablesError::NftExecution { program, inner } => {
            FirewallError::Spawn { program: program.to_string_lossy().into_owned(), err: inner }
        }
        NftablesError::NftFailed { stderr, .. } => {
            FirewallError::Nft { what: what.to_string(), stderr: clean(stderr.as_bytes()) }
        }
        NftablesError::NftOutputEncoding { inner, .. } => FirewallError::BadJson(inner.to_string()),
        NftablesError::NftInvalidJson(e) => FirewallError::BadJson(e.to_string()),
    }
}

/// nft's error text on one line: its JSON errors name no position worth keeping
/// ("internal:0:0-0: Error: ...").
fn clean(stderr: &[u8]) -> String {
    let s = String::from_utf8_lossy(stderr);
    let lines: Vec<&str> =
        s.lines().map(|l| l.trim()).filter(|l| !l.is_empty()).map(|l| l.strip_prefix("internal:0:0-0: ").unwrap_or(l)).collect();
    if lines.is_empty() {
        "no error message".into()
    } else {
        lines.join("; ")
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn errors_on_one_line() {
        let e = b"internal:0:0-0: Error: Could not process rule: File exists\n\ninternal:0:0-0: Error: x\n";
        assert_eq!(super::clean(e), "Error: Could not process rule: File exists; Error: x");
        assert_eq!(super::clean(b""), "no error message");
    }
}
