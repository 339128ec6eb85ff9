//! Self-tests of the hostile servers, and of `spawn_thread` from a sync test over a bare socket.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use serde_json::{Value, json};

use super::hostile::{EchoFake, EchoMode, RedirectFake};
use super::selftest_support::client;

#[tokio::test]
async fn the_echo_server_puts_the_whole_request_in_text_json_and_templates() {
    let fake = EchoFake::start(500, EchoMode::Text);
    let http = client();
    let send = || {
        http.post(format!("{}/a/b?x=1", fake.url()))
            .header("X-DC-DEVKEY", "sekrit")
            .body("the-body")
            .send()
    };
    let resp = send().await.expect("answers");
    assert_eq!(resp.status(), 500);
    let text = resp.text().await.expect("text");
    assert!(text.starts_with("POST /a/b?x=1\n"), "{text}");
    assert!(
        text.contains("x-dc-devkey: sekrit") && text.ends_with("the-body"),
        "{text}"
    );
    fake.set(400, EchoMode::JsonMessage);
    let body: Value = send().await.expect("answers").json().await.expect("json");
    assert!(
        body["message"]
            .as_str()
            .is_some_and(|m| m.contains("sekrit"))
    );
    fake.set(
        200,
        EchoMode::Template(json!({"error": {"errorCode": "200", "message": "{{echo}}"}, "n": 1})),
    );
    let body: Value = send().await.expect("answers").json().await.expect("json");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("the-body"))
    );
    assert_eq!(body["n"], 1);
    assert_eq!(fake.log().len(), 3);
}

#[tokio::test]
async fn the_redirect_target_is_another_origin_and_records_what_arrives() {
    for status in [301, 302, 307, 308] {
        let fake = RedirectFake::start(status);
        assert_ne!(fake.url(), fake.target_url());
        let resp = client()
            .get(format!("{}/path?q=1", fake.url()))
            .header("Authorization", "Bearer sekrit")
            .header("X-Custom-Secret", "sekrit2")
            .send()
            .await
            .expect("answers");
        assert_eq!(resp.status(), 200, "followed {status}");
        let seen = fake.target_log().all();
        assert_eq!(seen.len(), 1);
        assert_eq!(seen[0].target(), "/path?q=1");
        // reqwest itself strips sensitive headers on a cross-origin redirect.
        let leaks = fake.leaked(&["x-custom-secret"], &["sekrit"]);
        assert!(leaks.iter().all(|(h, _)| h != "authorization"), "{leaks:?}");
        // A custom secret header is not stripped, and the detector sees it.
        assert!(
            leaks.iter().any(|(h, _)| h == "x-custom-secret"),
            "{leaks:?}"
        );
    }
}

#[test]
fn spawn_thread_serves_a_sync_caller_and_stops_on_drop() {
    let fake = EchoFake::spawn_thread(200, EchoMode::Text);
    let addr = fake.url().trim_start_matches("http://").to_owned();
    let mut s = TcpStream::connect(&addr).expect("connects");
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    s.write_all(b"GET /raw%7Bx%7D HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .expect("writes");
    let mut answer = String::new();
    s.read_to_string(&mut answer).expect("reads");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(
        answer.contains("GET /raw%7Bx%7D"),
        "the target is echoed byte for byte: {answer}"
    );
    assert_eq!(fake.log().all()[0].path, "/raw%7Bx%7D");
    drop(fake);
    let after =
        TcpStream::connect_timeout(&addr.parse().expect("an address"), Duration::from_secs(1));
    assert!(after.is_err(), "the listener is gone");
}
