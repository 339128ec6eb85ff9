//! After a lost answer to a non-idempotent request: read the state again (retried like any
//! read) and decide from what the provider shows — it took effect, it is running (poll it), it
//! did not happen (send again, once a second look after the pause agrees), or it cannot be
//! told (`unknown`, never resent blindly).

use super::classify::Next;
use crate::manifest::model::Work;
use crate::plan::observe::{self, Seen};
use crate::providers::{Client, Verdict};
use crate::state::State;

/// What a lost answer turned out to mean; `sent_at` is when the request left.
pub(super) async fn reconcile(
    client: &Client,
    work: &Work,
    reason: &str,
    sent_at: jiff::Timestamp,
) -> Next {
    let observed = match observe::read(client, work, None).await {
        Some(Ok(o)) => o,
        Some(Err(e)) => {
            return Next::Final {
                state: State::Unknown,
                status: None,
                detail: format!(
                    "{reason}; it may have reached the server and its state cannot be read ({e}); not sent again"
                ),
            };
        }
        None => {
            return Next::Final {
                state: State::Unknown,
                status: None,
                detail: format!(
                    "{reason}; it may have reached the server and there is no read-only check to tell; not sent again"
                ),
            };
        }
    };
    if let Some(task) = client.running_task(work, &observed) {
        return Next::Poll { task, status: 0 };
    }
    let seen = Seen::from(observed);
    match seen.verdict {
        Verdict::Run if client.took_effect_since(seen.facts.as_deref(), &sent_at.to_string()) => {
            Next::Final {
                state: State::Succeeded,
                status: None,
                detail: format!(
                    "{reason}; observed afterwards that it took effect: the provider shows a change since it was sent"
                ),
            }
        }
        Verdict::Run => Next::Retry {
            after: None,
            status: None,
            reason: format!("{reason}; the change did not take effect, sending again"),
            counts: true,
            // A request that timed out may still be on its way, or being processed: the
            // resend is decided from a look taken after the pause, not this one.
            look_again: Some((reason.to_owned(), sent_at)),
        },
        Verdict::Converged(why) | Verdict::Blocked(why) => Next::Final {
            state: State::Succeeded,
            status: None,
            detail: format!("{reason}; observed afterwards that it took effect: {why}"),
        },
    }
}
