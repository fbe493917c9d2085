//! Reporters: terminal, JUnit XML, JSON, HTML, coverage matrix. They only read a `RunResult`.

pub mod html;
pub mod json;
pub mod junit;
pub mod live;
pub mod matrix;
pub mod ordered;
pub mod output_path;
pub mod terminal;

pub use crate::runner::result::*;
pub mod timestamp;
