//! Small value types shared across the runbook: durations, rates, limits, TLS and retry settings.

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Implements serde and schemars for a type that is written in runbooks as one string.
macro_rules! string_value {
    ($ty:ident, $name:literal, $pattern:expr, $description:literal) => {
        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text = String::deserialize(d)?;
                text.parse().map_err(serde::de::Error::custom)
            }
        }

        impl Serialize for $ty {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }

        impl JsonSchema for $ty {
            fn schema_name() -> Cow<'static, str> {
                $name.into()
            }

            fn json_schema(_: &mut SchemaGenerator) -> Schema {
                json_schema!({
                    "type": "string",
                    "pattern": $pattern,
                    "description": $description,
                })
            }
        }
    };
}

/// A length of time written like `30s`, `1m 30s`, `250ms` or `2h`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Duration(pub std::time::Duration);

const DURATION_PATTERN: &str = r"^\s*[0-9]+\s*(ms|s|m|h)(\s*[0-9]+\s*(ms|s|m|h))*\s*$";

impl FromStr for Duration {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad =
            || format!("`{text}` is not a duration; write it like `30s`, `1m 30s` or `250ms`");
        let mut rest = text.trim();
        if rest.is_empty() {
            return Err(bad());
        }
        let mut total = std::time::Duration::ZERO;
        while !rest.is_empty() {
            let digits = rest
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(rest.len());
            if digits == 0 {
                return Err(bad());
            }
            let number: u64 = rest[..digits].parse().map_err(|_| bad())?;
            rest = rest[digits..].trim_start();
            let unit_len = rest
                .find(|c: char| !c.is_ascii_alphabetic())
                .unwrap_or(rest.len());
            let part = match &rest[..unit_len] {
                "ms" => std::time::Duration::from_millis(number),
                "s" => std::time::Duration::from_secs(number),
                "m" => std::time::Duration::from_secs(number.saturating_mul(60)),
                "h" => std::time::Duration::from_secs(number.saturating_mul(3600)),
                _ => return Err(bad()),
            };
            total = total.saturating_add(part);
            rest = rest[unit_len..].trim_start();
        }
        Ok(Self(total))
    }
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.0.as_millis();
        if !ms.is_multiple_of(1000) {
            return write!(f, "{ms}ms");
        }
        let secs = self.0.as_secs();
        match secs {
            0 => write!(f, "0s"),
            s if s % 3600 == 0 => write!(f, "{}h", s / 3600),
            s if s % 60 == 0 => write!(f, "{}m", s / 60),
            s => write!(f, "{s}s"),
        }
    }
}

string_value!(
    Duration,
    "Duration",
    DURATION_PATTERN,
    "A length of time such as `30s`, `1m 30s`, `250ms` or `2h`."
);

/// A request rate written `COUNT/PERIOD`, e.g. `100/5s` or `1000/5m`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub count: u32,
    pub per: std::time::Duration,
}

impl FromStr for Rate {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = || format!("`{text}` is not a rate; write it like `100/5s` or `10/1m`");
        let (count, period) = text.trim().split_once('/').ok_or_else(bad)?;
        let count: u32 = count.trim().parse().map_err(|_| bad())?;
        let period = period.trim();
        // `100/s` reads as "per one second".
        let period = if period.starts_with(|c: char| c.is_ascii_digit()) {
            Cow::Borrowed(period)
        } else {
            Cow::Owned(format!("1{period}"))
        };
        let per = period.parse::<Duration>().map_err(|_| bad())?.0;
        if count == 0 || per.is_zero() {
            return Err(format!(
                "`{text}` allows no requests at all; the count and the period must be above zero"
            ));
        }
        Ok(Self { count, per })
    }
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.count, Duration(self.per))
    }
}

string_value!(
    Rate,
    "Rate",
    r"^\s*[0-9]+\s*/\s*[0-9]*\s*(ms|s|m|h)\s*$",
    "A request rate `COUNT/PERIOD`, e.g. `100/5s`."
);

/// A count of actions, or a share of them written `10%`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Amount {
    Count(u64),
    Percent(u8),
}

impl Amount {
    /// Resolves against a total; a percentage rounds up so `1%` of 10 is one action, not none.
    #[must_use]
    pub fn of(self, total: u64) -> u64 {
        match self {
            Self::Count(n) => n.min(total),
            Self::Percent(p) => (total * u64::from(p)).div_ceil(100),
        }
    }
}

impl<'de> Deserialize<'de> for Amount {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Count(u64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Count(n) => Ok(Self::Count(n)),
            Raw::Text(t) => {
                let pct = t
                    .trim()
                    .strip_suffix('%')
                    .and_then(|n| n.trim().parse::<u8>().ok())
                    .filter(|p| *p <= 100)
                    .ok_or_else(|| {
                        serde::de::Error::custom(format!(
                            "`{t}` is not a count or a percentage like `10%`"
                        ))
                    })?;
                Ok(Self::Percent(pct))
            }
        }
    }
}

impl Serialize for Amount {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Count(n) => s.serialize_u64(*n),
            Self::Percent(p) => s.collect_str(&format_args!("{p}%")),
        }
    }
}

impl JsonSchema for Amount {
    fn schema_name() -> Cow<'static, str> {
        "Amount".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "A number of actions, or a percentage of the job's actions such as `10%`.",
            "anyOf": [
                { "type": "integer", "minimum": 0 },
                { "type": "string", "pattern": r"^\s*(100|[1-9]?[0-9])\s*%\s*$" }
            ]
        })
    }
}

/// One value or a list of them.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum OneOrMany<T> {
    One(T),
    Many(Vec<T>),
}

impl<T> OneOrMany<T> {
    #[must_use]
    pub fn as_slice(&self) -> &[T] {
        match self {
            Self::One(one) => std::slice::from_ref(one),
            Self::Many(many) => many,
        }
    }
}

/// How hard redrive may push a provider.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Most requests in flight at once.
    #[schemars(range(min = 1, max = 4096))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrency: Option<u32>,
    /// Request rate(s), e.g. `100/5s`, or a list such as `["100/5s", "1000/5m"]`; all apply.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate: Option<OneOrMany<Rate>>,
}

/// Transport security for one provider.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Tls {
    /// A PEM bundle of extra CA certificates, relative to the runbook.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<String>,
    /// Trust only `ca_file`, not the system roots.
    #[serde(default)]
    pub ca_only: bool,
    /// Allow plain `http://` to a host that is not loopback. Off by default.
    #[serde(default)]
    pub allow_http: bool,
    /// Skip certificate verification. Dangerous; for lab systems only.
    #[serde(default)]
    pub insecure_skip_verify: bool,
}

/// When and how often to retry a failed request.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RetryPolicy {
    /// Attempts in all, the first one included (1 = never retry).
    #[schemars(range(min = 1, max = 100))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempts: Option<u32>,
    /// Delay before the first retry; later delays double, with full jitter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initial_delay: Option<Duration>,
    /// Longest delay between two attempts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_delay: Option<Duration>,
    /// Give up retrying an action after this long.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline: Option<Duration>,
}

/// Polling of an asynchronous result (a VCF task) until it ends.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Wait {
    /// Poll until the task ends (default), or only submit it.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Time between two polls.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<Duration>,
    /// Give up waiting after this long; the action then ends `unknown`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Duration>,
}

fn yes() -> bool {
    true
}

/// Settings that apply to every job unless the job says otherwise.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Defaults {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<RetryPolicy>,
    /// Time limit of one request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Duration>,
    /// Limits for every provider that sets none of its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<Limits>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wait: Option<Wait>,
}

/// Staged execution of a job: waves of growing size, stopped when failures pass a budget.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Rollout {
    /// Cumulative wave sizes, e.g. `[1, "10%", "100%"]`.
    #[schemars(length(min = 1))]
    pub waves: Vec<Amount>,
    /// Stop the job once more actions than this have failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_failures: Option<Amount>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_and_print() {
        let d: Duration = "1m 30s".parse().unwrap();
        assert_eq!(d.0, std::time::Duration::from_secs(90));
        assert_eq!(d.to_string(), "90s");
        assert_eq!("250ms".parse::<Duration>().unwrap().to_string(), "250ms");
        assert_eq!("2h".parse::<Duration>().unwrap().to_string(), "2h");
        assert!("10".parse::<Duration>().is_err());
        assert!("5 parsecs".parse::<Duration>().is_err());
        assert!("".parse::<Duration>().is_err());
    }

    #[test]
    fn rates_parse() {
        let r: Rate = "100/5s".parse().unwrap();
        assert_eq!((r.count, r.per.as_secs()), (100, 5));
        assert_eq!("10/s".parse::<Rate>().unwrap().per.as_secs(), 1);
        assert!("0/5s".parse::<Rate>().is_err());
        assert!("fast".parse::<Rate>().is_err());
    }

    #[test]
    fn amounts_resolve() {
        assert_eq!(Amount::Percent(10).of(15), 2);
        assert_eq!(Amount::Percent(100).of(7), 7);
        assert_eq!(Amount::Count(5).of(3), 3);
    }
}
