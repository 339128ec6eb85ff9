//! How a simulated provider misbehaves: latency, error statuses, 429 bursts, resets, stalls and
//! outcome-after-timeout, and the checks that keep the rates meaningful.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::default_stall;
use crate::manifest::model::common::Duration;

/// Misbehaviour of one provider. Each request draws its fault from the seed and the number of
/// requests the provider saw before it. `endpoints` limits a fault to some routes, written as
/// `METHOD /path` the way `/_sandbox/stats` lists them (e.g. `POST /vedsdk/certificates/retry`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Faults {
    pub latency: Option<Latency>,
    /// Answer with an error status (in the provider's error format) instead.
    pub errors: Vec<ErrorFault>,
    /// 429 bursts: after every `every` requests, `burst` requests are refused.
    pub throttle: Option<Throttle>,
    /// Close the connection without an answer, before anything happened.
    pub reset: Option<Chance>,
    /// Hold the request for `duration` without doing anything, then close the connection.
    pub stall: Option<Stall>,
    /// Do the work, then hold the answer for `duration` and close the connection: the client
    /// times out although its request took effect.
    pub outcome_after_timeout: Option<Stall>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Latency {
    /// Added to every answer.
    pub fixed: Option<Duration>,
    pub jitter: Option<Jitter>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub endpoints: Vec<String>,
}

/// Extra random latency: `uniform` in `[0, amount)`, `exponential` with mean `amount`, or
/// `normal` as the absolute value of a normal draw with standard deviation `amount`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Jitter {
    pub distribution: Distribution,
    pub amount: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Distribution {
    Uniform,
    Exponential,
    Normal,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ErrorFault {
    pub status: u16,
    /// Share of requests (0 to 1).
    pub rate: f64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub endpoints: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Throttle {
    pub every: u64,
    pub burst: u64,
    /// Sent as `Retry-After` (whole seconds) when set.
    #[serde(default)]
    pub retry_after: Option<Duration>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub endpoints: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Chance {
    pub rate: f64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub endpoints: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Stall {
    pub rate: f64,
    /// How long the connection is held before it is closed.
    #[serde(default = "default_stall")]
    pub duration: Duration,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub endpoints: Vec<String>,
}

impl Faults {
    pub(super) fn check(&self) -> Result<(), String> {
        let mut rates: Vec<(String, f64)> = self
            .errors
            .iter()
            .map(|e| (format!("errors (status {})", e.status), e.rate))
            .collect();
        rates.extend(self.reset.iter().map(|c| ("reset".to_owned(), c.rate)));
        rates.extend(self.stall.iter().map(|s| ("stall".to_owned(), s.rate)));
        rates.extend(
            self.outcome_after_timeout
                .iter()
                .map(|s| ("outcome_after_timeout".to_owned(), s.rate)),
        );
        for (what, rate) in &rates {
            if !(0.0..=1.0).contains(rate) {
                return Err(format!("{what}: rate {rate} is not between 0 and 1"));
            }
        }
        let total: f64 = rates.iter().map(|(_, r)| r).sum();
        if total > 1.0 + f64::EPSILON {
            return Err(format!(
                "the fault rates add up to {total}; a request gets at most one fault, keep the sum at or below 1"
            ));
        }
        for e in &self.errors {
            if !(400..=599).contains(&e.status) {
                return Err(format!(
                    "errors: status {} is not an HTTP error status (400-599)",
                    e.status
                ));
            }
        }
        if let Some(t) = &self.throttle
            && (t.every == 0 || t.burst == 0)
        {
            return Err("throttle: `every` and `burst` must both be at least 1".into());
        }
        Ok(())
    }
}
