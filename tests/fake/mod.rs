//! Independent fake provider servers, written from `providers.md` only, and their self-tests.
//!
//! Each fake is an axum router on 127.0.0.1:0 (see [`server`]); `start()` serves it on the
//! test's runtime, `spawn_thread()` on its own thread for sync tests that run the binary.
//! Every fake counts requests per endpoint and can change one target between two pages of a
//! list (see [`endpoints`]): `fake.requests(venafi::SEARCH)`, `fake.fix_after_page(1, dn)`.
#![allow(dead_code)]

pub mod digicert;
mod digicert_api;
pub mod endpoints;
pub mod hostile;
pub mod limiter;
pub mod ncloud;
mod ncloud_api;
pub mod server;
pub mod vcf;
pub mod vcf_api;
pub mod venafi;
pub mod venafi_api;
mod venafi_search;

mod selftest_digicert;
mod selftest_hostile;
mod selftest_lists;
mod selftest_ncloud;
mod selftest_support;
mod selftest_vcf;
mod selftest_venafi;
