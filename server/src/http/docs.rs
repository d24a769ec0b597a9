//! `/openapi.json`, generated from the handlers' annotations and the protocol types, and the
//! Swagger UI at `/docs`, served from assets vendored in the binary.

use std::sync::Arc;

use utoipa::OpenApi;
use warp::Filter;
use warp::filters::BoxedFilter;
use warp::http::{StatusCode, header};
use warp::reply::{Reply, Response};

#[derive(OpenApi)]
#[openapi(
    info(title = "Kafka", description = "Chat-driven coding agent for Based. WebSocket: /ws/{chat_id} (see the README)."),
    paths(
        super::auth::login, super::auth::logout, super::auth::set_password,
        super::workspace::new_workspace, super::workspace::rename_workspace, super::workspace::delete_workspace,
        super::chat::new_chat, super::chat::rename_chat, super::chat::delete_chat,
        super::file::upload, super::file::delete_file, super::file::rename_file, super::file::save_version,
        super::file_content::content,
        super::models::new_model, super::models::delete_model,
        super::based::validate,
    ),
    modifiers(&BearerAuth),
    // Every operation accepts a token; protected mode requires it (all but login, health, docs).
    security(("bearer" = []), ()),
    tags((name = "Authentication"), (name = "Workspace"), (name = "Chat"), (name = "File"), (name = "Model"), (name = "Based"))
)]
pub struct ApiDoc;

/// Declares the `bearer` security scheme: the token from `POST /auth/login`.
struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

pub fn routes() -> BoxedFilter<(Response,)> {
    let spec = Arc::new(ApiDoc::openapi().to_pretty_json().unwrap_or_default());
    let openapi = warp::path!("openapi.json").and(warp::get()).map(move || {
        warp::reply::with_header(spec.to_string(), header::CONTENT_TYPE, "application/json").into_response()
    });
    let config = Arc::new(utoipa_swagger_ui::Config::from("/openapi.json"));
    let docs = warp::path("docs")
        .and(warp::get())
        .and(warp::path::full())
        .and(warp::path::tail())
        .map(move |full: warp::path::FullPath, tail: warp::path::Tail| {
            // The UI loads its assets relative to the page, so the page must end in a slash.
            if full.as_str() == "/docs" {
                return warp::redirect::see_other(warp::http::Uri::from_static("/docs/")).into_response();
            }
            swagger_file(tail.as_str(), config.clone())
        });
    openapi.or(docs).unify().boxed()
}

fn swagger_file(path: &str, config: Arc<utoipa_swagger_ui::Config<'static>>) -> Response {
    match utoipa_swagger_ui::serve(path, config) {
        Ok(Some(file)) => {
            warp::reply::with_header(file.bytes.to_vec(), header::CONTENT_TYPE, file.content_type).into_response()
        }
        Ok(None) => StatusCode::NOT_FOUND.into_response(),
        Err(error) => {
            tracing::error!(%error, "swagger ui");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}
