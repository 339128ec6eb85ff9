//! The provider client on the wire, against a small HTTPS server of the test's own (rustls,
//! `tests/fixtures/tls`: a CA, a server certificate for `localhost` and `127.0.0.1` signed by
//! it, another CA): the trust a provider's `tls` block asks for holds, gzip answers decode, and
//! a proxy from the environment still carries calls to hosts that are not loopback.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::apply::{redrive, temp_dir, text};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tls")
}

/// What a server was asked: each request's head, in order.
type Seen = Arc<Mutex<Vec<String>>>;

/// Serves every connection on its own thread, for the test process's life; `tls`: HTTPS with
/// the fixture certificate. Answers `{"ok":true}`, gzip-encoded when asked for `/gz`.
fn serve(tls: bool) -> (u16, Seen) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let seen: Seen = Arc::default();
    let config = tls.then(|| {
        let certs: Vec<CertificateDer<'static>> =
            CertificateDer::pem_file_iter(fixtures().join("server.pem"))
                .expect("server.pem")
                .collect::<Result<_, _>>()
                .expect("certificates");
        let key = PrivateKeyDer::from_pem_file(fixtures().join("server.key")).expect("key");
        Arc::new(
            rustls::ServerConfig::builder()
                .with_no_client_auth()
                .with_single_cert(certs, key)
                .expect("server config"),
        )
    });
    let log = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let (config, log) = (config.clone(), log.clone());
            std::thread::spawn(move || {
                let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
                match config {
                    Some(config) => {
                        let Ok(conn) = rustls::ServerConnection::new(config) else {
                            return;
                        };
                        answer(rustls::StreamOwned::new(conn, stream), &log);
                    }
                    None => answer(stream, &log),
                }
            });
        }
    });
    (port, seen)
}

/// Answers the requests of one connection (bounded: 100 of them).
fn answer<S: Read + Write>(stream: S, log: &Seen) {
    let mut reader = BufReader::new(stream);
    for _ in 0..100 {
        let mut head = String::new();
        loop {
            let mut line = String::new();
            match reader.read_line(&mut line) {
                Ok(0) | Err(_) => return,
                Ok(_) if line == "\r\n" => break,
                Ok(_) => head.push_str(&line),
            }
        }
        let gzip =
            head.starts_with("GET /gz") || head.contains("GET http://") && head.contains("/gz ");
        log.lock().expect("log").push(head);
        let body = if gzip {
            let mut encoder =
                flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            encoder.write_all(br#"{"ok":true}"#).expect("gzip");
            encoder.finish().expect("gzip")
        } else {
            br#"{"ok":true}"#.to_vec()
        };
        let encoding = if gzip {
            "Content-Encoding: gzip\r\n"
        } else {
            ""
        };
        let stream = reader.get_mut();
        let head = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n{encoding}Content-Length: {}\r\n\r\n",
            body.len()
        );
        if stream.write_all(head.as_bytes()).is_err()
            || stream.write_all(&body).is_err()
            || stream.flush().is_err()
        {
            return;
        }
    }
}

/// A runbook of one GET of `path` at `url`, with `tls` as the provider's `tls` block, in a
/// fresh folder holding the fixtures.
fn runbook(name: &str, url: &str, tls: &str, path: &str) -> PathBuf {
    let dir = temp_dir(&format!("wire-{name}"));
    for file in ["ca.pem", "other-ca.pem"] {
        std::fs::copy(fixtures().join(file), dir.join(file)).expect("copy a fixture");
    }
    let text = format!(
        "version: 1\nname: wire\ndefaults: {{retry: {{attempts: 1}}}}\nproviders:\n  p:\n    type: http\n    url: {url}\n    timeout: 5s\n    tls: {tls}\njobs:\n  - id: get\n    provider: p\n    action: http\n    with:\n      method: GET\n      url: {path}\n      success:\n        status: [200]\n        json: {{pointer: /ok, equals: true}}\n"
    );
    std::fs::write(dir.join("runbook.yaml"), text).expect("write the runbook");
    dir
}

fn apply(dir: &Path, env: &[(&str, &str)]) -> std::process::Output {
    redrive(dir, &["apply", "--auto-approve", "runbook.yaml"], env)
}

#[test]
fn a_provider_trusts_the_roots_its_tls_block_names_and_no_others() {
    let (port, seen) = serve(true);
    let url = format!("https://localhost:{port}");
    for (name, tls) in [
        ("only", "{ca_file: ca.pem, ca_only: true}"),
        ("merged", "{ca_file: ca.pem}"),
        (
            "insecure",
            "{ca_file: other-ca.pem, insecure_skip_verify: true}",
        ),
    ] {
        let out = apply(&runbook(name, &url, tls, "/ok"), &[]);
        assert_eq!(out.status.code(), Some(0), "{name}: {}", text(&out));
    }
    assert_eq!(seen.lock().expect("log").len(), 3);
    for (name, tls) in [
        ("system", "{}"),
        ("other", "{ca_file: other-ca.pem, ca_only: true}"),
    ] {
        let out = apply(&runbook(name, &url, tls, "/ok"), &[]);
        let shown = text(&out);
        assert_eq!(out.status.code(), Some(4), "{name}: {shown}");
        assert!(
            shown.contains("cannot connect") && shown.contains("certificate"),
            "{name}: {shown}"
        );
    }
    // Refused at the handshake: no request reached the server.
    assert_eq!(seen.lock().expect("log").len(), 3);
}

#[test]
fn a_gzip_answer_is_decoded_and_judged_by_its_content() {
    let (port, seen) = serve(true);
    let url = format!("https://127.0.0.1:{port}");
    let out = apply(
        &runbook("gzip", &url, "{ca_file: ca.pem, ca_only: true}", "/gz"),
        &[],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let seen = seen.lock().expect("log");
    assert!(
        seen[0]
            .to_ascii_lowercase()
            .contains("accept-encoding: gzip"),
        "{seen:?}"
    );
}

#[test]
fn a_proxy_from_the_environment_carries_calls_to_hosts_that_are_not_loopback() {
    let (port, seen) = serve(false);
    let proxy = format!("http://127.0.0.1:{port}");
    let dir = runbook(
        "proxy",
        "http://tpp.redrive-test.invalid",
        "{allow_http: true}",
        "/ok",
    );
    let out = apply(&dir, &[("HTTP_PROXY", &proxy), ("http_proxy", &proxy)]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let seen = seen.lock().expect("log");
    // The absolute form of a request to a proxy.
    assert!(
        seen.iter()
            .any(|h| h.starts_with("GET http://tpp.redrive-test.invalid/ok HTTP/1.1")),
        "{seen:?}"
    );
}
