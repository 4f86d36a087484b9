//! `GET /3/projects`, ferromq's own: the projects a token may use, so a console can offer them.

use super::auth::token_of;
use super::{ApiError, AppState};
use crate::tokens::Access;
use axum::Json;
use axum::extract::{Request, State};
use serde_json::{Value, json};

#[utoipa::path(
    get,
    path = "/3/projects",
    operation_id = "projects_list",
    tag = "console",
    summary = "ferromq's own: the projects the token may use",
    responses((status = 200, body = super::openapi::Projects), super::openapi::Errors),
    security(("oauth_header" = []), ("oauth_query" = [])),
)]
pub async fn list(
    State(state): State<AppState>,
    request: Request,
) -> Result<Json<Value>, ApiError> {
    let token = token_of(&request);
    let (projects, all) = match state.tokens.access(token.as_deref())? {
        Access::AllProjects => (Vec::new(), true),
        Access::Projects(projects) => {
            let mut projects: Vec<&String> = projects.iter().collect();
            projects.sort();
            (projects, false)
        }
    };
    Ok(Json(json!({ "projects": projects, "all_projects": all })))
}
