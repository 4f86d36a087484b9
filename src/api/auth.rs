//! The token check in front of the API. A token comes in the `Authorization: OAuth <token>`
//! header or the `oauth` query parameter; `crate::tokens` says which projects it may use.

use super::{ApiError, AppState};
use axum::extract::{Request, State};
use axum::http::header::AUTHORIZATION;
use axum::middleware::Next;
use axum::response::Response;

/// The token of a request: the header wins over the query parameter.
pub(super) fn token_of(request: &Request) -> Option<String> {
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
    use crate::tokens::Tokens;

    /// The check as the API answers it.
    fn check(tokens: &Tokens, token: Option<&str>, project: &str) -> Result<(), ApiError> {
        tokens.check(token, project).map_err(ApiError::from)
    }

    #[test]
    fn tokens_parse_from_entries_and_comments() {
        let tokens = Tokens::parse("a=* # admin\nb=p1,p2; c=p3\n").unwrap();
        assert!(check(&tokens, Some("a"), "anything").is_ok());
        assert!(check(&tokens, Some("b"), "p2").is_ok());
        assert!(matches!(
            check(&tokens, Some("b"), "p3"),
            Err(ApiError::Forbidden(_))
        ));
        assert!(matches!(
            check(&tokens, Some("zz"), "p3"),
            Err(ApiError::Unauthorized(_))
        ));
        assert!(matches!(
            check(&tokens, None, "p3"),
            Err(ApiError::Unauthorized(_))
        ));
    }

    #[test]
    fn malformed_token_entries_are_refused() {
        assert!(Tokens::parse("no-equals-sign").is_err());
        assert!(Tokens::parse("=p1").is_err());
    }
}
