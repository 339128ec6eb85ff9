//! Integration tests: the real binary and the library's public entry points.

mod apply;
mod architecture;
mod converge;
mod examples;
mod exits;
mod fake;
mod fixtures;
mod hostile;
mod mutations;
mod paths;
mod plan;
mod providers;
mod readme;
mod sandbox;
mod scale;
mod schema;
mod secrets;
mod support;
mod tamper;
