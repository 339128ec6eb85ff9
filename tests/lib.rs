//! Integration tests: the real binary and the library's public entry points.

mod examples;
mod schema;
