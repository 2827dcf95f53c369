//! `GET` and `POST /api/notes/`, served next to the whole API by
//! [`saas_http::router_with`]: the same tenant resolution, authentication,
//! pagination and error shape as ours, through our extractors.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use saas_core::permissions::{Action, HostAction, Relation};
use saas_core::users::Role;
use saas_http::pagination::{Paginated, Pagination};
use saas_http::{ApiJson, ApiResult, AppState, Auth};
use serde::Deserialize;

use crate::jobs::{CountWords, NoteRef};
use crate::notes::{self, NewNote, Note};

/// Writing a note: members and up (viewers only read), judged by the
/// same role matrix as ours.
pub const WRITE_NOTE: HostAction = HostAction::new("write_note", Role::Member);

/// The body of `POST /api/notes/`.
#[derive(Debug, Deserialize)]
pub struct NoteIn {
    /// Required, not blank.
    pub title: String,
    /// Optional, empty by default.
    #[serde(default)]
    pub body: String,
}

/// The notes routes, over the API's state.
pub fn routes(api: AppState) -> Router {
    Router::new()
        .route("/api/notes/", get(list).post(create))
        .with_state(api)
}

/// The tenant's notes, DRF-style pages (`?page=`, `?page_size=`).
async fn list(Auth(session): Auth, pages: Pagination) -> ApiResult<Json<Paginated<Note>>> {
    let page = notes::list(&session, pages.request()).await?;
    Ok(Json(pages.respond(page, |n| n)?))
}

/// Writes a note (201 with it), then has its words counted in the
/// background (`words` is `null` until then).
async fn create(
    State(api): State<AppState>,
    Auth(session): Auth,
    ApiJson(body): ApiJson<NoteIn>,
) -> ApiResult<(StatusCode, Json<Note>)> {
    session.require(Action::Host(WRITE_NOTE), Relation::None)?;
    let note = NewNote::new(&body.title, &body.body, Some(session.me().id))?;
    let note = notes::create(&session, note, api.saas().now()).await?;
    // The note is written: a queue refusing the job (the tenant's cap of
    // pending jobs, an outage) leaves it uncounted rather than failing
    // the request.
    if let Some(jobs) = api.jobs() {
        let tenant = session.tenant().id;
        if let Err(e) = jobs
            .enqueue_job::<CountWords>(Some(tenant), &NoteRef { note: note.id })
            .await
        {
            tracing::warn!(%tenant, note = note.id, error = %e, "words not counted");
        }
    }
    Ok((StatusCode::CREATED, Json(note)))
}
