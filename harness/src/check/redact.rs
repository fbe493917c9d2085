//! Secret redaction for everything that leaves the process (reports, transcripts, logs).
//!
//! Zabbix carries credentials in three shapes (protocol.md §5), and all three are handled:
//! - plain object keys (`"tls_psk": "..."`, task type 2 `password`/`privatekey`...);
//! - columns of configuration tables encoded as `{"fields":[...],"data":[[...],...]}`,
//!   where the column name is the secret key (hosts.tls_psk, items.password...);
//! - macros, whose `value` is secret only when `type` is 1 (secret text) or 2 (vault
//!   path), in table form (globalmacro/hostmacro rows) or object form; and every value
//!   under `macro.secrets` and plugin `private_options`.
//!
//! `username` is redacted only next to a password or key (items with credentials, task
//! type 2): elsewhere (e.g. `ipmi_username` or a host name) it is useful context.
//!
//! Empty strings and `null` are left as they are: they reveal nothing and keep "no PSK
//! configured" distinguishable from "a PSK was sent" in reports and snapshots.

use regex::Regex;
use serde_json::{Map, Value};
use std::sync::OnceLock;

/// The placeholder every secret value becomes.
pub const REDACTED: &str = "[redacted]";

/// Keys (object keys and table column names) whose values are secrets.
pub const SECRET_KEYS: &[&str] = &[
    "password",
    "privatekey",
    "publickey",
    "ssl_key_password",
    "tls_psk",
    "tls_psk_identity",
    "ipmi_password",
    "authpassphrase",
    "privpassphrase",
    "community",
    "securityname",
    // Discovery checks (dchecks) and older item tables prefix the SNMP credentials.
    "snmp_community",
    "snmpv3_securityname",
    "snmpv3_authpassphrase",
    "snmpv3_privpassphrase",
    // Web scenarios (httptest).
    "http_password",
];

/// Keys whose whole subtree is secret (every leaf value is redacted, keys are kept).
pub const SECRET_SUBTREES: &[&str] = &["macro.secrets", "private_options"];

/// Keys that make a sibling `username` a credential.
const CREDENTIAL_KEYS: &[&str] = &["password", "privatekey", "publickey"];

fn is_secret_key(k: &str) -> bool {
    SECRET_KEYS.iter().any(|s| s.eq_ignore_ascii_case(k))
}

fn is_credential_key(k: &str) -> bool {
    CREDENTIAL_KEYS.iter().any(|s| s.eq_ignore_ascii_case(k))
}

fn is_secret_subtree(k: &str) -> bool {
    SECRET_SUBTREES.iter().any(|s| s.eq_ignore_ascii_case(k))
}

/// Replace secret values (PSKs, passwords, private keys...) with `"[redacted]"`.
pub fn redact_secrets(v: &Value) -> Value {
    let mut out = v.clone();
    redact_in_place(&mut out);
    out
}

/// Redact a JSON text. Valid JSON is parsed, redacted and re-serialized compactly (or
/// returned unchanged when it holds no secret, so formatting is not disturbed). Anything
/// else — a truncated body, a log — gets a pattern-based pass over `"key": "value"` and
/// `key=value` pairs of the secret keys.
pub fn redact_text(s: &str) -> String {
    if let Ok(v) = serde_json::from_str::<Value>(s) {
        let red = redact_secrets(&v);
        if red == v {
            return s.to_string();
        }
        return serde_json::to_string(&red).unwrap_or_else(|_| REDACTED.to_string());
    }
    redact_patterns(s)
}

fn redact_in_place(v: &mut Value) {
    match v {
        Value::Object(m) => redact_object(m),
        Value::Array(items) => items.iter_mut().for_each(redact_in_place),
        _ => {}
    }
}

fn redact_object(m: &mut Map<String, Value>) {
    redact_table(m);
    let has_credential = m.keys().any(|k| is_credential_key(k));
    let is_secret_macro = m.contains_key("macro") && m.get("type").is_some_and(is_secret_type);
    for (k, child) in m.iter_mut() {
        if is_secret_subtree(k) {
            redact_all_leaves(child);
        } else if is_secret_key(k)
            || (has_credential && k.eq_ignore_ascii_case("username"))
            || (is_secret_macro && k == "value")
        {
            redact_whole(child);
        } else {
            redact_in_place(child);
        }
    }
}

/// Zabbix macro types: 0 text, 1 secret text, 2 vault path.
fn is_secret_type(v: &Value) -> bool {
    match v {
        Value::Number(n) => matches!(n.as_u64(), Some(1 | 2)),
        Value::String(s) => matches!(s.trim(), "1" | "2"),
        _ => false,
    }
}

/// A `{"fields":[...],"data":[[...]]}` table: redact secret columns in every row, and the
/// `value` column of macro rows whose `type` is secret or vault.
fn redact_table(m: &mut Map<String, Value>) {
    let Some(Value::Array(fields)) = m.get("fields") else {
        return;
    };
    let names: Vec<&str> = fields.iter().map(|f| f.as_str().unwrap_or("")).collect();
    let has_credential = names.iter().any(|n| is_credential_key(n));
    let secret_cols: Vec<usize> = names
        .iter()
        .enumerate()
        .filter(|(_, n)| is_secret_key(n) || (has_credential && n.eq_ignore_ascii_case("username")))
        .map(|(i, _)| i)
        .collect();
    // Only macro tables: httpstep_field/httptest_field also have `type` and `value`
    // columns, where type 1/2 mean "variable"/"post field", not "secret".
    let is_macro_table = names.contains(&"macro");
    let type_col = names
        .iter()
        .position(|n| *n == "type")
        .filter(|_| is_macro_table);
    let value_col = names.iter().position(|n| *n == "value");
    let Some(Value::Array(rows)) = m.get_mut("data") else {
        return;
    };
    for row in rows.iter_mut() {
        let Value::Array(cells) = row else { continue };
        for &i in &secret_cols {
            if let Some(cell) = cells.get_mut(i) {
                redact_whole(cell);
            }
        }
        if let (Some(t), Some(vc)) = (type_col, value_col) {
            if cells.get(t).is_some_and(is_secret_type) {
                if let Some(cell) = cells.get_mut(vc) {
                    redact_whole(cell);
                }
            }
        }
    }
}

/// Replace a secret value; empty strings and null stay (see module docs).
fn redact_whole(v: &mut Value) {
    match v {
        Value::Null => {}
        Value::String(s) if s.is_empty() => {}
        _ => *v = Value::String(REDACTED.to_string()),
    }
}

/// Redact every leaf below `v`, keeping the shape (vault paths and option names stay).
fn redact_all_leaves(v: &mut Value) {
    match v {
        Value::Object(m) => m.values_mut().for_each(redact_all_leaves),
        Value::Array(items) => items.iter_mut().for_each(redact_all_leaves),
        leaf => redact_whole(leaf),
    }
}

fn key_alternation() -> String {
    SECRET_KEYS
        .iter()
        .map(|k| regex::escape(k))
        .collect::<Vec<_>>()
        .join("|")
}

/// `"password": "..."` (JSON-ish, possibly inside a truncated body).
fn json_pair_re() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        let pat = format!(
            r#"(?i)("(?:{})"\s*:\s*)(?:"(?:[^"\\]|\\.)+"?|-?[0-9][^\s,}}\]]*|true|false)"#,
            key_alternation()
        );
        Regex::new(&pat).expect("static regex")
    })
}

/// `password=...` / `password: ...` in plain text such as a peer's log.
fn plain_pair_re() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        let pat = format!(
            r#"(?i)\b((?:{})\s*[=:]\s*)([^\s",;'"]+)"#,
            key_alternation()
        );
        Regex::new(&pat).expect("static regex")
    })
}

fn redact_patterns(s: &str) -> String {
    let step = json_pair_re().replace_all(s, format!("${{1}}\"{REDACTED}\""));
    plain_pair_re()
        .replace_all(&step, |c: &regex::Captures| {
            // Skip values that are already the placeholder (`"[redacted]"` was quoted, so
            // the plain pattern cannot see it; this guards `key=[redacted]` reruns).
            if &c[2] == REDACTED {
                c[0].to_string()
            } else {
                format!("{}{REDACTED}", &c[1])
            }
        })
        .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn plain_key_redacted_and_empty_kept() {
        let v = redact_secrets(&json!({"tls_psk": "abc", "ipmi_password": "", "host": "h"}));
        assert_eq!(
            v,
            json!({"tls_psk": REDACTED, "ipmi_password": "", "host": "h"})
        );
    }

    #[test]
    fn patterns_in_truncated_text() {
        let s = r#"{"request":"x","password":"hunter2","community":"pub"#;
        let out = redact_text(s);
        assert!(!out.contains("hunter2"), "{out}");
        assert!(!out.contains("pub"), "{out}");
    }
}
