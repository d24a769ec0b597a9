//! `GET /file/{file_id}/content`: an uploaded file's bytes, streamed from wherever they live
//! (the data directory or the database), so any instance serves any upload.

use warp::Filter;
use warp::filters::BoxedFilter;
use warp::http::header::{CONTENT_DISPOSITION, CONTENT_LENGTH, CONTENT_TYPE, HeaderValue};
use warp::reply::{Reply, Response};

use super::{caller, error_response, with_state};
use crate::auth::Caller;
use crate::error::ApiError;
use crate::files::Download;
use crate::state::SharedState;
use crate::store::Resource;

pub fn routes(state: SharedState) -> BoxedFilter<(Response,)> {
    warp::path!("file" / String / "content")
        .and(warp::get())
        .and(with_state(state.clone()))
        .and(caller(state))
        .then(|id: String, state: SharedState, caller| async move {
            match content(&state, caller, &id).await {
                Ok(response) => response,
                Err(error) => error_response(&error),
            }
        })
        .boxed()
}

/// The bytes of an uploaded file (`application/octet-stream`, with its length and name),
/// read a chunk at a time. A generated `.based` file has no uploaded bytes (its content is
/// in its versions): 404.
#[utoipa::path(get, path = "/file/{file_id}/content", tag = "File",
    params(("file_id" = String, Path)),
    responses((status = 200, content_type = "application/octet-stream", body = Vec<u8>), (status = 404, body = kafka_protocol::rest::Detail)))]
async fn content(state: &SharedState, caller: Caller, file_id: &str) -> Result<Response, ApiError> {
    caller.check_owns(&state.store, Resource::File, file_id).await?;
    let file = state.store.stored_file(file_id).await?;
    let download = state.uploads.open(&file).await.map_err(|error| match error.kind() {
        std::io::ErrorKind::NotFound => ApiError::NotFound("Uploaded content"),
        _ => ApiError::internal(error),
    })?;
    let len = download.len;
    let mut response = warp::reply::stream(relay(download)).into_response();
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/octet-stream"));
    headers.insert(CONTENT_LENGTH, HeaderValue::from(len));
    if let Ok(value) = HeaderValue::from_str(&format!("attachment; filename*=UTF-8''{}", encode(&file.filename))) {
        headers.insert(CONTENT_DISPOSITION, value);
    }
    Ok(response)
}

/// The download's chunks through a channel of one: the response body must be `Sync`, the
/// readers (database queries) are not, and at most two chunks are held at once.
fn relay(
    mut download: Download,
) -> impl futures_util::Stream<Item = std::io::Result<bytes::Bytes>> + Send + Sync + 'static {
    let (tx, mut rx) = tokio::sync::mpsc::channel(1);
    tokio::spawn(async move {
        use futures_util::StreamExt;
        while let Some(chunk) = download.chunks.next().await {
            let failed = chunk.is_err();
            // The client went away: stop reading.
            if tx.send(chunk).await.is_err() || failed {
                break;
            }
        }
    });
    futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

/// Percent-encodes a file name for `filename*` (RFC 8187): unreserved characters as they are.
fn encode(name: &str) -> String {
    name.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn file_names_are_percent_encoded() {
        assert_eq!(super::encode("a b\"é.txt"), "a%20b%22%C3%A9.txt");
    }
}
