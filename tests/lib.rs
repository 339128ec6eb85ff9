//! Integration tests: the real binary and the library's public entry points.

mod apply;
mod converge;
mod docs;
mod events;
mod examples;
mod fake;
mod fixtures;
mod html;
mod markdown;
mod mutations;
mod plan;
mod progress;
mod providers;
mod readme;
mod reports;
mod sandbox;
mod schema;
mod strict_schemas;
mod support;
mod tamper;
