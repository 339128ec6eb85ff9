//! Integration tests: the real binary and the library's public entry points.

mod apply;
mod architecture;
mod converge;
mod docs;
mod events;
mod examples;
mod exits;
mod fake;
mod fixtures;
mod html;
mod limits;
mod markdown;
mod mutations;
mod paths;
mod plan;
mod progress;
mod providers;
mod readme;
mod reports;
mod sandbox;
mod scale;
mod schema;
mod secrets;
mod strict_schemas;
mod support;
mod tamper;
