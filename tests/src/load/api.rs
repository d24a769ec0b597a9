//! The REST calls the scenarios make, as a client of the brief's API would make them.
//! Every failure is an error to count, never a panic.

use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context;
use futures_util::{StreamExt, TryStreamExt};
use kafka_protocol::rest::{ChatResponse, LoginResponse, ModelInfo, WorkspaceNewResponse};
use reqwest::multipart::Form;
use serde::Deserialize;
use serde::de::DeserializeOwned;

/// How many setup requests (not measured) are in flight at once.
const CONCURRENT_SETUP: usize = 16;

/// A REST client of one server. Each `Api::new` has its own connection pool.
#[derive(Debug, Clone)]
pub struct Api {
    base: String,
    http: reqwest::Client,
}

/// A user and one workspace with chats in it.
#[derive(Debug, Clone)]
pub struct UserChats {
    pub user_id: String,
    pub workspace_id: String,
    pub chat_ids: Vec<String>,
}

impl Api {
    pub fn new(base: &str) -> Self {
        Self {
            base: base.trim_end_matches('/').to_owned(),
            http: reqwest::Client::new(),
        }
    }

    /// The same server over a new connection pool, as another client would reach it.
    pub fn another_client(&self) -> Self {
        Self::new(&self.base)
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    pub fn ws_url(&self, chat_id: &str, v2: bool) -> String {
        let query = if v2 { "?v=2" } else { "" };
        format!("{}/ws/{chat_id}{query}", self.base.replacen("http", "ws", 1))
    }

    /// A protocol-2 session with the lean initial payload (versions without diffs, the
    /// newest conversation page).
    pub fn ws_url_lean(&self, chat_id: &str) -> String {
        format!("{}&lean=1", self.ws_url(chat_id, true))
    }

    pub async fn healthz(&self) -> anyhow::Result<()> {
        let response = self.http.get(format!("{}/healthz", self.base)).send().await?;
        response.error_for_status()?;
        Ok(())
    }

    /// Whether anything answers HTTP at the base URL (the original has no `/healthz`).
    pub async fn answers(&self) -> bool {
        self.http.get(format!("{}/", self.base)).send().await.is_ok()
    }

    pub async fn login(&self, email: &str) -> anyhow::Result<LoginResponse> {
        let request = self
            .http
            .post(format!("{}/auth/login", self.base))
            .json(&serde_json::json!({ "email": email }));
        answer(request, "POST /auth/login").await
    }

    /// The login answer read leniently, as any client of either server would: the user and
    /// the IDs of their workspaces (the original's chats have no `num_versions`, no token).
    pub async fn login_overview(&self, email: &str) -> anyhow::Result<Overview> {
        let request = self
            .http
            .post(format!("{}/auth/login", self.base))
            .json(&serde_json::json!({ "email": email }));
        answer(request, "POST /auth/login").await
    }

    pub async fn new_chat(&self, user_id: &str, workspace_id: &str, name: &str) -> anyhow::Result<ChatResponse> {
        let form = Form::new()
            .text("user_id", user_id.to_owned())
            .text("workspace_id", workspace_id.to_owned())
            .text("chat_name", name.to_owned());
        answer(self.post_form("/chat/new", form), "POST /chat/new").await
    }

    pub async fn new_workspace(&self, user_id: &str, name: &str) -> anyhow::Result<WorkspaceNewResponse> {
        let form = Form::new()
            .text("owner_id", user_id.to_owned())
            .text("name", name.to_owned());
        answer(self.post_form("/workspace/new", form), "POST /workspace/new").await
    }

    pub async fn delete_workspace(&self, workspace_id: &str) -> anyhow::Result<()> {
        let request = self
            .http
            .delete(format!("{}/workspace/delete/{workspace_id}", self.base));
        answer::<serde_json::Value>(request, "DELETE /workspace/delete").await?;
        Ok(())
    }

    /// A model named `name` at an OpenAI-compatible `base_url`.
    pub async fn add_model(&self, user_id: &str, name: &str, base_url: &str) -> anyhow::Result<ModelInfo> {
        let form = Form::new()
            .text("user_id", user_id.to_owned())
            .text("name", name.to_owned())
            .text("ak", "load-test-key")
            .text("base_url", base_url.to_owned());
        answer(self.post_form("/models/new", form), "POST /models/new").await
    }

    /// Logs `email` in and creates `chats` chats in their default workspace, a few at a time.
    pub async fn user_with_chats(&self, email: &str, chats: usize) -> anyhow::Result<UserChats> {
        let login = self.login_overview(email).await?;
        let workspace_id = login
            .workspaces
            .first()
            .context("a new user has a default workspace")?
            .id
            .clone();
        let chat_ids = futures_util::stream::iter(0..chats)
            .map(|index| {
                let (user_id, workspace_id) = (&login.user_id, &workspace_id);
                async move {
                    self.new_chat(user_id, workspace_id, &format!("Load chat {index}"))
                        .await
                }
            })
            .buffered(CONCURRENT_SETUP)
            .map_ok(|chat| chat.chat_id)
            .try_collect()
            .await?;
        Ok(UserChats {
            user_id: login.user_id,
            workspace_id,
            chat_ids,
        })
    }

    fn post_form(&self, path: &str, form: Form) -> reqwest::RequestBuilder {
        self.http.post(format!("{}{path}", self.base)).multipart(form)
    }
}

/// What the load tool reads of a login answer.
#[derive(Debug, Clone, Deserialize)]
pub struct Overview {
    pub user_id: String,
    pub workspaces: Vec<WorkspaceId>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct WorkspaceId {
    pub id: String,
}

/// Sends the request and decodes a 200 answer; anything else is an error naming `what`.
async fn answer<T: DeserializeOwned>(request: reqwest::RequestBuilder, what: &str) -> anyhow::Result<T> {
    let response = request.send().await.with_context(|| format!("{what}: no answer"))?;
    let status = response.status();
    if !status.is_success() {
        let body = response.text().await.unwrap_or_default();
        anyhow::bail!("{what}: {status}: {body}");
    }
    response
        .json()
        .await
        .with_context(|| format!("{what}: unexpected body"))
}

/// A tag that keeps this run's users apart from earlier runs' on the same server.
pub fn run_tag() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_nanos());
    format!("{}-{nanos:x}", std::process::id())
}
