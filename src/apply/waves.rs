//! How a job's runnable actions are cut: rollout waves (cumulative sizes) and request batches
//! (no two works that must not share a request in one batch).

use std::collections::{HashMap, HashSet};

use crate::manifest::model::{ActionKind, Rollout, Work};
use crate::plan::PlanAction;
use crate::providers::{Batching, Client};

/// How the provider batches the actions at `ks`: asked of the first, as a job's works all
/// batch alike.
pub(super) fn batching_of(
    client: &Client,
    kind: ActionKind,
    slots: &[Option<Box<PlanAction>>],
    ks: &[usize],
) -> Option<Batching> {
    let a = slots[*ks.first()?].as_ref()?;
    let work = Work::from_params(kind, a.params.get()).ok()?;
    client.batching(&work)
}

/// The actions at `ks` in the [`batches`] the provider takes them in; `None` when it takes one
/// work a request.
pub(super) fn units(
    client: &Client,
    kind: ActionKind,
    slots: &[Option<Box<PlanAction>>],
    ks: &[usize],
) -> Option<Vec<Vec<usize>>> {
    let batching = batching_of(client, kind, slots, ks)?;
    let keys: HashMap<usize, String> = ks
        .iter()
        .filter_map(|&k| {
            let a = slots[k].as_ref()?;
            let w = Work::from_params(kind, a.params.get()).ok()?;
            Some((k, client.batching(&w)?.exclusive))
        })
        .collect();
    Some(batches(ks, batching.size, |k| {
        keys.get(&k).map_or("", String::as_str)
    }))
}

/// Batches of at most `size` works in which no two share their exclusive key (DigiCert answers
/// per `ip:port`, so SNI targets on one address go in separate requests).
#[must_use]
pub fn batches<'a>(wave: &[usize], size: usize, key: impl Fn(usize) -> &'a str) -> Vec<Vec<usize>> {
    let mut out: Vec<(Vec<usize>, HashSet<&str>)> = Vec::new();
    // Batches before this one are full: the search stays short for 100,000 targets.
    let mut open = 0;
    for &k in wave {
        let a = key(k);
        while out
            .get(open)
            .is_some_and(|(members, _)| members.len() >= size)
        {
            open += 1;
        }
        match out[open..]
            .iter_mut()
            .find(|(members, seen)| members.len() < size && !seen.contains(a))
        {
            Some((members, seen)) => {
                members.push(k);
                seen.insert(a);
            }
            None => out.push((vec![k], std::iter::once(a).collect())),
        }
    }
    out.into_iter().map(|(members, _)| members).collect()
}

/// Where each wave ends (exclusive indices into the runnable actions). Without a rollout, one
/// wave of everything; wave sizes are cumulative and never empty.
#[must_use]
pub fn wave_ends(rollout: Option<&Rollout>, total: usize) -> Vec<usize> {
    let Some(rollout) = rollout else {
        return vec![total];
    };
    let mut ends = Vec::new();
    let mut last = 0;
    for amount in &rollout.waves {
        let end = usize::try_from(amount.of(total as u64))
            .unwrap_or(total)
            .clamp(1, total.max(1))
            .min(total);
        if end > last {
            ends.push(end);
            last = end;
        }
    }
    if last < total {
        ends.push(total);
    }
    ends
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::model::Amount;

    #[test]
    fn sni_targets_sharing_an_address_go_in_separate_batches() {
        // The exclusive keys of four targets: two SNI names on one address.
        let targets = [
            "10.0.0.1:443",
            "10.0.0.1:443",
            "10.0.0.2:443",
            "10.0.0.3:443",
        ];
        let got = batches(&[0, 1, 2, 3], 2, |k| targets[k]);
        assert_eq!(got, [vec![0, 2], vec![1, 3]]);
        let got = batches(&[0, 1, 2, 3], 50, |k| targets[k]);
        assert_eq!(got, [vec![0, 2, 3], vec![1]]);
    }

    #[test]
    fn waves_are_cumulative_and_cover_everything() {
        let rollout = Rollout {
            waves: vec![Amount::Count(1), Amount::Percent(10), Amount::Percent(100)],
            max_failures: None,
        };
        assert_eq!(wave_ends(Some(&rollout), 100), [1, 10, 100]);
        assert_eq!(wave_ends(Some(&rollout), 5), [1, 5]);
        assert_eq!(wave_ends(Some(&rollout), 0), Vec::<usize>::new());
        let partial = Rollout {
            waves: vec![Amount::Count(2)],
            max_failures: None,
        };
        assert_eq!(wave_ends(Some(&partial), 10), [2, 10]);
        assert_eq!(wave_ends(None, 7), [7]);
    }
}
