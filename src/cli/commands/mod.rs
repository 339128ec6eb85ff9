//! One file per subcommand.
pub mod apply;
pub mod completions;
pub mod man;
pub mod plan;
pub mod render;
pub mod sandbox;
pub mod schema;
pub mod status;
pub mod validate;
