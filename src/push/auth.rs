//! Bearer tokens for pushes to subscribers with `jwt`: either a JWT ferromq signs with its own
//! key (ES256; the public key is served as a JWKS, so subscribers verify without a shared
//! secret), or a token read from a file (a projected Kubernetes ServiceAccount token). Both are
//! cached and renewed before they expire.

use crate::model::JwtAuth;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Where the public keys are served (no token needed).
pub const JWKS_PATH: &str = "/.well-known/jwks.json";
/// How long a signed token is valid.
const LIFETIME: Duration = Duration::from_secs(3600);
/// A cached token is renewed when it has less than this left.
const RENEW_BEFORE: Duration = Duration::from_secs(300);
/// A token file is read again at least this often (the kubelet rotates it in place).
const REREAD_EVERY: Duration = Duration::from_secs(60);

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The key ferromq signs push tokens with.
pub struct Signer {
    key: EncodingKey,
    /// Its RFC 7638 thumbprint: the `kid` of tokens and of the JWKS entry.
    kid: String,
    jwks: Value,
    issuer: String,
}

impl Signer {
    /// Reads a PEM PKCS#8 P-256 private key (`openssl genpkey -algorithm EC -pkeyopt
    /// ec_paramgen_curve:P-256`).
    pub fn load(path: &str, issuer: String) -> Result<Self, String> {
        let pem = std::fs::read(path).map_err(|e| format!("cannot read {path}: {e}"))?;
        let key = EncodingKey::from_ec_pem(&pem)
            .map_err(|e| format!("{path} is not a PEM P-256 private key: {e}"))?;
        let der = pem_body(&pem).ok_or_else(|| format!("{path} holds no PEM block"))?;
        let pair = ring::signature::EcdsaKeyPair::from_pkcs8(
            &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            &der,
            &ring::rand::SystemRandom::new(),
        )
        .map_err(|e| format!("{path} is not a PKCS#8 P-256 private key: {e}"))?;
        // The public key is the uncompressed point: 0x04, x, y.
        let point = ring::signature::KeyPair::public_key(&pair).as_ref();
        let (x, y) = (B64.encode(&point[1..33]), B64.encode(&point[33..65]));
        let canonical = format!(r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#);
        let kid = B64.encode(<sha2::Sha256 as sha2::Digest>::digest(canonical.as_bytes()));
        let jwks = json!({ "keys": [{
            "kty": "EC", "crv": "P-256", "x": x, "y": y,
            "kid": kid, "alg": "ES256", "use": "sig",
        }]});
        Ok(Signer {
            key,
            kid,
            jwks,
            issuer,
        })
    }

    /// The public keys, as served at `JWKS_PATH`.
    pub fn jwks(&self) -> &Value {
        &self.jwks
    }

    fn sign(&self, audience: &str, subject: &str, now: u64) -> Result<String, String> {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(self.kid.clone());
        let claims = json!({
            "iss": self.issuer,
            "aud": audience,
            "sub": subject,
            "iat": now,
            "exp": now + LIFETIME.as_secs(),
        });
        jsonwebtoken::encode(&header, &claims, &self.key).map_err(|e| e.to_string())
    }
}

/// The base64 body of the first PEM block.
fn pem_body(pem: &[u8]) -> Option<Vec<u8>> {
    let text = std::str::from_utf8(pem).ok()?;
    let body: String = text
        .lines()
        .skip_while(|l| !l.starts_with("-----BEGIN"))
        .skip(1)
        .take_while(|l| !l.starts_with("-----END"))
        .collect();
    base64::engine::general_purpose::STANDARD.decode(body).ok()
}

/// A token and when it stops being used (unix seconds).
type Cached = (String, u64);

/// The bearer tokens of one process.
#[derive(Default)]
pub struct Bearers {
    signer: Option<Signer>,
    /// (audience, subject) or token file -> token.
    cache: Mutex<HashMap<String, Cached>>,
}

impl Bearers {
    /// Token files are read only from `token_dir`.
    pub fn new(signer: Option<Signer>, token_dir: Option<std::path::PathBuf>) -> Self {
        crate::settings::set_jwt_sources(signer.is_some(), token_dir);
        Bearers {
            signer,
            cache: Mutex::default(),
        }
    }

    pub fn signer(&self) -> Option<&Signer> {
        self.signer.as_ref()
    }

    /// The token for a push to `url` of queue `subject` ("project/queue").
    pub fn token(&self, jwt: &JwtAuth, url: &str, subject: &str) -> Result<String, String> {
        let now = unix_now();
        let cache_key = match &jwt.token_file {
            Some(path) => format!("file\0{path}"),
            None => format!("jwt\0{}\0{subject}", jwt.audience.as_deref().unwrap_or(url)),
        };
        if let Some((token, renew_at)) = self.cached(&cache_key)
            && now < renew_at
        {
            return Ok(token);
        }
        let (token, renew_at) = match &jwt.token_file {
            Some(path) => {
                let file = crate::settings::token_file(path)?;
                let token = std::fs::read_to_string(file)
                    .map_err(|e| format!("cannot read jwt.token_file {path}: {e}"))?
                    .trim()
                    .to_string();
                // A projected token's audience is the pod's to choose; one that is not the
                // audience asked for would be refused by the subscriber.
                if let Some(wanted) = &jwt.audience
                    && !audiences(&token).iter().any(|a| a == wanted)
                {
                    return Err(format!(
                        "the token in jwt.token_file {path} is not for audience {wanted}"
                    ));
                }
                // Read again before the token's own expiry, and at least every minute.
                let renew = expiry(&token)
                    .map_or(u64::MAX, |exp| exp.saturating_sub(RENEW_BEFORE.as_secs()))
                    .min(now + REREAD_EVERY.as_secs());
                (token, renew)
            }
            None => {
                let signer = self.signer.as_ref().ok_or(
                    "jwt needs a key source: this server has no FERROMQ_PUSH_JWT_KEY".to_string(),
                )?;
                let audience = jwt.audience.as_deref().unwrap_or(url);
                let token = signer.sign(audience, subject, now)?;
                (token, now + (LIFETIME - RENEW_BEFORE).as_secs())
            }
        };
        self.cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(cache_key, (token.clone(), renew_at));
        Ok(token)
    }

    fn cached(&self, key: &str) -> Option<Cached> {
        self.cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(key)
            .cloned()
    }
}

/// The claims of a JWT, read without checking its signature (it is ours to send, not to trust).
fn claims(token: &str) -> Option<Value> {
    let claims = token.split('.').nth(1)?;
    serde_json::from_slice(&B64.decode(claims).ok()?).ok()
}

/// The `exp` claim of a JWT.
fn expiry(token: &str) -> Option<u64> {
    claims(token)?["exp"].as_u64()
}

/// The `aud` claim of a JWT: one audience or several.
fn audiences(token: &str) -> Vec<String> {
    match claims(token).map(|c| c["aud"].clone()) {
        Some(Value::String(one)) => vec![one],
        Some(Value::Array(many)) => many
            .into_iter()
            .filter_map(|a| a.as_str().map(str::to_string))
            .collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_token_is_renewed_before_its_expiry() {
        let claims = B64.encode(br#"{"exp":1700000000}"#);
        assert_eq!(expiry(&format!("h.{claims}.s")), Some(1_700_000_000));
        assert_eq!(expiry("not-a-jwt"), None);
        let many = B64.encode(br#"{"aud":["a","b"]}"#);
        assert_eq!(audiences(&format!("h.{many}.s")), ["a", "b"]);
    }
}
