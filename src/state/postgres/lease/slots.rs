//! The shared rate windows' slots (`redrive.rate_events`): taken in one statement against
//! every window of a limiter, ended once the request's answer is in.

use std::time::Duration;

use super::Leases;
use crate::limits::Take;
use crate::state::StateError;

/// How soon a runner asks again when a full window frees next by a request still in flight.
const IN_FLIGHT_POLL_MS: f64 = 50.0;

impl Leases {
    /// [`Self::take_slots`] for one window.
    ///
    /// # Errors
    /// Database errors.
    pub async fn take_slot(
        &self,
        limiter: &str,
        count: u32,
        period: Duration,
        bound: Duration,
    ) -> Result<Take, StateError> {
        self.take_slots(limiter, &[(count, period)], bound).await
    }

    /// Takes one slot in every window of `limiter` at once (DigiCert: 100 / 5 s and
    /// 1000 / 5 min), or none: a slot is recorded only when all have room, so a full window
    /// never costs a slot of another. Serialized per limiter with a transaction-scoped
    /// advisory lock, so two runners never both take the last slot.
    ///
    /// A slot counts until its request ends ([`Self::end_slot`]; `limits::window` says why),
    /// and at most until `bound` after it was granted: a runner that dies with a request in
    /// flight holds that slot no longer. `bound` must exceed the longest a request can take.
    ///
    /// # Errors
    /// Database errors.
    pub async fn take_slots(
        &self,
        limiter: &str,
        windows: &[(u32, Duration)],
        bound: Duration,
    ) -> Result<Take, StateError> {
        let (limiter, owner) = (limiter.to_owned(), self.owner.clone());
        let counts: Vec<i64> = windows.iter().map(|w| i64::from(w.0)).collect();
        let periods: Vec<f64> = windows.iter().map(|w| w.1.as_secs_f64() * 1000.0).collect();
        let longest = periods.iter().copied().fold(0.0, f64::max);
        let bound = bound.as_secs_f64() * 1000.0;
        self.on_store("take a rate-limit slot", move |mut client| async move {
            let tx = client.transaction().await?;
            tx.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", &[&limiter])
                .await?;
            tx.execute(
                "DELETE FROM redrive.rate_events
                 WHERE limiter = $1 AND ends < clock_timestamp() - $2::float8 * interval '1 millisecond'",
                &[&limiter, &longest],
            )
            .await?;
            // Per window: the slots still held (in flight, or ended within it), and when the
            // COUNT-th newest end leaves it (the slot that frees first when it is full), and
            // whether that one is still in flight (its end is not known yet).
            let rows = tx
                .query(
                    "SELECT w.count, (SELECT count(*) FROM redrive.rate_events e
                             WHERE e.limiter = $1
                               AND e.ends >= clock_timestamp() - w.period * interval '1 millisecond'),
                            f.frees, f.in_flight
                     FROM unnest($2::int8[], $3::float8[]) AS w(count, period)
                     LEFT JOIN LATERAL (
                         SELECT (extract(epoch FROM (e.ends + w.period * interval '1 millisecond' - clock_timestamp())) * 1000)::float8 AS frees,
                                e.ends > clock_timestamp() AS in_flight
                         FROM redrive.rate_events e WHERE e.limiter = $1
                         ORDER BY e.ends DESC OFFSET greatest(w.count - 1, 0) LIMIT 1) f ON true",
                    &[&limiter, &counts, &periods],
                )
                .await?;
            let mut wait: Option<f64> = None;
            for row in &rows {
                let (count, used, frees, in_flight): (i64, i64, Option<f64>, Option<bool>) =
                    (row.get(0), row.get(1), row.get(2), row.get(3));
                if used >= count {
                    // A slot in flight frees when its request ends, which is likely long
                    // before its bound: asked again soon.
                    let ms = match in_flight {
                        Some(true) => IN_FLIGHT_POLL_MS,
                        _ => frees.unwrap_or(1.0).max(1.0),
                    };
                    wait = Some(wait.map_or(ms, |w: f64| w.max(ms)));
                }
            }
            let taken = match wait {
                Some(ms) => Take::Wait(Duration::from_secs_f64(ms / 1000.0)),
                None => {
                    let row = tx
                        .query_one(
                            "INSERT INTO redrive.rate_events (limiter, at, ends, runner)
                             VALUES ($1, clock_timestamp(), clock_timestamp() + $2::float8 * interval '1 millisecond', $3)
                             RETURNING id",
                            &[&limiter, &bound, &owner],
                        )
                        .await?;
                    Take::Granted(row.get(0))
                }
            };
            tx.commit().await?;
            Ok(taken)
        })
        .await
    }

    /// The request of a slot has its answer (or gave up): the slot counts from now on as
    /// ended at this moment, on the database's clock.
    ///
    /// # Errors
    /// Database errors.
    pub async fn end_slot(&self, slot: i64) -> Result<(), StateError> {
        self.on_store("end a rate-limit slot", move |client| async move {
            client
                .execute(
                    "UPDATE redrive.rate_events SET ends = clock_timestamp()
                     WHERE id = $1 AND ends > clock_timestamp()",
                    &[&slot],
                )
                .await?;
            Ok(())
        })
        .await
    }
}
