//! Resolved actions handed to an [`ActionSink`] on a thread of its own, in order: making each
//! one's request preview and writing its lines overlaps rendering and resolving the next ones,
//! so a plan written as it is made uses a second core.

use std::sync::mpsc;

use super::PlanJob;
use super::items::Item;
use super::observe::Read;
use super::prepare::ActionSink;
use super::resolve::{Decided, Resolver};
use crate::manifest::model::Work;
use crate::providers::RequestPreview;

/// Actions go across in batches of this many: one channel operation per action would cost
/// about as much as writing it.
const BATCH: usize = 512;
/// Batches on their way at most: the writer keeps up, and memory stays a few thousand actions.
const IN_FLIGHT: usize = 8;

/// Where resolved actions go, with how each one's request preview is made.
pub struct Handoff<'s> {
    pub sink: &'s mut (dyn ActionSink + Send),
    /// The jobs' heads, by job index, handed with each action.
    pub heads: &'s [PlanJob],
    pub preview: &'s (dyn Fn(usize, &Work) -> RequestPreview + Sync),
}

/// What a producer places, in order: each job's items, then the job.
pub enum Placed {
    /// An item, with what its read-only check found.
    Item(Item, Option<Read>),
    /// Every item of job `.0` is placed: the job's head, complete.
    JobDone(usize, PlanJob),
}

/// What crosses to the sink's thread.
enum Handed {
    Action(Decided),
    JobDone(usize, PlanJob),
}

/// Runs `produce` with the function it places each item with: kept in `resolver`'s plan, or,
/// with a handoff, resolved here and handed to its sink on another thread. Every item placed
/// has reached the sink when this returns.
pub fn placing<F, R>(
    resolver: &mut Resolver<'_, F>,
    handoff: Option<Handoff<'_>>,
    produce: impl FnOnce(&mut dyn FnMut(Placed)) -> R,
) -> R
where
    F: FnMut(&Item) -> crate::providers::Idempotency,
{
    let Some(handoff) = handoff else {
        return produce(&mut |placed| {
            if let Placed::Item(item, read) = placed {
                resolver.push(item, read);
            }
        });
    };
    let Handoff {
        sink,
        heads,
        preview,
    } = handoff;
    let (tx, rx) = mpsc::sync_channel::<Vec<Handed>>(IN_FLIGHT);
    std::thread::scope(|scope| {
        let writer = scope.spawn(move || {
            for batch in rx {
                for handed in batch {
                    match handed {
                        Handed::Action(decided) => {
                            let (j, action, what) = decided.finish();
                            sink.action(j, &heads[j], &action, &preview(j, &what));
                        }
                        Handed::JobDone(j, head) => sink.job_done(j, &head),
                    }
                }
            }
        });
        let mut batch = Vec::with_capacity(BATCH);
        let mut writer_gone = false;
        let out = produce(&mut |placed| {
            batch.push(match placed {
                Placed::Item(item, read) => Handed::Action(resolver.next(item, read)),
                Placed::JobDone(j, head) => Handed::JobDone(j, head),
            });
            if batch.len() == BATCH && !writer_gone {
                let full = std::mem::replace(&mut batch, Vec::with_capacity(BATCH));
                // Only a writer that panicked hangs up; its panic is raised below.
                writer_gone = tx.send(full).is_err();
            }
            if writer_gone {
                batch.clear();
            }
        });
        if !batch.is_empty() {
            let _ = tx.send(batch);
        }
        drop(tx);
        if let Err(panic) = writer.join() {
            std::panic::resume_unwind(panic);
        }
        out
    })
}
