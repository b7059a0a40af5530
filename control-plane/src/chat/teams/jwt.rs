//! Inbound authentication of the Bot Framework: every activity the Bot Connector sends to the
//! messaging endpoint carries `Authorization: Bearer <JWT>`, which must be
//!
//! - signed with RS256 (nothing else: not `none`, not HS256 with the public key as secret) by
//!   a key of the connector's JWKS (from the OpenID metadata's `jwks_uri`, or `jwks_url`),
//! - issued by `issuer` (`https://api.botframework.com`) for `aud` = the bot's App ID,
//! - within `exp`/`nbf`, give or take the 5 minutes of clock skew the Bot Framework allows,
//! - and, once the activity is read, for that activity: the token's `serviceUrl` claim equals
//!   the activity's `serviceUrl`, and the key is endorsed for its `channelId` when the JWKS
//!   lists endorsements.
//!
//! Keys are cached; an unknown `kid` (Microsoft rotates keys) fetches the JWKS again, at most
//! once a minute, so that forged tokens with random key ids cannot make the server hammer
//! Microsoft. Keys are also refreshed once a day.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::Value;
use tokio::sync::Mutex;

use super::KeySource;

/// Clock skew allowed on `exp` and `nbf` (the Bot Framework's documented 5 minutes).
pub const LEEWAY: Duration = Duration::from_secs(5 * 60);
/// Least time between two fetches of the keys.
pub const REFETCH_EVERY: Duration = Duration::from_secs(60);
/// Least time between two fetches while no key was ever fetched (start-up, outage).
const RETRY_EMPTY: Duration = Duration::from_secs(5);
/// Keys older than this are fetched again.
const MAX_AGE: Duration = Duration::from_secs(24 * 60 * 60);

/// Why a request was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejection {
    /// No token, not a JWT, not RS256, an unknown key, a bad signature, a token for another
    /// activity.
    BadToken(String),
    /// Outside its validity (`exp`, `nbf`).
    Expired(String),
    /// `iss` is not the configured issuer.
    WrongIssuer,
    /// `aud` is not the bot's App ID.
    WrongAudience,
    /// The signing keys could not be fetched: nothing can be verified (the connector retries).
    Unavailable(String),
}

impl Rejection {
    /// Stable code for the audit record.
    pub fn code(&self) -> &'static str {
        match self {
            Rejection::BadToken(_) => "bad_token",
            Rejection::Expired(_) => "expired",
            Rejection::WrongIssuer => "wrong_issuer",
            Rejection::WrongAudience => "wrong_audience",
            Rejection::Unavailable(_) => "keys_unavailable",
        }
    }

    /// What the caller is told.
    pub fn message(&self) -> String {
        match self {
            Rejection::BadToken(why) => format!("request refused: {why}"),
            Rejection::Expired(why) => format!("request refused: token {why}"),
            Rejection::WrongIssuer => "request refused: token from another issuer".into(),
            Rejection::WrongAudience => "request refused: token for another bot".into(),
            Rejection::Unavailable(_) => {
                "cannot verify the request now (signing keys unavailable)".into()
            }
        }
    }
}

/// A token that passed: its claims and what its key is endorsed for.
#[derive(Debug, Clone)]
pub struct Verified {
    claims: Value,
    endorsements: Option<Vec<String>>,
}

impl Verified {
    /// Checks that the token was issued for an activity of `service_url` and `channel_id`.
    pub fn check_activity(&self, service_url: &str, channel_id: &str) -> Result<(), Rejection> {
        let claim = self.claims["serviceurl"]
            .as_str()
            .or_else(|| self.claims["serviceUrl"].as_str());
        let Some(claimed) = claim else {
            return Err(Rejection::BadToken(
                "the token names no serviceUrl: it was not issued for this activity".into(),
            ));
        };
        if claimed.trim_end_matches('/') != service_url.trim_end_matches('/') {
            return Err(Rejection::BadToken(
                "the token's serviceUrl is not the activity's".into(),
            ));
        }
        if let Some(endorsed) = &self.endorsements {
            if !endorsed.iter().any(|e| e == channel_id) {
                return Err(Rejection::BadToken(format!(
                    "the signing key is not endorsed for channel {channel_id:?}"
                )));
            }
        }
        Ok(())
    }
}

#[derive(Clone)]
struct Key {
    decoding: DecodingKey,
    endorsements: Option<Vec<String>>,
}

#[derive(Default)]
struct Keys {
    by_kid: HashMap<String, Key>,
    fetched_at: Option<Instant>,
    tried_at: Option<Instant>,
}

/// Verifies the Bot Connector's tokens.
pub struct Verifier {
    http: reqwest::Client,
    source: KeySource,
    validation: Validation,
    keys: Mutex<Keys>,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("source", &self.source)
            .field("issuer", &self.validation.iss)
            .field("audience", &self.validation.aud)
            .finish_non_exhaustive()
    }
}

impl Verifier {
    /// Tokens of `issuer` for `audience` (the App ID), signed by keys from `source`.
    pub fn new(http: reqwest::Client, source: KeySource, issuer: &str, audience: &str) -> Self {
        let mut validation = Validation::new(Algorithm::RS256);
        validation.leeway = LEEWAY.as_secs();
        validation.validate_nbf = true;
        validation.set_issuer(&[issuer]);
        validation.set_audience(&[audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        Verifier {
            http,
            source,
            validation,
            keys: Mutex::new(Keys::default()),
        }
    }

    /// Verifies the value of an `Authorization` header.
    pub async fn verify(&self, authorization: Option<&str>) -> Result<Verified, Rejection> {
        let token = authorization
            .and_then(|h| {
                let (scheme, token) = h.split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
            })
            .filter(|t| !t.is_empty())
            .ok_or_else(|| Rejection::BadToken("no bearer token".into()))?;
        // `none` is not an algorithm jsonwebtoken knows: such headers fail here.
        let header = jsonwebtoken::decode_header(token)
            .map_err(|_| Rejection::BadToken("not a signed JWT".into()))?;
        if header.alg != Algorithm::RS256 {
            return Err(Rejection::BadToken(format!(
                "algorithm {:?} is not RS256",
                header.alg
            )));
        }
        let kid = header
            .kid
            .ok_or_else(|| Rejection::BadToken("the token names no key (kid)".into()))?;
        let key = self
            .key(&kid)
            .await?
            .ok_or_else(|| Rejection::BadToken("signed with an unknown key".into()))?;
        let data = jsonwebtoken::decode::<Value>(token, &key.decoding, &self.validation)
            .map_err(|e| rejection(e.kind()))?;
        Ok(Verified {
            claims: data.claims,
            endorsements: key.endorsements,
        })
    }

    /// The key `kid`, fetching the keys when it is unknown (at most every minute).
    async fn key(&self, kid: &str) -> Result<Option<Key>, Rejection> {
        let mut keys = self.keys.lock().await;
        let now = Instant::now();
        let stale = keys.fetched_at.is_none_or(|t| t.elapsed() >= MAX_AGE);
        let unknown = !keys.by_kid.contains_key(kid);
        let pause = if keys.by_kid.is_empty() {
            RETRY_EMPTY
        } else {
            REFETCH_EVERY
        };
        let may_fetch = keys.tried_at.is_none_or(|t| t.elapsed() >= pause);
        if (stale || unknown) && may_fetch {
            keys.tried_at = Some(now);
            match self.fetch().await {
                Ok(fetched) => {
                    tracing::info!(
                        keys = fetched.len(),
                        "teams: Bot Framework signing keys fetched"
                    );
                    keys.by_kid = fetched;
                    keys.fetched_at = Some(now);
                }
                Err(e) => {
                    tracing::warn!(error = %e, "teams: cannot fetch the Bot Framework signing keys")
                }
            }
        }
        if keys.by_kid.is_empty() {
            return Err(Rejection::Unavailable("no signing keys".into()));
        }
        Ok(keys.by_kid.get(kid).cloned())
    }

    async fn fetch(&self) -> Result<HashMap<String, Key>, String> {
        let jwks_url = match &self.source {
            KeySource::Jwks(url) => url.clone(),
            KeySource::OpenId(url) => {
                let metadata = self.get_json(url).await?;
                metadata["jwks_uri"]
                    .as_str()
                    .ok_or_else(|| format!("{url}: no jwks_uri"))?
                    .to_owned()
            }
        };
        let set = self.get_json(&jwks_url).await?;
        let mut keys = HashMap::new();
        for k in set["keys"].as_array().into_iter().flatten() {
            let rsa_sig = k["kty"] == "RSA" && (k["use"].is_null() || k["use"] == "sig");
            let (Some(kid), Some(n), Some(e)) =
                (k["kid"].as_str(), k["n"].as_str(), k["e"].as_str())
            else {
                continue;
            };
            if !rsa_sig {
                continue;
            }
            let Ok(decoding) = DecodingKey::from_rsa_components(n, e) else {
                tracing::warn!(kid, "teams: a signing key that does not decode; skipped");
                continue;
            };
            let endorsements = k["endorsements"].as_array().map(|list| {
                list.iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            });
            keys.insert(
                kid.to_owned(),
                Key {
                    decoding,
                    endorsements,
                },
            );
        }
        if keys.is_empty() {
            return Err(format!("{jwks_url}: no RSA signing keys"));
        }
        Ok(keys)
    }

    async fn get_json(&self, url: &str) -> Result<Value, String> {
        let response = self
            .http
            .get(url)
            .send()
            .await
            .map_err(|e| format!("{url}: {e}"))?;
        let status = response.status();
        if !status.is_success() {
            return Err(format!("{url}: HTTP {status}"));
        }
        response.json().await.map_err(|e| format!("{url}: {e}"))
    }
}

fn rejection(kind: &jsonwebtoken::errors::ErrorKind) -> Rejection {
    use jsonwebtoken::errors::ErrorKind as K;
    match kind {
        K::ExpiredSignature => Rejection::Expired("expired".into()),
        K::ImmatureSignature => Rejection::Expired("not valid yet (nbf)".into()),
        K::InvalidIssuer => Rejection::WrongIssuer,
        K::InvalidAudience => Rejection::WrongAudience,
        K::InvalidSignature => Rejection::BadToken("signature does not match".into()),
        K::MissingRequiredClaim(c) => Rejection::BadToken(format!("the token has no {c} claim")),
        K::InvalidAlgorithm => Rejection::BadToken("algorithm is not RS256".into()),
        _ => Rejection::BadToken("not a valid JWT".into()),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::Arc;

    use axum::routing::get;
    use axum::{Json, Router};
    use jsonwebtoken::{EncodingKey, Header};
    use serde_json::json;

    use super::*;

    const KEY: &str = include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/botframework-test-only-key.pem"
    ));
    const OTHER_KEY: &str = include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/botframework-test-only-other-key.pem"
    ));
    const JWKS: &str = include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/botframework-test-only-jwks.json"
    ));
    const KID: &str = "countersign-test-key-1";
    const ISSUER: &str = "https://api.botframework.com";
    const APP: &str = "0c1a2b3c-4d5e-6f70-8192-a3b4c5d6e7f8";
    const SERVICE: &str = "https://smba.trafficmanager.net/emea/";

    /// A local OpenID metadata + JWKS server; counts the JWKS fetches.
    async fn keys_server() -> (String, Arc<AtomicU32>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let fetches = Arc::new(AtomicU32::new(0));
        let counter = fetches.clone();
        let jwks_uri = format!("{base}/keys");
        let router = Router::new()
            .route(
                "/openid",
                get(move || async move { Json(json!({ "issuer": ISSUER, "jwks_uri": jwks_uri })) }),
            )
            .route(
                "/keys",
                get(move || async move {
                    counter.fetch_add(1, Ordering::SeqCst);
                    Json(serde_json::from_str::<Value>(JWKS).expect("jwks"))
                }),
            );
        tokio::spawn(async move { axum::serve(listener, router).await.expect("serve") });
        (format!("{base}/openid"), fetches)
    }

    fn now() -> i64 {
        jsonwebtoken::get_current_timestamp() as i64
    }

    fn claims() -> Value {
        json!({
            "iss": ISSUER, "aud": APP, "serviceurl": SERVICE,
            "nbf": now() - 10, "exp": now() + 3600
        })
    }

    fn sign_with(pem: &str, kid: &str, claims: &Value) -> String {
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(kid.into());
        let key = EncodingKey::from_rsa_pem(pem.as_bytes()).expect("test key");
        jsonwebtoken::encode(&header, claims, &key).expect("sign")
    }

    fn bearer(token: &str) -> String {
        format!("Bearer {token}")
    }

    async fn verifier() -> (Verifier, Arc<AtomicU32>) {
        let (openid, fetches) = keys_server().await;
        let v = Verifier::new(
            reqwest::Client::new(),
            KeySource::OpenId(openid),
            ISSUER,
            APP,
        );
        (v, fetches)
    }

    #[tokio::test]
    async fn a_connector_token_is_accepted_for_its_activity() {
        let (v, _) = verifier().await;
        let token = sign_with(KEY, KID, &claims());
        let ok = v.verify(Some(&bearer(&token))).await.expect("valid");
        assert_eq!(ok.check_activity(SERVICE, "msteams"), Ok(()));
        // Another service URL or channel than the token was issued for.
        assert_eq!(
            ok.check_activity("https://smba.example.invalid/", "msteams")
                .map_err(|r| r.code()),
            Err("bad_token")
        );
        assert!(ok.check_activity(SERVICE, "slack").is_err());
        // Within the 5 minutes of clock skew.
        let mut late = claims();
        late["exp"] = json!(now() - 120);
        let token = sign_with(KEY, KID, &late);
        assert!(v.verify(Some(&bearer(&token))).await.is_ok());
    }

    #[tokio::test]
    async fn forged_expired_and_misdirected_tokens_are_refused() {
        let (v, _) = verifier().await;
        let code = |r: Result<Verified, Rejection>| r.map(|_| ()).map_err(|e| e.code());

        let forged = sign_with(OTHER_KEY, KID, &claims());
        assert_eq!(
            code(v.verify(Some(&bearer(&forged))).await),
            Err("bad_token")
        );
        let mut wrong_issuer = claims();
        wrong_issuer["iss"] = json!("https://sts.windows.net/evil/");
        let t = sign_with(KEY, KID, &wrong_issuer);
        assert_eq!(code(v.verify(Some(&bearer(&t))).await), Err("wrong_issuer"));
        let mut wrong_audience = claims();
        wrong_audience["aud"] = json!("11111111-2222-3333-4444-555555555555");
        let t = sign_with(KEY, KID, &wrong_audience);
        assert_eq!(
            code(v.verify(Some(&bearer(&t))).await),
            Err("wrong_audience")
        );
        let mut expired = claims();
        expired["exp"] = json!(now() - 6 * 60);
        let t = sign_with(KEY, KID, &expired);
        assert_eq!(code(v.verify(Some(&bearer(&t))).await), Err("expired"));
        let mut early = claims();
        early["nbf"] = json!(now() + 6 * 60);
        let t = sign_with(KEY, KID, &early);
        assert_eq!(code(v.verify(Some(&bearer(&t))).await), Err("expired"));
        let mut no_issuer = claims();
        no_issuer.as_object_mut().expect("object").remove("iss");
        let t = sign_with(KEY, KID, &no_issuer);
        assert_eq!(code(v.verify(Some(&bearer(&t))).await), Err("bad_token"));

        // alg none: the valid token's claims with no signature.
        let valid = sign_with(KEY, KID, &claims());
        let payload = valid.split('.').nth(1).expect("payload");
        let none = format!("eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{payload}.");
        assert_eq!(code(v.verify(Some(&bearer(&none))).await), Err("bad_token"));
        // HS256 with the public key as the shared secret (the classic confusion).
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(KID.into());
        let hs = jsonwebtoken::encode(
            &header,
            &claims(),
            &EncodingKey::from_secret(JWKS.as_bytes()),
        )
        .expect("sign");
        let refused = v.verify(Some(&bearer(&hs))).await.expect_err("HS256");
        assert!(refused.message().contains("not RS256"), "{refused:?}");

        for garbage in [
            None,
            Some("Basic abc"),
            Some("Bearer "),
            Some("Bearer a.b.c"),
        ] {
            assert_eq!(
                code(v.verify(garbage).await),
                Err("bad_token"),
                "{garbage:?}"
            );
        }
    }

    #[tokio::test]
    async fn unknown_keys_are_refused_and_fetched_at_most_once_a_minute() {
        let (v, fetches) = verifier().await;
        let good = sign_with(KEY, KID, &claims());
        v.verify(Some(&bearer(&good))).await.expect("valid");
        assert_eq!(fetches.load(Ordering::SeqCst), 1);
        for n in 0..5 {
            let t = sign_with(KEY, &format!("rotated-{n}"), &claims());
            let refused = v.verify(Some(&bearer(&t))).await.expect_err("unknown kid");
            assert_eq!(
                refused.message(),
                "request refused: signed with an unknown key"
            );
        }
        assert_eq!(
            fetches.load(Ordering::SeqCst),
            1,
            "unknown key ids re-fetched the keys within a minute"
        );
        v.verify(Some(&bearer(&good))).await.expect("still valid");
    }

    #[tokio::test]
    async fn no_keys_means_unavailable_not_forged() {
        let v = Verifier::new(
            reqwest::Client::new(),
            KeySource::Jwks("http://127.0.0.1:9/keys".into()),
            ISSUER,
            APP,
        );
        let token = sign_with(KEY, KID, &claims());
        let r = v.verify(Some(&bearer(&token))).await.expect_err("no keys");
        assert_eq!(r.code(), "keys_unavailable");
    }
}
