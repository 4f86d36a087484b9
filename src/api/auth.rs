//! OAuth tokens: who may call the API, and on which projects.
//! A token comes in the `Authorization: OAuth <token>` header or the `oauth` query parameter.

use super::{ApiError, AppState};
use axum::extract::{Request, State};
use axum::http::header::AUTHORIZATION;
use axum::middleware::Next;
use axum::response::Response;
use std::collections::{HashMap, HashSet};

/// The projects one token may use.
#[derive(Debug, Clone, PartialEq)]
pub enum Access {
    AllProjects,
    Projects(HashSet<String>),
}

/// Tokens and their access, read from `FERROMQ_TOKENS` and/or a tokens file. Kept by SHA-256
/// digest, and a presented token is looked up by its digest: how long a lookup takes depends
/// on digests, which an attacker cannot steer byte by byte, so timing tells nothing about the
/// tokens (and the tokens themselves are not kept in memory).
#[derive(Debug, Clone, Default)]
pub struct Tokens(HashMap<[u8; 32], Access>);

fn digest(token: &str) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(token.as_bytes()).into()
}

impl Tokens {
    /// Reads entries `TOKEN=PROJECT[,PROJECT...]` or `TOKEN=*`, separated by whitespace, `;`
    /// or new lines; `#` starts a comment. A token listed twice gets the union of its projects.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut tokens = Tokens::default();
        for line in text.lines() {
            let line = line.split('#').next().unwrap_or("");
            for entry in line.split(|c: char| c == ';' || c.is_whitespace()) {
                if entry.is_empty() {
                    continue;
                }
                let (token, projects) = entry
                    .split_once('=')
                    .ok_or_else(|| format!("token entry {entry:?} is not TOKEN=PROJECTS"))?;
                if token.is_empty() || projects.is_empty() {
                    return Err(format!("token entry {entry:?} is not TOKEN=PROJECTS"));
                }
                let access = if projects == "*" {
                    Access::AllProjects
                } else {
                    Access::Projects(projects.split(',').map(String::from).collect())
                };
                tokens.add(token, access);
            }
        }
        Ok(tokens)
    }

    fn add(&mut self, token: &str, access: Access) {
        self.add_digest(digest(token), access);
    }

    fn add_digest(&mut self, token: [u8; 32], access: Access) {
        let merged = match (self.0.remove(&token), access) {
            (Some(Access::AllProjects), _) | (_, Access::AllProjects) => Access::AllProjects,
            (Some(Access::Projects(mut old)), Access::Projects(new)) => {
                old.extend(new);
                Access::Projects(old)
            }
            (None, access) => access,
        };
        self.0.insert(token, merged);
    }

    pub fn merge(&mut self, other: Tokens) {
        for (token, access) in other.0 {
            self.add_digest(token, access);
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// May `token` use `project`? `Err` says why not, as the status to answer.
    pub fn check(&self, token: Option<&str>, project: &str) -> Result<(), ApiError> {
        let token = token.ok_or_else(|| {
            ApiError::Unauthorized("Missing OAuth token (Authorization: OAuth <token>)".into())
        })?;
        match self.0.get(&digest(token)) {
            None => Err(ApiError::Unauthorized("Invalid OAuth token".into())),
            Some(Access::AllProjects) => Ok(()),
            Some(Access::Projects(p)) if p.contains(project) => Ok(()),
            Some(_) => Err(ApiError::Forbidden(format!(
                "This token may not use project {project}"
            ))),
        }
    }
}

/// The token of a request: the header wins over the query parameter.
fn token_of(request: &Request) -> Option<String> {
    let from_header = request
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, token) = v.trim().split_once(' ')?;
            let ok = scheme.eq_ignore_ascii_case("oauth") || scheme.eq_ignore_ascii_case("bearer");
            ok.then(|| token.trim().to_string())
        });
    from_header.or_else(|| {
        let query = request.uri().query()?;
        form_urlencoded_value(query, "oauth")
    })
}

fn form_urlencoded_value(query: &str, name: &str) -> Option<String> {
    query.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=')?;
        (key == name).then(|| {
            let value = value.replace('+', " ");
            percent_encoding::percent_decode_str(&value)
                .decode_utf8_lossy()
                .into_owned()
        })
    })
}

/// The project a `/3/projects/{project}/...` path names, percent-decoded.
fn project_of(request: &Request) -> String {
    let segment = request.uri().path().split('/').nth(3).unwrap_or("");
    percent_encoding::percent_decode_str(segment)
        .decode_utf8_lossy()
        .into_owned()
}

/// The reservation id a subscriber acknowledging a push (DELETE on its
/// `Iron-Subscriber-Message-Url`) proves itself with instead of a token; the store checks it.
/// Handed to the handler as is, so the handler acts on exactly the id that let it in.
#[derive(Debug, Clone)]
pub struct AckReservation(pub String);

fn subscriber_ack_reservation(request: &Request) -> Option<String> {
    let segments: Vec<&str> = request.uri().path().split('/').collect();
    let is_ack = request.method() == axum::http::Method::DELETE
        && segments.len() == 10
        && segments[8] == "subscribers";
    if !is_ack {
        return None;
    }
    let query = request.uri().query()?;
    form_urlencoded_value(query, "reservation_id").filter(|rid| !rid.is_empty())
}

/// Middleware in front of every `/3/projects/{project}` route.
pub async fn require_token(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    if let Some(rid) = subscriber_ack_reservation(&request) {
        request.extensions_mut().insert(AckReservation(rid));
        return Ok(next.run(request).await);
    }
    let token = token_of(&request);
    state
        .tokens
        .check(token.as_deref(), &project_of(&request))?;
    Ok(next.run(request).await)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_parse_from_entries_and_comments() {
        let tokens = Tokens::parse("a=* # admin\nb=p1,p2; c=p3\n").unwrap();
        assert!(tokens.check(Some("a"), "anything").is_ok());
        assert!(tokens.check(Some("b"), "p2").is_ok());
        assert!(matches!(
            tokens.check(Some("b"), "p3"),
            Err(ApiError::Forbidden(_))
        ));
        assert!(matches!(
            tokens.check(Some("zz"), "p3"),
            Err(ApiError::Unauthorized(_))
        ));
        assert!(matches!(
            tokens.check(None, "p3"),
            Err(ApiError::Unauthorized(_))
        ));
    }

    #[test]
    fn malformed_token_entries_are_refused() {
        assert!(Tokens::parse("no-equals-sign").is_err());
        assert!(Tokens::parse("=p1").is_err());
    }
}
