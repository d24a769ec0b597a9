//! Workspaces: create with their first files, rename, delete with everything in them.

use super::files::{NewFile, insert_workspace_file};
use super::{Store, StoreResult, found, new_id, now_iso};

impl Store {
    /// Creates a workspace and its files in one transaction; returns its ID.
    pub async fn create_workspace(&self, owner_id: &str, name: &str, files: &[NewFile]) -> StoreResult<String> {
        let mut tx = self.begin().await?;
        let id = new_id();
        sqlx::query("INSERT INTO workspaces (id, name, owner_id, created_at) VALUES ($1, $2, $3, $4)")
            .bind(&id)
            .bind(name)
            .bind(owner_id)
            .bind(now_iso())
            .execute(&mut *tx)
            .await?;
        for file in files {
            insert_workspace_file(&mut tx, &id, file).await?;
        }
        tx.commit().await?;
        Ok(id)
    }

    pub async fn workspace_owner(&self, workspace_id: &str) -> StoreResult<String> {
        found(
            sqlx::query_scalar("SELECT owner_id FROM workspaces WHERE id = $1")
                .bind(workspace_id)
                .fetch_optional(&self.pool)
                .await?,
            "Workspace",
        )
    }

    pub async fn rename_workspace(&self, workspace_id: &str, new_name: &str) -> StoreResult<()> {
        let updated = sqlx::query("UPDATE workspaces SET name = $1 WHERE id = $2")
            .bind(new_name)
            .bind(workspace_id)
            .execute(&self.pool)
            .await?
            .rows_affected();
        found((updated > 0).then_some(()), "Workspace")
    }

    /// Deletes the workspace; its chats, files, versions and conversation go with it
    /// (ON DELETE CASCADE). Returns the IDs of its chats and the stored paths of its
    /// uploaded bytes, for the caller to close sockets and remove the bytes after the commit.
    pub async fn delete_workspace(&self, workspace_id: &str) -> StoreResult<(Vec<String>, Vec<String>)> {
        let mut tx = self.begin().await?;
        let chat_ids: Vec<String> = sqlx::query_scalar("SELECT id FROM chats WHERE workspace_id = $1")
            .bind(workspace_id)
            .fetch_all(&mut *tx)
            .await?;
        let paths: Vec<String> = sqlx::query_scalar(
            "SELECT path FROM files WHERE workspace_id = $1
             UNION SELECT cf.path FROM chat_files cf JOIN chats c ON c.id = cf.chat_id
             WHERE c.workspace_id = $1 AND cf.path <> ''",
        )
        .bind(workspace_id)
        .fetch_all(&mut *tx)
        .await?;
        let deleted = sqlx::query("DELETE FROM workspaces WHERE id = $1")
            .bind(workspace_id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        found((deleted > 0).then_some(()), "Workspace")?;
        tx.commit().await?;
        Ok((chat_ids, paths))
    }
}
