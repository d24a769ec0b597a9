//! The browser of workspaces and chats: selection state, and keeping the logged-in user's
//! lists in step with what the REST calls answered.

use kafka_protocol::rest::{ChatResponse, ChatSummary, WorkspaceSummary};

use super::popup::{Confirmed, Popup, PromptPurpose};
use crate::text_input::TextInput;

use super::App;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BrowserFocus {
    Workspaces,
    #[default]
    Chats,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BrowserState {
    pub workspace: usize,
    pub chat: usize,
    pub focus: BrowserFocus,
}

impl App {
    pub fn workspaces(&self) -> &[WorkspaceSummary] {
        self.user.as_ref().map_or(&[], |user| user.workspaces.as_slice())
    }

    pub fn current_workspace(&self) -> Option<&WorkspaceSummary> {
        self.workspaces().get(self.browser.workspace)
    }

    pub fn selected_chat(&self) -> Option<&ChatSummary> {
        self.current_workspace()?.chats.get(self.browser.chat)
    }

    pub(super) fn browser_chat_name(&self, chat_id: &str) -> Option<String> {
        self.workspaces()
            .iter()
            .flat_map(|workspace| &workspace.chats)
            .find(|chat| chat.id == chat_id)
            .map(|chat| chat.name.clone())
    }

    pub(super) fn browser_move(&mut self, down: bool) {
        match self.browser.focus {
            BrowserFocus::Workspaces => {
                self.browser.workspace = step(self.browser.workspace, self.workspaces().len(), down);
                self.browser.chat = 0;
            }
            BrowserFocus::Chats => {
                let len = self.current_workspace().map_or(0, |w| w.chats.len());
                self.browser.chat = step(self.browser.chat, len, down);
            }
        }
    }

    /// Puts a chat the server just created at the top of its workspace and selects it.
    pub(super) fn browser_add(&mut self, workspace_id: &str, chat: ChatResponse) {
        let Some(user) = self.user.as_mut() else { return };
        let Some((index, workspace)) = user
            .workspaces
            .iter_mut()
            .enumerate()
            .find(|(_, w)| w.id == workspace_id)
        else {
            return;
        };
        workspace.chats.insert(
            0,
            ChatSummary {
                id: chat.chat_id,
                name: chat.name,
                last_updated: chat.last_updated,
                num_versions: 0,
            },
        );
        self.browser.workspace = index;
        self.browser.chat = 0;
    }

    pub(super) fn browser_rename(&mut self, renamed: &ChatResponse) {
        let Some(user) = self.user.as_mut() else { return };
        for chat in user.workspaces.iter_mut().flat_map(|w| w.chats.iter_mut()) {
            if chat.id == renamed.chat_id {
                chat.name = renamed.name.clone();
            }
        }
        if let Some(open) = self.chat.as_mut().filter(|c| c.chat_id == renamed.chat_id) {
            open.name = renamed.name.clone();
        }
        self.notice = Some(format!("Renamed to {}.", renamed.name));
    }

    pub(super) fn workspace_created(&mut self, workspace_id: String, name: String) {
        let Some(user) = self.user.as_mut() else { return };
        user.workspaces.push(WorkspaceSummary {
            id: workspace_id,
            name: name.clone(),
            files: Vec::new(),
            chats: Vec::new(),
        });
        self.browser.workspace = user.workspaces.len() - 1;
        self.browser.chat = 0;
        self.notice = Some(format!("Workspace {name} created."));
    }

    pub(super) fn workspace_renamed(&mut self, workspace_id: &str, name: String) {
        let Some(user) = self.user.as_mut() else { return };
        if let Some(workspace) = user.workspaces.iter_mut().find(|w| w.id == workspace_id) {
            workspace.name = name.clone();
        }
        self.notice = Some(format!("Renamed to {name}."));
    }

    pub(super) fn workspace_deleted(&mut self, workspace_id: &str) {
        let Some(user) = self.user.as_mut() else { return };
        user.workspaces.retain(|w| w.id != workspace_id);
        self.browser.workspace = self.browser.workspace.min(user.workspaces.len().saturating_sub(1));
        self.browser.chat = 0;
        self.notice = Some("Workspace deleted.".into());
    }

    /// `n` in the workspace list.
    pub(super) fn ask_new_workspace(&mut self) {
        self.popup = Some(Popup::Prompt {
            title: "New workspace: name".into(),
            input: TextInput::with_text("New workspace"),
            purpose: PromptPurpose::NewWorkspace,
        });
    }

    /// `R` in the workspace list.
    pub(super) fn ask_rename_workspace(&mut self) {
        let Some(workspace) = self.current_workspace() else {
            return;
        };
        self.popup = Some(Popup::Prompt {
            title: format!("Rename workspace {:?} to", workspace.name),
            input: TextInput::with_text(&workspace.name),
            purpose: PromptPurpose::RenameWorkspace {
                workspace_id: workspace.id.clone(),
            },
        });
    }

    /// `D` in the workspace list.
    pub(super) fn ask_delete_workspace(&mut self) {
        let Some(workspace) = self.current_workspace() else {
            return;
        };
        self.popup = Some(Popup::Confirm {
            question: format!(
                "Delete workspace {:?} with its {} chats and all their files? This cannot be undone.",
                workspace.name,
                workspace.chats.len()
            ),
            action: Confirmed::DeleteWorkspace {
                workspace_id: workspace.id.clone(),
            },
        });
    }

    pub(super) fn browser_remove(&mut self, chat_id: &str) {
        let Some(user) = self.user.as_mut() else { return };
        for workspace in &mut user.workspaces {
            workspace.chats.retain(|chat| chat.id != chat_id);
        }
        let len = self.current_workspace().map_or(0, |w| w.chats.len());
        self.browser.chat = self.browser.chat.min(len.saturating_sub(1));
        self.notice = Some("Chat deleted.".into());
    }
}

/// Moves a list selection by one, staying inside `0..len`.
pub fn step(index: usize, len: usize, down: bool) -> usize {
    if down {
        (index + 1).min(len.saturating_sub(1))
    } else {
        index.saturating_sub(1)
    }
}
