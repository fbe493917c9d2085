//! `match` expectations: a small, declarative language for "this field should look like
//! that", checked against a received JSON body.
//!
//! A spec maps a JSON pointer (`/data/0/value`) or a bare top-level key (`response`, which
//! means `/response`) to an expectation. An expectation is either
//! - a literal: scalars compare by equality (numbers by value, so `1` equals `1.0`),
//!   objects match as a *subset* (every expected key must match, extra keys are fine),
//!   arrays must have the same length and match element by element; literals nest, so an
//!   operator object may appear anywhere inside a literal object or array; or
//! - an operator object, whose keys all start with `$` and must all hold:
//!   `$regex`, `$type`, `$present`, `$len`, `$gt`, `$ge`, `$lt`, `$le`, `$ne`, `$any`,
//!   `$contains`, `$not`.
//!
//! Every operator except `$present` (and `$not`/`$any`, which delegate) requires the value
//! to be present: a missing value fails with `missing`.
//!
//! Failures name the exact pointer that failed (nested literals report the nested
//! pointer), the expectation in words and what was found, because these strings are what a
//! CI user reads in a JUnit report.

use regex::Regex;
use serde_json::{Map, Number, Value};

/// One failed `match` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MatchFailure {
    /// The pointer that was checked.
    pub pointer: String,
    /// The expectation in words, e.g. `== "success"`, `matches /^[0-9a-f]{32}$/`.
    pub expected: String,
    /// What was found, e.g. `got "failed"`, `missing`.
    pub detail: String,
}

/// The operators we understand, in the order they are listed in error messages.
pub const OPERATORS: &[&str] = &[
    "$regex",
    "$type",
    "$present",
    "$len",
    "$gt",
    "$ge",
    "$lt",
    "$le",
    "$ne",
    "$any",
    "$contains",
    "$not",
];

/// The type names `$type` accepts.
pub const TYPE_NAMES: &[&str] = &[
    "string", "number", "integer", "boolean", "null", "object", "array",
];

/// Longest rendering of a found value in a failure message; bodies can be megabytes.
const MAX_SHOWN: usize = 200;

/// Check every entry of `spec` (pointer or top-level key → literal or matcher object)
/// against `actual`.
pub fn check_matches(spec: &Map<String, Value>, actual: &Value) -> Vec<MatchFailure> {
    let mut out = Vec::new();
    for (key, expected) in spec {
        let pointer = to_pointer(key);
        let found = actual.pointer(&pointer);
        match_value(&pointer, expected, found, &mut out);
    }
    out
}

/// Validate the syntax of a matcher (for lint): unknown `$operators`, bad regexes, wrong
/// operand types, malformed pointers. All problems are reported, one per line.
pub fn validate_spec(spec: &Map<String, Value>) -> Result<(), String> {
    let errors = spec_errors(spec);
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors
            .into_iter()
            .map(|e| e.message)
            .collect::<Vec<_>>()
            .join("\n"))
    }
}

/// One syntax problem of a matcher, with the path that leads to it, so a scenario's
/// lint can point at the very key (`$presnt`) rather than at the whole `match`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecError {
    /// The `match` key, then the keys of nested objects (operators included) and the
    /// indexes of array elements (a literal array's, or `$any`'s alternatives) down to
    /// the key at fault.
    pub path: Vec<KeySeg>,
    pub message: String,
}

/// One step of a [`SpecError`]'s path. An array element has no key, so it is named by
/// its index: without it, a problem inside a list could only be placed at the list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySeg {
    /// An object's key.
    Key(String),
    /// An array's element, from 0.
    Index(usize),
}

/// Every syntax problem of a matcher, in spec order (see [`validate_spec`]).
pub fn spec_errors(spec: &Map<String, Value>) -> Vec<SpecError> {
    let mut errors = Vec::new();
    for (key, expected) in spec {
        let at = Keys::default().with(key);
        if key.starts_with('/') {
            if let Err(e) = check_pointer_syntax(key) {
                at.push(&mut errors, format!("match {key:?}: {e}"));
            }
        }
        validate_value(&to_pointer(key), expected, &at, &mut errors);
    }
    errors
}

/// `response` → `/response`; pointers (and the empty pointer, the whole body) stay as
/// they are. A bare key is one key, so `/` and `~` in it are escaped.
fn to_pointer(key: &str) -> String {
    if key.is_empty() || key.starts_with('/') {
        key.to_string()
    } else {
        format!("/{}", escape_token(key))
    }
}

fn escape_token(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

fn check_pointer_syntax(p: &str) -> Result<(), String> {
    let mut chars = p.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '~' && !matches!(chars.next(), Some('0') | Some('1')) {
            return Err("invalid JSON pointer: `~` must be followed by 0 or 1".into());
        }
    }
    Ok(())
}

/// An object is an operator object when it is non-empty and every key starts with `$`.
fn operator_object(v: &Value) -> Option<&Map<String, Value>> {
    match v {
        Value::Object(m) if !m.is_empty() && m.keys().all(|k| k.starts_with('$')) => Some(m),
        _ => None,
    }
}

// ---------------------------------------------------------------------------------------
// Evaluation
// ---------------------------------------------------------------------------------------

/// Match `expected` against `found` (None = absent), pushing failures for `pointer`.
fn match_value(
    pointer: &str,
    expected: &Value,
    found: Option<&Value>,
    out: &mut Vec<MatchFailure>,
) {
    if let Some(ops) = operator_object(expected) {
        for (op, operand) in ops {
            if let Err(detail) = eval_op(op, operand, found) {
                out.push(MatchFailure {
                    pointer: pointer.to_string(),
                    expected: describe_op(op, operand),
                    detail,
                });
            }
        }
        return;
    }
    let Some(actual) = found else {
        out.push(MatchFailure {
            pointer: pointer.to_string(),
            expected: describe(expected),
            detail: "missing".into(),
        });
        return;
    };
    match expected {
        Value::Object(exp) => {
            let Value::Object(act) = actual else {
                out.push(MatchFailure {
                    pointer: pointer.to_string(),
                    expected: "is an object".into(),
                    detail: got(actual),
                });
                return;
            };
            for (k, v) in exp {
                let child = format!("{pointer}/{}", escape_token(k));
                match_value(&child, v, act.get(k), out);
            }
        }
        Value::Array(exp) => {
            let Value::Array(act) = actual else {
                out.push(MatchFailure {
                    pointer: pointer.to_string(),
                    expected: "is an array".into(),
                    detail: got(actual),
                });
                return;
            };
            if exp.len() != act.len() {
                out.push(MatchFailure {
                    pointer: pointer.to_string(),
                    expected: format!("has length {} ({})", exp.len(), describe(expected)),
                    detail: format!("got length {}: {}", act.len(), show(actual)),
                });
                return;
            }
            for (i, (e, a)) in exp.iter().zip(act).enumerate() {
                match_value(&format!("{pointer}/{i}"), e, Some(a), out);
            }
        }
        scalar => {
            if !json_eq(scalar, actual) {
                out.push(MatchFailure {
                    pointer: pointer.to_string(),
                    expected: describe(expected),
                    detail: got(actual),
                });
            }
        }
    }
}

/// Does `expected` (literal or operator object) hold for `found`?
fn holds(expected: &Value, found: Option<&Value>) -> bool {
    let mut scratch = Vec::new();
    match_value("", expected, found, &mut scratch);
    scratch.is_empty()
}

/// Evaluate one operator. `Err` carries the "what was found" text.
fn eval_op(op: &str, operand: &Value, found: Option<&Value>) -> Result<(), String> {
    match op {
        "$present" => {
            let want = operand
                .as_bool()
                .ok_or_else(|| invalid(op, "needs true or false"))?;
            match (want, found) {
                (true, Some(_)) | (false, None) => Ok(()),
                (true, None) => Err("missing".into()),
                (false, Some(v)) => Err(got(v)),
            }
        }
        "$not" => {
            if holds(operand, found) {
                Err(found.map_or_else(|| "missing".to_string(), got))
            } else {
                Ok(())
            }
        }
        "$any" => {
            let alts = operand
                .as_array()
                .ok_or_else(|| invalid(op, "needs an array"))?;
            if alts.iter().any(|alt| holds(alt, found)) {
                Ok(())
            } else {
                Err(found.map_or_else(|| "missing".to_string(), got))
            }
        }
        _ => {
            let actual = found.ok_or_else(|| "missing".to_string())?;
            eval_present_op(op, operand, actual)
        }
    }
}

/// Operators that need a value.
fn eval_present_op(op: &str, operand: &Value, actual: &Value) -> Result<(), String> {
    match op {
        "$regex" => {
            let pat = operand
                .as_str()
                .ok_or_else(|| invalid(op, "needs a string"))?;
            let re = Regex::new(pat)
                .map_err(|e| invalid(op, &format!("bad regex: {}", regex_error(&e))))?;
            let s = actual
                .as_str()
                .ok_or_else(|| format!("{}, not a string", got(actual)))?;
            if re.is_match(s) {
                Ok(())
            } else {
                Err(got(actual))
            }
        }
        "$type" => {
            let name = operand
                .as_str()
                .ok_or_else(|| invalid(op, "needs a type name"))?;
            if !TYPE_NAMES.contains(&name) {
                return Err(invalid(op, &format!("unknown type {name:?}")));
            }
            if type_matches(name, actual) {
                Ok(())
            } else {
                Err(got(actual))
            }
        }
        "$len" => {
            let len =
                length(actual).ok_or_else(|| format!("{}, which has no length", got(actual)))?;
            let len_value = Value::from(len);
            let ok = match operand {
                Value::Number(_) => json_eq(operand, &len_value),
                _ if operator_object(operand).is_some() => holds(operand, Some(&len_value)),
                _ => return Err(invalid(op, "needs a number or an operator object")),
            };
            if ok {
                Ok(())
            } else {
                Err(format!("got length {len}: {}", show(actual)))
            }
        }
        "$gt" | "$ge" | "$lt" | "$le" => {
            let bound = operand
                .as_f64()
                .ok_or_else(|| invalid(op, "needs a number"))?;
            let n = actual
                .as_f64()
                .ok_or_else(|| format!("{}, not a number", got(actual)))?;
            let ok = match op {
                "$gt" => n > bound,
                "$ge" => n >= bound,
                "$lt" => n < bound,
                _ => n <= bound,
            };
            if ok {
                Ok(())
            } else {
                Err(got(actual))
            }
        }
        "$ne" => {
            if json_eq(operand, actual) {
                Err(got(actual))
            } else {
                Ok(())
            }
        }
        "$contains" => match actual {
            Value::String(s) => {
                let needle = operand.as_str().ok_or_else(|| {
                    format!("{}; a string can only contain a string", got(actual))
                })?;
                if s.contains(needle) {
                    Ok(())
                } else {
                    Err(got(actual))
                }
            }
            Value::Array(items) => {
                if items.iter().any(|item| holds(operand, Some(item))) {
                    Ok(())
                } else {
                    Err(format!("no element matches: {}", show(actual)))
                }
            }
            other => Err(format!("{}, not an array or string", got(other))),
        },
        unknown => Err(invalid(
            unknown,
            &format!("unknown operator (known: {})", OPERATORS.join(" ")),
        )),
    }
}

/// The regex crate's message spans several lines (pattern, caret, error); keep the
/// error line so every problem stays on one line.
fn regex_error(e: &regex::Error) -> String {
    let text = e.to_string();
    let last = text
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("");
    last.trim().trim_start_matches("error: ").to_string()
}

fn invalid(op: &str, why: &str) -> String {
    format!("invalid matcher: {op} {why}")
}

fn type_matches(name: &str, v: &Value) -> bool {
    match name {
        "string" => v.is_string(),
        "number" => v.is_number(),
        // JSON Schema semantics: 3.0 is an integer, as the schema validator sees it.
        "integer" => match v {
            Value::Number(n) => {
                n.is_i64() || n.is_u64() || n.as_f64().is_some_and(|f| f.fract() == 0.0)
            }
            _ => false,
        },
        "boolean" => v.is_boolean(),
        "null" => v.is_null(),
        "object" => v.is_object(),
        "array" => v.is_array(),
        _ => false,
    }
}

/// Length of strings (characters), arrays (elements) and objects (keys).
fn length(v: &Value) -> Option<usize> {
    match v {
        Value::String(s) => Some(s.chars().count()),
        Value::Array(a) => Some(a.len()),
        Value::Object(o) => Some(o.len()),
        _ => None,
    }
}

/// Deep equality where numbers compare by value (`1` == `1.0`), since JSON does not
/// distinguish them and peers differ in how they print numbers.
pub(crate) fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => num_eq(x, y),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| json_eq(p, q))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_eq(v, w)))
        }
        _ => a == b,
    }
}

fn num_eq(x: &Number, y: &Number) -> bool {
    if let (Some(p), Some(q)) = (x.as_i64(), y.as_i64()) {
        return p == q;
    }
    if let (Some(p), Some(q)) = (x.as_u64(), y.as_u64()) {
        return p == q;
    }
    match (x.as_f64(), y.as_f64()) {
        (Some(p), Some(q)) => p == q,
        _ => false,
    }
}

// ---------------------------------------------------------------------------------------
// Words
// ---------------------------------------------------------------------------------------

/// The expectation in words.
fn describe(expected: &Value) -> String {
    match operator_object(expected) {
        Some(ops) => ops
            .iter()
            .map(|(op, operand)| describe_op(op, operand))
            .collect::<Vec<_>>()
            .join(" and "),
        None if expected.is_object() => format!("matches {}", compact(expected)),
        None => format!("== {}", compact(expected)),
    }
}

fn describe_op(op: &str, operand: &Value) -> String {
    match op {
        "$regex" => match operand.as_str() {
            Some(p) => format!("matches /{p}/"),
            None => format!("matches {}", compact(operand)),
        },
        "$type" => match operand.as_str() {
            Some(t @ ("integer" | "object" | "array")) => format!("is an {t}"),
            Some("null") => "is null".into(),
            Some(t) => format!("is a {t}"),
            None => format!("is of type {}", compact(operand)),
        },
        "$present" => match operand.as_bool() {
            Some(false) => "is absent".into(),
            _ => "is present".into(),
        },
        "$len" => {
            if operator_object(operand).is_some() {
                format!("has length {}", describe(operand))
            } else {
                format!("has length {}", compact(operand))
            }
        }
        "$gt" => format!("> {}", compact(operand)),
        "$ge" => format!(">= {}", compact(operand)),
        "$lt" => format!("< {}", compact(operand)),
        "$le" => format!("<= {}", compact(operand)),
        "$ne" => format!("!= {}", compact(operand)),
        "$any" => match operand.as_array() {
            Some(alts) => {
                let words: Vec<String> = alts.iter().map(describe).collect();
                format!("any of ({})", words.join(" | "))
            }
            None => format!("any of {}", compact(operand)),
        },
        "$contains" => match operand {
            Value::String(_) | Value::Number(_) | Value::Bool(_) | Value::Null => {
                format!("contains {}", compact(operand))
            }
            _ => format!("contains an element that {}", describe(operand)),
        },
        "$not" => format!("not ({})", describe(operand)),
        other => format!("{other} {}", compact(operand)),
    }
}

/// `got "failed"` for strings; `got 12 (number)` for everything else, so `"12"` versus
/// `12` is visible at a glance.
fn got(v: &Value) -> String {
    format!("got {}", show(v))
}

fn show(v: &Value) -> String {
    match v {
        Value::String(_) => compact(v),
        other => format!("{} ({})", compact(other), type_name(other)),
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::String(_) => "string",
        Value::Number(n) if n.is_f64() => "number",
        Value::Number(_) => "integer",
        Value::Bool(_) => "boolean",
        Value::Null => "null",
        Value::Object(_) => "object",
        Value::Array(_) => "array",
    }
}

/// Compact JSON, cut to `MAX_SHOWN` characters.
/// At most [`MAX_SHOWN`] characters of `v`, secrets redacted, from a bounded excerpt
/// (a failing `$len` on a million-element array must not serialize all of it).
fn compact(v: &Value) -> String {
    super::excerpt::show(v, MAX_SHOWN)
}

// ---------------------------------------------------------------------------------------
// Validation
// ---------------------------------------------------------------------------------------

/// The path leading to a value being validated (see [`SpecError::path`]).
#[derive(Debug, Clone, Default)]
struct Keys {
    path: Vec<KeySeg>,
}

impl Keys {
    /// The path one level down, under `key`.
    fn with(&self, key: &str) -> Keys {
        self.down(KeySeg::Key(key.to_string()))
    }

    /// The path one level down, at the array's element `index`.
    fn with_index(&self, index: usize) -> Keys {
        self.down(KeySeg::Index(index))
    }

    fn down(&self, seg: KeySeg) -> Keys {
        let mut path = self.path.clone();
        path.push(seg);
        Keys { path }
    }

    fn push(&self, errors: &mut Vec<SpecError>, message: String) {
        errors.push(SpecError {
            path: self.path.clone(),
            message,
        });
    }
}

fn validate_value(pointer: &str, v: &Value, at: &Keys, errors: &mut Vec<SpecError>) {
    match v {
        Value::Object(m) if m.keys().any(|k| k.starts_with('$')) => {
            if let Some(plain) = m.keys().find(|k| !k.starts_with('$')) {
                at.with(plain).push(
                    errors,
                    format!(
                        "match {pointer:?}: an object mixes operators with the plain key {plain:?}; \
                         use either only `$` operators or only literal keys"
                    ),
                );
                return;
            }
            for (op, operand) in m {
                let here = at.with(op);
                if let Err(e) = validate_op(pointer, op, operand, &here, errors) {
                    here.push(errors, format!("match {pointer:?}: {e}"));
                }
            }
        }
        Value::Object(m) => {
            for (k, child) in m {
                validate_value(
                    &format!("{pointer}/{}", escape_token(k)),
                    child,
                    &at.with(k),
                    errors,
                );
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                validate_value(&format!("{pointer}/{i}"), child, &at.with_index(i), errors);
            }
        }
        _ => {}
    }
}

/// Check one operand; nested expectations report their own errors into `errors`. The
/// error names the operator (`$regex: bad regex ...`), or says it is unknown.
fn validate_op(
    pointer: &str,
    op: &str,
    operand: &Value,
    at: &Keys,
    errors: &mut Vec<SpecError>,
) -> Result<(), String> {
    let named = |e: String| format!("{op}: {e}");
    match op {
        "$regex" => {
            let pat = operand.as_str().ok_or_else(|| {
                named(format!("needs a string pattern, got {}", compact(operand)))
            })?;
            Regex::new(pat)
                .map_err(|e| named(format!("bad regex /{pat}/: {}", regex_error(&e))))?;
            Ok(())
        }
        "$type" => match operand.as_str() {
            Some(t) if TYPE_NAMES.contains(&t) => Ok(()),
            _ => Err(named(format!(
                "needs one of {}, got {}",
                TYPE_NAMES.join("|"),
                compact(operand)
            ))),
        },
        "$present" => match operand {
            Value::Bool(_) => Ok(()),
            _ => Err(named(format!(
                "needs true or false, got {}",
                compact(operand)
            ))),
        },
        "$len" => match operand {
            Value::Number(n) if n.as_u64().is_some() => Ok(()),
            _ if operator_object(operand).is_some() => {
                validate_value(pointer, operand, at, errors);
                Ok(())
            }
            _ => Err(named(format!(
                "needs a non-negative integer or an operator object such as {{$ge: 1}}, got {}",
                compact(operand)
            ))),
        },
        "$gt" | "$ge" | "$lt" | "$le" => match operand {
            Value::Number(_) => Ok(()),
            _ => Err(named(format!("needs a number, got {}", compact(operand)))),
        },
        "$ne" => Ok(()),
        "$any" => match operand {
            Value::Array(alts) if !alts.is_empty() => {
                // The alternatives check the same value: the pointer stays, the path
                // names the alternative.
                for (i, alt) in alts.iter().enumerate() {
                    validate_value(pointer, alt, &at.with_index(i), errors);
                }
                Ok(())
            }
            _ => Err(named(format!(
                "needs a non-empty array of alternatives, got {}",
                compact(operand)
            ))),
        },
        "$contains" | "$not" => {
            validate_value(pointer, operand, at, errors);
            Ok(())
        }
        _ => Err(unknown_operator(op)),
    }
}

/// `unknown operator "$presnt" (did you mean "$present"?)`, or the list of operators
/// when none is close.
fn unknown_operator(op: &str) -> String {
    let hint = crate::suggest::hint(op, OPERATORS.iter().copied());
    if hint.is_empty() {
        format!("unknown operator {op:?} (known: {})", OPERATORS.join(" "))
    } else {
        format!("unknown operator {op:?}{hint}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn bare_key_is_top_level_pointer() {
        let f = check_matches(
            &spec(json!({"response": "success"})),
            &json!({"response": "failed"}),
        );
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].pointer, "/response");
        assert_eq!(f[0].expected, r#"== "success""#);
        assert_eq!(f[0].detail, r#"got "failed""#);
    }

    #[test]
    fn spec_errors_name_list_elements_by_index() {
        use KeySeg::{Index, Key};
        let key = |k: &str| Key(k.to_string());
        let errors = spec_errors(&spec(json!({
            "data": {"$any": [{"host": {"$presnt": true}}, {"host": {"$regex": "["}}]},
            "history": [{"itemid": 1}, {"itemid": {"$regx": "x"}}],
        })));
        let paths: Vec<Vec<KeySeg>> = errors.into_iter().map(|e| e.path).collect();
        assert_eq!(
            paths,
            vec![
                vec![
                    key("data"),
                    key("$any"),
                    Index(0),
                    key("host"),
                    key("$presnt")
                ],
                vec![
                    key("data"),
                    key("$any"),
                    Index(1),
                    key("host"),
                    key("$regex")
                ],
                vec![key("history"), Index(1), key("itemid"), key("$regx")],
            ]
        );
    }

    #[test]
    fn bare_key_with_slash_is_one_key() {
        let body = json!({"a/b": 1, "a": {"b": 2}});
        assert!(check_matches(&spec(json!({"a/b": 1})), &body).is_empty());
        assert!(check_matches(&spec(json!({"/a/b": 2})), &body).is_empty());
    }
}
