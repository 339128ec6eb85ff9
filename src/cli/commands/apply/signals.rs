//! Interrupts: the first Ctrl-C or SIGTERM stops new sends, the second quits at once.

use std::sync::Arc;

use tokio::sync::watch;

use crate::apply::events::{Event, Sink};

/// Resolves at the second interrupt (Ctrl-C or SIGTERM); the first stops new sends. CI runners
/// and Kubernetes stop jobs with SIGTERM, so it counts as an interrupt too.
pub(super) async fn interrupts(stop: &watch::Sender<bool>, sink: &Arc<dyn Sink>) {
    let mut signals = Signals::new();
    if signals.next().await {
        let _ = stop.send(true);
        sink.emit(Event::Stopping);
        if signals.next().await {
            return;
        }
    }
    // No signal handling: never resolve.
    std::future::pending::<()>().await;
}

/// SIGINT and SIGTERM as one stream.
struct Signals {
    #[cfg(unix)]
    term: Option<tokio::signal::unix::Signal>,
}

impl Signals {
    fn new() -> Self {
        Self {
            #[cfg(unix)]
            term: tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok(),
        }
    }

    /// `false` when signals cannot be received.
    async fn next(&mut self) -> bool {
        #[cfg(unix)]
        if let Some(term) = self.term.as_mut() {
            return tokio::select! {
                r = tokio::signal::ctrl_c() => r.is_ok(),
                r = term.recv() => r.is_some(),
            };
        }
        tokio::signal::ctrl_c().await.is_ok()
    }
}
