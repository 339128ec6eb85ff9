//! The sandbox over real HTTP: each provider checked against providers.md and the seed docs,
//! plus faults, introspection and determinism. Expectations come from the docs, not from src/.

mod determinism;
mod digicert;
mod faults;
mod introspection;
mod lists_more;
mod lists_vcf;
mod lists_venafi;
mod ncloud;
mod otc_waf;
mod support;
mod vcf;
mod venafi;
mod world;
