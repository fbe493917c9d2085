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

/// Secret values seen during a scenario, in what it sent and received, so that text
/// which has lost the JSON structure around them — a failing match's `got "..."`, a
/// snapshot diff, a capture, a peer's log line — is scrubbed of them too.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SecretValues {
    values: std::collections::BTreeSet<String>,
}

/// Values shorter than this are scrubbed only where they appear as a JSON string
/// (`"abc"`): replacing every `abc` in a report would garble it.
const SCRUB_ANYWHERE_FROM: usize = 4;
/// Most values remembered (a message with a million secret cells is not a reason to
/// use unbounded memory; the structural redaction still applies).
const MAX_REMEMBERED: usize = 10_000;

impl SecretValues {
    pub fn new() -> Self {
        SecretValues::default()
    }

    /// Remember every secret value in `v`.
    pub fn collect(&mut self, v: &Value) {
        for p in secret_pointers(v) {
            if let Some(leaf) = v.pointer(&p) {
                self.add_value(leaf);
            }
        }
    }

    /// Remember one secret value (a string, or a number's text); empty ones reveal
    /// nothing and are skipped.
    pub fn add_value(&mut self, v: &Value) {
        let text = match v {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            _ => return,
        };
        if !text.is_empty() && text != REDACTED && self.values.len() < MAX_REMEMBERED {
            self.values.insert(text);
        }
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// `text` with every remembered value replaced by the placeholder: anywhere for
    /// values of 4 characters or more, as a JSON string (also escaped, as inside a
    /// rendered body) for shorter ones.
    pub fn scrub(&self, text: &str) -> String {
        let mut out = text.to_string();
        // Longest first, so a value containing another is replaced whole.
        let mut values: Vec<&String> = self.values.iter().collect();
        values.sort_by_key(|v| std::cmp::Reverse(v.len()));
        for v in values {
            if !out.contains(v.as_str()) {
                continue;
            }
            if v.chars().count() >= SCRUB_ANYWHERE_FROM {
                out = out.replace(v.as_str(), REDACTED);
            } else {
                out = out
                    .replace(&format!("\"{v}\""), &format!("\"{REDACTED}\""))
                    .replace(&format!("\\\"{v}\\\""), &format!("\\\"{REDACTED}\\\""));
            }
        }
        out
    }
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

pub(crate) fn redact_in_place(v: &mut Value) {
    for p in secret_pointers(v) {
        if let Some(leaf) = v.pointer_mut(&p) {
            redact_whole(leaf);
        }
    }
}

/// JSON pointers of every secret value in `v` (by the rules in the module docs). One
/// read-only walk serves both redaction and [`SecretValues::collect`].
pub fn secret_pointers(v: &Value) -> Vec<String> {
    let mut out = Vec::new();
    walk(v, &mut String::new(), &mut out);
    out
}

fn walk(v: &Value, at: &mut String, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => walk_object(m, at, out),
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                within(at, &i.to_string(), |at| walk(item, at, out));
            }
        }
        _ => {}
    }
}

/// Run `f` with `token` appended to the pointer `at`, then restore it.
fn within(at: &mut String, token: &str, f: impl FnOnce(&mut String)) {
    let len = at.len();
    at.push('/');
    at.push_str(&token.replace('~', "~0").replace('/', "~1"));
    f(at);
    at.truncate(len);
}

fn walk_object(m: &Map<String, Value>, at: &mut String, out: &mut Vec<String>) {
    table_secrets(m, at, out);
    let has_credential = m.keys().any(|k| is_credential_key(k));
    let is_secret_macro = m.contains_key("macro") && m.get("type").is_some_and(is_secret_type);
    for (k, child) in m {
        within(at, k, |at| {
            if is_secret_subtree(k) {
                all_leaves(child, at, out);
            } else if is_secret_key(k)
                || (has_credential && k.eq_ignore_ascii_case("username"))
                || (is_secret_macro && k == "value")
            {
                out.push(at.clone());
            } else {
                walk(child, at, out);
            }
        });
    }
}

/// Every leaf below `v` (a secret subtree: vault paths and option names stay).
fn all_leaves(v: &Value, at: &mut String, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, child) in m {
                within(at, k, |at| all_leaves(child, at, out));
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                within(at, &i.to_string(), |at| all_leaves(item, at, out));
            }
        }
        _ => out.push(at.clone()),
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

/// A `{"fields":[...],"data":[[...]]}` table: its secret columns in every row, and the
/// `value` column of macro rows whose `type` is secret or vault.
fn table_secrets(m: &Map<String, Value>, at: &mut String, out: &mut Vec<String>) {
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
    let Some(Value::Array(rows)) = m.get("data") else {
        return;
    };
    for (r, row) in rows.iter().enumerate() {
        let Value::Array(cells) = row else { continue };
        let mut cols: Vec<usize> = secret_cols
            .iter()
            .copied()
            .filter(|i| *i < cells.len())
            .collect();
        if let (Some(t), Some(vc)) = (type_col, value_col) {
            if cells.get(t).is_some_and(is_secret_type) && vc < cells.len() {
                cols.push(vc);
            }
        }
        for c in cols {
            out.push(format!("{at}/data/{r}/{c}"));
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
    fn remembered_values_are_scrubbed_from_text_that_lost_its_structure() {
        let mut secrets = SecretValues::new();
        secrets.collect(&json!({
            "hosts": {"fields": ["hostid", "tls_psk"], "data": [[1, "PSKSECRET0123456789"]]},
            "password": "pw",
            "host": "h1"
        }));
        let got = secrets
            .scrub(r#"expected /hosts/data/0/1 == "x", got "PSKSECRET0123456789" (pw is "pw")"#);
        assert!(!got.contains("PSKSECRET"), "{got}");
        assert!(got.contains(r#"got "[redacted]""#), "{got}");
        // A short value only as a JSON string: the word "pw" elsewhere stays.
        assert!(got.contains(r#"(pw is "[redacted]")"#), "{got}");
        assert!(
            !secrets.scrub("h1").contains(REDACTED),
            "non-secrets are not remembered"
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
