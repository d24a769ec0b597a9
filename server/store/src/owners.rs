//! Who owns what: one lookup per kind of resource, for the ownership checks of protected mode.

use super::{Store, StoreResult, found};

/// A kind of resource a request can name by ID.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resource {
    Workspace,
    Chat,
    File,
    Model,
}

impl Resource {
    /// The name used in `404 {"detail": "<name> not found."}`.
    pub fn name(self) -> &'static str {
        match self {
            Resource::Workspace => "Workspace",
            Resource::Chat => "Chat",
            Resource::File => "File",
            Resource::Model => "Model",
        }
    }

    fn owner_query(self) -> &'static str {
        match self {
            Resource::Workspace => "SELECT owner_id FROM workspaces WHERE id = $1",
            Resource::Chat => "SELECT user_id FROM chats WHERE id = $1",
            // A chat upload is also a workspace file; generated `.based` files are chat files only.
            Resource::File => {
                "SELECT w.owner_id FROM files f JOIN workspaces w ON w.id = f.workspace_id WHERE f.id = $1
                 UNION ALL
                 SELECT c.user_id FROM chat_files cf JOIN chats c ON c.id = cf.chat_id WHERE cf.id = $1"
            }
            Resource::Model => "SELECT user_id FROM models WHERE id = $1",
        }
    }
}

impl Store {
    /// The ID of the user who owns `id`; `NotFound` when there is no such resource.
    pub async fn owner_of(&self, resource: Resource, id: &str) -> StoreResult<String> {
        let owner: Option<String> = sqlx::query_scalar(resource.owner_query())
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        found(owner, resource.name())
    }
}
