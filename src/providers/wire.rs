//! Provider calls straight over hyper's HTTP/1 client, without reqwest's layers: the trust a
//! provider's `tls` block asks for, made into one rustls config both clients share, and the
//! exchange of a request for its whole answer, gzip decoded, within one deadline.
//!
//! reqwest still builds every request and sends the ones a proxy from the environment applies
//! to. Its layers cost each request about 27,000 instructions of the 45,000 its exchange took
//! (a redirect layer that parses the URL twice even with `Policy::none()`, a retry layer,
//! decompression wrappers, header copies): by callgrind, a quarter of the apply's instructions
//! per action (131,100 before, 99,200 after).

use std::io::Read;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::header::{self, HeaderValue};
use hyper_util::client::legacy;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

use super::http::{CallError, Reply, SetupError};
use crate::manifest::model::Tls;

/// The most bytes an answer may have, on the wire and once decoded: a hostile or broken server
/// cannot fill the memory of a run, and no documented answer comes near it.
pub const MAX_BODY: usize = 64 * 1024 * 1024;

/// How long an idle connection is kept for the next request (reqwest's default).
const IDLE: Duration = Duration::from_secs(90);
/// Idle connections kept per host: as many as the widest concurrency in use.
const IDLE_PER_HOST: usize = 256;

/// Which servers a provider's client believes.
#[derive(Debug, Clone)]
pub enum Trust {
    /// The platform's roots, and these too (`tls.ca_file`).
    System(Vec<CertificateDer<'static>>),
    /// These roots only (`tls.ca_file` with `tls.ca_only`).
    Only(Vec<CertificateDer<'static>>),
    /// Any certificate (`tls.insecure_skip_verify`); the handshake's signatures still count.
    Anyone,
}

/// The trust `tls` asks for; `base_dir` anchors `tls.ca_file`.
///
/// # Errors
/// A CA bundle that cannot be read or holds no certificate, even when verification is off: a
/// broken file is worth knowing about before it is needed.
pub fn trust(tls: Option<&Tls>, base_dir: &Path) -> Result<Trust, SetupError> {
    let Some(tls) = tls else {
        return Ok(Trust::System(Vec::new()));
    };
    let certs = match &tls.ca_file {
        Some(file) => {
            let path = base_dir.join(file);
            let shown = || path.display().to_string();
            let pem = std::fs::read(&path).map_err(|e| SetupError::CaFile {
                path: shown(),
                detail: e.to_string(),
            })?;
            pem_certificates(&pem).map_err(|detail| SetupError::CaFile {
                path: shown(),
                detail,
            })?
        }
        None => Vec::new(),
    };
    Ok(if tls.insecure_skip_verify {
        Trust::Anyone
    } else if tls.ca_only && !certs.is_empty() {
        Trust::Only(certs)
    } else {
        Trust::System(certs)
    })
}

/// The certificates of a PEM bundle.
fn pem_certificates(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("not a PEM bundle: {e}"))?;
    if certs.is_empty() {
        return Err("it holds no `BEGIN CERTIFICATE` block".to_owned());
    }
    Ok(certs)
}

/// The TLS config of one provider's clients: TLS 1.2 and 1.3 with ring, no client
/// certificate, HTTP/1.1 by ALPN.
///
/// # Errors
/// Roots the verifier refuses.
pub fn tls_config(trust: &Trust) -> Result<ClientConfig, SetupError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let refused = |e: rustls::Error| SetupError::Client(format!("TLS roots: {e}"));
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(refused)?;
    let mut config = match trust {
        Trust::System(extra) => {
            let verifier = if extra.is_empty() {
                rustls_platform_verifier::Verifier::new(provider)
            } else {
                rustls_platform_verifier::Verifier::new_with_extra_roots(extra.clone(), provider)
            }
            .map_err(refused)?;
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(verifier))
                .with_no_client_auth()
        }
        Trust::Only(certs) => {
            let mut roots = RootCertStore::empty();
            for cert in certs {
                roots.add(cert.clone()).map_err(refused)?;
            }
            builder.with_root_certificates(roots).with_no_client_auth()
        }
        Trust::Anyone => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyCertificate(
                provider.signature_verification_algorithms,
            )))
            .with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// Whether the environment names a proxy (`HTTP_PROXY`, `HTTPS_PROXY`, `ALL_PROXY`, either
/// case): reqwest honours them, and so calls that may go through one are left to it.
#[must_use]
pub fn proxy_configured() -> bool {
    ["HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"]
        .iter()
        .flat_map(|name| [name.to_string(), name.to_ascii_lowercase()])
        .any(|name| std::env::var_os(name).is_some_and(|v| !v.is_empty()))
}

/// Accepts any server certificate, as `insecure_skip_verify` asks, but still checks that the
/// server holds the key of the certificate it showed.
#[derive(Debug)]
struct AnyCertificate(WebPkiSupportedAlgorithms);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_schemes()
    }
}

/// A transport failure of [`Direct::exchange`], by whether the request may have arrived.
#[derive(Debug)]
pub enum WireError {
    /// No connection: nothing was sent.
    Connect(String),
    /// No whole answer within the deadline.
    Timeout,
    /// The connection failed after the request may have been written.
    Broken(String),
}

impl WireError {
    /// The failure of a call to `url` (shown without its query) with a deadline of `after`.
    #[must_use]
    pub fn at(self, url: String, after: Duration) -> CallError {
        match self {
            Self::Connect(detail) => CallError::Connect { url, detail },
            Self::Timeout => CallError::Timeout { url, after },
            Self::Broken(detail) => CallError::Broken { url, detail },
        }
    }
}

type Connector = hyper_rustls::HttpsConnector<HttpConnector>;

/// A pooled HTTP/1 client for `http` and `https` with one provider's TLS config, never through
/// a proxy.
#[derive(Clone, Debug)]
pub struct Direct {
    client: legacy::Client<Connector, Full<Bytes>>,
    user_agent: HeaderValue,
}

impl Direct {
    #[must_use]
    pub fn new(mut tls: ClientConfig, connect_timeout: Duration, user_agent: &str) -> Self {
        let mut http = HttpConnector::new();
        // `https` URLs reach the TLS layer through this plain TCP connector.
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_connect_timeout(Some(connect_timeout));
        // An HTTP/1-only connector offers no ALPN of its own, and refuses a config that does.
        tls.alpn_protocols.clear();
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let client = legacy::Builder::new(TokioExecutor::new())
            .timer(TokioTimer::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(IDLE)
            .pool_max_idle_per_host(IDLE_PER_HOST)
            .build(https);
        Self {
            client,
            user_agent: HeaderValue::from_str(user_agent)
                .unwrap_or_else(|_| HeaderValue::from_static("redrive")),
        }
    }

    /// Sends `request` and reads its whole answer, all within `deadline`.
    ///
    /// # Errors
    /// A transport failure, by whether the request may have arrived; an answer over
    /// [`MAX_BODY`] is a broken one.
    pub async fn exchange(
        &self,
        mut request: reqwest::Request,
        deadline: Duration,
    ) -> Result<Reply, WireError> {
        let uri: hyper::Uri = request
            .url()
            .as_str()
            .parse()
            .map_err(|e: hyper::http::uri::InvalidUri| WireError::Connect(e.to_string()))?;
        let body = match request.body().and_then(reqwest::Body::as_bytes) {
            Some(bytes) => Bytes::copy_from_slice(bytes),
            None if request.body().is_some() => {
                return Err(WireError::Connect(
                    "a streamed body cannot be sent".to_owned(),
                ));
            }
            None => Bytes::new(),
        };
        let mut headers = std::mem::take(request.headers_mut());
        // What reqwest's client adds to a request that does not say otherwise.
        headers
            .entry(header::USER_AGENT)
            .or_insert_with(|| self.user_agent.clone());
        headers
            .entry(header::ACCEPT)
            .or_insert(HeaderValue::from_static("*/*"));
        headers
            .entry(header::ACCEPT_ENCODING)
            .or_insert(HeaderValue::from_static("gzip"));
        let mut outgoing = hyper::Request::new(Full::new(body));
        *outgoing.method_mut() = request.method().clone();
        *outgoing.uri_mut() = uri;
        *outgoing.headers_mut() = headers;
        let call = async {
            let response = self.client.request(outgoing).await.map_err(|e| {
                if e.is_connect() {
                    WireError::Connect(super::http::root_cause(&e))
                } else {
                    WireError::Broken(super::http::root_cause(&e))
                }
            })?;
            let (parts, body) = response.into_parts();
            let bytes = Limited::new(body, MAX_BODY)
                .collect()
                .await
                .map_err(|e| WireError::Broken(super::http::root_cause(&*e)))?
                .to_bytes();
            Ok::<_, WireError>((parts, bytes))
        };
        let (mut parts, bytes) = tokio::time::timeout(deadline, call)
            .await
            .map_err(|_| WireError::Timeout)??;
        let gzipped = parts
            .headers
            .get(header::CONTENT_ENCODING)
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"gzip"));
        let body = if gzipped {
            parts.headers.remove(header::CONTENT_ENCODING);
            parts.headers.remove(header::CONTENT_LENGTH);
            gunzip(&bytes, MAX_BODY).map_err(WireError::Broken)?
        } else {
            Vec::from(bytes)
        };
        Ok(Reply {
            status: parts.status.as_u16(),
            headers: parts.headers,
            body,
        })
    }
}

/// A gzip body decoded, at most `limit` bytes of it.
fn gunzip(bytes: &[u8], limit: usize) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(bytes.len().saturating_mul(4).min(limit));
    flate2::read::MultiGzDecoder::new(bytes)
        .take(limit as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| format!("the gzip answer does not decode: {e}"))?;
    if out.len() > limit {
        return Err(format!(
            "the gzip answer decodes to more than {limit} bytes"
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        encoder.write_all(data).expect("write");
        encoder.finish().expect("finish")
    }

    #[test]
    fn gunzip_decodes_within_its_bound_and_refuses_a_bomb() {
        assert_eq!(
            gunzip(&gzip(b"{\"ok\":true}"), 100).expect("decodes"),
            b"{\"ok\":true}"
        );
        let bomb = gzip(&vec![0; 1 << 20]);
        assert!(bomb.len() < 4096, "{}", bomb.len());
        let e = gunzip(&bomb, 1000).unwrap_err();
        assert!(e.contains("more than 1000 bytes"), "{e}");
        assert!(
            gunzip(b"not gzip", 100)
                .unwrap_err()
                .contains("does not decode")
        );
    }

    #[test]
    fn a_ca_bundle_needs_a_certificate() {
        let e = pem_certificates(b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
            .unwrap_err();
        assert!(e.contains("no `BEGIN CERTIFICATE`"), "{e}");
        assert!(pem_certificates(b"").is_err());
    }
}
