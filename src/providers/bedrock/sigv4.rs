//! AWS Signature Version 4, in pure Rust (HMAC-SHA256 from the `hmac`/`sha2`
//! crates). The clock comes in as `now_ms`.

use crate::hex::encode as hex;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

type HmacSha256 = Hmac<Sha256>;

pub struct Credentials<'a> {
    pub access_key_id: &'a str,
    pub secret_access_key: &'a str,
    pub session_token: Option<&'a str>,
}

fn hmac(key: &[u8], data: &str) -> Vec<u8> {
    // HMAC accepts keys of any length, so this cannot fail.
    match HmacSha256::new_from_slice(key) {
        Ok(mut mac) => {
            mac.update(data.as_bytes());
            mac.finalize().into_bytes().to_vec()
        }
        Err(_) => Vec::new(),
    }
}

pub fn sha256_hex(data: &[u8]) -> String {
    hex(&Sha256::digest(data))
}

/// `YYYYMMDD'T'HHMMSS'Z'` from Unix milliseconds (proleptic Gregorian, UTC).
pub fn amz_date(now_ms: u64) -> String {
    let secs = now_ms / 1000;
    let days = (secs / 86_400) as i64;
    let (h, m, s) = ((secs % 86_400) / 3600, (secs % 3600) / 60, secs % 60);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}{month:02}{day:02}T{h:02}{m:02}{s:02}Z")
}

/// RFC 3986 encoding as SigV4 wants it (unreserved characters kept).
pub fn uri_encode(value: &str) -> String {
    super::super::openai::percent_encode(value)
}

/// What is signed: the request in canonical form. `headers` are lowercase
/// name/value pairs, sorted, and must include `host` and `x-amz-date`.
pub struct Canonical<'a> {
    pub method: &'a str,
    pub uri: &'a str,
    pub query: &'a str,
    pub headers: &'a [(String, String)],
    pub payload_hash: &'a str,
}

/// Where and when: the credential scope.
pub struct Scope<'a> {
    pub amz_date: &'a str,
    pub region: &'a str,
    pub service: &'a str,
}

/// Returns the `authorization` header value and the bare signature.
pub fn signature(request: &Canonical, credentials: &Credentials, scope: &Scope) -> (String, String) {
    let Canonical { method, uri: canonical_uri, query: canonical_query, headers, payload_hash } = *request;
    let Scope { amz_date, region, service } = *scope;
    let canonical_headers: String = headers.iter().map(|(n, v)| format!("{n}:{}\n", v.trim())).collect();
    let signed_headers = headers.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>().join(";");
    let canonical_request =
        format!("{method}\n{canonical_uri}\n{canonical_query}\n{canonical_headers}\n{signed_headers}\n{payload_hash}");
    let date = amz_date.get(..8).unwrap_or_default();
    let scope = format!("{date}/{region}/{service}/aws4_request");
    let string_to_sign = format!("AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}", sha256_hex(canonical_request.as_bytes()));
    let k_date = hmac(format!("AWS4{}", credentials.secret_access_key).as_bytes(), date);
    let k_region = hmac(&k_date, region);
    let k_service = hmac(&k_region, service);
    let k_signing = hmac(&k_service, "aws4_request");
    let signature = hex(&hmac(&k_signing, &string_to_sign));
    let authorization = format!(
        "AWS4-HMAC-SHA256 Credential={}/{scope}, SignedHeaders={signed_headers}, Signature={signature}",
        credentials.access_key_id
    );
    (authorization, signature)
}

/// Signs a POST with a JSON body to `https://{host}{path}` (path already URI-encoded
/// once; SigV4 for services other than S3 encodes each segment a second time).
/// Returns the headers to send.
pub fn sign_post(
    host: &str,
    path: &str,
    body: &[u8],
    credentials: &Credentials,
    region: &str,
    service: &str,
    now_ms: u64,
) -> Vec<(&'static str, String)> {
    let date = amz_date(now_ms);
    let payload_hash = sha256_hex(body);
    let canonical_uri: String = path.split('/').map(uri_encode).collect::<Vec<_>>().join("/");
    let mut headers = vec![
        ("content-type".to_string(), "application/json".to_string()),
        ("host".to_string(), host.to_string()),
        ("x-amz-content-sha256".to_string(), payload_hash.clone()),
        ("x-amz-date".to_string(), date.clone()),
    ];
    if let Some(token) = credentials.session_token {
        headers.push(("x-amz-security-token".to_string(), token.to_string()));
    }
    crate::order::sort(&mut headers);
    let canonical =
        Canonical { method: "POST", uri: &canonical_uri, query: "", headers: &headers, payload_hash: &payload_hash };
    let (authorization, _) = signature(&canonical, credentials, &Scope { amz_date: &date, region, service });
    let mut out = vec![("authorization", authorization), ("x-amz-content-sha256", payload_hash), ("x-amz-date", date)];
    if let Some(token) = credentials.session_token {
        out.push(("x-amz-security-token", token.to_string()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const CREDS: Credentials = Credentials {
        access_key_id: "AKIDEXAMPLE",
        secret_access_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        session_token: None,
    };

    fn h(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect()
    }

    fn vanilla(method: &str) -> (String, String) {
        let headers = h(&[("host", "example.amazonaws.com"), ("x-amz-date", "20150830T123600Z")]);
        let hash = sha256_hex(b"");
        let canonical = Canonical { method, uri: "/", query: "", headers: &headers, payload_hash: &hash };
        signature(&canonical, &CREDS, &Scope { amz_date: "20150830T123600Z", region: "us-east-1", service: "service" })
    }

    #[test]
    fn aws_test_suite_get_vanilla() {
        // aws-sig-v4-test-suite/get-vanilla
        let (auth, _) = vanilla("GET");
        assert_eq!(auth, "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31");
    }

    #[test]
    fn aws_test_suite_post_vanilla() {
        // aws-sig-v4-test-suite/post-vanilla
        let (_, signature) = vanilla("POST");
        assert_eq!(signature, "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b");
    }

    #[test]
    fn dates_are_utc_civil() {
        assert_eq!(amz_date(1_440_938_160_000), "20150830T123600Z");
        assert_eq!(amz_date(0), "19700101T000000Z");
        assert_eq!(amz_date(951_782_400_000), "20000229T000000Z");
        assert_eq!(amz_date(1_798_761_599_000), "20261231T235959Z");
    }

    #[test]
    fn bedrock_paths_are_encoded_twice_in_the_canonical_uri() {
        let signed = sign_post(
            "bedrock-runtime.us-east-1.amazonaws.com",
            "/model/anthropic.claude-3-haiku-20240307-v1%3A0/converse",
            b"{}",
            &Credentials { session_token: Some("token"), ..CREDS },
            "us-east-1",
            "bedrock",
            1_440_938_160_000,
        );
        let auth = &signed[0].1;
        assert!(auth.starts_with("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/bedrock/aws4_request, SignedHeaders=content-type;host;x-amz-content-sha256;x-amz-date;x-amz-security-token, Signature="));
        assert!(signed.contains(&("x-amz-security-token", "token".to_string())));
        assert_eq!(uri_encode("v1%3A0"), "v1%253A0");
    }
}
