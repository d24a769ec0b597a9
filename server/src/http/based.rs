//! `/based/validate`: the original remote validation service's request and response shape,
//! answered by the local validator, with every diagnostic added.

use bytes::Bytes;
use kafka_protocol::rest::{Detail, DiagnosticInfo, ValidateRequest, ValidateResponse};
use warp::Filter;
use warp::filters::BoxedFilter;
use warp::reply::Response;

use super::{caller, json_body, reply};
use crate::auth::Caller;
use crate::based::{self, Diagnostic, Severity};
use crate::error::ApiError;
use crate::state::SharedState;

/// Large enough for any real `.based` file; the validator is linear, so this bounds its time.
pub(crate) const MAX_CODE_BYTES: u64 = 4 * 1024 * 1024;

pub fn routes(state: SharedState) -> BoxedFilter<(Response,)> {
    warp::path!("based" / "validate")
        .and(warp::post())
        .and(caller(state))
        .and(warp::body::content_length_limit(MAX_CODE_BYTES))
        .and(warp::body::bytes())
        // The caller filter only refuses (before the body is read); anyone it lets in may validate.
        .then(|_: Caller, body: Bytes| async move { reply(validate(&body).await) })
        .boxed()
}

/// Validates Based code: `{"status":"success"}`, or `{"status":"error","error":"<first error>",
/// "diagnostics":[…]}`. Warnings alone are a success (and are listed).
#[utoipa::path(post, path = "/based/validate", tag = "Based",
    request_body = ValidateRequest,
    responses((status = 200, body = ValidateResponse), (status = 422, body = Detail), (status = 413, body = Detail)))]
async fn validate(body: &[u8]) -> Result<ValidateResponse, ApiError> {
    let request: ValidateRequest = json_body(body)?;
    // Validation is CPU work: keep it off the async workers.
    let diagnostics = tokio::task::spawn_blocking(move || based::validate(&request.code))
        .await
        .map_err(ApiError::internal)?;
    let first_error = diagnostics.iter().find(|d| d.severity == Severity::Error);
    Ok(ValidateResponse {
        status: if first_error.is_some() { "error" } else { "success" }.to_owned(),
        error: first_error.map(|d| format!("line {}, column {}: {}", d.line, d.column, d.message)),
        diagnostics: diagnostics.iter().map(diagnostic_info).collect(),
    })
}

pub(crate) fn diagnostic_info(d: &Diagnostic) -> DiagnosticInfo {
    DiagnosticInfo {
        line: d.line,
        column: d.column,
        end_line: d.end_line,
        end_column: d.end_column,
        severity: match d.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        }
        .to_owned(),
        code: d.code.clone(),
        message: d.message.clone(),
    }
}
