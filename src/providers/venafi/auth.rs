//! Venafi's tokens (providers.md §1.1): a password grant or the runbook's seed pair, refreshed
//! with single-use refresh tokens. A renewal holds the stored pair ([`TokenStore::hold`]) so
//! that of all the tasks, processes and runners sharing a store, one presents a refresh token and
//! the others take the pair it got.

use reqwest::Method;
use serde_json::{Value, json};

use super::Venafi;
use crate::providers::ProviderError;
use crate::providers::secret::Secret;
use crate::state::TokenPair;
use crate::state::tokens::HeldPair;

/// Refresh this long before the token expires, so no call races the expiry.
const EXPIRY_MARGIN: jiff::SignedDuration = jiff::SignedDuration::from_secs(60);

#[derive(Debug, Clone)]
pub(super) struct Tokens {
    access: Secret,
    refresh: Option<Secret>,
    expires: Option<jiff::Timestamp>,
}

impl Tokens {
    fn of(pair: &TokenPair) -> Self {
        Self {
            access: Secret::registered(pair.access.clone()),
            refresh: pair.refresh.clone().map(Secret::registered),
            expires: pair
                .expires_at
                .and_then(|s| jiff::Timestamp::from_second(s).ok()),
        }
    }

    fn pair(&self) -> TokenPair {
        TokenPair {
            access: self.access.expose().to_owned(),
            refresh: self.refresh.as_ref().map(|r| r.expose().to_owned()),
            expires_at: self.expires.map(jiff::Timestamp::as_second),
        }
    }

    /// Good for a call now: a pair without an expiry is good until a 401 says otherwise.
    fn usable(&self, now: jiff::Timestamp) -> bool {
        self.expires.is_none_or(|e| e - EXPIRY_MARGIN > now)
    }
}

impl Venafi {
    fn parse_tokens(&self, reply: &crate::providers::http::Reply) -> Result<Tokens, ProviderError> {
        let body = reply.json().unwrap_or(Value::Null);
        let access = body["access_token"]
            .as_str()
            .ok_or_else(|| ProviderError::Auth {
                provider: self.name.clone(),
                status: reply.status,
                detail: "the token answer has no access_token".into(),
            })?;
        Ok(Tokens {
            access: Secret::registered(access),
            refresh: body["refresh_token"].as_str().map(Secret::registered),
            expires: body["expires"]
                .as_i64()
                .and_then(|s| jiff::Timestamp::from_second(s).ok()),
        })
    }

    async fn password_grant(&self) -> Result<Tokens, ProviderError> {
        let (Some(username), Some(password)) = (&self.username, &self.password) else {
            return Err(ProviderError::Config {
                provider: self.name.clone(),
                detail: "no usable token and no username/password to get one".into(),
            });
        };
        let password = password.get().map_err(|error| ProviderError::Secret {
            provider: self.name.clone(),
            what: "auth.password",
            error,
        })?;
        let body = json!({
            "client_id": self.client_id,
            "username": username,
            "password": password.expose(),
            "scope": self.scope,
        });
        self.token_call("vedauth/authorize/oauth", &body).await
    }

    async fn refresh(&self, refresh: &Secret) -> Result<Tokens, ProviderError> {
        let body = json!({"client_id": self.client_id, "refresh_token": refresh.expose()});
        self.token_call("vedauth/authorize/token", &body).await
    }

    /// `POST` to a `/vedauth` endpoint; anything but 200 is an auth failure.
    async fn token_call(&self, path: &str, body: &Value) -> Result<Tokens, ProviderError> {
        let request = self
            .http
            .request(Method::POST, self.http.url(path))
            .json(body);
        let reply = self
            .http
            .send(request)
            .await
            .map_err(ProviderError::call(&self.name))?;
        if reply.status != 200 {
            return Err(ProviderError::refused(&self.name, &reply));
        }
        self.parse_tokens(&reply)
    }

    /// The token store's key: one pair per server, integration and user.
    fn store_key(&self) -> String {
        format!(
            "venafi_tpp\0{}\0{}\0{}",
            self.http.url(""),
            self.client_id,
            self.username.as_deref().unwrap_or_default()
        )
    }

    fn store_failed(&self, e: &crate::state::StateError) -> ProviderError {
        ProviderError::Config {
            provider: self.name.clone(),
            detail: format!("cannot read the stored tokens: {e}"),
        }
    }

    /// The runbook's seed pair, used as given until a 401 (it carries no expiry).
    fn seed(&self) -> Result<Option<Tokens>, ProviderError> {
        let Some(access) = &self.given_access else {
            return Ok(None);
        };
        let secret = |source: &crate::providers::SecretSource, what| {
            source.get().map_err(|error| ProviderError::Secret {
                provider: self.name.clone(),
                what,
                error,
            })
        };
        Ok(Some(Tokens {
            access: secret(access, "auth.access_token")?,
            refresh: match &self.given_refresh {
                Some(r) => Some(secret(r, "auth.refresh_token")?),
                None => None,
            },
            expires: None,
        }))
    }

    /// A valid access token. Holding the lock while renewing serializes this process's
    /// renewals; the store's hold serializes them with every other runner's. A pair stored by
    /// an earlier run (or another runner) is preferred over the runbook's seed tokens, and
    /// every new pair is stored before it is used.
    ///
    /// # Errors
    /// When no token can be had.
    pub async fn access_token(&self) -> Result<Secret, ProviderError> {
        let mut tokens = self.tokens.lock().await;
        if tokens.is_none() {
            let stored = self
                .store
                .get(&self.store_key())
                .map_err(|e| self.store_failed(&e))?;
            // Nothing stored: the seed is used as it is, and nothing is spent until it fails.
            *tokens = match stored {
                Some(pair) => Some(Tokens::of(&pair)),
                None => self.seed()?,
            };
        }
        let now = jiff::Timestamp::now();
        if let Some(t) = tokens.as_ref()
            && t.usable(now)
        {
            return Ok(t.access.clone());
        }
        let key = self.store_key();
        let held = hold(&*self.store, &key).map_err(|e| self.store_failed(&e))?;
        let stored = held.current().map(Tokens::of);
        if let Some(s) = &stored
            && tokens.as_ref().is_none_or(|t| t.access != s.access)
            && s.usable(now)
        {
            // Another runner renewed the pair since this one read it: its refresh token is
            // spent, so the pair it stored is the one to use.
            let access = s.access.clone();
            *tokens = stored;
            return Ok(access);
        }
        // The stored pair, when there is one, is the newest: its refresh token is the live one.
        let refresh = stored
            .as_ref()
            .or(tokens.as_ref())
            .and_then(|t| t.refresh.clone());
        let fresh = match refresh {
            Some(r) => match self.refresh(&r).await {
                Ok(t) => t,
                Err(_) if self.password.is_some() => self.password_grant().await?,
                Err(e) => return Err(self.spent(e)),
            },
            None => self.password_grant().await?,
        };
        self.keep(held, &fresh)?;
        let access = fresh.access.clone();
        *tokens = Some(fresh);
        Ok(access)
    }

    /// Stores a fresh pair and ends the hold, before the pair is used: the refresh token that
    /// got it is spent.
    fn keep(&self, held: Box<dyn HeldPair + '_>, t: &Tokens) -> Result<(), ProviderError> {
        held.commit(&t.pair()).map_err(|e| ProviderError::Config {
            provider: self.name.clone(),
            detail: format!(
                "got a new token pair but cannot keep it for the next run ({e}); the refresh token in the runbook is spent now"
            ),
        })
    }

    /// A refused refresh with no password to fall back on: say what to do.
    fn spent(&self, e: ProviderError) -> ProviderError {
        match e {
            ProviderError::Auth {
                provider,
                status,
                detail,
            } => ProviderError::Auth {
                provider,
                status,
                detail: format!(
                    "{detail}; the refresh token was refused (a Venafi refresh token works once); issue a new token pair and set `auth.refresh_token` to it, or give `auth.username` and `auth.password`"
                ),
            },
            other => other,
        }
    }

    /// Forgets `used` after a 401, so the next call refreshes or logs in again.
    pub async fn invalidate(&self, used: &Secret) {
        let mut tokens = self.tokens.lock().await;
        if let Some(t) = tokens.as_mut()
            && &t.access == used
        {
            // Keep the refresh token: it is the way back in.
            t.expires = Some(jiff::Timestamp::UNIX_EPOCH);
        }
    }
}

/// The store's hold, waited for off the runtime's workers where the runtime allows it: another
/// runner may be in the middle of its refresh.
fn hold<'a>(
    store: &'a dyn crate::state::TokenStore,
    key: &str,
) -> Result<Box<dyn HeldPair + 'a>, crate::state::StateError> {
    let multi_thread = tokio::runtime::Handle::try_current()
        .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
    if multi_thread {
        tokio::task::block_in_place(|| store.hold(key))
    } else {
        store.hold(key)
    }
}
