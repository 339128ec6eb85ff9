//! Credentials stay with their origin: a redirect to another origin is an answer, never
//! followed, whatever its status and whichever provider gets it; an `http` action whose URL
//! names another origin is refused (by `validate` when literal, before sending when rendered).

use super::{CASES, run, secrets, write};
use crate::apply::text;
use crate::fake::hostile::{EchoFake, EchoMode, RedirectFake};

#[test]
fn no_credential_follows_a_redirect_to_another_origin() {
    let secrets = secrets();
    let secrets: Vec<&str> = secrets.iter().map(String::as_str).collect();
    for status in [301, 302, 307, 308] {
        for case in &CASES {
            let fake = RedirectFake::spawn_thread(status);
            let dir = write(
                case,
                &fake.url(),
                &format!("redirect-{status}-{}", case.name),
                "r",
            );
            let plan = run(&dir, &["plan", "runbook.yaml"]);
            let apply = run(&dir, &["apply", "--auto-approve", "runbook.yaml"]);
            let leaked = fake.leaked(&["x-api-secret", "x-custom-secret"], &secrets);
            assert!(leaked.is_empty(), "{status} {}: {leaked:?}", case.name);
            // Nothing at all reached the other origin.
            assert!(
                fake.target_log().is_empty(),
                "{status} {}: {:?}",
                case.name,
                fake.target_log().all()
            );
            let all = format!("{}{}", text(&plan), text(&apply));
            assert!(!fake.redirector_log().is_empty(), "{}: {all}", case.name);
            assert!(
                all.contains("redrive does not follow redirects"),
                "{status} {}: {all}",
                case.name
            );
            // Reads fail (exit 1: could not find out); an `http` action has none, so plan
            // shows changes and apply fails the action.
            let http = case.name.starts_with("http");
            assert_eq!(plan.status.code(), Some(if http { 2 } else { 1 }), "{all}");
            assert_eq!(apply.status.code(), Some(if http { 4 } else { 1 }), "{all}");
        }
    }
}

fn steal(url: &str, job_url: &str) -> String {
    format!(
        "version: 1\nname: steal\nvars: {{to: '{job_url}'}}\nproviders:\n  p:\n    type: http\n    url: {url}\n    auth: {{bearer: {{env: CANARY_BEARER}}}}\njobs:\n  - id: literal\n    provider: p\n    action: http\n    with: {{method: GET, url: '{job_url}'}}\n"
    )
}

#[test]
fn an_http_action_cannot_send_the_providers_credentials_elsewhere() {
    let home = EchoFake::spawn_thread(200, EchoMode::Text);
    let other = EchoFake::spawn_thread(200, EchoMode::Text);
    let port = other
        .url()
        .rsplit(':')
        .next()
        .unwrap_or_default()
        .to_owned();
    let elsewhere = [
        format!("{}/steal", other.url()),
        format!("http://[::ffff:127.0.0.1]:{port}/steal"),
        format!("HTTP://localhost:{port}/steal"),
        "http://example.com/steal".to_owned(),
        "https://example.com/steal".to_owned(),
    ];
    for to in &elsewhere {
        // Literal: `validate` refuses it with its location, and so does apply, sending nothing.
        let dir = crate::apply::temp_dir("steal-literal");
        std::fs::write(dir.join("runbook.yaml"), steal(&home.url(), to)).expect("write");
        let validate = run(&dir, &["validate", "runbook.yaml"]);
        assert_eq!(validate.status.code(), Some(3), "{to}: {}", text(&validate));
        let shown = text(&validate);
        assert!(
            shown.contains("error[foreign-origin]") && shown.contains("runbook.yaml:13:"),
            "{to}: {shown}"
        );
        let apply = run(&dir, &["apply", "--auto-approve", "runbook.yaml"]);
        assert_eq!(apply.status.code(), Some(3), "{to}: {}", text(&apply));

        // Rendered: refused when it would be sent; the action fails.
        let rendered =
            steal(&home.url(), to).replace(&format!("url: '{to}'}}"), "url: '{{ vars.to }}'}");
        std::fs::write(dir.join("runbook.yaml"), rendered).expect("write");
        let apply = run(&dir, &["apply", "--auto-approve", "runbook.yaml"]);
        let all = text(&apply);
        assert_eq!(apply.status.code(), Some(4), "{to}: {all}");
        assert!(all.contains("refused to send to"), "{to}: {all}");
    }
    assert!(other.log().is_empty(), "{:?}", other.log().all());
    assert!(home.log().is_empty(), "{:?}", home.log().all());
}
