//! The brief's client actions, each sent and checked against the reply it must get. The
//! checks read the replies as JSON, so that they hold for Kafka and for the original alike
//! (whose `file_uploaded` carries its entry's content as JSON text, and whose `file_deleted`
//! has no `deleted_file_id`).

use anyhow::bail;
use base64::Engine;
use kafka_protocol::ws::{ClientAction, DeleteFile, RevertVersion, ServerFrame, UploadFile};
use serde_json::Value;

use super::ws::{Conn, Reply, excerpt};

/// Sends chat text and checks that its echo comes back.
pub async fn echo_once(conn: &mut Conn, text: &str) -> anyhow::Result<()> {
    conn.send_text(text).await?;
    match conn.reply().await? {
        ServerFrame::Text(echo) if echo.strip_prefix("Echo: ") == Some(text) => Ok(()),
        other => bail!("expected the echo of {text:?}, got {}", shown(&other)),
    }
}

/// Uploads a file through the WebSocket; returns its ID.
pub async fn upload(conn: &mut Conn, filename: &str, content: &str) -> anyhow::Result<String> {
    conn.send_action(&ClientAction::UploadFile(UploadFile {
        filename: filename.to_owned(),
        file_data: base64::engine::general_purpose::STANDARD.encode(content),
    }))
    .await?;
    let reply = conn.reply_any().await?;
    match (&reply, reply.action()) {
        (Reply::Json(frame), Some("file_uploaded")) => match entry_content(&frame["message"]["content"]) {
            Some(entry) if entry["file_id"].is_string() => Ok(entry["file_id"].as_str().unwrap_or_default().to_owned()),
            _ => bail!("upload {filename}: the reply's content is not a file entry"),
        },
        _ => bail!("upload {filename}: got {}", reply.shown()),
    }
}

pub async fn revert(conn: &mut Conn, filename: &str, version_id: &str) -> anyhow::Result<()> {
    conn.send_action(&ClientAction::RevertVersion(RevertVersion {
        version_id: version_id.to_owned(),
        filename: filename.to_owned(),
    }))
    .await?;
    let reply = conn.reply_any().await?;
    match reply.action() {
        Some("revert_complete") => Ok(()),
        _ => bail!("revert {filename} to {version_id}: got {}", reply.shown()),
    }
}

/// Deletes a file; a `deleted_file_id` in the reply (Kafka's) must name it.
pub async fn delete_file(conn: &mut Conn, file_id: &str) -> anyhow::Result<()> {
    conn.send_action(&ClientAction::DeleteFile(DeleteFile {
        file_id: file_id.to_owned(),
    }))
    .await?;
    let reply = conn.reply_any().await?;
    match (&reply, reply.action()) {
        (Reply::Json(frame), Some("file_deleted"))
            if frame["message"]["deleted_file_id"]
                .as_str()
                .is_none_or(|id| id == file_id) =>
        {
            Ok(())
        }
        _ => bail!("delete {file_id}: got {}", reply.shown()),
    }
}

/// A conversation entry's content as an object: given as one, or as its JSON text.
pub fn entry_content(content: &Value) -> Option<Value> {
    match content {
        Value::Object(_) => Some(content.clone()),
        Value::String(text) => serde_json::from_str::<Value>(text).ok().filter(Value::is_object),
        _ => None,
    }
}

/// A frame in an error message.
pub fn shown(frame: &ServerFrame) -> String {
    excerpt(&format!("{frame:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn entry_contents_are_read_as_objects_or_as_json_text() {
        let entry = json!({"file_id": "f", "filename": "a.txt"});
        assert_eq!(entry_content(&entry), Some(entry.clone()));
        assert_eq!(entry_content(&Value::String(entry.to_string())), Some(entry));
        assert_eq!(entry_content(&json!("a.txt was deleted.")), None);
    }
}
