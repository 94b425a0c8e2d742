//! MaiBot resources: the instance's own database (emoji, person info), with the legacy
//! envelopes `{status, message, data[, total_count, limit, offset]}`. Failures are HTTP
//! errors with `{detail, code}`, never a 200 "failed".

use crate::{ApiError, AppState, ids};
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use launcher_core::maibot_db::{MaibotDb, MaibotDbError, Page, parse_input};
use serde_json::{Value, json};
use std::path::PathBuf;

impl From<MaibotDbError> for ApiError {
    fn from(e: MaibotDbError) -> Self {
        let status =
            StatusCode::from_u16(e.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        if status.is_server_error() {
            tracing::error!(error = %e, "MaiBot database failure");
        }
        ApiError::new(status, e.code(), e.to_string())
    }
}

async fn db_of(
    state: &AppState,
    id: &str,
) -> Result<(MaibotDb, launcher_core::catalog::InstanceInfo), ApiError> {
    let id = ids::instance_id(id)?;
    let info = state.catalog.get(id).await?;
    Ok((MaibotDb::new(PathBuf::from(&info.row.install_path)), info))
}

fn ok(message: &str, data: Value) -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "success", "message": message, "data": data}))
}

fn page(message: &str, p: Page) -> HttpResponse {
    HttpResponse::Ok().json(json!({
        "status": "success",
        "message": message,
        "data": p.items,
        "total_count": p.total_count,
        "limit": p.limit,
        "offset": p.offset,
    }))
}

fn not_found(what: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "maibot_db_not_found",
        format!("{what} not found"),
    )
}

fn body<T: serde::de::DeserializeOwned>(v: web::Json<Value>) -> Result<T, ApiError> {
    Ok(parse_input(v.into_inner())?)
}

async fn info_json(info: &launcher_core::catalog::InstanceInfo) -> Result<Value, ApiError> {
    let db = MaibotDb::new(PathBuf::from(&info.row.install_path));
    let d = db.info().await?;
    let data_folder = PathBuf::from(&info.row.install_path).join("data");
    Ok(json!({
        "instance_id": info.row.id,
        "instance_name": info.row.name,
        "instance_path": info.row.install_path,
        "database": d,
        "data_folder": {"path": data_folder, "exists": data_folder.is_dir()},
    }))
}

/// `GET /resource/{id}/info`.
pub(crate) async fn info(
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let (_, i) = db_of(&state, &path).await?;
    Ok(ok("resource info", info_json(&i).await?))
}

/// `GET /resource/all`.
pub(crate) async fn all(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let mut out = Vec::new();
    for i in state.catalog.list().await? {
        out.push(info_json(&i).await?);
    }
    let n = out.len();
    Ok(HttpResponse::Ok().json(json!({
        "status": "success", "message": format!("{n} instance(s)"),
        "data": out, "total_count": n, "limit": n, "offset": 0,
    })))
}

/// `POST /resource/{id}/emoji`.
pub(crate) async fn emoji_create(
    state: web::Data<AppState>,
    path: web::Path<String>,
    b: web::Json<Value>,
) -> Result<HttpResponse, ApiError> {
    let (db, _) = db_of(&state, &path).await?;
    let id = db.emoji_create(body(b)?).await?;
    Ok(ok("emoji created", json!({"emoji_id": id, "id": id})))
}

/// `GET /resource/{id}/emoji/{emoji_id}`.
pub(crate) async fn emoji_get(
    state: web::Data<AppState>,
    path: web::Path<(String, i64)>,
) -> Result<HttpResponse, ApiError> {
    let (id, eid) = path.into_inner();
    let (db, _) = db_of(&state, &id).await?;
    Ok(ok("emoji", Value::Object(db.emoji_get(eid).await?)))
}

/// `POST /resource/{id}/emoji/hash`.
pub(crate) async fn emoji_by_hash(
    state: web::Data<AppState>,
    path: web::Path<String>,
    b: web::Json<Value>,
) -> Result<HttpResponse, ApiError> {
    let (db, _) = db_of(&state, &path).await?;
    let hash = b
        .get("emoji_hash")
        .and_then(Value::as_str)
        .ok_or_else(|| ApiError::bad_request("emoji_hash (string) is required"))?
        .to_owned();
    Ok(ok(
        "emoji",
        Value::Object(db.emoji_get_by_hash(hash).await?),
    ))
}

/// `POST /resource/{id}/emoji/search`.
pub(crate) async fn emoji_search(
    state: web::Data<AppState>,
    path: web::Path<String>,
    b: web::Json<Value>,
) -> Result<HttpResponse, ApiError> {
    let (db, _) = db_of(&state, &path).await?;
    Ok(page("emoji search", db.emoji_search(body(b)?).await?))
}

/// `POST /resource/{id}/emoji/batch`.
pub(crate) async fn emoji_batch(
    state: web::Data<AppState>,
    path: web::Path<String>,
    b: web::Json<Value>,
) -> Result<HttpResponse, ApiError> {
    let (db, _) = db_of(&state, &path).await?;
    Ok(page("emoji batch", db.emoji_batch(body(b)?).await?))
}

/// `POST /resource/{id}/emoji/count`.
pub(crate) async fn emoji_count(
    state: web::Data<AppState>,
    path: web::Path<String>,
    b: web::Json<Value>,
) -> Result<HttpResponse, ApiError> {
    let (db, _) = db_of(&state, &path).await?;
    let n = db.emoji_count(body(b)?).await?;
    Ok(ok(&format!("{n} emoji"), json!({"total_count": n})))
}

/// `PUT /resource/{id}/emoji/{emoji_id}`.
pub(crate) async fn emoji_update(
    state: web::Data<AppState>,
    path: web::Path<(String, i64)>,
    b: web::Json<Value>,
) -> Result<HttpResponse, ApiError> {
    let (id, eid) = path.into_inner();
    let (db, _) = db_of(&state, &id).await?;
    if !db.emoji_update(eid, body(b)?).await? {
        return Err(not_found(&format!("emoji {eid}")));
    }
    Ok(ok("emoji updated", json!({"emoji_id": eid})))
}

/// `DELETE /resource/{id}/emoji/{emoji_id}`.
pub(crate) async fn emoji_delete(
    state: web::Data<AppState>,
    path: web::Path<(String, i64)>,
) -> Result<HttpResponse, ApiError> {
    let (id, eid) = path.into_inner();
    let (db, _) = db_of(&state, &id).await?;
    if !db.emoji_delete(eid).await? {
        return Err(not_found(&format!("emoji {eid}")));
    }
    Ok(ok("emoji deleted", json!({"emoji_id": eid})))
}

/// `POST /resource/{id}/emoji/{emoji_id}/usage`.
pub(crate) async fn emoji_usage(
    state: web::Data<AppState>,
    path: web::Path<(String, i64)>,
) -> Result<HttpResponse, ApiError> {
    let (id, eid) = path.into_inner();
    let (db, _) = db_of(&state, &id).await?;
    if !db.emoji_increment_usage(eid).await? {
        return Err(not_found(&format!("emoji {eid}")));
    }
    Ok(ok("usage counted", json!({"emoji_id": eid})))
}

/// `POST /resource/{id}/emoji/{emoji_id}/query`.
pub(crate) async fn emoji_query(
    state: web::Data<AppState>,
    path: web::Path<(String, i64)>,
) -> Result<HttpResponse, ApiError> {
    let (id, eid) = path.into_inner();
    let (db, _) = db_of(&state, &id).await?;
    if !db.emoji_increment_query(eid).await? {
        return Err(not_found(&format!("emoji {eid}")));
    }
    Ok(ok("query counted", json!({"emoji_id": eid})))
}

/// `GET /resource/{id}/emoji/{emoji_id}/image`: the image file, only from inside the
/// instance directory.
pub(crate) async fn emoji_image(
    state: web::Data<AppState>,
    path: web::Path<(String, i64)>,
) -> Result<HttpResponse, ApiError> {
    let (id, eid) = path.into_inner();
    let (db, _) = db_of(&state, &id).await?;
    let (bytes, mime) = db.emoji_image(eid, state.max_file_bytes).await?;
    Ok(HttpResponse::Ok()
        .content_type(mime)
        .insert_header(("Cache-Control", "private, max-age=60"))
        .insert_header(("X-Content-Type-Options", "nosniff"))
        .body(bytes))
}

/// `POST /resource/{id}/person`.
pub(crate) async fn person_create(
    state: web::Data<AppState>,
    path: web::Path<String>,
    b: web::Json<Value>,
) -> Result<HttpResponse, ApiError> {
    let (db, _) = db_of(&state, &path).await?;
    let person_id = b.get("person_id").cloned().unwrap_or(Value::Null);
    let id = db.person_create(body(b)?).await?;
    Ok(ok(
        "person created",
        json!({"record_id": id, "id": id, "person_id": person_id}),
    ))
}

/// `GET /resource/{id}/person/record/{record_id}`.
pub(crate) async fn person_by_record(
    state: web::Data<AppState>,
    path: web::Path<(String, i64)>,
) -> Result<HttpResponse, ApiError> {
    let (id, rid) = path.into_inner();
    let (db, _) = db_of(&state, &id).await?;
    Ok(ok("person", Value::Object(db.person_get(rid).await?)))
}

/// `GET /resource/{id}/person/{person_id}`.
pub(crate) async fn person_get(
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (id, pid) = path.into_inner();
    let (db, _) = db_of(&state, &id).await?;
    Ok(ok(
        "person",
        Value::Object(db.person_get_by_person_id(pid).await?),
    ))
}

/// `POST /resource/{id}/person/platform`.
pub(crate) async fn person_by_platform(
    state: web::Data<AppState>,
    path: web::Path<String>,
    b: web::Json<Value>,
) -> Result<HttpResponse, ApiError> {
    let (db, _) = db_of(&state, &path).await?;
    let field = |k: &str| -> Result<String, ApiError> {
        match b.get(k) {
            Some(Value::String(s)) => Ok(s.clone()),
            Some(Value::Number(n)) => Ok(n.to_string()),
            _ => Err(ApiError::bad_request(format!("{k} is required"))),
        }
    };
    let (platform, user) = (field("platform")?, field("user_id")?);
    Ok(ok(
        "person",
        Value::Object(db.person_get_by_platform_user(platform, user).await?),
    ))
}

/// `POST /resource/{id}/person/search`.
pub(crate) async fn person_search(
    state: web::Data<AppState>,
    path: web::Path<String>,
    b: web::Json<Value>,
) -> Result<HttpResponse, ApiError> {
    let (db, _) = db_of(&state, &path).await?;
    Ok(page("person search", db.person_search(body(b)?).await?))
}

/// `POST /resource/{id}/person/batch`.
pub(crate) async fn person_batch(
    state: web::Data<AppState>,
    path: web::Path<String>,
    b: web::Json<Value>,
) -> Result<HttpResponse, ApiError> {
    let (db, _) = db_of(&state, &path).await?;
    Ok(page("person batch", db.person_batch(body(b)?).await?))
}

/// `POST /resource/{id}/person/count`.
pub(crate) async fn person_count(
    state: web::Data<AppState>,
    path: web::Path<String>,
    b: web::Json<Value>,
) -> Result<HttpResponse, ApiError> {
    let (db, _) = db_of(&state, &path).await?;
    let n = db.person_count(body(b)?).await?;
    Ok(ok(&format!("{n} person(s)"), json!({"total_count": n})))
}

/// `PUT /resource/{id}/person/{person_id}`.
pub(crate) async fn person_update(
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    b: web::Json<Value>,
) -> Result<HttpResponse, ApiError> {
    let (id, pid) = path.into_inner();
    let (db, _) = db_of(&state, &id).await?;
    if !db.person_update(pid.clone(), body(b)?).await? {
        return Err(not_found(&format!("person {pid}")));
    }
    Ok(ok("person updated", json!({"person_id": pid})))
}

/// `DELETE /resource/{id}/person/{person_id}`.
pub(crate) async fn person_delete(
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (id, pid) = path.into_inner();
    let (db, _) = db_of(&state, &id).await?;
    if !db.person_delete(pid.clone()).await? {
        return Err(not_found(&format!("person {pid}")));
    }
    Ok(ok("person deleted", json!({"person_id": pid})))
}

/// `POST /resource/{id}/person/{person_id}/interaction`.
pub(crate) async fn person_interaction(
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    b: web::Json<Value>,
) -> Result<HttpResponse, ApiError> {
    let (id, pid) = path.into_inner();
    let (db, _) = db_of(&state, &id).await?;
    if !db.person_update_interaction(pid.clone(), body(b)?).await? {
        return Err(not_found(&format!("person {pid}")));
    }
    Ok(ok("interaction updated", json!({"person_id": pid})))
}

pub(crate) fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/resource/all", web::get().to(all))
        .route("/resource/{id}/info", web::get().to(info))
        .route("/resource/{id}/emoji", web::post().to(emoji_create))
        .route("/resource/{id}/emoji/hash", web::post().to(emoji_by_hash))
        .route("/resource/{id}/emoji/search", web::post().to(emoji_search))
        .route("/resource/{id}/emoji/batch", web::post().to(emoji_batch))
        .route("/resource/{id}/emoji/count", web::post().to(emoji_count))
        .route("/resource/{id}/emoji/{emoji_id}", web::get().to(emoji_get))
        .route(
            "/resource/{id}/emoji/{emoji_id}",
            web::put().to(emoji_update),
        )
        .route(
            "/resource/{id}/emoji/{emoji_id}",
            web::delete().to(emoji_delete),
        )
        .route(
            "/resource/{id}/emoji/{emoji_id}/usage",
            web::post().to(emoji_usage),
        )
        .route(
            "/resource/{id}/emoji/{emoji_id}/query",
            web::post().to(emoji_query),
        )
        .route(
            "/resource/{id}/emoji/{emoji_id}/image",
            web::get().to(emoji_image),
        )
        .route("/resource/{id}/person", web::post().to(person_create))
        .route(
            "/resource/{id}/person/platform",
            web::post().to(person_by_platform),
        )
        .route(
            "/resource/{id}/person/search",
            web::post().to(person_search),
        )
        .route("/resource/{id}/person/batch", web::post().to(person_batch))
        .route("/resource/{id}/person/count", web::post().to(person_count))
        .route(
            "/resource/{id}/person/record/{record_id}",
            web::get().to(person_by_record),
        )
        .route(
            "/resource/{id}/person/{person_id}",
            web::get().to(person_get),
        )
        .route(
            "/resource/{id}/person/{person_id}",
            web::put().to(person_update),
        )
        .route(
            "/resource/{id}/person/{person_id}",
            web::delete().to(person_delete),
        )
        .route(
            "/resource/{id}/person/{person_id}/interaction",
            web::post().to(person_interaction),
        );
}
