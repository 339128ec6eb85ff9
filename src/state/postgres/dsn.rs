//! A PostgreSQL DSN: parsed once, its password registered for redaction the moment it is read,
//! and shown only as `postgres://host:port/db` — never the user's password, never the raw text.

use std::fmt;
use std::str::FromStr as _;
use std::time::Duration;

use tokio_postgres::config::Host;

use crate::state::StateError;

/// A parsed connection string. `Debug` and `Display` show the redacted location only.
#[derive(Clone)]
pub struct Dsn {
    config: tokio_postgres::Config,
    location: String,
}

impl Dsn {
    /// Whether `text` is meant as a PostgreSQL DSN (and not, say, a directory).
    #[must_use]
    pub fn looks_like(text: &str) -> bool {
        let lower = text.trim_start().to_ascii_lowercase();
        lower.starts_with("postgres://") || lower.starts_with("postgresql://")
    }

    /// Parses a `postgres://` or `postgresql://` URL.
    ///
    /// # Errors
    /// When it is not one, or tokio-postgres cannot read it; the message never quotes it.
    pub fn parse(text: &str) -> Result<Self, StateError> {
        // Registered before anything can fail and print: an error path must not show it either.
        register_password(text);
        let unusable = |why: String| StateError::Database {
            location: "named by the DSN".to_owned(),
            what: "read the connection string".to_owned(),
            error: why,
            hint: "write it as `postgres://USER:PASSWORD@HOST:PORT/DATABASE` (percent-encode special characters in the password)",
        };
        if !Self::looks_like(text) {
            return Err(unusable(
                "it does not start with `postgres://` or `postgresql://`".to_owned(),
            ));
        }
        let mut config = tokio_postgres::Config::from_str(text.trim())
            .map_err(|e| unusable(crate::providers::redact::mask(&e.to_string()).into_owned()))?;
        if let Some(password) = config.get_password() {
            crate::providers::redact::register(&String::from_utf8_lossy(password));
        }
        // An unreachable server fails in seconds, not at the operating system's leisure.
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(10));
        }
        if config.get_application_name().is_none() {
            config.application_name("redrive");
        }
        let location = location(&config);
        Ok(Self { config, location })
    }

    /// `postgres://host:port/db`: where the state is, for every message and `status`.
    #[must_use]
    pub fn location(&self) -> &str {
        &self.location
    }

    pub(super) fn config(&self) -> &tokio_postgres::Config {
        &self.config
    }
}

impl fmt::Debug for Dsn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Dsn").field(&self.location).finish()
    }
}

impl fmt::Display for Dsn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.location)
    }
}

/// The password of `user:password@` in a URL, registered for masking even when the rest of the
/// URL does not parse.
fn register_password(text: &str) {
    let Some(rest) = text.split_once("://").map(|(_, r)| r) else {
        return;
    };
    let authority = rest.split(['/', '?']).next().unwrap_or_default();
    if let Some((userinfo, _)) = authority.rsplit_once('@')
        && let Some((_, password)) = userinfo.split_once(':')
    {
        crate::providers::redact::register(password);
        if let Ok(decoded) = percent_decode(password) {
            crate::providers::redact::register(&decoded);
        }
    }
}

fn percent_decode(text: &str) -> Result<String, std::string::FromUtf8Error> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| char::from(b).to_digit(16);
        if bytes[i] == b'%'
            && let (Some(Some(h)), Some(Some(l))) = (
                bytes.get(i + 1).map(|b| hex(*b)),
                bytes.get(i + 2).map(|b| hex(*b)),
            )
        {
            out.push(u8::try_from(h * 16 + l).unwrap_or(b'?'));
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out)
}

/// Host, port and database only: the user is left out with the password, since a DSN's user
/// often says as much about the account as its password.
fn location(config: &tokio_postgres::Config) -> String {
    let host = match config.get_hosts().first() {
        Some(Host::Tcp(name)) if name.contains(':') => format!("[{name}]"),
        Some(Host::Tcp(name)) => name.clone(),
        Some(Host::Unix(path)) => path.display().to_string(),
        None => "localhost".to_owned(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let db = config
        .get_dbname()
        .or(config.get_user())
        .unwrap_or("postgres");
    format!("postgres://{host}:{port}/{db}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_location_shows_host_port_and_database_only() {
        let dsn = Dsn::parse("postgres://ops:s3cr%40t-pw@db.internal:6432/redrive?sslmode=disable")
            .expect("parse");
        assert_eq!(dsn.location(), "postgres://db.internal:6432/redrive");
        assert_eq!(
            format!("{dsn:?}"),
            "Dsn(\"postgres://db.internal:6432/redrive\")"
        );
        // Both spellings of the password are masked wherever they might be printed.
        let masked = crate::providers::redact::mask("a s3cr%40t-pw b s3cr@t-pw c");
        assert!(!masked.contains("s3cr"), "{masked}");
    }

    #[test]
    fn a_dsn_that_is_not_one_is_refused_without_quoting_it() {
        let err = Dsn::parse("mysql://u:hunter2-pw@h/db")
            .unwrap_err()
            .to_string();
        assert!(err.contains("postgres://"), "{err}");
        assert!(!err.contains("hunter2-pw"), "{err}");
        let err = Dsn::parse("postgres://u:hunter3-pw@h:notaport/db")
            .unwrap_err()
            .to_string();
        assert!(!err.contains("hunter3-pw"), "{err}");
    }
}
