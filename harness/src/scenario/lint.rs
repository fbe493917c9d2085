//! Semantic checks of a loaded scenario against the message catalog: does the family
//! exist, does every version, does every kind exist in every version the step can run
//! in, is it sent by the right side, do the fixtures exist, is the reference peer known,
//! do matchers parse.
//!
//! Two severities, two functions: [`lint`] returns errors (the scenario cannot run as
//! written; `zbx-conform lint` exits non-zero), [`lint_warnings`] returns things that
//! are probably wrong but may be intended (a variable that must come from `--var` or the
//! environment). Warnings are `ScenarioError`s whose message starts with `"warning: "`,
//! so `Display` prints them like compiler warnings without a new type.

use super::loader::{read_text, LoadedScenario, ScenarioError};
use super::model::{Action, Expect, Message, Scenario, Spanned, Step};
use super::structure::top_key_location;
use super::vars::referenced_names;
use super::when::any_matches;
use crate::catalog::{compare_versions, Catalog};
use serde_json::Value;
use std::collections::BTreeSet;

/// Prefix of every warning message.
pub const WARNING_PREFIX: &str = "warning: ";

/// Variables the runner always sets.
pub const BUILTIN_VARS: &[&str] = &[
    "version",
    "run_id",
    "revision",
    "listen_addr",
    "listen_port",
    "listen_port_number",
    "peer",
];

/// Semantic checks against the catalog; empty when the scenario is fine.
pub fn lint(loaded: &LoadedScenario, catalog: &Catalog) -> Vec<ScenarioError> {
    let s = &loaded.scenario;
    let text = read_text(&loaded.path).unwrap_or_default();
    let mut l = Linter {
        loaded,
        catalog,
        out: Vec::new(),
    };
    let top = |key: &str| top_key_location(&text, key);

    let Some(fam) = catalog.family(&s.family) else {
        let known: Vec<&str> = catalog
            .families()
            .iter()
            .map(|f| f.family.as_str())
            .collect();
        l.push(
            top("family"),
            format!(
                "unknown family `{}` (known: {})",
                s.family,
                known.join(", ")
            ),
        );
        return l.out;
    };

    let plays = s.plays.as_str();
    if !fam.kinds.iter().any(|k| k.from == plays || k.to == plays) {
        let mut sides: BTreeSet<&str> = BTreeSet::new();
        for k in &fam.kinds {
            sides.insert(k.from.as_str());
            sides.insert(k.to.as_str());
        }
        l.push(
            top("plays"),
            format!(
                "`plays: {plays}` is not a side of {} (sides: {})",
                s.family,
                sides.into_iter().collect::<Vec<_>>().join(", ")
            ),
        );
    }

    let known_versions = catalog.versions(&s.family);
    let mut versions = Vec::new();
    for v in &s.versions {
        if known_versions.iter().any(|k| k == &v.value) {
            versions.push(v.value.clone());
        } else {
            l.push(
                (v.referenced.line(), v.referenced.column()),
                format!(
                    "version {} does not exist for {} (known: {})",
                    v.value,
                    s.family,
                    known_versions.join(", ")
                ),
            );
        }
    }

    if let Some(r) = &s.peer.reference {
        let refs = crate::reference::references();
        // An empty list means the roles module does not publish names: don't guess.
        if !refs.is_empty() && !refs.iter().any(|(n, _)| n == r) {
            l.push(
                top("peer"),
                format!(
                    "unknown reference peer `{r}` (known: {})",
                    refs.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ")
                ),
            );
        }
    }

    l.steps(&s.steps, &versions);
    l.out.sort_by_key(|e| (e.line, e.column));
    l.out.dedup();
    l.out
}

struct Linter<'a> {
    loaded: &'a LoadedScenario,
    catalog: &'a Catalog,
    out: Vec<ScenarioError>,
}

/// Location of a step or action.
type At = (u64, u64);

fn at<T>(s: &Spanned<T>) -> At {
    (s.referenced.line(), s.referenced.column())
}

/// Which direction a kind is used in.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Dir {
    /// We send it: the catalog's `from` must be the side we play.
    Send,
    /// The peer sends it: `from` must not be the side we play.
    Expect,
}

impl Linter<'_> {
    fn scenario(&self) -> &Scenario {
        &self.loaded.scenario
    }

    fn push(&mut self, (line, column): At, message: String) {
        self.out.push(ScenarioError {
            path: self.loaded.path.clone(),
            line,
            column,
            message,
        });
    }

    fn steps(&mut self, steps: &[Spanned<Step>], versions: &[String]) {
        for sp in steps {
            let here = at(sp);
            let step = &sp.value;
            // The versions this step can run in: the enclosing ones filtered by `when`.
            let applicable: Vec<String> = match &step.when {
                None => versions.to_vec(),
                Some(w) => {
                    let conds = w.version.to_vec();
                    versions
                        .iter()
                        .filter(|v| any_matches(&conds, v).unwrap_or(true))
                        .cloned()
                        .collect()
                }
            };
            if let Some(x) = &step.exchange {
                self.message(here, &x.send, &applicable);
                if let Some(e) = &x.expect {
                    self.expect(here, e, &applicable);
                }
                self.then(&x.then, &applicable);
            }
            if let Some(a) = &step.accept {
                self.expect(here, &a.expect, &applicable);
                for r in a.replies() {
                    self.message(here, r, &applicable);
                }
                self.then(&a.then, &applicable);
            }
            if let Some(r) = &step.repeat {
                self.steps(&r.steps, &applicable);
            }
        }
    }

    fn then(&mut self, actions: &[Spanned<Action>], versions: &[String]) {
        for sp in actions {
            let here = at(sp);
            if let Some(m) = &sp.value.send {
                self.message(here, m, versions);
            }
            if let Some(e) = &sp.value.expect {
                self.expect(here, e, versions);
            }
        }
    }

    fn message(&mut self, here: At, m: &Message, versions: &[String]) {
        if let Some(k) = &m.kind {
            self.kind(here, k, Dir::Send, versions);
        }
        if let Some(f) = &m.fixture {
            // Templated fixture names are resolved at run time.
            if !f.contains("${") {
                let family = self.scenario().family.clone();
                let missing: Vec<&String> = versions
                    .iter()
                    .filter(|v| !self.catalog.fixture_path(&family, v, f).is_file())
                    .collect();
                if !missing.is_empty() {
                    let shown = self.catalog.fixture_path(&family, missing[0], f);
                    let shown = shown
                        .strip_prefix(self.catalog.root())
                        .map(|p| p.to_path_buf())
                        .unwrap_or(shown);
                    self.push(
                        here,
                        format!(
                            "fixture `{f}` not found for {family} {} (expected {})",
                            join(&missing),
                            shown.display()
                        ),
                    );
                }
            }
        }
    }

    fn expect(&mut self, here: At, e: &Expect, versions: &[String]) {
        if let Some(k) = &e.kind {
            self.kind(here, k, Dir::Expect, versions);
        }
        if let Err(msg) = crate::check::matcher::validate_spec(&neutralise_templates(&e.matches)) {
            self.push(here, format!("invalid `match`: {msg}"));
        }
    }

    fn kind(&mut self, here: At, kind: &str, dir: Dir, versions: &[String]) {
        let family = self.scenario().family.clone();
        let plays = self.scenario().plays.as_str();
        let Some(any) = self.catalog.kind_any_version(&family, kind) else {
            let hint = self
                .closest_kind(&family, kind)
                .map(|k| format!(" (did you mean `{k}`?)"))
                .unwrap_or_default();
            self.push(
                here,
                format!("unknown kind `{kind}` in {family}{hint}; `zbx-conform catalog --family {family}` lists the kinds"),
            );
            return;
        };
        let missing: Vec<&String> = versions
            .iter()
            .filter(|v| self.catalog.kind(&family, v, kind).is_none())
            .collect();
        if !missing.is_empty() {
            let mut exists: Vec<String> = self
                .catalog
                .family(&family)
                .map(|f| {
                    f.kinds
                        .iter()
                        .filter(|k| k.kind == kind)
                        .flat_map(|k| k.versions.iter().cloned())
                        .collect()
                })
                .unwrap_or_default();
            exists.sort_by(|a, b| compare_versions(a, b));
            exists.dedup();
            self.push(
                here,
                format!(
                    "kind `{kind}` does not exist in {family} {} (it exists in: {}); restrict the step with `when: {{ version: ... }}`",
                    join(&missing),
                    exists.join(", ")
                ),
            );
        }
        match dir {
            Dir::Send if any.from != plays => self.push(
                here,
                format!(
                    "kind `{kind}` is sent by the {} to the {}, but this scenario plays {plays}: it cannot send it",
                    any.from, any.to
                ),
            ),
            Dir::Expect if any.from == plays => self.push(
                here,
                format!(
                    "kind `{kind}` is sent by the {} (the side this scenario plays), so it cannot be expected from the peer",
                    any.from
                ),
            ),
            _ => {}
        }
    }

    /// The known kind with the smallest edit distance, if it is close enough to be a typo.
    fn closest_kind(&self, family: &str, kind: &str) -> Option<String> {
        let fam = self.catalog.family(family)?;
        fam.kinds
            .iter()
            .map(|k| (edit_distance(&k.kind, kind), &k.kind))
            .filter(|(d, _)| *d <= 3)
            .min()
            .map(|(_, k)| k.clone())
    }
}

fn join(v: &[&String]) -> String {
    v.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
}

/// Levenshtein distance, for "did you mean" hints on short names.
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// Warnings: variables referenced without a default that neither the runner, the
/// scenario's `vars:`, nor an earlier `capture` sets. They must then come from `--var`
/// or the environment, which is fine for `${PROXY_ADDR}` but usually a typo otherwise.
pub fn lint_warnings(loaded: &LoadedScenario, _catalog: &Catalog) -> Vec<ScenarioError> {
    let s = &loaded.scenario;
    let text = read_text(&loaded.path).unwrap_or_default();
    let mut w = VarWalk {
        known: BUILTIN_VARS.iter().map(|v| v.to_string()).collect(),
        found: Vec::new(),
    };
    w.known.extend(s.vars.keys().cloned());
    for v in s.vars.values() {
        w.text(top_key_location(&text, "vars"), v);
    }
    if let Some(a) = &s.peer.address {
        w.text(top_key_location(&text, "peer"), a);
    }
    if let Some(a) = &s.listen {
        w.text(top_key_location(&text, "listen"), a);
    }
    w.steps(&s.steps);
    let mut out: Vec<ScenarioError> = Vec::new();
    for ((line, column), name) in w.found {
        let e = ScenarioError {
            path: loaded.path.clone(),
            line,
            column,
            message: format!(
                "{WARNING_PREFIX}variable ${{{name}}} has no default and is not set by the scenario (vars, capture) or the runner; it must come from --var {name}=VALUE or the environment (or write ${{{name}:-default}})"
            ),
        };
        if !out.contains(&e) {
            out.push(e);
        }
    }
    out
}

struct VarWalk {
    known: BTreeSet<String>,
    found: Vec<(At, String)>,
}

impl VarWalk {
    fn text(&mut self, here: At, s: &str) {
        for name in referenced_names(s) {
            if !self.known.contains(&name) {
                self.found.push((here, name));
            }
        }
    }

    fn value(&mut self, here: At, v: &Value) {
        match v {
            Value::String(s) => self.text(here, s),
            Value::Array(a) => a.iter().for_each(|x| self.value(here, x)),
            Value::Object(m) => m.iter().for_each(|(k, x)| {
                self.text(here, k);
                self.value(here, x);
            }),
            _ => {}
        }
    }

    fn opt(&mut self, here: At, s: &Option<String>) {
        if let Some(s) = s {
            self.text(here, s);
        }
    }

    fn steps(&mut self, steps: &[Spanned<Step>]) {
        for sp in steps {
            let here = at(sp);
            let st = &sp.value;
            if let Some(x) = &st.exchange {
                self.opt(here, &x.connect);
                self.message(here, &x.send);
                if let Some(e) = &x.expect {
                    self.expect(here, e);
                }
                self.then(&x.then);
            }
            if let Some(a) = &st.accept {
                self.opt(here, &a.listen);
                self.expect(here, &a.expect);
                for r in a.replies() {
                    self.message(here, r);
                }
                self.then(&a.then);
            }
            if let Some(r) = &st.repeat {
                self.steps(&r.steps);
            }
        }
    }

    fn then(&mut self, actions: &[Spanned<Action>]) {
        for sp in actions {
            let here = at(sp);
            if let Some(m) = &sp.value.send {
                self.message(here, m);
            }
            if let Some(e) = &sp.value.expect {
                self.expect(here, e);
            }
        }
    }

    fn message(&mut self, here: At, m: &Message) {
        self.opt(here, &m.fixture);
        self.opt(here, &m.text);
        if let Some(j) = &m.json {
            self.value(here, j);
        }
        for (k, v) in &m.set {
            self.text(here, k);
            self.value(here, v);
        }
        for r in &m.remove {
            self.text(here, r);
        }
    }

    fn expect(&mut self, here: At, e: &Expect) {
        self.opt(here, &e.text);
        for (k, v) in &e.matches {
            self.text(here, k);
            self.value(here, v);
        }
        // Captures become known after the expectation that defines them.
        self.known.extend(e.capture.keys().cloned());
    }
}

/// Matchers may use variables (`$gt: "${first_id}"`, `$regex: "^${version}"`) whose values
/// are only known at run time. For syntax checks, a whole `${x}` becomes the number 0
/// (valid wherever a literal or number is) and a `${x}` inside text becomes `x`.
fn neutralise_templates(
    spec: &serde_json::Map<String, serde_json::Value>,
) -> serde_json::Map<String, serde_json::Value> {
    use serde_json::Value;
    fn walk(v: &Value) -> Value {
        match v {
            Value::String(s)
                if s.starts_with("${") && s.ends_with('}') && s.matches("${").count() == 1 =>
            {
                Value::from(0)
            }
            Value::String(s) if s.contains("${") => {
                let re = regex::Regex::new(r"\$\{[^}]*\}").expect("static regex");
                Value::String(re.replace_all(s, "x").into_owned())
            }
            Value::Array(a) => Value::Array(a.iter().map(walk).collect()),
            Value::Object(m) => {
                Value::Object(m.iter().map(|(k, v)| (k.clone(), walk(v))).collect())
            }
            other => other.clone(),
        }
    }
    spec.iter().map(|(k, v)| (k.clone(), walk(v))).collect()
}

#[cfg(test)]
mod tests {
    use super::edit_distance;

    #[test]
    fn distance() {
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("", "ab"), 2);
        assert_eq!(edit_distance("same", "same"), 0);
    }
}
