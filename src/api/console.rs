//! The web console at `/console/`: three static files built into the binary (`src/console/`),
//! which talk to the REST API from the browser with the token the user signs in with.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};

/// Name, content type and content of each file.
const FILES: [(&str, &str, &[u8]); 4] = [
    (
        "",
        "text/html; charset=utf-8",
        include_bytes!("../console/index.html"),
    ),
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../console/app.js"),
    ),
    (
        "app.css",
        "text/css; charset=utf-8",
        include_bytes!("../console/app.css"),
    ),
    (
        "icon.svg",
        "image/svg+xml",
        include_bytes!("../console/icon.svg"),
    ),
];

/// Only the console's own files run and are fetched; it calls nothing but this server.
const POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
    img-src 'self' data:; connect-src 'self'; form-action 'self'; base-uri 'none'; \
    frame-ancestors 'none'";

pub async fn redirect() -> Redirect {
    Redirect::permanent("/console/")
}

pub async fn index() -> Response {
    file("").await
}

pub async fn asset(axum::extract::Path(name): axum::extract::Path<String>) -> Response {
    file(&name).await
}

async fn file(name: &str) -> Response {
    let Some((_, content_type, body)) = FILES.iter().find(|(n, _, _)| *n == name) else {
        return super::ApiError::NotFound(format!("{name} is not a file of the console"))
            .into_response();
    };
    let mut response = (StatusCode::OK, *body).into_response();
    let headers = response.headers_mut();
    for (name, value) in [
        (header::CONTENT_TYPE, *content_type),
        (header::CONTENT_SECURITY_POLICY, POLICY),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
        // A new binary may bring new files: ask every time (they are small).
        (header::CACHE_CONTROL, "no-cache"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}
