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

    /// Parse and check scenario text; `path` is only used in errors.
    pub fn parse(path: &Path, text: &str) -> Result<MockScenario, ScenarioError> {
        let doc: FileDoc = serde_saphyr::from_str_with_options(text, parse_options())
            .map_err(|e| yaml_error(path, &e))?;
        let at = |line: u64, column: u64, message: String| ScenarioError {
            path: path.to_path_buf(),
            line,
            column,
            message,
        };
        let err = |sp_line: (u64, u64), message: String| at(sp_line.0, sp_line.1, message);
        if doc.family.value != super::FAMILY {
            return Err(err(
                pos(&doc.family),
                format!(
                    "family must be `plugin` for a mock-plugin scenario, not {:?}",
                    doc.family.value
                ),
            ));
        }
        let p = doc.plugin;
        if p.name.value.trim().is_empty() {
            return Err(err(pos(&p.name), "plugin name must not be empty".into()));
        }
        let interfaces = match &p.interfaces {
            None => interfaces::EXPORTER | interfaces::CONFIGURATOR,
            Some(list) => {
                let mut bits = 0;
                for name in &list.value {
                    bits |= match name.as_str() {
                        "exporter" => interfaces::EXPORTER,
                        "configurator" => interfaces::CONFIGURATOR,
                        "runner" => interfaces::RUNNER,
                        other => {
                            return Err(err(
                                pos(list),
                                format!(
                                    "unknown interface {other:?} (known: exporter, configurator, runner)"
                                ),
                            ))
                        }
                    };
                }
                if bits == 0 {
                    return Err(err(pos(list), "interfaces must not be empty".into()));
                }
                bits
            }
        };
        if p.metrics.value.is_empty() && interfaces & interfaces::EXPORTER != 0 {
            return Err(err(
                pos(&p.metrics),
                "an exporter needs at least one metric".into(),
            ));
        }
        let mut metrics: Vec<MockMetric> = Vec::new();
        for m in &p.metrics.value {
            let key = m.value.key.value.trim().to_string();
            if key.is_empty() || key.contains(['[', ']', ' ']) {
                return Err(err(
                    pos(&m.value.key),
                    format!(
                        "metric key {key:?} must be a plain key name (no spaces, no [parameters])"
                    ),
                ));
            }
            if metrics.iter().any(|x| x.key == key) {
                return Err(err(
                    pos(&m.value.key),
                    format!("metric {key:?} is listed twice"),
                ));
            }
            if m.value.description.value.trim().is_empty() {
                return Err(err(
                    pos(&m.value.description),
                    format!("metric {key:?} needs a description (agent2 refuses empty ones)"),
                ));
            }
            let inline = m.value.value.is_some() || m.value.error.is_some();
            let replies = match (inline, m.value.replies.is_empty()) {
                (true, false) => {
                    return Err(err(
                        pos(m),
                        format!("metric {key:?}: give `value`/`error` or `replies`, not both"),
                    ))
                }
                (false, true) => {
                    return Err(err(
                        pos(m),
                        format!("metric {key:?} needs a `value`, an `error` or `replies`"),
                    ))
                }
                (true, true) => vec![reply(
                    &err,
                    pos(m),
                    None,
                    &m.value.value,
                    &m.value.error,
                    &m.value.delay,
                )?],
                (false, false) => {
                    if m.value.delay.is_some() {
                        return Err(err(
                            pos(m),
                            format!("metric {key:?}: put `delay` on each reply"),
                        ));
                    }
                    let mut out = Vec::new();
                    for r in &m.value.replies {
                        out.push(reply(
                            &err,
                            pos(r),
                            r.value.params.clone(),
                            &r.value.value,
                            &r.value.error,
                            &r.value.delay,
                        )?);
                    }
                    out
                }
            };
            metrics.push(MockMetric {
                key,
                description: m.value.description.value.clone(),
                replies,
            });
        }
        let _ = doc.description;
        Ok(MockScenario {
            title: doc.name.unwrap_or_default(),
            name: p.name.value.trim().to_string(),
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

pub use crate::scenario::loader::{is_mock_plugin_file, is_mock_plugin_text};

/// Check one reply (inline or a `replies` entry).
fn reply(
    err: &dyn Fn((u64, u64), String) -> ScenarioError,
    at: (u64, u64),
    params: Option<Vec<String>>,
    value: &Option<Spanned<Value>>,
    error: &Option<Spanned<String>>,
    delay: &Option<Spanned<String>>,
) -> Result<MockReply, ScenarioError> {
    let outcome = match (value, error) {
        (Some(_), Some(_)) => {
            return Err(err(
                at,
                "a reply has a `value` or an `error`, not both".into(),
            ))
        }
        (None, None) => return Err(err(at, "a reply needs a `value` or an `error`".into())),
        (Some(v), None) => match &v.value {
            Value::String(_) | Value::Number(_) => Outcome::Value(v.value.clone()),
            other => {
                return Err(err(
                    pos(v),
                    format!("value must be a string or a number, not {other}"),
                ))
            }
        },
        (None, Some(e)) => {
            if e.value.trim().is_empty() {
                return Err(err(pos(e), "error text must not be empty".into()));
            }
            Outcome::Error(e.value.clone())
        }
    };
    let delay = match delay {
        None => Duration::ZERO,
        Some(d) => {
            let parsed = DurationSpec::parse(&d.value).map_err(|m| err(pos(d), m))?;
            if parsed > MAX_DELAY {
                return Err(err(pos(d), "delay must be at most 60s".into()));
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

fn yaml_error(path: &Path, e: &serde_saphyr::Error) -> ScenarioError {
    use serde_saphyr::MessageFormatter;
    let inner = e.without_snippet();
    let (line, column) = inner
        .location()
        .map(|l| (l.line(), l.column()))
        .unwrap_or((0, 0));
    let message = serde_saphyr::DefaultMessageFormatter
        .format_message(inner)
        .trim()
        .to_string();
    ScenarioError {
        path: path.to_path_buf(),
        line,
        column,
        message: if message.is_empty() {
            inner.to_string()
        } else {
            message
        },
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
