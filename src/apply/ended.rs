//! A job's results as its actions end: held in the order they ended, so a result takes memory
//! only once its action has ended (and freed its part of the plan), and put in plan order when
//! the job is over.

use super::ActionResult;

/// Results by plan position `k`, stored in the order they came.
pub(crate) struct Ended {
    /// Position `k` → 1 + where its result is in `list`; 0 while it has none. Zeroed memory,
    /// so the pages of a large job are only touched as its actions end.
    at: Vec<u32>,
    list: Vec<ActionResult>,
}

impl Ended {
    /// Room for the results of a job of `n` actions.
    ///
    /// # Panics
    /// When a job has 2³² actions or more (a plan that large does not fit in memory anyway).
    pub(crate) fn new(n: usize) -> Self {
        assert!(u32::try_from(n).is_ok(), "a job of {n} actions");
        Self {
            at: vec![0; n],
            list: Vec::new(),
        }
    }

    /// The result of the action at `k`; a later one replaces an earlier.
    pub(crate) fn put(&mut self, k: usize, result: ActionResult) {
        match self.at[k].checked_sub(1) {
            Some(i) => self.list[i as usize] = result,
            None => {
                self.list.push(result);
                // Fits: `new` checked the job's size, and each position is pushed once.
                self.at[k] = u32::try_from(self.list.len()).expect("checked in `new`");
            }
        }
    }

    pub(crate) fn get(&self, k: usize) -> Option<&ActionResult> {
        let i = self.at[k].checked_sub(1)?;
        Some(&self.list[i as usize])
    }

    pub(crate) fn get_mut(&mut self, k: usize) -> Option<&mut ActionResult> {
        let i = self.at[k].checked_sub(1)?;
        Some(&mut self.list[i as usize])
    }

    pub(crate) fn has(&self, k: usize) -> bool {
        self.at[k] != 0
    }

    /// The results in plan order, moved in place (no second vector of results).
    ///
    /// # Panics
    /// When an action has no result: every action of a job ends with one.
    pub(crate) fn into_plan_order(self) -> Vec<ActionResult> {
        let Self { at, mut list } = self;
        assert_eq!(
            list.len(),
            at.len(),
            "every action of a job ends with a result"
        );
        // Where each stored result belongs, then each put there by swaps: every swap settles
        // at least one result, so at most n of them.
        let mut dest = vec![0u32; list.len()];
        for (k, &i) in at.iter().enumerate() {
            dest[i as usize - 1] = u32::try_from(k).expect("checked in `new`");
        }
        drop(at);
        for i in 0..list.len() {
            while dest[i] as usize != i {
                let d = dest[i] as usize;
                list.swap(i, d);
                dest.swap(i, d);
            }
        }
        list
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::ActionId;
    use crate::state::State;

    fn result(n: u64) -> ActionResult {
        ActionResult {
            id: ActionId(n),
            job: "j".into(),
            target: format!("t{n}"),
            state: State::Succeeded,
            attempts: 1,
            http_status: None,
            detail: String::new(),
            defined_at: "r.yaml:1:1".into(),
            duration_ms: 0,
        }
    }

    #[test]
    fn results_come_back_in_plan_order_whatever_order_they_ended_in() {
        // A fixed shuffle of 0..1000, and one that reverses, and one already in order.
        let n = 1000u64;
        let orders: Vec<Vec<u64>> = vec![
            (0..n).map(|i| (i * 617 + 11) % n).collect(),
            (0..n).rev().collect(),
            (0..n).collect(),
        ];
        for order in orders {
            let mut ended = Ended::new(n as usize);
            for &k in &order {
                assert!(!ended.has(k as usize));
                ended.put(k as usize, result(k));
                assert_eq!(ended.get(k as usize).map(|r| r.id), Some(ActionId(k)));
            }
            let ids: Vec<u64> = ended.into_plan_order().iter().map(|r| r.id.0).collect();
            assert_eq!(ids, (0..n).collect::<Vec<_>>());
        }
    }

    #[test]
    fn a_later_result_replaces_an_earlier_one() {
        let mut ended = Ended::new(2);
        ended.put(1, result(1));
        ended.put(0, result(0));
        let mut other = result(1);
        other.state = State::Failed;
        ended.put(1, other);
        ended.get_mut(0).expect("put").attempts = 7;
        let out = ended.into_plan_order();
        assert_eq!(out.len(), 2);
        assert_eq!((out[0].attempts, out[1].state), (7, State::Failed));
    }

    #[test]
    #[should_panic(expected = "every action of a job ends with a result")]
    fn a_missing_result_is_a_bug_not_a_short_list() {
        let mut ended = Ended::new(2);
        ended.put(0, result(0));
        let _ = ended.into_plan_order();
    }
}
