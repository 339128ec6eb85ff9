//! Everything drawn for people and printed for machines; the rest of the crate never prints.
pub mod diagnostic;
pub mod diff;
pub mod printer;
pub mod progress;
pub mod reads;
pub mod results;
