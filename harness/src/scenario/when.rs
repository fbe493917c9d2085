//! Version conditions for `when: { version: ... }`.
//!
//! A condition is a version (`"6.0"`, meaning `==6.0`) or an operator and a version:
//! `==`, `!=`, `>=`, `<=`, `>`, `<`. Versions compare numerically part by part, so
//! `6.10` is newer than `6.4`. The loader parses every condition up front, so a typo
//! fails at load time rather than silently skipping a step at run time.

use std::cmp::Ordering;

/// A comparison operator in a version condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VersionOp {
    Eq,
    Ne,
    Ge,
    Le,
    Gt,
    Lt,
}

/// A parsed condition such as `>=6.4`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionCondition {
    pub op: VersionOp,
    /// Numeric parts of the version, e.g. `[6, 4]`.
    pub version: Vec<u64>,
}

impl VersionCondition {
    /// Parse `"6.0"`, `">=6.4"`, `"< 7.0"`, ... (spaces around the operator allowed).
    pub fn parse(cond: &str) -> Result<VersionCondition, String> {
        let t = cond.trim();
        // Two-character operators first, so `>=` is not read as `>` followed by `=6.4`.
        let ops = [
            ("==", VersionOp::Eq),
            ("!=", VersionOp::Ne),
            (">=", VersionOp::Ge),
            ("<=", VersionOp::Le),
            (">", VersionOp::Gt),
            ("<", VersionOp::Lt),
            ("=", VersionOp::Eq),
        ];
        let (op, rest) = ops
            .iter()
            .find_map(|(p, op)| t.strip_prefix(p).map(|r| (*op, r)))
            .unwrap_or((VersionOp::Eq, t));
        let version = parse_version(rest.trim()).map_err(|e| {
            format!(
                "invalid version condition {cond:?}: {e} (use e.g. \"6.0\", \">=6.4\", \"<7.0\", \"!=5.4\")"
            )
        })?;
        Ok(VersionCondition { op, version })
    }

    /// Whether `version` satisfies the condition.
    pub fn matches(&self, version: &[u64]) -> bool {
        let ord = compare(version, &self.version);
        match self.op {
            VersionOp::Eq => ord == Ordering::Equal,
            VersionOp::Ne => ord != Ordering::Equal,
            VersionOp::Ge => ord != Ordering::Less,
            VersionOp::Le => ord != Ordering::Greater,
            VersionOp::Gt => ord == Ordering::Greater,
            VersionOp::Lt => ord == Ordering::Less,
        }
    }
}

/// Parse a dotted version `MAJOR.MINOR[.PATCH...]` into its numeric parts.
pub fn parse_version(text: &str) -> Result<Vec<u64>, String> {
    if text.is_empty() {
        return Err("missing version".into());
    }
    let parts: Result<Vec<u64>, _> = text
        .split('.')
        .map(|p| {
            if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) || p.len() > 9 {
                Err(())
            } else {
                p.parse::<u64>().map_err(|_| ())
            }
        })
        .collect();
    match parts {
        Ok(v) if v.len() >= 2 => Ok(v),
        _ => Err(format!("{text:?} is not a version like 6.0")),
    }
}

/// Compare versions with missing trailing parts read as 0 (`6.0` == `6.0.0`).
fn compare(a: &[u64], b: &[u64]) -> Ordering {
    let n = a.len().max(b.len());
    for i in 0..n {
        let (x, y) = (
            a.get(i).copied().unwrap_or(0),
            b.get(i).copied().unwrap_or(0),
        );
        match x.cmp(&y) {
            Ordering::Equal => continue,
            other => return other,
        }
    }
    Ordering::Equal
}

/// Whether `version` (e.g. `"6.4"`) satisfies `cond` (e.g. `">=6.0"`).
///
/// Errors name the bad condition or version; the runner uses this for `when`.
pub fn version_matches(cond: &str, version: &str) -> Result<bool, String> {
    let c = VersionCondition::parse(cond)?;
    let v = parse_version(version.trim()).map_err(|e| format!("invalid version: {e}"))?;
    Ok(c.matches(&v))
}

/// Whether any of `conds` matches `version` (a `when` list is an "or").
pub fn any_matches(conds: &[String], version: &str) -> Result<bool, String> {
    for c in conds {
        if version_matches(c, version)? {
            return Ok(true);
        }
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_operator_forms() {
        let cases = [
            ("6.0", "6.0", true),
            ("6.0", "6.4", false),
            (">=6.4", "6.4", true),
            (">=6.4", "6.0", false),
            (">=6.4", "7.0", true),
            ("<7.0", "6.4", true),
            ("<7.0", "7.0", false),
            (">6.0", "6.0", false),
            (">6.0", "6.4", true),
            ("<=6.4", "6.4", true),
            ("<=6.4", "7.0", false),
            ("==6.0", "6.0", true),
            ("!=5.4", "5.4", false),
            ("!=5.4", "6.0", true),
            ("> 6.0", "6.10", true),
            ("6.0", "6.0.0", true),
        ];
        for (cond, ver, want) in cases {
            assert_eq!(version_matches(cond, ver), Ok(want), "{cond} vs {ver}");
        }
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            "", ">=", "6", "six", "=>6.0", "6.x", ">=6..0", "~6.0", "6.0-rc1",
        ] {
            assert!(VersionCondition::parse(bad).is_err(), "{bad:?} accepted");
        }
        assert!(version_matches(">=6.0", "latest").is_err());
    }

    #[test]
    fn any_is_or() {
        let conds = vec!["5.4".to_string(), "6.0".to_string()];
        assert_eq!(any_matches(&conds, "6.0"), Ok(true));
        assert_eq!(any_matches(&conds, "6.4"), Ok(false));
    }
}
