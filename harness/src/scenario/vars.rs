//! Variables and templating: `${NAME}` and `${NAME:-default}` in strings.
//!
//! Lookup order (first hit wins): values captured or set during the run, `--var` from
//! the command line, the scenario's `vars:`, the process environment, then the inline
//! default. A string that is exactly one `${NAME}` is replaced by the variable's JSON
//! value, so a captured number stays a number. A value from `--var` or `vars:` may use
//! variables itself (`session: ${run_id}${run_id}${run_id}${run_id}`): it is expanded
//! when it is looked up, so it sees the run's built-ins.

use serde_json::Value;
use std::collections::BTreeMap;

/// An error in a template.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VarError {
    #[error("variable ${{{0}}} is not set (set it with --var {0}=VALUE, the environment, or give a default: ${{{0}:-value}})")]
    Unset(String),
    #[error("unterminated \"${{\" in {0:?}")]
    Unterminated(String),
    #[error("invalid variable name {0:?} (use letters, digits and _)")]
    BadName(String),
    #[error("variable ${{{0}}} refers to itself (through its value or another variable's)")]
    Cycle(String),
}

/// How deep values may refer to other variables before it counts as a cycle.
const MAX_DEPTH: usize = 16;

/// Where a variable's value was found.
enum Source<'a> {
    /// Captured during the run, or a built-in: data, used as it is.
    Run(&'a Value),
    /// `--var` or the scenario's `vars:`: text that may use variables itself.
    Given(String),
    /// The process environment: text, used as it is.
    Env(String),
}

/// The variable scopes of one scenario run.
#[derive(Debug, Clone, Default)]
pub struct Vars {
    /// Captured during the run and built-ins (`version`, `listen_addr`, ...).
    run: BTreeMap<String, Value>,
    /// From `--var NAME=VALUE`.
    cli: BTreeMap<String, String>,
    /// From the scenario's `vars:`.
    scenario: BTreeMap<String, String>,
    /// Whether to consult the process environment.
    use_env: bool,
}

impl Vars {
    pub fn new(cli: BTreeMap<String, String>, scenario: BTreeMap<String, String>) -> Self {
        Vars {
            run: BTreeMap::new(),
            cli,
            scenario,
            use_env: true,
        }
    }

    /// Don't read the process environment (tests).
    pub fn without_env(mut self) -> Self {
        self.use_env = false;
        self
    }

    /// Set a run-scope variable (captures, built-ins).
    pub fn set(&mut self, name: &str, value: Value) {
        self.run.insert(name.to_string(), value);
    }

    /// Look a variable up as a JSON value (a given value as written, unexpanded).
    pub fn get(&self, name: &str) -> Option<Value> {
        Some(match self.source(name)? {
            Source::Run(v) => v.clone(),
            Source::Given(s) | Source::Env(s) => Value::String(s),
        })
    }

    /// Where `name`'s value comes from, in lookup order.
    fn source(&self, name: &str) -> Option<Source<'_>> {
        if let Some(v) = self.run.get(name) {
            return Some(Source::Run(v));
        }
        if let Some(v) = self.cli.get(name).or_else(|| self.scenario.get(name)) {
            return Some(Source::Given(v.clone()));
        }
        if self.use_env {
            if let Ok(v) = std::env::var(name) {
                return Some(Source::Env(v));
            }
        }
        None
    }

    /// Expand every `${...}` in `template` into a string.
    pub fn expand_str(&self, template: &str) -> Result<String, VarError> {
        self.expand_at(template, 0)
    }

    /// [`Vars::expand_str`] at `depth` references deep.
    fn expand_at(&self, template: &str, depth: usize) -> Result<String, VarError> {
        let mut out = String::with_capacity(template.len());
        let mut rest = template;
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let end =
                closing_brace(after).ok_or_else(|| VarError::Unterminated(template.to_string()))?;
            let value = self.resolve(&after[..end], depth)?;
            out.push_str(&value_to_text(&value));
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        Ok(out)
    }

    /// Expand templates inside a JSON value (strings only; keys are left alone).
    pub fn expand_value(&self, v: &Value) -> Result<Value, VarError> {
        Ok(match v {
            Value::String(s) => {
                if let Some(inner) = whole_reference(s) {
                    self.resolve(inner, 0)?
                } else {
                    Value::String(self.expand_str(s)?)
                }
            }
            Value::Array(a) => Value::Array(
                a.iter()
                    .map(|x| self.expand_value(x))
                    .collect::<Result<_, _>>()?,
            ),
            Value::Object(m) => {
                let mut out = serde_json::Map::with_capacity(m.len());
                for (k, x) in m {
                    out.insert(k.clone(), self.expand_value(x)?);
                }
                Value::Object(out)
            }
            other => other.clone(),
        })
    }

    /// Resolve `NAME` or `NAME:-default`, `depth` references deep.
    fn resolve(&self, expr: &str, depth: usize) -> Result<Value, VarError> {
        let (name, default) = match expr.find(":-") {
            Some(i) => (&expr[..i], Some(&expr[i + 2..])),
            None => (expr, None),
        };
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(VarError::BadName(name.to_string()));
        }
        if depth >= MAX_DEPTH {
            return Err(VarError::Cycle(name.to_string()));
        }
        // A value given as text (`--var`, `vars:`) or a default may itself use
        // variables: `${PSK_FILE:-${test_psk_file}}`. Run values are data, and the
        // environment's values are taken as they are.
        let text = match (self.source(name), default) {
            (Some(Source::Run(v)), _) => return Ok(v.clone()),
            (Some(Source::Env(s)), _) => return Ok(Value::String(s)),
            (Some(Source::Given(s)), _) => s,
            (None, Some(d)) => d.to_string(),
            (None, None) => return Err(VarError::Unset(name.to_string())),
        };
        Ok(Value::String(self.expand_at(&text, depth + 1)?))
    }
}

/// Where the `}` that closes a `${` ends in `after` (the text after the `${`), counting
/// the `${ … }` nested in a default.
fn closing_brace(after: &str) -> Option<usize> {
    let bytes = after.as_bytes();
    let mut depth = 0usize;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'$' if bytes.get(i + 1) == Some(&b'{') => {
                depth += 1;
                i += 1;
            }
            b'}' if depth == 0 => return Some(i),
            b'}' => depth -= 1,
            _ => {}
        }
        i += 1;
    }
    None
}

/// `"${x}"` (or `"${x:-${y}}"`) → `Some("x…")`; anything else → `None`.
fn whole_reference(s: &str) -> Option<&str> {
    let after = s.strip_prefix("${")?;
    let end = closing_brace(after)?;
    (end + 1 == after.len()).then_some(&after[..end])
}

/// How a JSON value reads inside a string template.
fn value_to_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Names of all variables referenced in `template` (for lint).
pub fn referenced_names(template: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = template;
    while let Some(start) = rest.find("${") {
        let after = &rest[start + 2..];
        let Some(end) = closing_brace(after) else {
            break;
        };
        let expr = &after[..end];
        match expr.split_once(":-") {
            None => names.push(expr.to_string()),
            // The default is used when the name is unset: what it refers to must be set.
            Some((_, default)) => names.extend(referenced_names(default)),
        }
        rest = &after[end + 1..];
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_default_may_use_variables() {
        let mut v = Vars::new(BTreeMap::new(), BTreeMap::new());
        v.set("inner", json!("/run/key.psk"));
        assert_eq!(
            v.expand_str("f=${PSK_FILE_UNSET_HERE:-${inner}}.").unwrap(),
            "f=/run/key.psk."
        );
        assert_eq!(
            v.expand_value(&json!("${PSK_FILE_UNSET_HERE:-${inner}}"))
                .unwrap(),
            json!("/run/key.psk")
        );
        assert!(v.expand_str("${A:-${inner}").is_err(), "unterminated");
        assert_eq!(
            referenced_names("${A:-${b}} ${C:-x} ${d}"),
            vec!["b".to_string(), "d".to_string()]
        );
    }

    fn vars() -> Vars {
        let mut cli = BTreeMap::new();
        cli.insert("A".into(), "from-cli".into());
        let mut sc = BTreeMap::new();
        sc.insert("A".into(), "from-scenario".into());
        sc.insert("B".into(), "b".into());
        let mut v = Vars::new(cli, sc).without_env();
        v.set("n", json!(42));
        v
    }

    #[test]
    fn precedence_and_defaults() {
        let v = vars();
        assert_eq!(
            v.expand_str("${A}-${B}-${C:-dflt}").unwrap(),
            "from-cli-b-dflt"
        );
        assert_eq!(v.expand_str("${C:-}").unwrap(), "");
        assert_eq!(v.expand_str("x${n}y").unwrap(), "x42y");
    }

    #[test]
    fn whole_reference_keeps_type() {
        let v = vars();
        assert_eq!(
            v.expand_value(&json!({"a": "${n}"})).unwrap(),
            json!({"a": 42})
        );
        assert_eq!(v.expand_value(&json!(["${n}x"])).unwrap(), json!(["42x"]));
    }

    /// `vars:` and `--var` values may use variables, built-ins included; a cycle is an
    /// error naming the variable, not a hang.
    #[test]
    fn given_values_may_use_variables() {
        let mut sc = BTreeMap::new();
        sc.insert("session".into(), "${run_id}${run_id}".into());
        sc.insert("loop_a".into(), "x${loop_b}".into());
        sc.insert("loop_b".into(), "${loop_a}".into());
        sc.insert("own".into(), "${own}".into());
        let mut v = Vars::new(BTreeMap::new(), sc).without_env();
        v.set("run_id", json!("0a1b"));
        assert_eq!(v.expand_str("s=${session}").unwrap(), "s=0a1b0a1b");
        assert_eq!(
            v.expand_value(&json!("${session}")).unwrap(),
            json!("0a1b0a1b")
        );
        assert!(matches!(v.expand_str("${loop_a}"), Err(VarError::Cycle(_))));
        assert!(matches!(v.expand_str("${own}"), Err(VarError::Cycle(_))));
        // A captured value is data: `${...}` in it stays as it is.
        v.set("captured", json!("${run_id}"));
        assert_eq!(v.expand_str("${captured}").unwrap(), "${run_id}");
    }

    #[test]
    fn errors_are_values() {
        let v = vars();
        assert_eq!(v.expand_str("${NOPE}"), Err(VarError::Unset("NOPE".into())));
        assert!(matches!(
            v.expand_str("${A"),
            Err(VarError::Unterminated(_))
        ));
        assert!(matches!(v.expand_str("${a b}"), Err(VarError::BadName(_))));
    }
}
