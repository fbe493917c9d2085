//! Structural rules that serde cannot express: exactly one action per step, exactly one
//! body source per message, exclusive expectation forms, well-formed pointers, hex,
//! version conditions and variable names.
//!
//! These rules need no catalog, so they run at load time: a file that breaks them is
//! not a scenario. Each problem is reported at the innermost place known: a span the
//! model keeps (a `match` key, the old `frame.compress`, a `versions` entry or value),
//! else the key or list entry at fault found in the file text (see [`super::locate`]; a
//! list entry by its index), else the step (or `then` action) it belongs to.

use super::locate::Seg;
use super::model::{
    Action, Expect, FrameSpec, Message, OneOrMany, Scenario, Spanned, Step, Versions,
};
use super::when::{parse_version, VersionCondition};

/// Largest `repeat.times`: enough for soak tests, small enough that a typo cannot make
/// a run last for days.
pub const MAX_REPEAT: u32 = 10_000;

/// One structural problem at a location (1-based; 0 when unknown).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub line: u64,
    pub column: u64,
    pub message: String,
}

/// Check the whole scenario; `text` is the file content, used to locate top-level keys
/// that carry no span. Problems come back in file order.
pub fn check(scenario: &Scenario, text: &str) -> Vec<Problem> {
    let mut c = Checker {
        text,
        lines: super::locate::Text::new(text),
        out: Vec::new(),
    };
    c.scenario(scenario);
    c.out.sort_by_key(|p| (p.line, p.column));
    c.out
}

struct Checker<'a> {
    text: &'a str,
    /// The text by lines, to find nested keys (see [`super::locate`]).
    lines: super::locate::Text,
    out: Vec<Problem>,
}

/// Where a problem is reported.
#[derive(Clone, Copy)]
struct At {
    line: u64,
    column: u64,
}

impl<T> From<&Spanned<T>> for At {
    fn from(s: &Spanned<T>) -> At {
        At {
            line: s.referenced.line(),
            column: s.referenced.column(),
        }
    }
}

impl Checker<'_> {
    fn push(&mut self, at: At, message: impl Into<String>) {
        self.out.push(Problem {
            line: at.line,
            column: at.column,
            message: message.into(),
        });
    }

    fn top(&self, key: &str) -> At {
        let (line, column) = top_key_location(self.text, key);
        At { line, column }
    }

    /// Where the keys `path` are written below `at` (a step or action): the last key,
    /// or its value with `value`; the deepest key found when they are not.
    fn key(&self, at: At, path: &[&str], value: bool) -> At {
        let (line, column) = self.lines.locate((at.line, at.column), path, value);
        At { line, column }
    }

    /// Where item `index` of the list at the keys `path` below `at` is written. A list
    /// entry has no span of its own and its text may also appear in an earlier entry
    /// (`/a` in `/a/b`), so it is found by its place in the list; when it cannot be,
    /// the list's key (or the deepest key found) stands in.
    fn item(&self, at: At, path: &[&str], index: usize) -> At {
        let mut full = Seg::keys(path);
        full.push(Seg::Index(index));
        let (line, column) = self.lines.locate_path((at.line, at.column), &full, false);
        At { line, column }
    }

    /// Where entry `index` of a value written alone or as a list (`when: { tls: psk }`
    /// or `when: { tls: [psk, cert] }`) is: the value itself, or the list's item.
    fn entry<T>(&self, at: At, path: &[&str], v: &OneOrMany<T>, index: usize) -> At {
        match v {
            OneOrMany::One(_) => self.key(at, path, true),
            OneOrMany::Many(_) => self.item(at, path, index),
        }
    }

    fn scenario(&mut self, s: &Scenario) {
        if s.name.trim().is_empty() {
            let at = self.top("name");
            self.push(at, "`name` must not be empty");
        }
        if s.family.trim().is_empty() {
            let at = self.top("family");
            self.push(at, "`family` must not be empty");
        }
        self.versions(&s.versions);
        for name in s.vars.keys() {
            if !is_var_name(name) {
                let at = self.top("vars");
                self.push(
                    at,
                    format!("invalid variable name {name:?} in `vars` (use letters, digits and _, not starting with a digit)"),
                );
            }
        }
        if let Some(t) = &s.tls {
            self.tls(t);
        }
        if s.steps.is_empty() {
            let at = self.top("steps");
            self.push(at, "`steps` must contain at least one step");
        }
        self.steps(&s.steps);
    }

    /// A `tls:` block's values that need no variable: the modes are Zabbix's words, the
    /// PSK identity fits Zabbix's limits, the accept list is not empty. (Files are read
    /// when a step runs: their names usually come from variables.)
    fn tls(&mut self, t: &super::model::TlsSpec) {
        use crate::transport::tls::{check_identity, TlsMode};
        for (field, v) in t.checkable() {
            if v.value.contains("${") {
                continue;
            }
            let problem = match field {
                "psk_identity" => check_identity(&v.value).err().map(|e| e.to_string()),
                _ => TlsMode::parse(&v.value).err(),
            };
            if let Some(p) = problem {
                self.push(At::from(v), format!("invalid `tls.{field}`: {p}"));
            }
        }
        if t.accept.as_ref().is_some_and(|a| a.is_empty()) {
            let at = self.top("tls");
            self.push(
                at,
                "`tls.accept` must list at least one of unencrypted, psk, cert",
            );
        }
    }

    /// `versions`: a non-empty list of `major.minor` versions, or one version condition.
    fn versions(&mut self, versions: &Spanned<Versions>) {
        let at = At::from(versions);
        match &versions.value {
            Versions::List(list) if list.is_empty() => self.push(
                at,
                "`versions` must list at least one protocol version, e.g. [\"6.0\"], or be a condition such as \">=5.4\"",
            ),
            Versions::List(list) => {
                for v in list {
                    if let Err(e) = parse_version(v.value.trim()) {
                        self.push(At::from(v), format!("invalid entry in `versions`: {e}"));
                    } else if v.value.trim().split('.').count() != 2 {
                        self.push(
                            At::from(v),
                            format!(
                                "invalid entry in `versions`: {:?} is not a version like 6.0 (major.minor)",
                                v.value
                            ),
                        );
                    }
                }
            }
            Versions::Range(cond) => {
                if let Err(e) = VersionCondition::parse(cond) {
                    self.push(at, format!("in `versions`: {e}; or give a list such as [\"6.0\"]"));
                }
            }
        }
    }

    fn steps(&mut self, steps: &[Spanned<Step>]) {
        for st in steps {
            self.step(st);
        }
    }

    fn step(&mut self, sp: &Spanned<Step>) {
        let at = At::from(sp);
        let step = &sp.value;
        match step.action_count() {
            1 => {}
            0 => self.push(
                at,
                "step has no action: give exactly one of `exchange`, `accept`, `repeat`, `sleep`",
            ),
            _ => {
                let set: Vec<&str> = [
                    ("exchange", step.exchange.is_some()),
                    ("accept", step.accept.is_some()),
                    ("repeat", step.repeat.is_some()),
                    ("sleep", step.sleep.is_some()),
                ]
                .iter()
                .filter(|(_, on)| *on)
                .map(|(n, _)| *n)
                .collect();
                self.push(
                    at,
                    format!(
                        "step has {} actions ({}): give exactly one per step",
                        set.len(),
                        set.iter()
                            .map(|n| format!("`{n}`"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                );
            }
        }
        self.requirements(at, step);
        if let Some(t) = &step.tls {
            if step.exchange.is_none() && step.accept.is_none() {
                self.push(at, "`tls` applies to `exchange` and `accept` steps only");
            }
            self.tls(t);
        }
        if let Some(w) = &step.when {
            let at_when = self.key(at, &["when"], false);
            if w.version.as_ref().is_some_and(|v| v.to_vec().is_empty()) {
                self.push(
                    self.key(at, &["when", "version"], false),
                    "`when.version` must list at least one condition",
                );
            }
            if w.version.is_none() && w.tls.is_none() {
                self.push(at_when, "`when` needs `version`, `tls` or both");
            }
            if let Some(version) = &w.version {
                for (i, c) in version.to_vec().iter().enumerate() {
                    if let Err(e) = VersionCondition::parse(c) {
                        self.push(
                            self.entry(at, &["when", "version"], version, i),
                            format!("in `when`: {e}"),
                        );
                    }
                }
            }
            if let Some(tls) = &w.tls {
                for (i, t) in tls.to_vec().iter().enumerate() {
                    if let Err(e) = crate::transport::tls::TlsMode::parse(t) {
                        self.push(
                            self.entry(at, &["when", "tls"], tls, i),
                            format!("in `when.tls`: {e}"),
                        );
                    }
                }
            }
        }
        if let Some(x) = &step.exchange {
            self.message(at, &["exchange", "send"], "exchange.send", &x.send);
            if let Some(e) = &x.expect {
                self.expect(at, &["exchange", "expect"], "exchange.expect", e);
                if e.refused.is_some() && !x.then.is_empty() {
                    self.push(
                        self.key(at, &["exchange", "then"], false),
                        "`exchange.expect` has `refused`: a refused connection has no `then` (remove it)".to_string(),
                    );
                }
            }
            self.then(&x.then);
        }
        if let Some(a) = &step.accept {
            self.expect(at, &["accept", "expect"], "accept.expect", &a.expect);
            if let Some(r) = &a.reply {
                self.message(at, &["accept", "reply"], "accept.reply", r);
            }
            for (field, map) in [
                ("reply_by", &a.reply_by),
                ("answer_others", &a.answer_others),
            ] {
                for (name, r) in map {
                    let ctx = format!("accept.{field}");
                    self.message(at, &["accept", field, name], &ctx, r);
                }
            }
            if !a.answer_others.is_empty() && !a.others.skips() {
                self.push(
                    self.key(at, &["accept", "answer_others"], false),
                    "`accept.answer_others` only applies with `others: skip`",
                );
            }
            self.then(&a.then);
        }
        if let Some(r) = &step.retry {
            if step.exchange.is_none() && step.accept.is_none() {
                self.push(at, "`retry` applies only to `exchange` and `accept` steps");
            }
            if r.within.0.is_zero() {
                self.push(
                    self.key(at, &["retry", "within"], true),
                    "`retry.within` must be longer than 0",
                );
            }
            if r.every.is_some_and(|e| e.0.is_zero() || e.0 > r.within.0) {
                self.push(
                    self.key(at, &["retry", "every"], true),
                    "`retry.every` must be longer than 0 and not longer than `retry.within`",
                );
            }
        }
        if let Some(r) = &step.repeat {
            if r.times == 0 || r.times > MAX_REPEAT {
                self.push(
                    self.key(at, &["repeat", "times"], true),
                    format!(
                        "`repeat.times` must be between 1 and {MAX_REPEAT}, got {}",
                        r.times
                    ),
                );
            }
            if r.steps.is_empty() {
                self.push(
                    self.key(at, &["repeat", "steps"], false),
                    "`repeat.steps` must contain at least one step",
                );
            }
            self.steps(&r.steps);
        }
    }

    /// `requirement:` ids are short names for people and CI tools (`PROXY-DATA-ACK`):
    /// letters, digits, `-`, `_`, `.`, so they survive every report format unquoted.
    fn requirements(&mut self, step_at: At, step: &Step) {
        let at = self.key(step_at, &["requirement"], false);
        if step.requirement.is_some() && step.requirements().is_empty() {
            self.push(at, "`requirement` must name at least one requirement id");
        }
        for (i, id) in step.requirements().iter().enumerate() {
            if let Err(e) = requirement_id(id) {
                // An id of a list at itself; an id written alone is no list, so `item`
                // returns the `requirement` key.
                self.push(
                    self.item(step_at, &["requirement"], i),
                    format!("`requirement` {id:?}: {e}"),
                );
            }
        }
    }

    fn then(&mut self, actions: &[Spanned<Action>]) {
        for sp in actions {
            let at = At::from(sp);
            let a = &sp.value;
            match (&a.send, &a.expect) {
                (Some(m), None) => self.message(at, &["send"], "then.send", m),
                (None, Some(e)) => self.expect(at, &["expect"], "then.expect", e),
                (Some(_), Some(_)) => self.push(
                    at,
                    "`then` action has both `send` and `expect`: give exactly one per action (use two actions)",
                ),
                (None, None) => self.push(
                    at,
                    "`then` action is empty: give exactly one of `send` or `expect`",
                ),
            }
        }
    }

    /// `path` leads from `step_at` (a step or `then` action) to the message, `ctx` names
    /// it in messages; the message's own problems are reported at the key they are about.
    fn message(&mut self, step_at: At, path: &[&str], ctx: &str, m: &Message) {
        let at = self.key(step_at, path, false);
        let sub = |s: &Self, keys: &[&str], value: bool| {
            let full: Vec<&str> = path.iter().chain(keys).copied().collect();
            s.key(step_at, &full, value)
        };
        let sources: Vec<&str> = [
            ("fixture", m.fixture.is_some()),
            ("json", m.json.is_some()),
            ("text", m.text.is_some()),
            ("raw", m.raw.is_some()),
        ]
        .iter()
        .filter(|(_, on)| *on)
        .map(|(n, _)| *n)
        .collect();
        match sources.len() {
            1 => {}
            0 => self.push(
                at,
                format!("`{ctx}` has no body: give exactly one of `fixture`, `json`, `text`, `raw`"),
            ),
            _ => self.push(
                at,
                format!(
                    "`{ctx}` has {} bodies ({}): give exactly one of `fixture`, `json`, `text`, `raw`",
                    sources.len(),
                    sources.join(", ")
                ),
            ),
        }
        if let Some(f) = &m.fixture {
            // Names built from variables are checked again after expansion, at run time.
            if let Err(e) = super::names::fixture_name(f) {
                self.push(
                    sub(self, &["fixture"], true),
                    format!("`{ctx}.fixture`: {e}"),
                );
            }
        }
        if let Some(raw) = &m.raw {
            if let Err(e) = check_hex(raw) {
                self.push(sub(self, &["raw"], true), format!("`{ctx}.raw`: {e}"));
            }
            let extra: Vec<&str> = [
                ("set", !m.set.is_empty()),
                ("remove", !m.remove.is_empty()),
                ("frame", m.frame.is_some()),
            ]
            .iter()
            .filter(|(_, on)| *on)
            .map(|(n, _)| *n)
            .collect();
            if let Some(first) = extra.first() {
                self.push(
                    sub(self, &[first], false),
                    format!(
                        "`{ctx}` uses `raw`, which is sent byte for byte: {} cannot apply to it",
                        extra
                            .iter()
                            .map(|n| format!("`{n}`"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                );
            }
        }
        if m.text.is_some() && (!m.set.is_empty() || !m.remove.is_empty()) {
            self.push(
                at,
                format!("`{ctx}` has a `text` body: `set`/`remove` only apply to JSON bodies"),
            );
        }
        for key in m.set.keys() {
            if let Err(e) = check_pointer(key, false) {
                self.push(
                    sub(self, &["set", key], false),
                    format!("`{ctx}.set` key {key:?}: {e}"),
                );
            }
        }
        let remove: Vec<&str> = path.iter().copied().chain(["remove"]).collect();
        for (i, p) in m.remove.iter().enumerate() {
            // By its place in the list: its text may be part of an earlier entry.
            let at_entry = self.item(step_at, &remove, i);
            if let Err(e) = check_pointer(p, false) {
                self.push(at_entry, format!("`{ctx}.remove` entry {p:?}: {e}"));
            } else if p.is_empty() {
                self.push(
                    at_entry,
                    format!("`{ctx}.remove` entry \"\" would remove the whole body"),
                );
            }
        }
        if let Some(f) = &m.frame {
            let at_frame = sub(self, &["frame"], false);
            self.frame(at_frame, ctx, f);
        }
    }

    /// `at` is the `frame` key: its values carry no position of their own.
    fn frame(&mut self, at: At, ctx: &str, f: &FrameSpec) {
        if let Some(old) = &f.compress {
            // One word for sends and expectations; no silent alias, so files converge.
            self.push(
                At::from(old),
                format!(
                    "`{ctx}.frame.compress` is spelled `compressed` (as in expectations): write `frame: {{ compressed: {} }}`",
                    old.value
                ),
            );
        }
        if let Some(magic) = &f.magic {
            if magic.len() != 4 || !magic.is_ascii() {
                self.push(
                    at,
                    format!(
                        "`{ctx}.frame.magic` must be exactly 4 ASCII characters, got {magic:?}"
                    ),
                );
            }
        }
        if let Some(t) = &f.trailing {
            if let Err(e) = check_hex(t) {
                self.push(at, format!("`{ctx}.frame.trailing`: {e}"));
            }
        }
    }

    /// `path` leads from `step_at` (a step or `then` action) to the expectation.
    fn expect(&mut self, step_at: At, path: &[&str], ctx: &str, e: &Expect) {
        let at = self.key(step_at, path, false);
        let sub = |s: &Self, keys: &[&str], value: bool| {
            let full: Vec<&str> = path.iter().chain(keys).copied().collect();
            s.key(step_at, &full, value)
        };
        let terminal: Vec<&str> = [
            ("closes", e.closes.is_some()),
            ("silent", e.silent.is_some()),
            ("refused", e.refused.is_some()),
        ]
        .iter()
        .filter(|(_, on)| *on)
        .map(|(n, _)| *n)
        .collect();
        if terminal.len() == 2 && e.refused.is_none() {
            self.push(
                at,
                format!("`{ctx}` has both `closes` and `silent`: give one (a close also counts as silence)"),
            );
        } else if terminal.len() >= 2 {
            self.push(
                at,
                format!(
                    "`{ctx}` has `refused` and `{}`: a refused connection carries nothing to close or to stay silent on; give one",
                    terminal.iter().find(|t| **t != "refused").unwrap_or(&"closes")
                ),
            );
        }
        if e.refused.is_some() && ctx != "exchange.expect" {
            self.push(
                at,
                format!(
                    "`{ctx}` cannot expect `refused`: only an `exchange` step's own `expect` can (the harness connects, and the refusal comes before any message)"
                ),
            );
        }
        if let Some(t) = terminal.first() {
            let content: Vec<&str> = [
                ("kind", e.kind.is_some()),
                ("match", !e.matches.is_empty()),
                ("capture", !e.capture.is_empty()),
                ("snapshot", e.snapshot.is_some()),
                ("text", e.text.is_some()),
                ("frame", e.frame.is_some()),
            ]
            .iter()
            .filter(|(_, on)| *on)
            .map(|(n, _)| *n)
            .collect();
            if !content.is_empty() {
                self.push(
                    at,
                    format!(
                        "`{ctx}` expects `{t}` (no message), so it cannot also check a message ({})",
                        content
                            .iter()
                            .map(|n| format!("`{n}`"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                );
            }
        }
        if e.silent.is_some() && e.within.is_some() {
            self.push(
                at,
                format!("`{ctx}` has `silent` and `within`: `silent` gives its own duration"),
            );
        }
        if e.text.is_some() && (!e.matches.is_empty() || !e.capture.is_empty()) {
            self.push(
                at,
                format!("`{ctx}` expects a `text` payload: `match`/`capture` need a JSON body"),
            );
        }
        for key in e.matches.keys() {
            let (line, column) = e.matches.key_location(key);
            let key_at = if line == 0 { at } else { At { line, column } };
            if let Err(err) = check_pointer(key, true) {
                self.push(key_at, format!("`{ctx}.match` key {key:?}: {err}"));
            } else if key.starts_with('$') {
                self.push(key_at, operator_as_key(ctx, key, &e.matches[key]));
            }
        }
        self.volatile(step_at, path, ctx, e);
        for (var, ptr) in &e.capture {
            if !is_var_name(var) {
                self.push(
                    sub(self, &["capture", var], false),
                    format!("`{ctx}.capture` variable name {var:?} is invalid (use [A-Za-z_][A-Za-z0-9_]*)"),
                );
            }
            if let Err(err) = check_pointer(ptr, false) {
                self.push(
                    sub(self, &["capture", var], true),
                    format!("`{ctx}.capture` pointer {ptr:?} for `{var}`: {err}"),
                );
            }
        }
        if let Some(s) = &e.snapshot {
            // Variables in the name are expanded at run time and checked again then.
            if let Err(e) = super::names::snapshot_name(s) {
                self.push(
                    sub(self, &["snapshot"], true),
                    format!("`{ctx}.snapshot`: {e}"),
                );
            }
        }
    }
}

impl Checker<'_> {
    /// `volatile:` only changes what a snapshot redacts, so it needs a `snapshot`; its
    /// entries are key names or JSON pointers, like the catalog's. `path` leads from
    /// `step_at` to the expectation: a problem with the whole block is reported at
    /// `volatile`, a bad entry at the entry.
    fn volatile(&mut self, step_at: At, path: &[&str], ctx: &str, e: &Expect) {
        let Some(v) = &e.volatile else { return };
        let keys: Vec<&str> = path.iter().copied().chain(["volatile"]).collect();
        let at = self.key(step_at, &keys, false);
        if e.snapshot.is_none() {
            self.push(
                at,
                format!(
                    "`{ctx}.volatile` applies to a snapshot: add `snapshot: <name>` or remove it"
                ),
            );
        }
        if v.keep.is_empty() && v.add.is_empty() {
            self.push(
                at,
                format!("`{ctx}.volatile` needs `keep: [...]` and/or `add: [...]`"),
            );
        }
        for (list, entries) in [("keep", &v.keep), ("add", &v.add)] {
            let list_path: Vec<&str> = keys.iter().copied().chain([list]).collect();
            for (i, k) in entries.iter().enumerate() {
                let bad = if k.starts_with('/') {
                    check_pointer(k, false).err()
                } else if k.trim().is_empty() {
                    Some("an empty key".to_string())
                } else {
                    None
                };
                if let Some(err) = bad {
                    self.push(
                        self.item(step_at, &list_path, i),
                        format!("`{ctx}.volatile.{list}` entry {k:?}: {err}"),
                    );
                }
            }
        }
    }
}

/// The message for an operator written where a `match` key (a pointer) belongs, with
/// the operand's shape so the fix can be copied.
fn operator_as_key(ctx: &str, key: &str, operand: &serde_json::Value) -> String {
    let shape = match operand {
        serde_json::Value::Array(_) => "[...]",
        serde_json::Value::Object(_) => "{...}",
        _ => "...",
    };
    format!(
        "`{ctx}.match` key {key:?} is an operator, not a pointer: an operator applies to the value at a pointer, \
         so write `match: {{ /pointer: {{ {key}: {shape} }} }}` (e.g. `match: {{ /response: {{ {key}: {shape} }} }}`); \
         a member literally named {key:?} is `/{key}`"
    )
}

/// A requirement id: 1 to 64 letters, digits, `-`, `_` or `.`, starting with a letter or
/// digit (`PROXY-DATA-ACK`, `ZBX-2.3`).
pub fn requirement_id(id: &str) -> Result<(), String> {
    let ok_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
    let first_ok = id.chars().next().is_some_and(|c| c.is_ascii_alphanumeric());
    if id.is_empty() || id.len() > 64 || !first_ok || !id.chars().all(ok_char) {
        return Err(
            "a requirement id is 1 to 64 letters, digits, `-`, `_` or `.`, starting with a letter or digit (e.g. PROXY-DATA-ACK)"
                .into(),
        );
    }
    Ok(())
}

/// Whether `name` is a valid variable name: `[A-Za-z_][A-Za-z0-9_]*`.
pub fn is_var_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Check a JSON pointer (RFC 6901): empty (the whole body) or `/`-separated tokens in
/// which `~` is only followed by `0` or `1`. With `bare_key`, a string without a leading
/// `/` is accepted as a top-level key (the short form `match` allows).
pub fn check_pointer(p: &str, bare_key: bool) -> Result<(), String> {
    if !p.is_empty() && !p.starts_with('/') {
        if bare_key {
            return Ok(());
        }
        return Err("a JSON pointer must start with \"/\" (e.g. \"/data/0/host\")".into());
    }
    let b = p.as_bytes();
    for (i, c) in b.iter().enumerate() {
        if *c == b'~' && !matches!(b.get(i + 1), Some(b'0' | b'1')) {
            return Err(
                "invalid escape in JSON pointer: `~` must be followed by 0 (for ~) or 1 (for /)"
                    .into(),
            );
        }
    }
    Ok(())
}

/// Check hex bytes: pairs of hex digits, whitespace allowed between bytes.
pub fn check_hex(text: &str) -> Result<(), String> {
    decode_hex(text).map(|_| ())
}

/// Decode hex bytes written with optional whitespace (`"5a 42 58 44 01"`).
pub fn decode_hex(text: &str) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(text.len() / 2);
    let mut pending: Option<u8> = None;
    for (i, c) in text.char_indices() {
        if c.is_whitespace() {
            if pending.is_some() {
                return Err(format!(
                    "invalid hex: odd digit before whitespace at offset {i}"
                ));
            }
            continue;
        }
        let Some(d) = c.to_digit(16) else {
            return Err(format!(
                "invalid hex: {c:?} at offset {i} is not a hex digit (write bytes like \"5a 42 58 44\")"
            ));
        };
        // to_digit(16) is < 16, so it fits a u8.
        let d = d as u8;
        match pending.take() {
            Some(hi) => out.push(hi << 4 | d),
            None => pending = Some(d),
        }
    }
    if pending.is_some() {
        return Err("invalid hex: odd number of digits".into());
    }
    Ok(out)
}

/// Line and column (1-based) of a top-level `key:` in a YAML text, or `(0, 0)`.
///
/// Only used for keys whose values carry no span (scalars, empty lists); a
/// best-effort scan that matches a key at column 1, plain or quoted.
pub fn top_key_location(text: &str, key: &str) -> (u64, u64) {
    for (i, line) in text.lines().enumerate() {
        for quoted in [key.to_string(), format!("\"{key}\""), format!("'{key}'")] {
            if let Some(rest) = line.strip_prefix(&quoted) {
                if rest.trim_start().starts_with(':') {
                    return (i as u64 + 1, 1);
                }
            }
        }
    }
    (0, 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex() {
        assert_eq!(decode_hex("5a 42\n58 44").unwrap(), b"ZBXD");
        assert_eq!(decode_hex("").unwrap(), b"");
        assert!(decode_hex("5").is_err());
        assert!(decode_hex("5 a").is_err());
        assert!(decode_hex("zz").is_err());
    }

    #[test]
    fn pointers() {
        assert!(check_pointer("/a/b~0~1", false).is_ok());
        assert!(check_pointer("", false).is_ok());
        assert!(check_pointer("a", false).is_err());
        assert!(check_pointer("a", true).is_ok());
        assert!(check_pointer("/a~2", true).is_err());
        assert!(check_pointer("/a~", false).is_err());
    }

    #[test]
    fn var_names() {
        assert!(is_var_name("_a1"));
        assert!(is_var_name("Session"));
        assert!(!is_var_name("1a"));
        assert!(!is_var_name("a-b"));
        assert!(!is_var_name(""));
    }

    /// `answer_others` without `others: skip` would never be used: a structure error.
    #[test]
    fn answer_others_needs_others_skip() {
        let text = |others: &str| {
            format!(
                "name: x\nfamily: server-proxy\nversions: [\"6.0\"]\nplays: proxy\n\
                 listen: 127.0.0.1:0\nsteps:\n  - accept:\n      expect: {{ kind: k }}\n\
                 {others}      answer_others:\n        other.kind: {{ json: {{ response: success }} }}\n"
            )
        };
        let check_text = |t: &str| -> Vec<String> {
            // parse_str runs these checks and reports them as one error.
            match crate::scenario::loader::parse_str(std::path::Path::new("s.yaml"), t) {
                Ok(_) => vec![],
                Err(e) => vec![e.to_string()],
            }
        };
        let bad = check_text(&text(""));
        assert!(
            bad.iter()
                .any(|m| m.contains("only applies with `others: skip`")),
            "{bad:?}"
        );
        assert!(check_text(&text("      others: skip\n")).is_empty());
    }

    /// `when.tls` takes Zabbix's connection type names; an empty `when` is an error.
    #[test]
    fn when_tls_names_connection_types() {
        let text = |when: &str| {
            format!(
                "name: x\nfamily: server-proxy\nversions: [\"6.0\"]\nplays: server\n\
                 steps:\n  - sleep: 1s\n    when: {when}\n"
            )
        };
        let errors =
            |t: &str| match crate::scenario::loader::parse_str(std::path::Path::new("s.yaml"), t) {
                Ok(_) => String::new(),
                Err(e) => e.to_string(),
            };
        assert_eq!(errors(&text("{ tls: [unencrypted, psk] }")), "");
        assert_eq!(errors(&text("{ version: \">=6.4\", tls: cert }")), "");
        let bad = errors(&text("{ tls: [psk, certificate] }"));
        assert!(
            bad.contains("when.tls") && bad.contains("certificate"),
            "{bad}"
        );
        let empty = errors(&text("{}"));
        assert!(
            empty.contains("`when` needs `version`, `tls` or both"),
            "{empty}"
        );
    }

    #[test]
    fn top_keys() {
        let t = "name: x\n# versions: no\nversions: []\n\"steps\" : []\n";
        assert_eq!(top_key_location(t, "versions"), (3, 1));
        assert_eq!(top_key_location(t, "steps"), (4, 1));
        assert_eq!(top_key_location(t, "vars"), (0, 0));
    }
}
