//! The JSON routes: one per thing a person can do, each a thin mapping of
//! HTTP onto a [`Call`] that the service thread runs, exactly as the CLI's.
//! Described in `openapi.json` (served at `/api/openapi.json`); a test checks
//! the two agree.
//!
//! Bad input (a malformed id, a missing field, an unknown query parameter)
//! is a 400 whose JSON names what was wrong, before anything runs.

use axum::Json;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use kith_core::{IdentityId, PostId, Role};
use serde::Deserialize;
use serde_json::json;

use super::{ApiError, AppState, run};
use crate::call::{Call, NodeCall, Reply};

/// Most posts one feed page holds.
pub const MAX_PAGE: usize = 200;
/// Default feed page.
pub const DEFAULT_PAGE: usize = 50;

type ApiResult = Result<Response, ApiError>;

fn bad(message: impl Into<String>) -> ApiError {
    ApiError::new("invalid", message)
}

fn body<T>(b: Result<Json<T>, JsonRejection>) -> Result<T, ApiError> {
    b.map(|Json(v)| v).map_err(super::rejected_body)
}

fn query<T>(q: Result<Query<T>, QueryRejection>) -> Result<T, ApiError> {
    q.map(|Query(v)| v)
        .map_err(|e| bad(format!("bad query: {}", e.body_text())))
}

fn post_id(s: &str) -> Result<PostId, ApiError> {
    s.parse().map_err(|e| bad(format!("{e}")))
}

fn person_id(s: &str) -> Result<IdentityId, ApiError> {
    s.parse().map_err(|e| bad(format!("{e}")))
}

/// The JSON of a reply: its value, without the envelope `/api/call` uses.
fn ok(reply: Reply) -> ApiResult {
    let value = match reply {
        Reply::Whoami(v) => json!(v),
        Reply::Post(id) => json!({ "id": id }),
        Reply::Done => json!({ "done": true }),
        Reply::Changed(changed) => json!({ "changed": changed }),
        Reply::Posts(v) => json!(v),
        Reply::Thread(v) => json!(v),
        Reply::History(v) => json!(v),
        Reply::Person(v) => json!(v),
        Reply::People(v) => json!(v),
        Reply::Exported { file, changes } => json!({ "file": file, "changes": changes }),
        Reply::Imported {
            applied,
            pending,
            duplicates,
            skipped_private,
        } => json!({
            "applied": applied,
            "pending": pending,
            "duplicates": duplicates,
            "skipped_private": skipped_private,
        }),
        Reply::Status(v) => json!(v),
        Reply::Peers(v) => json!(v),
        Reply::Group(v) => json!(v),
        Reply::Groups(v) => json!(v),
        Reply::Invite(v) => json!(v),
        Reply::Invites(v) => json!(v),
        Reply::Archive(bytes) => {
            return Ok((
                [
                    (header::CONTENT_TYPE, "application/octet-stream"),
                    (
                        header::CONTENT_DISPOSITION,
                        "attachment; filename=\"kith-export.kith\"",
                    ),
                ],
                bytes,
            )
                .into_response());
        }
    };
    Ok(Json(value).into_response())
}

fn created(reply: Reply) -> ApiResult {
    let mut r = ok(reply)?;
    *r.status_mut() = StatusCode::CREATED;
    Ok(r)
}

pub async fn status(State(s): State<AppState>) -> ApiResult {
    ok(run(&s, Call::Node(NodeCall::Status)).await?)
}

/// Prometheus metrics (OpenMetrics text; see [`crate::metrics`]).
pub async fn metrics(State(s): State<AppState>) -> Result<Response, ApiError> {
    let Reply::Status(status) = run(&s, Call::Node(NodeCall::Status)).await? else {
        return Err(ApiError::new(
            "internal",
            "the node answered status with something else",
        ));
    };
    let Reply::Peers(peers) = run(&s, Call::Node(NodeCall::Peers)).await? else {
        return Err(ApiError::new(
            "internal",
            "the node answered peers with something else",
        ));
    };
    s.metrics.observe(&status, &peers);
    let text = crate::metrics::encode(&s.registry);
    Ok(([(header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)], text).into_response())
}

pub async fn whoami(State(s): State<AppState>) -> ApiResult {
    ok(run(&s, Call::Whoami).await?)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeedQuery {
    group: Option<String>,
    author: Option<String>,
    limit: Option<usize>,
    before: Option<String>,
    #[serde(default)]
    home: bool,
}

pub async fn feed(
    State(s): State<AppState>,
    q: Result<Query<FeedQuery>, QueryRejection>,
) -> ApiResult {
    let q = query(q)?;
    let limit = q.limit.unwrap_or(DEFAULT_PAGE);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(bad(format!("limit must be 1 to {MAX_PAGE}")));
    }
    let call = Call::Feed {
        author: q.author.as_deref().map(person_id).transpose()?,
        limit,
        group: q.group,
        before: q.before.as_deref().map(post_id).transpose()?,
        home: q.home,
    };
    ok(run(&s, call).await?)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewPost {
    text: String,
    reply_to: Option<String>,
    group: Option<String>,
}

pub async fn create_post(
    State(s): State<AppState>,
    b: Result<Json<NewPost>, JsonRejection>,
) -> ApiResult {
    let b = body(b)?;
    let call = Call::Post {
        text: b.text,
        reply_to: b.reply_to.as_deref().map(post_id).transpose()?,
        group: b.group,
    };
    created(run(&s, call).await?)
}

pub async fn thread(State(s): State<AppState>, Path(id): Path<String>) -> ApiResult {
    let post = post_id(&id)?;
    let reply = run(&s, Call::Thread { post }).await?;
    if matches!(&reply, Reply::Thread(t) if t.is_empty()) {
        return Err(ApiError::new(
            "unknown_post",
            format!("no post {post} in this store"),
        ));
    }
    ok(reply)
}

pub async fn history(State(s): State<AppState>, Path(id): Path<String>) -> ApiResult {
    ok(run(
        &s,
        Call::History {
            post: post_id(&id)?,
        },
    )
    .await?)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Text {
    text: String,
}

pub async fn edit(
    State(s): State<AppState>,
    Path(id): Path<String>,
    b: Result<Json<Text>, JsonRejection>,
) -> ApiResult {
    let post = post_id(&id)?;
    let text = body(b)?.text;
    run(&s, Call::Edit { post, text }).await?;
    Ok(Json(json!({ "id": post, "edited": true })).into_response())
}

pub async fn delete(State(s): State<AppState>, Path(id): Path<String>) -> ApiResult {
    let post = post_id(&id)?;
    run(&s, Call::Delete { post }).await?;
    Ok(Json(json!({ "id": post, "deleted": true })).into_response())
}

pub async fn react(
    State(s): State<AppState>,
    Path((id, emoji)): Path<(String, String)>,
) -> ApiResult {
    ok(run(
        &s,
        Call::React {
            post: post_id(&id)?,
            emoji,
        },
    )
    .await?)
}

pub async fn unreact(
    State(s): State<AppState>,
    Path((id, emoji)): Path<(String, String)>,
) -> ApiResult {
    ok(run(
        &s,
        Call::Unreact {
            post: post_id(&id)?,
            emoji,
        },
    )
    .await?)
}

pub async fn my_profile(State(s): State<AppState>) -> ApiResult {
    ok(run(&s, Call::Person { id: None }).await?)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfileUpdate {
    name: Option<String>,
    bio: Option<String>,
}

pub async fn set_profile(
    State(s): State<AppState>,
    b: Result<Json<ProfileUpdate>, JsonRejection>,
) -> ApiResult {
    let b = body(b)?;
    ok(run(
        &s,
        Call::SetProfile {
            name: b.name,
            bio: b.bio,
        },
    )
    .await?)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeopleQuery {
    label: Option<String>,
    #[serde(default)]
    nearby: bool,
}

pub async fn people(
    State(s): State<AppState>,
    q: Result<Query<PeopleQuery>, QueryRejection>,
) -> ApiResult {
    let q = query(q)?;
    let call = if q.nearby {
        Call::Node(NodeCall::Nearby { label: q.label })
    } else {
        Call::People { label: q.label }
    };
    ok(run(&s, call).await?)
}

pub async fn person(State(s): State<AppState>, Path(id): Path<String>) -> ApiResult {
    ok(run(
        &s,
        Call::Person {
            id: Some(person_id(&id)?),
        },
    )
    .await?)
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FollowBody {
    #[serde(default)]
    labels: Vec<String>,
}

pub async fn follow(
    State(s): State<AppState>,
    Path(id): Path<String>,
    b: Option<Json<FollowBody>>,
) -> ApiResult {
    let labels = b.map(|Json(b)| b.labels).unwrap_or_default();
    ok(run(
        &s,
        Call::Follow {
            id: person_id(&id)?,
            labels,
        },
    )
    .await?)
}

pub async fn unfollow(State(s): State<AppState>, Path(id): Path<String>) -> ApiResult {
    ok(run(
        &s,
        Call::Unfollow {
            id: person_id(&id)?,
        },
    )
    .await?)
}

pub async fn block(State(s): State<AppState>, Path(id): Path<String>) -> ApiResult {
    ok(run(
        &s,
        Call::Block {
            id: person_id(&id)?,
        },
    )
    .await?)
}

pub async fn unblock(State(s): State<AppState>, Path(id): Path<String>) -> ApiResult {
    ok(run(
        &s,
        Call::Unblock {
            id: person_id(&id)?,
        },
    )
    .await?)
}

pub async fn mute(State(s): State<AppState>, Path(id): Path<String>) -> ApiResult {
    ok(run(
        &s,
        Call::Mute {
            id: person_id(&id)?,
        },
    )
    .await?)
}

pub async fn unmute(State(s): State<AppState>, Path(id): Path<String>) -> ApiResult {
    ok(run(
        &s,
        Call::Unmute {
            id: person_id(&id)?,
        },
    )
    .await?)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LabelsBody {
    #[serde(default)]
    add: Vec<String>,
    #[serde(default)]
    remove: Vec<String>,
}

pub async fn labels(
    State(s): State<AppState>,
    Path(id): Path<String>,
    b: Result<Json<LabelsBody>, JsonRejection>,
) -> ApiResult {
    let b = body(b)?;
    ok(run(
        &s,
        Call::Label {
            id: person_id(&id)?,
            add: b.add,
            remove: b.remove,
        },
    )
    .await?)
}

pub async fn groups(State(s): State<AppState>) -> ApiResult {
    ok(run(&s, Call::GroupList).await?)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewGroup {
    name: String,
    #[serde(default)]
    about: String,
}

pub async fn create_group(
    State(s): State<AppState>,
    b: Result<Json<NewGroup>, JsonRejection>,
) -> ApiResult {
    let b = body(b)?;
    created(
        run(
            &s,
            Call::GroupCreate {
                name: b.name,
                about: b.about,
            },
        )
        .await?,
    )
}

pub async fn group(State(s): State<AppState>, Path(group): Path<String>) -> ApiResult {
    ok(run(&s, Call::GroupShow { group }).await?)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupUpdate {
    name: String,
    about: Option<String>,
}

pub async fn rename_group(
    State(s): State<AppState>,
    Path(group): Path<String>,
    b: Result<Json<GroupUpdate>, JsonRejection>,
) -> ApiResult {
    let b = body(b)?;
    ok(run(
        &s,
        Call::GroupRename {
            group,
            name: b.name,
            about: b.about,
        },
    )
    .await?)
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewInvite {
    /// Lifetime in milliseconds (default 7 days).
    expires_ms: Option<u64>,
    uses: Option<u32>,
    role: Option<Role>,
}

pub async fn create_invite(
    State(s): State<AppState>,
    Path(group): Path<String>,
    b: Option<Json<NewInvite>>,
) -> ApiResult {
    let b = b.map(|Json(b)| b).unwrap_or_default();
    let call = Call::GroupInvite {
        group,
        ttl_ms: b.expires_ms.unwrap_or(crate::groups::DEFAULT_INVITE_TTL_MS),
        uses: b.uses.unwrap_or(1),
        role: b.role.unwrap_or(Role::Member),
    };
    let Reply::Invite(invite) = run(&s, call).await? else {
        return Err(ApiError::new("internal", "unexpected reply"));
    };
    let qr = qrcode::QrCode::new(invite.key.as_bytes())
        .map(|code| {
            code.render::<qrcode::render::svg::Color<'_>>()
                .min_dimensions(200, 200)
                .build()
        })
        .map_err(|e| ApiError::new("internal", e.to_string()))?;
    let mut value = json!(invite);
    value["qr_svg"] = json!(qr);
    let mut r = Json(value).into_response();
    *r.status_mut() = StatusCode::CREATED;
    Ok(r)
}

pub async fn invites(State(s): State<AppState>, Path(group): Path<String>) -> ApiResult {
    ok(run(&s, Call::GroupInvites { group }).await?)
}

pub async fn revoke(
    State(s): State<AppState>,
    Path((group, invite)): Path<(String, String)>,
) -> ApiResult {
    ok(run(&s, Call::GroupRevoke { group, invite }).await?)
}

pub async fn remove_member(
    State(s): State<AppState>,
    Path((group, member)): Path<(String, String)>,
) -> ApiResult {
    ok(run(&s, Call::GroupRemove { group, member }).await?)
}

pub async fn promote(
    State(s): State<AppState>,
    Path((group, member)): Path<(String, String)>,
) -> ApiResult {
    ok(run(&s, Call::GroupPromote { group, member }).await?)
}

pub async fn leave(State(s): State<AppState>, Path(group): Path<String>) -> ApiResult {
    ok(run(&s, Call::GroupLeave { group }).await?)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JoinBody {
    key: String,
    /// Answer once admitted, without waiting for the history.
    #[serde(default)]
    no_wait: bool,
}

pub async fn join(
    State(s): State<AppState>,
    b: Result<Json<JoinBody>, JsonRejection>,
) -> ApiResult {
    let b = body(b)?;
    let call = Call::Node(NodeCall::GroupJoin {
        key: b.key,
        wait: !b.no_wait,
        timeout_ms: 60_000,
    });
    ok(run(&s, call).await?)
}

pub async fn peers(State(s): State<AppState>) -> ApiResult {
    ok(run(&s, Call::Node(NodeCall::Peers)).await?)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeerBody {
    address: String,
}

pub async fn add_peer(
    State(s): State<AppState>,
    b: Result<Json<PeerBody>, JsonRejection>,
) -> ApiResult {
    let b = body(b)?;
    ok(run(&s, Call::AddPeer { address: b.address }).await?)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportQuery {
    #[serde(default)]
    public: bool,
}

/// The archive as a download; the node writes no file.
pub async fn export(
    State(s): State<AppState>,
    q: Result<Query<ExportQuery>, QueryRejection>,
) -> ApiResult {
    let q = query(q)?;
    ok(run(&s, Call::ExportArchive { public: q.public }).await?)
}

pub async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], super::OPENAPI).into_response()
}
