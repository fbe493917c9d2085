//! Scenarios: the YAML model, its loader (with file:line:column errors), structural
//! rules, lint against the catalog, version conditions, and variable templating.

pub mod finding;
pub mod lint;
pub mod loader;
pub mod locate;
pub mod model;
pub mod names;
pub mod structure;
pub mod vars;
pub mod when;

pub use finding::{Finding, Location, Severity};
pub use lint::{lint, lint_errors};
pub use loader::{discover, load_file, LoadedScenario, ScenarioError};
pub use model::*;
pub use when::version_matches;
