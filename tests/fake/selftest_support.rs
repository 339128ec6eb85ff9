//! Helpers for the fakes' self-tests: a plain reqwest client with bounded timeouts.

use std::time::Duration;

/// A client with no proxy and a 10 s timeout.
pub fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("a reqwest client builds")
}
