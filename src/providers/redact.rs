//! The values redrive sent as secrets, remembered for the life of the process so that nothing
//! a server sends back can carry them into a journal, a report or the terminal.
//!
//! Masking by key (`http::redact`) only catches a secret that sits under a key named like one;
//! a server that echoes the request in a text body or a `message` defeats it. So every value
//! sent as a credential — a resolved secret, a token obtained from an auth endpoint, a
//! signature, a Basic credential — is registered here the moment it exists, with the forms it
//! may come back in (JSON-escaped, URL-encoded, base64), and [`mask`] replaces each occurrence
//! with `*****`. Sinks call it once before they store or print: reply summaries, journal
//! records and results, errors.
//!
//! Cost: an empty set is one atomic load. Otherwise the scan looks, at each byte, only at the
//! values that start with that byte, so it stays linear in the text however many signatures
//! were registered. Values shorter than [`MIN_LEN`] bytes are not registered: masking every
//! `abc` in every message would hide more than it protects.

use std::borrow::Cow;
use std::collections::{HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock, PoisonError, RwLock};

use base64::Engine as _;

/// What a masked value is replaced with.
pub const MASK: &str = "*****";
/// Shorter values are not masked.
pub const MIN_LEN: usize = 4;
/// Per-request values (signatures) kept: the answer that may echo one follows its request
/// closely, so the most recent ones suffice and the set stays bounded over 100,000 requests.
const RECENT: usize = 1024;

struct Set {
    /// Every value, bucketed by its first byte.
    by_first: Vec<Vec<Arc<str>>>,
    known: HashSet<Arc<str>>,
    /// Per-request values, oldest first; they leave `known` and `by_first` when evicted.
    recent: VecDeque<Arc<str>>,
}

impl Set {
    fn new() -> Self {
        Self {
            by_first: vec![Vec::new(); 256],
            known: HashSet::new(),
            recent: VecDeque::new(),
        }
    }

    fn insert(&mut self, value: &str, recent: bool) {
        if value.len() < MIN_LEN {
            return;
        }
        if self.known.contains(value) {
            return;
        }
        let value: Arc<str> = Arc::from(value);
        self.known.insert(value.clone());
        self.by_first[usize::from(value.as_bytes()[0])].push(value.clone());
        if recent {
            self.recent.push_back(value);
            if self.recent.len() > RECENT
                && let Some(old) = self.recent.pop_front()
            {
                self.known.remove(&old);
                self.by_first[usize::from(old.as_bytes()[0])].retain(|v| !Arc::ptr_eq(v, &old));
            }
        }
        ANY.store(true, Ordering::Release);
    }
}

static SET: LazyLock<RwLock<Set>> = LazyLock::new(|| RwLock::new(Set::new()));
/// False until the first registration: the hot path of a run without secrets.
static ANY: AtomicBool = AtomicBool::new(false);

/// The forms a value may come back in: as sent, escaped inside a JSON string, URL-encoded and
/// base64-encoded.
fn forms(value: &str) -> Vec<String> {
    let mut out = vec![value.to_owned()];
    let json = serde_json::to_string(value).unwrap_or_default();
    let json = json
        .strip_prefix('"')
        .and_then(|j| j.strip_suffix('"'))
        .unwrap_or(value);
    let url: String = url::form_urlencoded::byte_serialize(value.as_bytes()).collect();
    let base64 = base64::engine::general_purpose::STANDARD.encode(value);
    for form in [json.to_owned(), url, base64] {
        if !out.contains(&form) {
            out.push(form);
        }
    }
    out
}

fn insert(values: &[String], recent: bool) {
    let mut set = SET.write().unwrap_or_else(PoisonError::into_inner);
    for v in values {
        set.insert(v, recent);
    }
}

/// Registers a value sent as a secret (a resolved secret, a token), with its encoded forms.
/// Secrets are resolved for every request: a value already known costs a read lock.
pub fn register(value: &str) {
    if value.len() < MIN_LEN {
        return;
    }
    let known = SET
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .known
        .contains(value);
    if !known {
        insert(&forms(value), false);
    }
}

/// Registers a Basic credential: the password, and `user:password` base64-encoded as it
/// travels in `Authorization: Basic …`.
pub fn register_basic(username: &str, password: &str) {
    register(password);
    register(&format!("{username}:{password}"));
}

/// Registers a value made for one request (a signature); only the most recent are kept.
pub fn register_recent(value: &str) {
    if value.len() >= MIN_LEN {
        insert(&forms(value), true);
    }
}

/// `text` with every registered value replaced by [`MASK`].
#[must_use]
pub fn mask(text: &str) -> Cow<'_, str> {
    if !ANY.load(Ordering::Acquire) {
        return Cow::Borrowed(text);
    }
    let set = SET.read().unwrap_or_else(PoisonError::into_inner);
    let bytes = text.as_bytes();
    // Byte ranges to mask, merged where they overlap. A registered value is UTF-8 and starts
    // with a leading byte, so every match starts and ends on a character boundary.
    let mut ranges: Vec<(usize, usize)> = Vec::new();
    for (i, b) in bytes.iter().enumerate() {
        let bucket = &set.by_first[usize::from(*b)];
        let Some(len) = bucket
            .iter()
            .filter(|v| bytes[i..].starts_with(v.as_bytes()))
            .map(|v| v.len())
            .max()
        else {
            continue;
        };
        match ranges.last_mut() {
            Some(last) if last.1 >= i => last.1 = last.1.max(i + len),
            _ => ranges.push((i, i + len)),
        }
    }
    if ranges.is_empty() {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for (start, end) in ranges {
        out.push_str(&text[at..start]);
        out.push_str(MASK);
        at = end;
    }
    out.push_str(&text[at..]);
    Cow::Owned(out)
}

/// [`mask`] for an owned string, without a copy when nothing matches.
#[must_use]
pub fn mask_owned(text: String) -> String {
    match mask(&text) {
        Cow::Borrowed(_) => text,
        Cow::Owned(masked) => masked,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registered_values_and_their_forms_are_masked_anywhere() {
        register("canary-unit-0001");
        register("canary unit/0002+\"q\"");
        register_basic("unit-user", "canary-unit-0003");
        let basic = base64::engine::general_purpose::STANDARD.encode("unit-user:canary-unit-0003");
        let text = [
            "a canary-unit-0001",
            "b canary unit/0002+\"q\"",
            "c canary+unit%2F0002%2B%22q%22",
            r#"d {"m":"canary unit/0002+\"q\""}"#,
            &format!("e Basic {basic} é"),
        ]
        .join(" ");
        assert_eq!(
            mask(&text),
            r#"a ***** b ***** c ***** d {"m":"*****"} e Basic ***** é"#
        );
        assert!(matches!(mask("nothing to see"), Cow::Borrowed(_)));
        // Too short to mask.
        register("abc");
        assert_eq!(mask("abc"), "abc");
    }

    #[test]
    fn overlapping_values_are_masked_whole() {
        register("overlap-unit-AAAA");
        register("AAAA-overlap-unit-tail");
        assert_eq!(mask("x overlap-unit-AAAA-overlap-unit-tail y"), "x ***** y");
    }

    #[test]
    fn recent_values_are_bounded() {
        for i in 0..(RECENT + 10) {
            register_recent(&format!("sig-unit-{i:06}"));
        }
        assert_eq!(mask("sig-unit-000000"), "sig-unit-000000");
        assert_eq!(mask(&format!("sig-unit-{:06}", RECENT + 9)), MASK);
        let set = SET.read().unwrap_or_else(PoisonError::into_inner);
        assert!(set.recent.len() <= RECENT);
    }
}
