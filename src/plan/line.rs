//! One action's JSON line in a plan made here, with the request it would send (which the
//! action does not hold): what `plan --format json` and saved plans write a million times.

use std::io::{self, Write};
use std::sync::Arc;

use indexmap::IndexMap;
use serde::Serialize;
use serde_json::value::{RawValue, to_raw_value};

use super::{ActionId, Decision, PlanAction};
use crate::providers::{Idempotency, RequestPreview};

/// Writes action lines. What the requests of a provider share (method, URL, headers) comes as
/// the same `Arc` from one action to the next: its JSON is made once and reused while it does,
/// instead of escaped again, byte by byte, for every line (a third of writing a plan).
#[derive(Default)]
pub struct ActionLines {
    method: Made<str>,
    url: Made<str>,
    headers: Made<IndexMap<String, String>>,
}

/// A shared value and its JSON. The value is held, so no other allocation can take its address
/// while later ones are compared with it by address.
struct Made<T: ?Sized>(Option<(Arc<T>, Box<RawValue>)>);

impl<T: ?Sized> Default for Made<T> {
    fn default() -> Self {
        Self(None)
    }
}

impl<T: ?Sized + Serialize> Made<T> {
    fn of(&mut self, value: &Arc<T>) -> io::Result<&RawValue> {
        let fresh = matches!(&self.0, Some((held, _)) if Arc::ptr_eq(held, value));
        if !fresh {
            let json = to_raw_value(&**value).map_err(io::Error::other)?;
            self.0 = Some((value.clone(), json));
        }
        Ok(&self.0.as_ref().expect("made above").1)
    }
}

impl ActionLines {
    /// `action`'s line, with `request` in it.
    ///
    /// # Errors
    /// The writer's.
    pub fn write(
        &mut self,
        w: &mut dyn Write,
        action: &PlanAction,
        request: &RequestPreview,
    ) -> io::Result<()> {
        let method = self.method.of(&request.method)?;
        let url = self.url.of(&request.url)?;
        let headers = self.headers.of(&request.headers)?;
        let request = ShownRequest {
            method,
            url,
            headers: (!request.headers.is_empty()).then_some(headers),
            body: request.body.as_deref(),
        };
        serde_json::to_writer(w, &Shown::new(action, &request)).map_err(io::Error::other)
    }
}

/// An action as written, with a request preview it does not hold: the fields of
/// [`PlanAction`] in its order and with its attributes (a test holds them equal).
#[derive(Serialize)]
struct Shown<'a> {
    id: ActionId,
    #[serde(skip_serializing_if = "Option::is_none")]
    index: Option<usize>,
    target: &'a str,
    decision: &'a Decision,
    idempotency: Idempotency,
    request: &'a ShownRequest<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    observed: Option<&'a RawValue>,
    params: &'a RawValue,
    #[serde(skip_serializing_if = "Option::is_none")]
    previous: Option<&'a str>,
}

/// A [`RequestPreview`] as it serializes, from parts made ahead.
#[derive(Serialize)]
struct ShownRequest<'a> {
    method: &'a RawValue,
    url: &'a RawValue,
    #[serde(skip_serializing_if = "Option::is_none")]
    headers: Option<&'a RawValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    body: Option<&'a RawValue>,
}

impl<'a> Shown<'a> {
    fn new(a: &'a PlanAction, request: &'a ShownRequest<'a>) -> Self {
        Self {
            id: a.id,
            index: a.index,
            target: &a.target,
            decision: &a.decision,
            idempotency: a.idempotency,
            request,
            observed: a.observed.as_deref(),
            params: &a.params,
            previous: a.previous.as_deref(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::fixture::plan;

    /// Byte for byte what the action serializes as with the request in it, whether the shared
    /// parts are the same `Arc`s as the line before, equal ones, or others.
    #[test]
    fn a_line_is_the_action_with_its_request_byte_for_byte() {
        let headers =
            |v: &str| Arc::new(IndexMap::from([("Authorization".to_owned(), v.to_owned())]));
        let body = |dn: &str| Some(to_raw_value(&serde_json::json!({"DN": dn})).expect("JSON"));
        let shared = RequestPreview {
            method: "POST".into(),
            url: "https://h.example/a\"b".into(),
            headers: headers("Bearer (token of \\svc)"),
            body: None,
        };
        let requests = [
            RequestPreview {
                body: body("\\VED\\a"),
                ..shared.clone()
            },
            RequestPreview {
                body: body("\\VED\\b"),
                ..shared.clone()
            },
            // Equal text in other allocations, then other text, then no headers or body.
            RequestPreview {
                method: "POST".into(),
                url: "https://h.example/a\"b".into(),
                headers: headers("Bearer (token of \\svc)"),
                body: body("c"),
            },
            RequestPreview {
                method: "PATCH".into(),
                url: "https://other.example/t/1".into(),
                headers: headers("Basic x"),
                body: body("d"),
            },
            RequestPreview {
                method: "GET".into(),
                url: "https://other.example/".into(),
                ..RequestPreview::default()
            },
            RequestPreview {
                body: body("\\VED\\e"),
                ..shared.clone()
            },
        ];
        let mut fixture = plan(&[requests.len()]);
        fixture.jobs[0].actions[1].previous = Some("failed".into());
        fixture.jobs[0].actions[2].index = None;
        let mut lines = ActionLines::default();
        for (a, request) in fixture.jobs[0].actions.iter().zip(&requests) {
            let mut out = Vec::new();
            lines.write(&mut out, a, request).expect("written");
            let whole = PlanAction {
                request: Some(Box::new(request.clone())),
                ..(**a).clone()
            };
            let whole = serde_json::to_string(&whole).expect("JSON");
            assert_eq!(String::from_utf8(out).expect("UTF-8"), whole);
        }
    }
}
