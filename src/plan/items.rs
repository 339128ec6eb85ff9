//! Expands rendered jobs into plan items: one per action, and one per target of a bulk action
//! (apply batches them again), each with the target text its id is derived from.

use crate::manifest::model::Work;
use crate::manifest::render::{Action, RenderedJob};
use crate::providers::Idempotency;

/// One thing to observe and maybe send.
#[derive(Debug, Clone)]
pub struct Item {
    /// Index of the job in the rendered list.
    pub job: usize,
    pub index: Option<usize>,
    pub target: String,
    // Boxed: the parameters are several times the rest, and planning frees each as it goes.
    pub what: Box<Work>,
}

/// The items of every rendered job, in job and item order; `target` names a work as its job's
/// provider does. The rendered actions move into the items (the jobs keep their metadata), so
/// a large plan is not held twice.
#[must_use]
pub fn expand(jobs: &mut [RenderedJob], target: impl Fn(usize, &Work) -> String) -> Vec<Item> {
    let total = jobs
        .iter()
        .flat_map(|j| &j.actions)
        .map(|a| a.with.works())
        .sum();
    let mut items = Vec::with_capacity(total);
    for (j, job) in jobs.iter_mut().enumerate() {
        // Taken from the end of the reversed list, whose buffer shrinks by halves as the items
        // grow: the rendered actions and the items are not both held whole (at a million
        // actions that was the plan's peak).
        let mut actions = std::mem::take(&mut job.actions);
        actions.reverse();
        while let Some(action) = actions.pop() {
            shrink_drained(&mut actions);
            works(j, action, &|work| target(j, work), &mut |item| {
                items.push(item)
            });
        }
    }
    items
}

/// The items of one rendered action of job `j`, handed to `out` in order.
pub fn works(
    j: usize,
    action: Action,
    target: &dyn Fn(&Work) -> String,
    out: &mut dyn FnMut(Item),
) {
    let works = action.with.into_works();
    let bulk = works.len() > 1 || matches!(works.first(), Some(Work::Bulk { .. }));
    for (i, work) in works.into_iter().enumerate() {
        // A bulk action's targets are numbered within it (and within the `for_each` item it
        // came from).
        let index = if bulk {
            Some(action.index.map_or(i, |outer| outer * 100_000 + i))
        } else {
            action.index
        };
        out(Item {
            job: j,
            index,
            target: target(&work),
            what: Box::new(work),
        });
    }
}

/// Gives back half of a vector's room once it is less than half full, for vectors consumed
/// from the end: a large one is freed as it goes, copying each element at most once more.
pub fn shrink_drained<T>(v: &mut Vec<T>) {
    if v.capacity() > 4096 && v.len() < v.capacity() / 2 {
        v.shrink_to_fit();
    }
}

/// Each item's idempotency class from `ask` (its provider's request preview). Every provider
/// but the generic one gives one class per action, whatever its parameters: asked once per job
/// (of `jobs`), not by building a request preview for each action.
pub fn classes(
    jobs: usize,
    ask: impl Fn(&Item) -> Idempotency,
) -> impl FnMut(&Item) -> Idempotency {
    let mut known: Vec<Option<Idempotency>> = vec![None; jobs];
    move |item| {
        if item.what.http().is_some() {
            return ask(item);
        }
        *known[item.job].get_or_insert_with(|| ask(item))
    }
}
