//! The marker an answer carries when the connection must be closed instead of answered (resets,
//! stalls, outcome-after-timeout); its own module so that the host and the faults share it
//! without knowing each other.

use axum::response::Response;

/// Marks an answer that must not be sent: the connection is closed instead.
#[derive(Debug, Clone, Copy)]
pub struct Abort;

impl std::fmt::Display for Abort {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection closed by a sandbox fault")
    }
}

impl std::error::Error for Abort {}

/// An answer that `host` turns into a closed connection.
pub fn abort() -> Response {
    let mut response = Response::new(axum::body::Body::empty());
    response.extensions_mut().insert(Abort);
    response
}
