//! The routes: each handler reads the signed-in state from the session on every request, so a
//! session destroyed elsewhere shows as signed out on the next one.

use axum::Router;
use axum::extract::Form;
use axum::extract::rejection::FormRejection;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use maud::Markup;
use serde::Deserialize;
use sessionbank_tower::{Session, SessionLayer};

use crate::name::{clean_user_agent, validate_name};
use crate::pages::{self, SessionRow};

/// Session key of the visit counter.
const VISITS: &str = "visits";
/// Session key of the user agent stored at sign-in.
const USER_AGENT: &str = "user_agent";

/// The demo's router, with the session layer around every route.
pub(crate) fn router(layer: SessionLayer) -> Router {
    Router::new()
        .route("/", get(home))
        .route("/sign-in", post(sign_in))
        .route("/sessions", get(sessions))
        .route("/sessions/sign-out", post(sign_out_one))
        .route("/sign-out-everywhere", post(sign_out_everywhere))
        .route("/sign-out", post(sign_out))
        .fallback(not_found)
        .layer(layer)
}

/// What a handler can fail with, each with its status and page.
#[derive(Debug)]
enum PageError {
    /// The input is wrong: 400 with a sentence for the person.
    BadRequest(&'static str),
    /// The session store failed: 500 (503 when retrying may help), details only in the log.
    Store(sessionbank_core::Error),
}

impl From<sessionbank_core::Error> for PageError {
    fn from(e: sessionbank_core::Error) -> Self {
        PageError::Store(e)
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        match self {
            PageError::BadRequest(message) => html(
                StatusCode::BAD_REQUEST,
                pages::error("That did not work", message, None),
            ),
            PageError::Store(e) => {
                tracing::error!(error = %e, "session store error");
                let status = if e.kind().is_retryable() {
                    StatusCode::SERVICE_UNAVAILABLE
                } else {
                    StatusCode::INTERNAL_SERVER_ERROR
                };
                html(
                    status,
                    pages::error(
                        "Something went wrong",
                        "The session store failed. Please try again in a moment.",
                        None,
                    ),
                )
            }
        }
    }
}

type PageResult = Result<Response, PageError>;

fn html(status: StatusCode, page: Markup) -> Response {
    (
        status,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        page.into_string(),
    )
        .into_response()
}

fn see_other(to: &str) -> Response {
    Redirect::to(to).into_response()
}

async fn home(session: Session) -> PageResult {
    let visits = session
        .get::<u64>(VISITS)
        .await?
        .unwrap_or(0)
        .saturating_add(1);
    session.insert(VISITS, visits).await?;
    let owner = session.owner().await?;
    Ok(html(StatusCode::OK, pages::home(visits, owner.as_deref())))
}

#[derive(Deserialize)]
struct SignInForm {
    name: String,
}

async fn sign_in(
    session: Session,
    headers: HeaderMap,
    form: Result<Form<SignInForm>, FormRejection>,
) -> PageResult {
    let Ok(Form(form)) = form else {
        return Err(PageError::BadRequest(
            "The sign-in form must be sent as a form with a `name` field.",
        ));
    };
    let name = validate_name(&form.name).map_err(PageError::BadRequest)?;
    let user_agent = headers
        .get(header::USER_AGENT)
        .and_then(|v| clean_user_agent(v.as_bytes()));
    session.set_owner(Some(name)).await?;
    match user_agent {
        Some(ua) => session.insert(USER_AGENT, ua).await?,
        None => {
            session.remove(USER_AGENT).await?;
        }
    }
    // A new id on every change of privilege: a cookie planted before sign-in is worthless after.
    session.cycle_id().await?;
    tracing::info!("signed in");
    Ok(see_other("/"))
}

async fn sessions(session: Session) -> PageResult {
    let Some(owner) = session.owner().await? else {
        return Ok(see_other("/"));
    };
    let current = session.id().await?;
    let mut owned = session.store().owned_by(&owner).await?;
    owned.sort_by_key(|(_, record)| record.created_at);
    let rows: Vec<SessionRow> = owned
        .iter()
        .map(|(id, record)| SessionRow {
            short: id.short().to_owned(),
            created: record.created_at,
            last_seen: record.last_access,
            user_agent: record
                .data
                .get(USER_AGENT)
                .and_then(|v| v.as_str())
                .map(str::to_owned),
            current: current.as_ref() == Some(id),
        })
        .collect();
    Ok(html(StatusCode::OK, pages::sessions(&owner, &rows)))
}

#[derive(Deserialize)]
struct SignOutOneForm {
    session: String,
}

async fn sign_out_one(
    session: Session,
    form: Result<Form<SignOutOneForm>, FormRejection>,
) -> PageResult {
    let Some(owner) = session.owner().await? else {
        return Ok(see_other("/"));
    };
    let Ok(Form(form)) = form else {
        return Err(PageError::BadRequest(
            "The form must be sent as a form with a `session` field.",
        ));
    };
    let short = form.session.trim();
    if short.len() != 8
        || !short
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(PageError::BadRequest(
            "A session is named by the 8 characters shown in the list.",
        ));
    }
    // Only the user's own sessions are candidates: a short id of anyone else's matches nothing.
    let owned = session.store().owned_by(&owner).await?;
    let matches: Vec<_> = owned
        .iter()
        .filter(|(id, _)| id.short() == short)
        .map(|(id, _)| *id)
        .collect();
    let [target] = matches.as_slice() else {
        return Ok(html(
            StatusCode::NOT_FOUND,
            pages::error(
                "No such session",
                "None of your live sessions has that id; it may have signed out already.",
                Some(&owner),
            ),
        ));
    };
    if session.id().await?.as_ref() == Some(target) {
        session.destroy().await?;
        return Ok(see_other("/"));
    }
    session.store().destroy(target).await?;
    tracing::info!("signed out one other session");
    Ok(see_other("/sessions"))
}

async fn sign_out_everywhere(session: Session) -> PageResult {
    let Some(owner) = session.owner().await? else {
        return Ok(see_other("/"));
    };
    let destroyed = session.store().destroy_owned_by(&owner, None).await?;
    session.destroy().await?;
    tracing::info!(destroyed, "signed out everywhere");
    Ok(see_other("/"))
}

async fn sign_out(session: Session) -> PageResult {
    session.destroy().await?;
    Ok(see_other("/"))
}

async fn not_found(session: Session) -> PageResult {
    let owner = session.owner().await?;
    Ok(html(
        StatusCode::NOT_FOUND,
        pages::error(
            "Page not found",
            "There is no page at this address.",
            owner.as_deref(),
        ),
    ))
}
