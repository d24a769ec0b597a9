//! The brief's client actions, each sent and checked against the reply it must get.

use anyhow::bail;
use base64::Engine;
use kafka_protocol::ws::{ClientAction, DeleteFile, RevertVersion, ServerAction, ServerFrame, UploadFile};

use super::ws::{Conn, excerpt};

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
    match conn.reply().await? {
        ServerFrame::Action(ServerAction::FileUploaded { message }) => match message.content.object() {
            Some(content) => Ok(content.file_id),
            None => bail!("upload {filename}: the reply's content is not a file entry"),
        },
        other => bail!("upload {filename}: got {}", shown(&other)),
    }
}

pub async fn revert(conn: &mut Conn, filename: &str, version_id: &str) -> anyhow::Result<()> {
    conn.send_action(&ClientAction::RevertVersion(RevertVersion {
        version_id: version_id.to_owned(),
        filename: filename.to_owned(),
    }))
    .await?;
    match conn.reply().await? {
        ServerFrame::Action(ServerAction::RevertComplete { .. }) => Ok(()),
        other => bail!("revert {filename} to {version_id}: got {}", shown(&other)),
    }
}

pub async fn delete_file(conn: &mut Conn, file_id: &str) -> anyhow::Result<()> {
    conn.send_action(&ClientAction::DeleteFile(DeleteFile {
        file_id: file_id.to_owned(),
    }))
    .await?;
    match conn.reply().await? {
        ServerFrame::Action(ServerAction::FileDeleted { message }) if message.deleted_file_id == file_id => Ok(()),
        other => bail!("delete {file_id}: got {}", shown(&other)),
    }
}

/// A frame in an error message.
pub fn shown(frame: &ServerFrame) -> String {
    excerpt(&format!("{frame:?}"))
}
