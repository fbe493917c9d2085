//! Semantic checks of a loaded scenario against the message catalog: does the family
//! exist, does every version, does every kind exist in every version the step can run
//! in (in its own family, or in the family it names as `family:kind`), is it sent by the
//! right side, do the fixtures exist, is the reference peer known, do matchers parse,
//! does a snapshot keep only volatile keys; and, as warnings, variables nothing sets.
//!
//! Findings are typed ([`Finding`], with a [`Severity`]): an error means the scenario
//! cannot run as written (`zbx-conform lint` exits non-zero, `run` refuses it), a
//! warning is probably wrong but may be intended (a variable that must come from
//! `--var` or the environment).
//!
//! Everything lint knows comes from its parameters — the catalog and the names of the
//! built-in reference peers — so this module depends on nothing above `scenario/`.

use super::finding::{Finding, Location};
use super::loader::{read_text, LoadedScenario};
use super::locate::{Seg, Text};
use super::model::{Action, Expect, Message, Scenario, Spanned, Step, Versions};
use super::names::split_qualified;
use super::structure::top_key_location;
use super::vars::referenced_names;
use crate::catalog::{compare_versions, Catalog};
use crate::check::matcher::spec_errors;
use crate::suggest;
use serde_json::Value;
use std::collections::BTreeSet;

/// Variables the runner always sets.
pub const BUILTIN_VARS: &[&str] = &[
    "version",
    "run_id",
    "revision",
    "listen_addr",
    "listen_port",
    "listen_port_number",
    "peer",
    "test_psk_file",
    "test_wrong_psk_file",
    "tls_connect_type",
    "tls_host_accept",
    "tls_host_connect",
    "tls_host_psk_identity",
    "tls_host_psk",
    "tls_autoreg_accept",
    "tls_psk_identity",
    "tls_psk",
];

/// Every finding of a scenario, errors and warnings, in file order; empty when the
/// scenario is fine. `references` are the names a scenario's `peer.reference` may take
/// (the runner's built-in peers; an empty list checks nothing).
pub fn lint(loaded: &LoadedScenario, catalog: &Catalog, references: &[&str]) -> Vec<Finding> {
    let text = read_text(&loaded.path).unwrap_or_default();
    let mut l = Linter {
        loaded,
        catalog,
        lines: Text::new(&text),
        out: Vec::new(),
    };
    if let Some(versions) = l.top_level(&text, references) {
        let steps = &loaded.scenario.steps;
        l.steps(steps, &versions);
    }
    l.out.extend(variable_warnings(loaded, &text));
    // File order; at one place, errors before warnings.
    l.out.sort_by(|a, b| {
        a.location
            .cmp(&b.location)
            .then(b.severity.cmp(&a.severity))
    });
    l.out.dedup();
    l.out
}

/// The errors of a scenario only (what `run` refuses a scenario for).
pub fn lint_errors(
    loaded: &LoadedScenario,
    catalog: &Catalog,
    references: &[&str],
) -> Vec<Finding> {
    let mut all = lint(loaded, catalog, references);
    all.retain(Finding::is_error);
    all
}

struct Linter<'a> {
    loaded: &'a LoadedScenario,
    catalog: &'a Catalog,
    /// The file's text by lines, to find the keys the model keeps no position for.
    lines: Text,
    out: Vec<Finding>,
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

impl<'a> Linter<'a> {
    fn scenario(&self) -> &Scenario {
        &self.loaded.scenario
    }

    fn push(&mut self, (line, column): At, message: String) {
        let at = Location::new(&self.loaded.path, line, column);
        self.out.push(Finding::error(at, message));
    }

    /// Where `ctx` + `key` is written below `here` (a step or action): the key, or its
    /// value with `value`; the deepest key found when it is not.
    fn find(&self, here: At, ctx: &[&str], key: &[&str], value: bool) -> At {
        let path: Vec<&str> = ctx.iter().chain(key).copied().collect();
        self.lines.locate(here, &path, value)
    }

    /// The top-level checks: family, side, versions, reference peer. Returns the
    /// versions the steps are checked for, or `None` when the family is unknown (then
    /// nothing else can be checked).
    fn top_level(&mut self, text: &str, references: &[&str]) -> Option<Vec<String>> {
        let loaded = self.loaded;
        let s = &loaded.scenario;
        let top = |key: &str| top_key_location(text, key);
        let Some(fam) = self.catalog.family(&s.family) else {
            let known: Vec<&str> = self
                .catalog
                .families()
                .iter()
                .map(|f| f.family.as_str())
                .collect();
            let message = format!(
                "unknown family `{}`{} (known: {})",
                s.family,
                suggest::hint(&s.family, known.iter().copied()),
                known.join(", ")
            );
            self.push(top("family"), message);
            return None;
        };
        let plays = s.plays.as_str();
        if !fam.kinds.iter().any(|k| k.from == plays || k.to == plays) {
            let mut sides: BTreeSet<&str> = BTreeSet::new();
            for k in &fam.kinds {
                sides.insert(k.from.as_str());
                sides.insert(k.to.as_str());
            }
            let message = format!(
                "`plays: {plays}` is not a side of {} (sides: {})",
                s.family,
                sides.into_iter().collect::<Vec<_>>().join(", ")
            );
            self.push(top("plays"), message);
        }
        if let Some(r) = &s.peer.reference {
            if !references.is_empty() && !references.contains(&r.as_str()) {
                let message = format!(
                    "unknown reference peer `{r}`{} (known: {})",
                    suggest::hint(r, references.iter().copied()),
                    references.join(", ")
                );
                self.push(top("peer"), message);
            }
        }
        Some(self.versions())
    }

    /// The scenario's versions that exist for its family; each one that does not, or a
    /// condition that matches none, is an error.
    fn versions(&mut self) -> Vec<String> {
        let loaded = self.loaded;
        let s = &loaded.scenario;
        let family = s.family.clone();
        let known = self.catalog.versions(&family);
        let resolved = s.versions.value.resolve(&known);
        match &s.versions.value {
            Versions::List(list) => {
                let missing: Vec<(At, String)> = list
                    .iter()
                    .filter(|v| !known.contains(&v.value.trim().to_string()))
                    .map(|v| (at(v), v.value.clone()))
                    .collect();
                for (here, v) in missing {
                    let message = format!(
                        "version {v} does not exist for {family} (known: {})",
                        known.join(", ")
                    );
                    self.push(here, message);
                }
                resolved.into_iter().filter(|v| known.contains(v)).collect()
            }
            Versions::Range(cond) => {
                if resolved.is_empty() {
                    let message = format!(
                        "`versions: {cond:?}` matches no version of {family} (known: {})",
                        known.join(", ")
                    );
                    self.push(at(&s.versions), message);
                }
                resolved
            }
        }
    }

    fn steps(&mut self, steps: &[Spanned<Step>], versions: &[String]) {
        for sp in steps {
            let here = at(sp);
            let step = &sp.value;
            // The versions this step can run in: the enclosing ones filtered by `when`.
            let applicable: Vec<String> = match &step.when {
                None => versions.to_vec(),
                Some(w) => versions.iter().filter(|v| w.runs_at(v)).cloned().collect(),
            };
            if let Some(x) = &step.exchange {
                self.message(here, &["exchange", "send"], &x.send, &applicable);
                if let Some(e) = &x.expect {
                    self.expect(here, &["exchange", "expect"], e, &applicable);
                }
                self.then(&x.then, &applicable);
            }
            if let Some(a) = &step.accept {
                self.expect(here, &["accept", "expect"], &a.expect, &applicable);
                if let Some(r) = &a.reply {
                    self.message(here, &["accept", "reply"], r, &applicable);
                }
                for (field, map) in [
                    ("reply_by", &a.reply_by),
                    ("answer_others", &a.answer_others),
                ] {
                    for (name, r) in map {
                        self.message(here, &["accept", field, name], r, &applicable);
                    }
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
                self.message(here, &["send"], m, versions);
            }
            if let Some(e) = &sp.value.expect {
                self.expect(here, &["expect"], e, versions);
            }
        }
    }

    /// Whether `name` (plain or `family:kind`) names a kind of the catalog in some
    /// version: then a fixture of that name declares that kind.
    fn names_kind(&self, name: &str) -> bool {
        let (family, kind) = split_qualified(name);
        let family = family.unwrap_or(&self.scenario().family);
        self.catalog.kind_any_version(family, kind).is_some()
    }

    /// `ctx` is the path of keys from `here` to the message (`exchange.send`).
    fn message(&mut self, here: At, ctx: &[&str], m: &Message, versions: &[String]) {
        if let Some(k) = m.declared_kind(|f| self.names_kind(f)) {
            // Without `kind:`, the fixture's name is the kind.
            let key = if m.kind.is_some() { "kind" } else { "fixture" };
            let at_kind = self.find(here, ctx, &[key], true);
            self.kind(at_kind, &k, Dir::Send, versions);
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
                    let hint = self.closest_fixture(&family, missing[0], f);
                    let at_fixture = self.find(here, ctx, &["fixture"], true);
                    self.push(
                        at_fixture,
                        format!(
                            "fixture `{f}` not found for {family} {}{hint} (expected {})",
                            join(&missing),
                            shown.display()
                        ),
                    );
                }
            }
        }
    }

    /// `ctx` is the path of keys from `here` to the expectation (`exchange.expect`).
    fn expect(&mut self, here: At, ctx: &[&str], e: &Expect, versions: &[String]) {
        if let Some(k) = &e.kind {
            let at_kind = self.find(here, ctx, &["kind"], true);
            self.kind(at_kind, k, Dir::Expect, versions);
        }
        let spec = neutralise_templates(e.matches.map());
        for err in spec_errors(&spec) {
            // Each problem at its own key: the operator, or the pointer it is under, also
            // inside a list (an `$any` alternative, an element of a literal array).
            let mut path = Seg::keys(ctx);
            path.push(Seg::Key("match"));
            path.extend(err.path.iter().map(Seg::from));
            let at_key = self.lines.locate_path(here, &path, false);
            self.push(at_key, format!("invalid `match`: {}", err.message));
        }
        self.volatile_keep(here, ctx, e);
    }

    /// `volatile.keep` entries must be volatile in the family, or keeping them means
    /// nothing (a typo such as `verison` would silently compare nothing more). `ctx` is
    /// the path of keys from `here` to the expectation; each entry is reported at
    /// itself, found by its index (the `keep` key when it cannot be found).
    fn volatile_keep(&mut self, here: At, ctx: &[&str], e: &Expect) {
        let Some(spec) = &e.volatile else { return };
        let family = self.scenario().family.clone();
        let listed = self
            .catalog
            .family(&family)
            .map(|f| f.volatile.clone())
            .unwrap_or_default();
        for (i, k) in spec.keep.iter().enumerate() {
            if listed.contains(k) {
                continue;
            }
            let mut path = Seg::keys(ctx);
            path.extend([Seg::Key("volatile"), Seg::Key("keep"), Seg::Index(i)]);
            let at_entry = self.lines.locate_path(here, &path, false);
            let message = format!(
                "`volatile.keep` entry `{k}` is not a volatile key of {family}, so there is nothing to keep (volatile: {})",
                listed.join(", ")
            );
            self.push(at_entry, message);
        }
    }

    /// Check a kind as written (`kind` or `family:kind`) for every version of the step.
    /// A kind of another family is only checked for existence: its sides are that
    /// family's, which the scenario's `plays` does not speak for.
    fn kind(&mut self, here: At, written: &str, dir: Dir, versions: &[String]) {
        let own = self.scenario().family.clone();
        let (qualifier, kind) = split_qualified(written);
        let family = qualifier.unwrap_or(&own).to_string();
        if self.catalog.family(&family).is_none() {
            let message = format!("unknown family `{family}` in kind `{written}`");
            self.push(here, message);
            return;
        }
        let Some(any) = self.catalog.kind_any_version(&family, kind) else {
            let close: Vec<String> = self
                .closest_kinds(&family, kind)
                .into_iter()
                .map(|k| match qualifier {
                    Some(f) => format!("{f}:{k}"),
                    None => k,
                })
                .collect();
            let hint = suggest::phrase(&close);
            self.push(
                here,
                format!("unknown kind `{kind}` in {family}{hint}; `zbx-conform catalog --family {family}` lists the kinds"),
            );
            return;
        };
        let (from, to) = (any.from.clone(), any.to.clone());
        self.kind_versions(here, &family, kind, versions);
        if family == own {
            self.direction(here, kind, dir, &from, &to);
        }
    }

    /// The versions of the step in which `kind` does not exist, with where it does.
    fn kind_versions(&mut self, here: At, family: &str, kind: &str, versions: &[String]) {
        let missing: Vec<&String> = versions
            .iter()
            .filter(|v| self.catalog.kind(family, v, kind).is_none())
            .collect();
        if missing.is_empty() {
            return;
        }
        let mut exists: Vec<String> = self
            .catalog
            .family(family)
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
        let message = format!(
            "kind `{kind}` does not exist in {family} {} (it exists in: {}); restrict the step with `when: {{ version: ... }}`",
            join(&missing),
            exists.join(", ")
        );
        self.push(here, message);
    }

    /// We send what our side sends and expect what the other side sends.
    fn direction(&mut self, here: At, kind: &str, dir: Dir, from: &str, to: &str) {
        let plays = self.scenario().plays.as_str();
        match dir {
            Dir::Send if from != plays => self.push(
                here,
                format!(
                    "kind `{kind}` is sent by the {from} to the {to}, but this scenario plays {plays}: it cannot send it"
                ),
            ),
            Dir::Expect if from == plays => self.push(
                here,
                format!(
                    "kind `{kind}` is sent by the {from} (the side this scenario plays), so it cannot be expected from the peer"
                ),
            ),
            _ => {}
        }
    }

    /// The known kinds of `family` close enough to `kind` to be what was meant.
    fn closest_kinds(&self, family: &str, kind: &str) -> Vec<String> {
        let Some(fam) = self.catalog.family(family) else {
            return Vec::new();
        };
        suggest::closest(kind, fam.kinds.iter().map(|k| k.kind.as_str()))
            .into_iter()
            .map(str::to_string)
            .collect()
    }

    /// The hint for a fixture name not found at `version`: the closest fixture names
    /// of that family and version (`family:name` compares within that family).
    fn closest_fixture(&self, family: &str, version: &str, written: &str) -> String {
        let (qualifier, name) = split_qualified(written);
        let names = self
            .catalog
            .fixture_names(qualifier.unwrap_or(family), version);
        let close: Vec<String> = suggest::closest(name, names.iter().map(String::as_str))
            .into_iter()
            .map(|n| match qualifier {
                Some(f) => format!("{f}:{n}"),
                None => n.to_string(),
            })
            .collect();
        suggest::phrase(&close)
    }
}

fn join(v: &[&String]) -> String {
    v.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
}

/// Warnings: variables referenced without a default that neither the runner, the
/// scenario's `vars:`, nor an earlier `capture` sets. They must then come from `--var`
/// or the environment, which is fine for `${PROXY_ADDR}` but usually a typo otherwise.
fn variable_warnings(loaded: &LoadedScenario, text: &str) -> Vec<Finding> {
    let s = &loaded.scenario;
    let mut w = VarWalk {
        known: BUILTIN_VARS.iter().map(|v| v.to_string()).collect(),
        found: Vec::new(),
    };
    w.known.extend(s.vars.keys().cloned());
    for v in s.vars.values() {
        w.text(top_key_location(text, "vars"), v);
    }
    if let Some(a) = &s.peer.address {
        w.text(top_key_location(text, "peer"), a);
    }
    if let Some(a) = &s.listen {
        w.text(top_key_location(text, "listen"), a);
    }
    w.steps(&s.steps);
    let lines = Text::new(text);
    w.found
        .into_iter()
        .map(|(here, name)| {
            // At the reference itself when it is written in the block, else the block.
            let (line, column) =
                lines.find_text(here, &format!("${{{name}}}")).unwrap_or(here);
            Finding::warning(
                Location::new(&loaded.path, line, column),
                format!(
                    "variable ${{{name}}} has no default and is not set by the scenario (vars, capture) or the runner; it must come from --var {name}=VALUE or the environment (or write ${{{name}:-default}})"
                ),
            )
        })
        .collect()
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
        for (k, v) in e.matches.iter() {
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
