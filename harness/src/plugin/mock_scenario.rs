//! Mock-plugin scenarios: what `zbx-conform mock-plugin --scenario FILE` registers and
//! answers, read from a small YAML file (family `plugin`, top-level `plugin:` key).
//!
//! The format (documented for users in scenarios/plugin/README.md):
//!
//! ```yaml
//! name: basic mock plugin        # optional, for people
//! family: plugin                 # required
//! plugin:
//!   name: Mock                   # registered name = <Name> of Plugins.<Name>.System.Path
//!   interfaces: [exporter, configurator]   # default; `runner` is the third
//!   metrics:
//!     - key: mock.text
//!       description: Returns a fixed text.
//!       value: hello             # one reply for any parameters ...
//!     - key: mock.pick
//!       description: Answers by its parameters.
//!       replies:                 # ... or the first entry whose `params` match
//!         - params: [a]
//!           value: 42
//!           delay: 200ms
//!         - error: Unknown choice.   # no `params`: matches anything
//! ```
//!
//! A reply is a `value` (string or number) or an `error` text, never both, with an
//! optional `delay` before it is sent. Errors carry `file:line:column`, as scenario
//! errors do, because these files are written by hand.

use super::interfaces;
use crate::scenario::loader::yaml_error;
pub use crate::scenario::loader::{is_mock_plugin_file, is_mock_plugin_text};
use crate::scenario::model::{DurationSpec, Spanned};
use crate::scenario::ScenarioError;
use serde::Deserialize;
use serde_json::Value;
use std::path::Path;
use std::time::Duration;

/// Largest delay a reply may ask for: agent2's PluginTimeout is at most 30 s, so longer
/// delays can only hang a test.
pub const MAX_DELAY: Duration = Duration::from_secs(60);

/// A whole mock-plugin scenario file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileDoc {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    description: Option<String>,
    family: Spanned<String>,
    plugin: PluginDoc,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct PluginDoc {
    name: Spanned<String>,
    #[serde(default)]
    interfaces: Option<Spanned<Vec<String>>>,
    metrics: Spanned<Vec<Spanned<MetricDoc>>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct MetricDoc {
    key: Spanned<String>,
    description: Spanned<String>,
    #[serde(default)]
    value: Option<Spanned<Value>>,
    #[serde(default)]
    error: Option<Spanned<String>>,
    #[serde(default)]
    delay: Option<Spanned<String>>,
    #[serde(default)]
    replies: Vec<Spanned<ReplyDoc>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReplyDoc {
    #[serde(default)]
    params: Option<Vec<String>>,
    #[serde(default)]
    value: Option<Spanned<Value>>,
    #[serde(default)]
    error: Option<Spanned<String>>,
    #[serde(default)]
    delay: Option<Spanned<String>>,
}

/// A loaded, checked mock-plugin scenario.
#[derive(Debug, Clone, PartialEq)]
pub struct MockScenario {
    /// The scenario's `name` (for people; may be empty).
    pub title: String,
    /// The plugin name sent in the Register response.
    pub name: String,
    /// Interface bits of the Register response.
    pub interfaces: u64,
    /// Metrics in file order (the Register response lists them in this order).
    pub metrics: Vec<MockMetric>,
}

/// One metric: its key, description and replies (first match wins).
#[derive(Debug, Clone, PartialEq)]
pub struct MockMetric {
    pub key: String,
    pub description: String,
    pub replies: Vec<MockReply>,
}

/// One Export reply.
#[derive(Debug, Clone, PartialEq)]
pub struct MockReply {
    /// The parameters this reply is for; `None` matches any.
    pub params: Option<Vec<String>>,
    pub outcome: Outcome,
    pub delay: Duration,
}

/// A value (string or number) or an error text.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Value(Value),
    Error(String),
}

impl MockScenario {
    /// Load and check a scenario file.
    pub fn load(path: &Path) -> Result<MockScenario, ScenarioError> {
        let text = crate::scenario::loader::read_text(path)?;
        MockScenario::parse(path, &text)
    }

    /// Parse and check scenario text; `path` is only used in errors. Each check is a
    /// step of its own below; the first problem found is returned.
    pub fn parse(path: &Path, text: &str) -> Result<MockScenario, ScenarioError> {
        let doc: FileDoc = serde_saphyr::from_str_with_options(text, parse_options())
            .map_err(|e| yaml_error(path, &e))?;
        let err = Errors { path };
        check_family(&err, &doc.family)?;
        let p = &doc.plugin;
        let name = plugin_name(&err, &p.name)?;
        let interfaces = interface_bits(&err, p.interfaces.as_ref())?;
        let metrics = metrics(&err, &p.metrics, interfaces)?;
        let _ = doc.description;
        Ok(MockScenario {
            title: doc.name.unwrap_or_default(),
            name,
            interfaces,
            metrics,
        })
    }

    /// The `metrics` member of the Register response: key, description, key, ...
    pub fn register_metrics(&self) -> Vec<String> {
        self.metrics
            .iter()
            .flat_map(|m| [m.key.clone(), m.description.clone()])
            .collect()
    }

    /// The reply to an Export of `key` with `params`: the first matching reply, or an
    /// error saying the scenario has none (the agent then reports ZBX_NOTSUPPORTED).
    pub fn export(&self, key: &str, params: &[String]) -> (Outcome, Duration) {
        let Some(m) = self.metrics.iter().find(|m| m.key == key) else {
            return (
                Outcome::Error(format!("Unknown metric {key}.")),
                Duration::ZERO,
            );
        };
        match m.replies.iter().find(|r| {
            r.params
                .as_ref()
                .is_none_or(|want| want.as_slice() == params)
        }) {
            Some(r) => (r.outcome.clone(), r.delay),
            None => (
                Outcome::Error(format!(
                    "The mock-plugin scenario has no reply for {key} with parameters {params:?}."
                )),
                Duration::ZERO,
            ),
        }
    }
}

fn pos<T>(s: &Spanned<T>) -> (u64, u64) {
    (s.referenced.line(), s.referenced.column())
}

/// Makes the errors of one file: `file:line:column: message`, as scenario errors.
struct Errors<'a> {
    path: &'a Path,
}

impl Errors<'_> {
    fn at(&self, (line, column): (u64, u64), message: impl Into<String>) -> ScenarioError {
        ScenarioError {
            path: self.path.to_path_buf(),
            line,
            column,
            message: message.into(),
        }
    }
}

/// These files are only for the plugin family; a run scenario's family here is a
/// file given to the wrong command.
fn check_family(err: &Errors, family: &Spanned<String>) -> Result<(), ScenarioError> {
    if family.value == super::FAMILY {
        return Ok(());
    }
    Err(err.at(
        pos(family),
        format!(
            "family must be `plugin` for a mock-plugin scenario, not {:?}",
            family.value
        ),
    ))
}

/// The registered plugin name: agent2 matches it against `Plugins.<Name>.System.Path`,
/// so it cannot be empty.
fn plugin_name(err: &Errors, name: &Spanned<String>) -> Result<String, ScenarioError> {
    let trimmed = name.value.trim();
    if trimmed.is_empty() {
        return Err(err.at(pos(name), "plugin name must not be empty"));
    }
    Ok(trimmed.to_string())
}

/// The interface bits of the Register response; exporter and configurator when the
/// file names none (what most plugins implement).
fn interface_bits(err: &Errors, list: Option<&Spanned<Vec<String>>>) -> Result<u64, ScenarioError> {
    let Some(list) = list else {
        return Ok(interfaces::EXPORTER | interfaces::CONFIGURATOR);
    };
    let mut bits = 0;
    for name in &list.value {
        bits |= match name.as_str() {
            "exporter" => interfaces::EXPORTER,
            "configurator" => interfaces::CONFIGURATOR,
            "runner" => interfaces::RUNNER,
            other => {
                return Err(err.at(
                    pos(list),
                    format!("unknown interface {other:?} (known: exporter, configurator, runner)"),
                ))
            }
        };
    }
    if bits == 0 {
        return Err(err.at(pos(list), "interfaces must not be empty"));
    }
    Ok(bits)
}

/// Every metric in file order (the Register response lists them so); an exporter
/// without metrics could answer no Export.
fn metrics(
    err: &Errors,
    docs: &Spanned<Vec<Spanned<MetricDoc>>>,
    interfaces: u64,
) -> Result<Vec<MockMetric>, ScenarioError> {
    if docs.value.is_empty() && interfaces & interfaces::EXPORTER != 0 {
        return Err(err.at(pos(docs), "an exporter needs at least one metric"));
    }
    let mut out: Vec<MockMetric> = Vec::new();
    for m in &docs.value {
        let key = metric_key(err, &m.value.key, &out)?;
        if m.value.description.value.trim().is_empty() {
            return Err(err.at(
                pos(&m.value.description),
                format!("metric {key:?} needs a description (agent2 refuses empty ones)"),
            ));
        }
        let replies = metric_replies(err, m, &key)?;
        out.push(MockMetric {
            key,
            description: m.value.description.value.clone(),
            replies,
        });
    }
    Ok(out)
}

/// A metric key as agent2 registers it: a plain name (parameters come with each
/// Export), listed once.
fn metric_key(
    err: &Errors,
    key: &Spanned<String>,
    earlier: &[MockMetric],
) -> Result<String, ScenarioError> {
    let k = key.value.trim().to_string();
    if k.is_empty() || k.contains(['[', ']', ' ']) {
        return Err(err.at(
            pos(key),
            format!("metric key {k:?} must be a plain key name (no spaces, no [parameters])"),
        ));
    }
    if earlier.iter().any(|x| x.key == k) {
        return Err(err.at(pos(key), format!("metric {k:?} is listed twice")));
    }
    Ok(k)
}

/// A metric's replies: one inline `value`/`error` (with its `delay`) for any
/// parameters, or a `replies` list (each with its own `delay`), never both.
fn metric_replies(
    err: &Errors,
    m: &Spanned<MetricDoc>,
    key: &str,
) -> Result<Vec<MockReply>, ScenarioError> {
    let d = &m.value;
    let inline = d.value.is_some() || d.error.is_some();
    match (inline, d.replies.is_empty()) {
        (true, false) => Err(err.at(
            pos(m),
            format!("metric {key:?}: give `value`/`error` or `replies`, not both"),
        )),
        (false, true) => Err(err.at(
            pos(m),
            format!("metric {key:?} needs a `value`, an `error` or `replies`"),
        )),
        (true, true) => Ok(vec![reply(
            err,
            pos(m),
            None,
            &d.value,
            &d.error,
            &d.delay,
        )?]),
        (false, false) => {
            if d.delay.is_some() {
                return Err(err.at(pos(m), format!("metric {key:?}: put `delay` on each reply")));
            }
            d.replies
                .iter()
                .map(|r| {
                    let v = &r.value;
                    reply(err, pos(r), v.params.clone(), &v.value, &v.error, &v.delay)
                })
                .collect()
        }
    }
}

/// Check one reply (inline or a `replies` entry).
fn reply(
    err: &Errors,
    at: (u64, u64),
    params: Option<Vec<String>>,
    value: &Option<Spanned<Value>>,
    error: &Option<Spanned<String>>,
    delay: &Option<Spanned<String>>,
) -> Result<MockReply, ScenarioError> {
    let outcome = match (value, error) {
        (Some(_), Some(_)) => {
            return Err(err.at(at, "a reply has a `value` or an `error`, not both"))
        }
        (None, None) => return Err(err.at(at, "a reply needs a `value` or an `error`")),
        (Some(v), None) => match &v.value {
            Value::String(_) | Value::Number(_) => Outcome::Value(v.value.clone()),
            other => {
                return Err(err.at(
                    pos(v),
                    format!("value must be a string or a number, not {other}"),
                ))
            }
        },
        (None, Some(e)) => {
            if e.value.trim().is_empty() {
                return Err(err.at(pos(e), "error text must not be empty"));
            }
            Outcome::Error(e.value.clone())
        }
    };
    let delay = match delay {
        None => Duration::ZERO,
        Some(d) => {
            let parsed = DurationSpec::parse(&d.value).map_err(|m| err.at(pos(d), m))?;
            if parsed > MAX_DELAY {
                return Err(err.at(pos(d), "delay must be at most 60s"));
            }
            parsed
        }
    };
    Ok(MockReply {
        params,
        outcome,
        delay,
    })
}

/// Small budgets: these files are a few dozen lines.
fn parse_options() -> serde_saphyr::Options {
    serde_saphyr::options! {
        budget: serde_saphyr::budget! {
            max_documents: 1,
            max_depth: 16,
            max_events: 100_000,
            max_nodes: 50_000,
            max_aliases: 500,
            max_anchors: 500,
            max_total_scalar_bytes: 1024 * 1024,
        },
        alias_limits: serde_saphyr::alias_limits! {
            max_total_replayed_events: 20_000,
            max_replay_stack_depth: 8,
        },
        with_snippet: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<MockScenario, ScenarioError> {
        MockScenario::parse(Path::new("t.yaml"), text)
    }

    const GOOD: &str = "family: plugin\nplugin:\n  name: Mock\n  metrics:\n    - key: a.text\n      description: d\n      value: hi\n    - key: a.pick\n      description: d\n      replies:\n        - params: [x, y]\n          value: 7\n          delay: 10ms\n        - error: nope\n";

    #[test]
    fn parses_inline_and_per_parameter_replies() {
        let s = parse(GOOD).expect("parses");
        assert_eq!(s.name, "Mock");
        assert_eq!(
            s.interfaces,
            interfaces::EXPORTER | interfaces::CONFIGURATOR
        );
        assert_eq!(s.register_metrics(), ["a.text", "d", "a.pick", "d"]);
        assert_eq!(
            s.export("a.text", &["q".into()]).0,
            Outcome::Value(Value::String("hi".into()))
        );
        let (o, d) = s.export("a.pick", &["x".into(), "y".into()]);
        assert_eq!(o, Outcome::Value(serde_json::json!(7)));
        assert_eq!(d, Duration::from_millis(10));
        assert_eq!(s.export("a.pick", &[]).0, Outcome::Error("nope".into()));
        assert!(matches!(s.export("zz", &[]).0, Outcome::Error(_)));
    }

    #[test]
    fn mock_plugin_files_are_told_from_run_scenarios() {
        assert!(is_mock_plugin_text(GOOD));
        assert!(is_mock_plugin_text(
            "family: plugin\nplugin:   # the mock\n  name: X\n"
        ));
        assert!(!is_mock_plugin_text(
            "name: x\nfamily: agent\nsteps:\n  - plugin: 1\n"
        ));
        assert!(!is_mock_plugin_text("name: plugin:\n"));
    }

    #[test]
    fn errors_name_the_line() {
        let bad = GOOD.replace("      value: hi\n", "      value: hi\n      error: both\n");
        let e = parse(&bad).unwrap_err();
        assert_eq!(e.line, 5, "{e}");
        assert!(e.message.contains("not both"), "{e}");
        let e = parse(&GOOD.replace("delay: 10ms", "delay: 10 parsecs")).unwrap_err();
        assert_eq!(e.line, 13, "{e}");
        let e = parse(&GOOD.replace("  name: Mock", "  name: Mock\n  colour: red")).unwrap_err();
        assert_eq!(e.line, 4, "{e}");
        assert!(e.to_string().starts_with("t.yaml:4:"), "{e}");
        let e = parse(&GOOD.replace("family: plugin", "family: agent")).unwrap_err();
        assert_eq!(e.line, 1, "{e}");
        let e = parse(&GOOD.replace("value: 7", "value: [7]")).unwrap_err();
        assert_eq!(e.line, 12, "{e}");
        assert!(e.message.contains("string or a number"), "{e}");
    }
}
