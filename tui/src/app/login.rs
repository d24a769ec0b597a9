//! The login screen and the session's life: the email (and, when the server asks for one, the
//! password) typed; what a refused login means; and, when the token expires mid-session,
//! back to the login screen with the open chat and the unsent message kept for after.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::popup::edit;
use super::{App, Command, Connection, RestCall, Screen};
use crate::text_input::TextInput;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LoginField {
    #[default]
    Email,
    Password,
}

#[derive(Debug, Default)]
pub struct LoginForm {
    pub email: TextInput,
    /// Typed masked; sent only once the server asked for it.
    pub password: TextInput,
    /// The server refused the email alone (a protected server always does; an open one when
    /// the account has a password), so the field shows.
    pub asks_password: bool,
    pub focus: LoginField,
    /// Whether the login on its way carries a password: a 401 to one without means "a
    /// password is needed", to one with it "wrong password".
    pub password_sent: bool,
}

impl LoginForm {
    pub fn focused_input(&mut self) -> &mut TextInput {
        match self.focus {
            LoginField::Email => &mut self.email,
            LoginField::Password => &mut self.password,
        }
    }

    /// Tab and the arrows move between the fields once there are two.
    fn switch_field(&mut self) {
        if self.asks_password {
            self.focus = match self.focus {
                LoginField::Email => LoginField::Password,
                LoginField::Password => LoginField::Email,
            };
        }
    }
}

/// What the session held when its token expired, to restore after the next login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resume {
    /// Only the same account gets the chat back.
    pub email: String,
    pub chat_id: String,
    pub draft: String,
}

impl App {
    pub(super) fn login_key(&mut self, key: KeyEvent) -> Vec<Command> {
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        match key.code {
            KeyCode::Char('c') if ctrl => self.should_quit = true,
            KeyCode::Enter if !self.logging_in => return self.submit_login(),
            KeyCode::Esc => self.should_quit = true,
            KeyCode::Tab | KeyCode::BackTab | KeyCode::Up | KeyCode::Down => self.login.switch_field(),
            _ => edit(self.login.focused_input(), key),
        }
        Vec::new()
    }

    pub(super) fn submit_login(&mut self) -> Vec<Command> {
        let email = self.login.email.text().trim().to_owned();
        if email.is_empty() {
            self.last_error = Some("Type your email address.".into());
            self.login.focus = LoginField::Email;
            return Vec::new();
        }
        // Left empty, the password is not sent: the account may not have one.
        let password =
            Some(self.login.password.text().to_owned()).filter(|p| self.login.asks_password && !p.is_empty());
        self.logging_in = true;
        self.last_error = None;
        self.login.password_sent = password.is_some();
        vec![Command::Rest(RestCall::Login { email, password })]
    }

    /// A 401 to the login. Without a password it means the server wants one (a protected
    /// server, for every account, new ones too; an open one, for an account that has one): the
    /// field shows. With one, the password was wrong: say so, and let it be typed again.
    pub(super) fn login_refused(&mut self, detail: String) {
        self.logging_in = false;
        self.login.focus = LoginField::Password;
        if self.login.password_sent {
            self.login.password.take();
            self.last_error = Some(detail);
        } else if self.login.asks_password {
            self.last_error = Some("Type the password.".into());
        } else {
            self.login.asks_password = true;
            self.last_error = None;
        }
    }

    /// A 401 after login: the token expired or was revoked. Back to the login screen, the
    /// email kept; the open chat and its unsent message come back after logging in again.
    pub(super) fn session_expired(&mut self) -> Vec<Command> {
        if self.screen == Screen::Login {
            // Another call of the same session answered 401 first.
            return Vec::new();
        }
        if let (Some(chat), Some(user)) = (self.chat.take(), self.user.as_ref()) {
            self.resume = Some(Resume {
                email: user.email.clone(),
                chat_id: chat.chat_id,
                draft: chat.input.text().to_owned(),
            });
        }
        self.user = None;
        self.popup = None;
        self.screen = Screen::Login;
        self.connection = Connection::Idle;
        self.login.password.take();
        self.login.focus = if self.login.asks_password {
            LoginField::Password
        } else {
            LoginField::Email
        };
        self.last_error = Some("Your session expired: log in again (what you typed is kept).".into());
        vec![Command::Disconnect]
    }

    /// The chat to open after logging in as `email`: the one left when the session expired
    /// (same account only), else the one `--chat` named.
    pub(super) fn chat_after_login(&mut self, email: &str) -> Option<(String, String)> {
        match self.resume.take().filter(|resume| resume.email == email) {
            Some(resume) => Some((resume.chat_id, resume.draft)),
            None => self.open_after_login.take().map(|chat_id| (chat_id, String::new())),
        }
    }
}
