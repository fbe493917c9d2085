//! The requirements `certify-plugin` checks, each with its severity and its source.
//!
//! A requirement is *required* when a real Agent 2 depends on it: the source is a rule
//! of the plugin protocol (protocol.md §4), the agent's own code (Zabbix 6.0.14
//! `src/go`), the plugin SDK it was built with, or agent2 6.0.14 behaviour that was
//! measured. What the protocol leaves to the plugin (how many parameters a metric
//! takes, which options it accepts, …) is *advisory*: reported as a warning, never a
//! failure, and it never changes the exit code.
//!
//! Ids are an enum so a mistyped id does not compile; [`RequirementId::from_str`] parses
//! the text form and names the known ids when it does not match.

use std::fmt;
use std::str::FromStr;

/// How much a requirement weighs in the verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Severity {
    /// A real Agent 2 depends on it: not meeting it fails the certification.
    Required,
    /// The protocol leaves it to the plugin: not meeting it is a warning.
    Advisory,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Required => "required",
            Severity::Advisory => "advisory",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a requirement comes from; shown in every report so a reader can check it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// A section of the plugin protocol reference (protocol.md §4).
    Protocol(&'static str),
    /// The Agent 2 plugin SDK the 6.0 agent ships (git.zabbix.com/ap/plugin-support).
    Sdk(&'static str),
    /// Zabbix 6.0.14 agent2 source (`src/go`).
    Agent(&'static str),
    /// Behaviour of the real agent2 6.0.14 (Debian 12), measured with the fake plugin.
    Measured(&'static str),
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Protocol(s) => write!(f, "protocol §{s}"),
            Source::Sdk(s) => write!(f, "SDK 6.0 {s}"),
            Source::Agent(s) => write!(f, "agent2 6.0.14 {s}"),
            Source::Measured(s) => write!(f, "measured: agent2 6.0.14 {s}"),
        }
    }
}

/// One rule the certification checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Requirement {
    pub id: RequirementId,
    pub title: &'static str,
    pub severity: Severity,
    pub sources: &'static [Source],
}

impl Requirement {
    /// All sources as one line (`; `-separated), for reports.
    pub fn source_text(&self) -> String {
        self.sources
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// The requirement ids, in report order (the order the suite checks them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RequirementId {
    RegisterHandshake,
    RegisterMetrics,
    RegisterInterfaces,
    RegisterInterfaceBits,
    ValidateOptions,
    ValidateUnknownOption,
    TerminateRegistration,
    ConfigureOptions,
    ConfigureUnknownOption,
    ExportMetrics,
    ExportManyParameters,
    ExportBadParameters,
    ExportUnknownKey,
    ExportConcurrent,
    TerminateOperation,
    RegisterWrongVersion,
    LogShape,
    LogSeverity,
    WireClean,
    WireIgnored,
}

/// Every requirement, in report order.
pub const REQUIREMENTS: [Requirement; RequirementId::ALL.len()] = {
    let mut out = [RequirementId::RegisterHandshake.spec(); RequirementId::ALL.len()];
    let mut i = 0;
    while i < out.len() {
        out[i] = RequirementId::ALL[i].spec();
        i += 1;
    }
    out
};

impl RequirementId {
    /// Every id in report order (a unit test checks it lists each variant once, in
    /// declaration order, so `id as usize` indexes it).
    pub const ALL: [RequirementId; 20] = [
        RequirementId::RegisterHandshake,
        RequirementId::RegisterMetrics,
        RequirementId::RegisterInterfaces,
        RequirementId::RegisterInterfaceBits,
        RequirementId::ValidateOptions,
        RequirementId::ValidateUnknownOption,
        RequirementId::TerminateRegistration,
        RequirementId::ConfigureOptions,
        RequirementId::ConfigureUnknownOption,
        RequirementId::ExportMetrics,
        RequirementId::ExportManyParameters,
        RequirementId::ExportBadParameters,
        RequirementId::ExportUnknownKey,
        RequirementId::ExportConcurrent,
        RequirementId::TerminateOperation,
        RequirementId::RegisterWrongVersion,
        RequirementId::LogShape,
        RequirementId::LogSeverity,
        RequirementId::WireClean,
        RequirementId::WireIgnored,
    ];

    /// The id as reports print it (`register.handshake`).
    pub const fn as_str(self) -> &'static str {
        self.spec_parts().0
    }

    pub const fn severity(self) -> Severity {
        self.spec_parts().2
    }

    /// The full requirement: title, severity and sources.
    pub const fn spec(self) -> Requirement {
        let (_, title, severity, sources) = self.spec_parts();
        Requirement {
            id: self,
            title,
            severity,
            sources,
        }
    }

    /// The one table of ids, titles, severities and sources. An exhaustive match, so a
    /// new id cannot be added without them.
    const fn spec_parts(self) -> (&'static str, &'static str, Severity, &'static [Source]) {
        use RequirementId as R;
        use Severity::{Advisory, Required};
        use Source::{Agent, Measured, Protocol, Sdk};
        match self {
            R::RegisterHandshake => (
                "register.handshake",
                "Register is answered with the request id, a valid response, the plugin's name, and the agent's protocol version accepted",
                Required,
                &[
                    Protocol("4.3 step 5, §4.4"),
                    Agent("cmd/zabbix_agent2/external.go initExternalPlugin: an error or another name stops start-up"),
                    Agent("plugins/external/broker.go: an undecodable Register response panics"),
                ],
            ),
            R::RegisterMetrics => (
                "register.metrics",
                "metrics is a flat [key, description, ...] list of at least one pair: keys of A-Z a-z 0-9 . _ -, each once; descriptions non-empty, not starting lower-case, ending with a dot",
                Required,
                &[
                    Protocol("4.2"),
                    Agent("cmd/zabbix_agent2/external.go hands the list to plugin.RegisterMetrics (SDK plugin/registry.go), which panics on anything else"),
                    Measured("panics at start-up on the description \"returns 1\" (cannot register metric … without capital first letter)"),
                ],
            ),
            R::RegisterInterfaces => (
                "register.interfaces",
                "interfaces, when present, is an unsigned 32-bit integer",
                Required,
                &[
                    Protocol("4.2"),
                    Agent("plugins/external/broker.go decodes it into a uint32 and panics otherwise"),
                    Measured("panics on \"interfaces\":\"3\" (failed to read register response … cannot unmarshal string)"),
                ],
            ),
            R::RegisterInterfaceBits => (
                "register.interface-bits",
                "interfaces sets only Exporter (1), Configurator (2) and Runner (4), and Exporter when metrics are registered",
                Advisory,
                &[
                    Protocol("4.2"),
                    Sdk("plugin/container/handler.go getInterfaces sets only these bits"),
                    Agent("reads only bits 2 and 4 (cmd/zabbix_agent2/external.go, plugins/external/plugin.go) and exports every registered metric"),
                    Measured("loads a plugin reporting interfaces 9 and exports its metrics"),
                ],
            ),
            R::ValidateOptions => (
                "validate.options",
                "Validate of the options the agent sends is answered with the request id and no error",
                Required,
                &[
                    Protocol("4.3 step 5"),
                    Agent("cmd/zabbix_agent2/external.go validate: an error or a timeout stops start-up"),
                ],
            ),
            R::ValidateUnknownOption => (
                "validate.unknown-option",
                "Validate rejects an unknown option with an error reply",
                Advisory,
                &[
                    Protocol("4.2, §4.3: the agent forwards Plugins.<Name>.* as they are; which options are valid is the plugin's call"),
                    Measured("starts when the plugin accepts Plugins.Fake.NoSuch=1 and refuses with the plugin's message when it rejects it"),
                ],
            ),
            R::TerminateRegistration => (
                "terminate.registration",
                "after Terminate the registration run exits within the deadline",
                Required,
                &[
                    Protocol("4.3 step 5, §4.5 (7.x waits the plugin timeout, then kills it)"),
                    Sdk("plugin/container/handler.go terminate: os.Exit(0)"),
                ],
            ),
            R::ConfigureOptions => (
                "configure.options",
                "Configure with the agent's options (no reply) leaves the plugin running and answering",
                Required,
                &[
                    Protocol("4.3 step 6, §4.5 (a plugin that dies during operation stops agent2 6.0)"),
                    Agent("plugins/external/plugin.go Configure"),
                ],
            ),
            R::ConfigureUnknownOption => (
                "configure.unknown-option",
                "Configure with an unknown option leaves the plugin running and answering",
                Advisory,
                &[Agent(
                    "cmd/zabbix_agent2/external.go: Configure carries only options Validate accepted, so only a plugin that accepts unknown options gets one",
                )],
            ),
            R::ExportMetrics => (
                "export.metrics",
                "Export of each registered metric is answered with the request id and a value or an error",
                Required,
                &[
                    Protocol("4.2, §4.5"),
                    Agent("plugins/external/broker.go routes replies by id; no reply within the plugin timeout fails the item"),
                ],
            ),
            R::ExportManyParameters => (
                "export.many-parameters",
                "Export of each metric with many parameters is answered with the request id (a value or an error) and the plugin keeps running",
                Required,
                &[
                    Protocol("4.2 (parameters: any number of strings), §4.5"),
                    Agent("plugins/external/broker.go export sends the item key's parameters as they are"),
                    Measured("sends fake.ping[a,b,c] to the plugin as parameters [\"a\",\"b\",\"c\"]"),
                ],
            ),
            R::ExportBadParameters => (
                "export.bad-parameters",
                "Export with more parameters than a metric takes is answered with an error (a metric may take any number: a hint only)",
                Advisory,
                &[Protocol(
                    "4.2: parameters is a list of any length; how many a metric takes is the plugin's call",
                )],
            ),
            R::ExportUnknownKey => (
                "export.unknown-key",
                "Export of an unknown key is answered with an error",
                Advisory,
                &[Measured(
                    "answers an unregistered key itself (Unknown metric fake.nosuch) and never sends it to the plugin",
                )],
            ),
            R::ExportConcurrent => (
                "export.concurrent",
                "concurrent Exports with distinct ids are all answered, each with its own id",
                Required,
                &[
                    Protocol("4.2, §4.6 (the 7.x SDK answers out of order)"),
                    Agent("plugins/external/broker.go keeps several requests in flight and routes replies by id"),
                ],
            ),
            R::TerminateOperation => (
                "terminate.operation",
                "after Terminate the operation run exits within the deadline",
                Required,
                &[
                    Protocol("4.3 step 7, §4.5 (7.x waits the plugin timeout, then kills it)"),
                    Sdk("plugin/container/handler.go terminate: os.Exit(0)"),
                ],
            ),
            R::RegisterWrongVersion => (
                "register.wrong-version",
                "Register with a wrong protocol version is refused with an error",
                Required,
                &[
                    Protocol("4.4: the plugin compares the version string; the agent checks none itself"),
                    Sdk("plugin/container/handler.go checkVersion"),
                ],
            ),
            R::LogShape => (
                "log.shape",
                "every log request has id 0, an integer severity and a string message",
                Required,
                &[
                    Protocol("4.2, §4.5 (7.x takes every id-0 message, and only those, for a log request)"),
                    Agent("plugins/external/broker.go panics on an undecodable log request"),
                ],
            ),
            R::LogSeverity => (
                "log.severity",
                "log severities are 0-5 (Info, Crit, Err, Warning, Debug, Trace)",
                Advisory,
                &[
                    Protocol("4.2"),
                    Measured("drops a log request with severity 9 without a word"),
                ],
            ),
            R::WireClean => (
                "wire.clean",
                "only type-1 frames carrying a JSON object with a numeric id and type, no response with id 0, no stray bytes",
                Required,
                &[
                    Protocol("4.1 (another type code desynchronises the stream), §4.5"),
                    Agent("plugins/external/broker.go"),
                ],
            ),
            R::WireIgnored => (
                "wire.ignored",
                "nothing the agent ignores: no message of a type a plugin never sends, no reply without a pending request, no member the protocol does not define",
                Advisory,
                &[Agent(
                    "plugins/external/broker.go logs unknown types as errors and drops replies nobody waits for; encoding/json skips unknown members",
                )],
            ),
        }
    }
}

impl fmt::Display for RequirementId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A text that names no requirement.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown requirement id {given:?} (known: {known})")]
pub struct UnknownRequirement {
    pub given: String,
    pub known: String,
}

impl FromStr for RequirementId {
    type Err = UnknownRequirement;

    fn from_str(s: &str) -> Result<RequirementId, UnknownRequirement> {
        RequirementId::ALL
            .into_iter()
            .find(|id| id.as_str() == s)
            .ok_or_else(|| UnknownRequirement {
                given: s.to_string(),
                known: RequirementId::ALL.map(RequirementId::as_str).join(", "),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_lists_every_id_once_in_declaration_order() {
        for (i, id) in RequirementId::ALL.into_iter().enumerate() {
            assert_eq!(id as usize, i, "{id} out of place");
            assert_eq!(REQUIREMENTS[i].id, id);
        }
        // The last variant closes the list: a variant added after it would be missing.
        assert_eq!(
            RequirementId::WireIgnored as usize + 1,
            RequirementId::ALL.len()
        );
    }

    #[test]
    fn ids_round_trip_and_a_typo_is_an_error_naming_the_known_ids() {
        for id in RequirementId::ALL {
            assert_eq!(id.as_str().parse::<RequirementId>(), Ok(id));
        }
        let e = "export.bad-parameter"
            .parse::<RequirementId>()
            .expect_err("typo");
        assert!(e.to_string().contains("export.bad-parameters"), "{e}");
    }

    #[test]
    fn every_requirement_names_a_source() {
        for r in REQUIREMENTS {
            assert!(!r.sources.is_empty(), "{} has no source", r.id);
            assert!(!r.source_text().is_empty());
        }
    }
}
