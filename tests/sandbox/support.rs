//! Shared helpers of the sandbox tests: start a scenario, talk HTTP with bounded timeouts, read
//! `/_sandbox`, poll against deadlines, and sign NCP requests (from providers.md §5.1, not src/).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use base64::Engine;
use hmac::{KeyInit, Mac};
use redrive::sandbox::{self, Kind, Running, Scenario};
use reqwest::header::HeaderMap;
use reqwest::{Client, Method, RequestBuilder};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Every request is bounded, so a sandbox that hangs fails its test instead of the whole run.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// How often a polling loop asks again.
pub const POLL_EVERY: Duration = Duration::from_millis(15);

/// The example DN of the `Certificates/Retry` documentation (seed 000).
pub const DOC_RETRY_DN: &str = r"\VED\Policy\test_retry122017141215963\cert_122017141215969";

/// The fake NCP key of the worked signature examples (providers.md §5.1).
pub const NCP_ACCESS_KEY: &str = "EXAMPLEACCESSKEY0001";
pub const NCP_SECRET_KEY: &str = "EXAMPLESECRETKEY000000000000000000000001";
/// The timestamp of vectors A–C; scenarios pin the gateway clock to it with `clock_ms`.
pub const NCP_CLOCK_MS: u64 = 1_700_000_000_000;

pub async fn start(yaml: &str) -> Running {
    let scenario = Scenario::parse(yaml, "test scenario")
        .unwrap_or_else(|e| panic!("the test scenario does not parse: {e}"));
    sandbox::start(&scenario, sandbox::Options::default())
        .await
        .unwrap_or_else(|e| panic!("the sandbox does not start: {e}"))
}

pub async fn start_builtin() -> Running {
    sandbox::start(&Scenario::builtin(), sandbox::Options::default())
        .await
        .unwrap_or_else(|e| panic!("the sandbox does not start: {e}"))
}

pub fn client() -> Client {
    client_with_timeout(REQUEST_TIMEOUT)
}

pub fn client_with_timeout(timeout: Duration) -> Client {
    redrive::providers::http::install_crypto();
    // No proxy: a proxy from the environment must never see loopback test traffic.
    Client::builder()
        .no_proxy()
        .timeout(timeout)
        .build()
        .expect("a reqwest client builds")
}

/// The listener's root, where `/_sandbox/*` lives whatever the provider's base path is.
pub fn root(sb: &Running, kind: Kind) -> String {
    format!("http://{}", sb.addr(kind))
}

/// An answer read whole: status, headers, raw text and the text as JSON (`Null` if it is not).
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: HeaderMap,
    pub text: String,
    pub body: Value,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

pub async fn send(request: RequestBuilder) -> Reply {
    let response = request
        .send()
        .await
        .unwrap_or_else(|e| panic!("the request got no answer: {e}"));
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let text = response
        .text()
        .await
        .unwrap_or_else(|e| panic!("the answer body could not be read: {e}"));
    let body = serde_json::from_str(&text).unwrap_or(Value::Null);
    Reply {
        status,
        headers,
        text,
        body,
    }
}

/// `GET /_sandbox/stats` (over HTTP, as a benchmark would read it).
pub async fn stats(sb: &Running) -> Value {
    let reply = send(client().get(format!("{}/_sandbox/stats", root(sb, Kind::VenafiTpp)))).await;
    assert_eq!(reply.status, 200, "/_sandbox/stats: {}", reply.text);
    reply.body
}

/// One provider's part of the stats.
pub async fn provider_stats(sb: &Running, kind: Kind) -> Value {
    stats(sb).await["providers"][kind.as_str()].clone()
}

/// `GET /_sandbox/state`.
pub async fn state(sb: &Running) -> Value {
    let reply = send(client().get(format!("{}/_sandbox/state", root(sb, Kind::VenafiTpp)))).await;
    assert_eq!(reply.status, 200, "/_sandbox/state: {}", reply.text);
    reply.body
}

/// Asks `probe` until it yields a value; fails the test when `within` has passed.
pub async fn eventually<T>(
    what: &str,
    within: Duration,
    mut probe: impl AsyncFnMut() -> Option<T>,
) -> T {
    let deadline = Instant::now() + within;
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: not reached within {within:?}"
        );
        tokio::time::sleep(POLL_EVERY).await;
    }
}

/// Percent-encodes everything but RFC 3986's unreserved characters (for query values).
pub fn pct(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// A GET sent over a bare socket, so the request target goes out byte for byte (reqwest would
/// percent-encode `{` and `}`). Answers the status and the body.
pub async fn raw_get(addr: SocketAddr, target: &str, headers: &[(&str, &str)]) -> (u16, String) {
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(addr).await?;
        let mut request = format!("GET {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
        for (name, value) in headers {
            request.push_str(&format!("{name}: {value}\r\n"));
        }
        request.push_str("\r\n");
        stream.write_all(request.as_bytes()).await?;
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).await?;
        Ok::<_, std::io::Error>(answer)
    };
    let answer = tokio::time::timeout(REQUEST_TIMEOUT, exchange)
        .await
        .unwrap_or_else(|_| panic!("GET {target}: no answer within {REQUEST_TIMEOUT:?}"))
        .unwrap_or_else(|e| panic!("GET {target}: {e}"));
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let status = answer
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("GET {target}: not an HTTP answer: {answer:?}"));
    let body = answer
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

// ----- Venafi -----------------------------------------------------------------------------------

pub async fn venafi_oauth(c: &Client, sb: &Running, scope: &str) -> Reply {
    send(
        c.post(format!(
            "{}/vedauth/authorize/oauth",
            sb.url(Kind::VenafiTpp)
        ))
        .json(&json!({
            "client_id": "redrive",
            "username": "svc-redrive",
            "password": "sandbox",
            "scope": scope,
        })),
    )
    .await
}

/// An access token with the scope Retry needs.
pub async fn venafi_token(c: &Client, sb: &Running) -> String {
    let reply = venafi_oauth(c, sb, "certificate:manage").await;
    assert_eq!(reply.status, 200, "oauth: {}", reply.text);
    reply.body["access_token"]
        .as_str()
        .expect("access_token is a string")
        .to_owned()
}

pub async fn venafi_retry(c: &Client, sb: &Running, token: &str, body: &Value) -> Reply {
    send(
        c.post(format!(
            "{}/vedsdk/Certificates/Retry",
            sb.url(Kind::VenafiTpp)
        ))
        .bearer_auth(token)
        .json(body),
    )
    .await
}

pub async fn venafi_guid(c: &Client, sb: &Running, token: &str, dn: &str) -> String {
    let reply = send(
        c.post(format!(
            "{}/vedsdk/Config/DnToGuid",
            sb.url(Kind::VenafiTpp)
        ))
        .bearer_auth(token)
        .json(&json!({"ObjectDN": dn})),
    )
    .await;
    assert_eq!(reply.status, 200, "DnToGuid {dn}: {}", reply.text);
    assert_eq!(reply.body["Result"], 1, "DnToGuid {dn}: {}", reply.text);
    reply.body["GUID"]
        .as_str()
        .expect("GUID is a string")
        .to_owned()
}

/// `GET /vedsdk/Certificates/{guid}`, the answer's `ProcessingDetails`.
pub async fn venafi_processing(c: &Client, sb: &Running, token: &str, guid: &str) -> Value {
    let reply = send(
        c.get(format!(
            "{}/vedsdk/Certificates/{}",
            sb.url(Kind::VenafiTpp),
            pct(guid)
        ))
        .bearer_auth(token),
    )
    .await;
    assert_eq!(reply.status, 200, "details of {guid}: {}", reply.text);
    reply.body["ProcessingDetails"].clone()
}

// ----- VCF --------------------------------------------------------------------------------------

pub async fn vcf_token_pair(c: &Client, sb: &Running) -> Reply {
    send(
        c.post(format!("{}/v1/tokens", sb.url(Kind::Vcf)))
            .json(&json!({"username": "administrator@vsphere.local", "password": "sandbox"})),
    )
    .await
}

pub async fn vcf_token(c: &Client, sb: &Running) -> String {
    let reply = vcf_token_pair(c, sb).await;
    assert!(
        [200, 201].contains(&reply.status),
        "POST /v1/tokens: {} {}",
        reply.status,
        reply.text
    );
    reply.body["accessToken"]
        .as_str()
        .expect("accessToken is a string")
        .to_owned()
}

// ----- OTC --------------------------------------------------------------------------------------

/// The IAM password-token body of the OTC docs, scoped to a project by name.
pub fn otc_auth_body(password: &str, project: &str) -> Value {
    json!({"auth": {
        "identity": {"methods": ["password"], "password": {"user": {
            "name": "svc-redrive-readonly",
            "password": password,
            "domain": {"name": "OTC-EU-DE-00000000001000045678"},
        }}},
        "scope": {"project": {"name": project}},
    }})
}

pub async fn otc_token(c: &Client, sb: &Running, project: &str) -> String {
    let reply = send(
        c.post(format!("{}/auth/tokens", sb.iam_url()))
            .header("content-type", "application/json;charset=utf8")
            .json(&otc_auth_body("sandbox", project)),
    )
    .await;
    assert_eq!(reply.status, 201, "IAM token: {}", reply.text);
    reply
        .header("x-subject-token")
        .expect("X-Subject-Token is set")
        .to_owned()
}

// ----- NCP --------------------------------------------------------------------------------------

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

/// Signature v2: Base64(HMAC-SHA256(secret, "{METHOD} {URI}\n{TIMESTAMP}\n{ACCESS_KEY}")).
pub fn ncp_signature(
    method: &str,
    uri: &str,
    timestamp: &str,
    access_key: &str,
    secret_key: &str,
) -> String {
    let mut mac =
        HmacSha256::new_from_slice(secret_key.as_bytes()).expect("HMAC takes any key length");
    mac.update(format!("{method} {uri}\n{timestamp}\n{access_key}").as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// A request to `target` (path and query, exactly as signed) with the given signature headers.
pub fn ncp_request_signed_as(
    c: &Client,
    sb: &Running,
    method: Method,
    target: &str,
    timestamp: u64,
    signature: &str,
) -> RequestBuilder {
    c.request(method, format!("{}{target}", sb.url(Kind::Ncloud)))
        .header("x-ncp-apigw-timestamp", timestamp.to_string())
        .header("x-ncp-iam-access-key", NCP_ACCESS_KEY)
        .header("x-ncp-apigw-signature-v2", signature)
        .header("content-type", "application/json")
        .header("accept", "application/json")
}

/// A request signed correctly with the example key at `timestamp`.
pub fn ncp_request(
    c: &Client,
    sb: &Running,
    method: Method,
    target: &str,
    timestamp: u64,
) -> RequestBuilder {
    let signature = ncp_signature(
        method.as_str(),
        target,
        &timestamp.to_string(),
        NCP_ACCESS_KEY,
        NCP_SECRET_KEY,
    );
    ncp_request_signed_as(c, sb, method, target, timestamp, &signature)
}

/// The reissue body of the NCP reissue documentation (seed 004), verbatim.
pub const NCP_REISSUE_BODY: &str = r#"{
"csr":"-----BEGIN CERTIFICATE REQUEST-----CCAUICAQAwFT...HzV1ht+BbMeZlD\n-----END CERTIFICATE REQUEST-----\n",
"certificateName": "ncloudcertificate",
"commonName": "*.ncloud.com",
"dnsName": ["ncloud.com", "ncloud-docs.com"],
"validationMethod":"D"
}"#;

/// `statusCode` of one certificate as the v2 list shows it.
pub async fn ncp_status_code(c: &Client, sb: &Running, certificate_no: u64) -> i64 {
    let target = "/api/v2/certificate/certificates?page=1&pageSize=100";
    let reply = send(ncp_request(c, sb, Method::GET, target, NCP_CLOCK_MS)).await;
    assert_eq!(reply.status, 200, "v2 list: {}", reply.text);
    reply.body["sslCertificateList"]
        .as_array()
        .expect("sslCertificateList is a list")
        .iter()
        .find(|c| c["certificateNo"].as_u64() == Some(certificate_no))
        .unwrap_or_else(|| panic!("certificate {certificate_no} is listed: {}", reply.text))
        ["statusCode"]
        .as_i64()
        .expect("statusCode is a number")
}
