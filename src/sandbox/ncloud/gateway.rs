//! NCP's API gateway (providers.md §5.1): signature v2 over the request target as received, the
//! ±5 minute timestamp window, Sub Account keys refused by Certificate Manager 2.0, trace ids.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use base64::Engine;
use hmac::{KeyInit, Mac};

use super::{Sim, WINDOW_MS, gateway};
use crate::rng;
use crate::sandbox::reply;
use crate::sandbox::scenario::NcloudKey;

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

impl Sim {
    /// The gateway's check: headers present, key known, timestamp in the window, signature
    /// equal (in constant time) to the one computed over the request target as received.
    fn verify(
        &self,
        method: &Method,
        target: &str,
        headers: &HeaderMap,
    ) -> Result<&NcloudKey, Response> {
        let fail = |details: &str| {
            gateway(
                StatusCode::UNAUTHORIZED,
                "200",
                "Authentication Failed",
                details,
            )
        };
        let (Some(timestamp), Some(access_key), Some(signature)) = (
            reply::header(headers, "x-ncp-apigw-timestamp"),
            reply::header(headers, "x-ncp-iam-access-key"),
            reply::header(headers, "x-ncp-apigw-signature-v2"),
        ) else {
            return Err(fail(
                "x-ncp-apigw-timestamp, x-ncp-iam-access-key and x-ncp-apigw-signature-v2 are required",
            ));
        };
        let Ok(ts) = timestamp.trim().parse::<i64>() else {
            return Err(fail(
                "x-ncp-apigw-timestamp is not a number of milliseconds",
            ));
        };
        let now = self.clock_ms.unwrap_or_else(reply::now_ms);
        if (now - ts).abs() > WINDOW_MS {
            return Err(fail(
                "x-ncp-apigw-timestamp is more than 5 minutes away from the gateway's clock",
            ));
        }
        let Some(key) = self.keys.iter().find(|k| k.access_key == access_key) else {
            return Err(fail("unknown x-ncp-iam-access-key"));
        };
        let Ok(given) = base64::engine::general_purpose::STANDARD.decode(signature.trim()) else {
            return Err(fail("x-ncp-apigw-signature-v2 is not Base64"));
        };
        let mut mac =
            HmacSha256::new_from_slice(key.secret_key.as_bytes()).expect("any key length works");
        mac.update(format!("{} {target}\n{timestamp}\n{access_key}", method.as_str()).as_bytes());
        mac.verify_slice(&given)
            .map_err(|_| fail("signature mismatch"))?;
        Ok(key)
    }
}

/// Every request passes the gateway first, whether or not a route matches.
pub(super) async fn gateway_layer(
    State(sim): State<Arc<Sim>>,
    request: Request,
    next: Next,
) -> Response {
    let target = request.uri().path_and_query().map_or_else(
        || request.uri().path().to_owned(),
        |pq| pq.as_str().to_owned(),
    );
    let verified = sim
        .verify(request.method(), &target, request.headers())
        .map(|key| key.sub_account);
    let mut response = match verified {
        Err(e) => e,
        // Certificate Manager 2.0 refuses Sub Account keys.
        Ok(true) if request.uri().path().starts_with("/api/v2/") => gateway(
            StatusCode::FORBIDDEN,
            "230",
            "Forbidden",
            "Certificate Manager 2.0 APIs need a main account key",
        ),
        Ok(_) => next.run(request).await,
    };
    let trace = format!(
        "{:016x}",
        rng::hash(
            sim.seed,
            &[target.as_bytes(), &reply::now_ms().to_le_bytes()]
        )
    );
    if let Ok(v) = HeaderValue::from_str(&trace) {
        response.headers_mut().insert("x-ncp-trace-id", v);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `{METHOD} {URI}\n{TIMESTAMP}\n{ACCESS_KEY}` signed with HMAC-SHA256, Base64 with padding.
    fn signature(
        method: &str,
        uri: &str,
        timestamp: &str,
        access_key: &str,
        secret: &str,
    ) -> String {
        let mut mac = HmacSha256::new_from_slice(secret.as_bytes()).expect("any key length works");
        mac.update(format!("{method} {uri}\n{timestamp}\n{access_key}").as_bytes());
        base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
    }

    /// The worked examples of providers.md §5.1.
    #[test]
    fn documented_signature_vectors() {
        let secret = "EXAMPLESECRETKEY000000000000000000000001";
        let key = "EXAMPLEACCESSKEY0001";
        let ts = "1700000000000";
        assert_eq!(
            signature("POST", "/api/v2/certificate/55882/reissue", ts, key, secret),
            "9lWpoarE2tTpLjDPMfURlwW/pg0v7+Na6rnAH45y5pY="
        );
        assert_eq!(
            signature(
                "GET",
                "/api/v1/certificates?certificateNo=55882",
                ts,
                key,
                secret
            ),
            "JmzhEFvAlP5Wg4tfCutwNXyqOYl1MiAMASQRQnLEv/k="
        );
        assert_eq!(
            signature(
                "GET",
                "/api/v2/certificate/certificates?page=1&pageSize=20",
                ts,
                key,
                secret
            ),
            "MqOO0VyUq7L3LAwtPQOUqtjrwNUctPjRLCdWk7kYWvI="
        );
        assert_eq!(
            signature(
                "GET",
                "/vserver/v2/getServerInstanceList?responseFormatType=json",
                "1234567890123",
                "TestAccessKey",
                "TestSecretKey"
            ),
            "FPsYYX8fuMAgi+cue3eACOW0dNtIwu1LYWfg/megA2M="
        );
    }
}
