//! What `lint` finds: a typed finding with a severity and a location, so the callers
//! decide by severity (the CLI's exit code, the runner refusing to run) instead of by
//! the text of a message.

use super::loader::{write_prefixed, ScenarioError};
use std::fmt;
use std::path::{Path, PathBuf};

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// Probably wrong but may be intended (a variable that must come from `--var`).
    Warning,
    /// The scenario cannot run as written: `lint` exits non-zero, `run` refuses it.
    Error,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where in a scenario file: 1-based line and column, 0 when unknown.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Location {
    pub path: PathBuf,
    pub line: u64,
    pub column: u64,
}

impl Location {
    pub fn new(path: &Path, line: u64, column: u64) -> Location {
        Location {
            path: path.to_path_buf(),
            line,
            column,
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.path.display(), self.line, self.column)
    }
}

/// One thing `lint` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub severity: Severity,
    pub location: Location,
    pub message: String,
}

impl Finding {
    pub fn error(location: Location, message: impl Into<String>) -> Finding {
        Finding {
            severity: Severity::Error,
            location,
            message: message.into(),
        }
    }

    pub fn warning(location: Location, message: impl Into<String>) -> Finding {
        Finding {
            severity: Severity::Warning,
            location,
            message: message.into(),
        }
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    /// The finding as a scenario error (for callers that report errors as such).
    pub fn to_error(&self) -> ScenarioError {
        ScenarioError {
            path: self.location.path.clone(),
            line: self.location.line,
            column: self.location.column,
            message: self.message.clone(),
        }
    }
}

/// A load error is an error finding: `lint` reports both the same way.
impl From<ScenarioError> for Finding {
    fn from(e: ScenarioError) -> Finding {
        Finding::error(Location::new(&e.path, e.line, e.column), e.message)
    }
}

/// `file:line:column: severity: message`, as compilers print; a message of several
/// lines repeats the prefix on each, since editors and CI annotations read one
/// `file:line:column: message` per line and would drop or misplace the rest.
impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let prefix = format!("{}: {}", self.location, self.severity);
        write_prefixed(f, &prefix, &self.message)
    }
}

/// The exit code for a set of findings: 2 when any is an error (the CLI's "scenario
/// error"), else 0; warnings never fail a lint.
pub fn exit_code(findings: &[Finding]) -> i32 {
    if findings.iter().any(Finding::is_error) {
        2
    } else {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_line_carries_the_location() {
        let f = Finding::error(
            Location::new(Path::new("s.yaml"), 7, 9),
            "first\n  second\n\nthird",
        );
        assert_eq!(
            f.to_string(),
            "s.yaml:7:9: error: first\ns.yaml:7:9: error:   second\ns.yaml:7:9: error: third"
        );
        assert_eq!(
            f.to_error().to_string(),
            "s.yaml:7:9: first\ns.yaml:7:9:   second\ns.yaml:7:9: third"
        );
        let one = Finding::warning(Location::new(Path::new("s.yaml"), 1, 1), "w");
        assert_eq!(one.to_string(), "s.yaml:1:1: warning: w");
    }
}
