//! The one list of keys. Dispatch, the footer hints and the `?` help overlay all read it, so
//! they cannot disagree.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

/// Something the user asks for; the app decides what it means where the focus is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Help,
    Quit,
    NextPane,
    PrevPane,
    Up,
    Down,
    PageUp,
    PageDown,
    Open,
    Back,
    Send,
    Newline,
    NewChat,
    Rename,
    Delete,
    Model,
    ToggleMode,
    Versions,
    CompareBase,
    PrevHunk,
    NextHunk,
    Revert,
    Upload,
    DeleteFile,
    Copy,
    CancelAgent,
}

/// Where a binding applies. `Global` bindings apply everywhere except while typing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Context {
    Global,
    Browser,
    Chat,
    Input,
    Versions,
}

impl Context {
    pub fn title(self) -> &'static str {
        match self {
            Context::Global => "Everywhere",
            Context::Browser => "Workspaces and chats",
            Context::Chat => "Chat (panes)",
            Context::Input => "Chat (typing)",
            Context::Versions => "Versions and diff",
        }
    }
}

/// One key (code + modifiers) as the terminal reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Key {
    pub code: KeyCode,
    pub modifiers: KeyModifiers,
}

impl Key {
    const fn plain(code: KeyCode) -> Self {
        Key {
            code,
            modifiers: KeyModifiers::NONE,
        }
    }

    const fn char(c: char) -> Self {
        Key::plain(KeyCode::Char(c))
    }

    const fn ctrl(c: char) -> Self {
        Key {
            code: KeyCode::Char(c),
            modifiers: KeyModifiers::CONTROL,
        }
    }

    const fn alt(code: KeyCode) -> Self {
        Key {
            code,
            modifiers: KeyModifiers::ALT,
        }
    }

    /// Shift is implied by upper-case letters and by BackTab, and terminals disagree on
    /// whether they report it, so it is ignored when matching.
    fn matches(&self, event: &KeyEvent) -> bool {
        let wanted = self.modifiers - KeyModifiers::SHIFT;
        let got = event.modifiers - KeyModifiers::SHIFT;
        self.code == event.code && wanted == got
    }
}

#[derive(Debug, Clone, Copy)]
pub struct Binding {
    pub keys: &'static [Key],
    /// How the keys are written in the footer and the help.
    pub label: &'static str,
    pub action: Action,
    pub help: &'static str,
    /// Shown in the footer (the most useful few per context).
    pub in_footer: bool,
    pub context: Context,
}

const fn bind(
    context: Context,
    keys: &'static [Key],
    label: &'static str,
    action: Action,
    help: &'static str,
    in_footer: bool,
) -> Binding {
    Binding {
        keys,
        label,
        action,
        help,
        in_footer,
        context,
    }
}

use Action as A;
use Context as C;

pub const BINDINGS: &[Binding] = &[
    bind(
        C::Global,
        &[Key::char('?'), Key::plain(KeyCode::F(1))],
        "?/F1",
        A::Help,
        "help",
        true,
    ),
    bind(
        C::Global,
        &[Key::char('q'), Key::ctrl('c')],
        "q/^C",
        A::Quit,
        "quit",
        true,
    ),
    bind(
        C::Global,
        &[Key::plain(KeyCode::Tab)],
        "Tab",
        A::NextPane,
        "next pane",
        true,
    ),
    bind(
        C::Global,
        &[Key::plain(KeyCode::BackTab)],
        "S-Tab",
        A::PrevPane,
        "previous pane",
        false,
    ),
    bind(
        C::Global,
        &[Key::plain(KeyCode::Up), Key::char('k')],
        "↑/k",
        A::Up,
        "move up",
        false,
    ),
    bind(
        C::Global,
        &[Key::plain(KeyCode::Down), Key::char('j')],
        "↓/j",
        A::Down,
        "move down",
        false,
    ),
    bind(
        C::Global,
        &[Key::plain(KeyCode::PageUp)],
        "PgUp",
        A::PageUp,
        "scroll up a page",
        false,
    ),
    bind(
        C::Global,
        &[Key::plain(KeyCode::PageDown)],
        "PgDn",
        A::PageDown,
        "scroll down a page",
        false,
    ),
    bind(
        C::Global,
        &[Key::plain(KeyCode::Enter)],
        "Enter",
        A::Open,
        "open / type",
        true,
    ),
    bind(
        C::Global,
        &[Key::plain(KeyCode::Esc)],
        "Esc",
        A::Back,
        "back / close",
        true,
    ),
    bind(
        C::Global,
        &[Key::char('m')],
        "m",
        A::Model,
        "choose or add a model",
        true,
    ),
    bind(
        C::Browser,
        &[Key::char('n')],
        "n",
        A::NewChat,
        "new chat / workspace",
        true,
    ),
    bind(
        C::Browser,
        &[Key::char('R')],
        "R",
        A::Rename,
        "rename chat / workspace",
        true,
    ),
    bind(
        C::Browser,
        &[Key::char('D')],
        "D",
        A::Delete,
        "delete chat / workspace",
        true,
    ),
    bind(
        C::Chat,
        &[Key::char('c')],
        "c",
        A::ToggleMode,
        "chat / composer mode",
        true,
    ),
    bind(
        C::Chat,
        &[Key::char('v')],
        "v",
        A::Versions,
        "versions of the file",
        true,
    ),
    bind(C::Chat, &[Key::char('u')], "u", A::Upload, "upload a file", true),
    bind(C::Chat, &[Key::char('x')], "x", A::DeleteFile, "delete the file", false),
    bind(C::Chat, &[Key::char('y')], "y", A::Copy, "copy code / message", false),
    bind(C::Chat, &[Key::char('n')], "n", A::NewChat, "new chat", false),
    bind(
        C::Chat,
        &[Key::ctrl('x')],
        "^X",
        A::CancelAgent,
        "stop the agent",
        false,
    ),
    bind(
        C::Input,
        &[Key::plain(KeyCode::Enter)],
        "Enter",
        A::Send,
        "send the message",
        true,
    ),
    bind(C::Input, &[Key::plain(KeyCode::F(1))], "F1", A::Help, "help", true),
    bind(
        C::Input,
        &[Key::alt(KeyCode::Enter)],
        "Alt+Enter",
        A::Newline,
        "new line",
        true,
    ),
    bind(
        C::Input,
        &[Key::plain(KeyCode::Esc)],
        "Esc",
        A::Back,
        "leave the input",
        true,
    ),
    bind(
        C::Input,
        &[Key::plain(KeyCode::Tab)],
        "Tab",
        A::NextPane,
        "next pane",
        false,
    ),
    bind(C::Input, &[Key::ctrl('c')], "^C", A::Quit, "quit", false),
    bind(
        C::Input,
        &[Key::ctrl('x')],
        "^X",
        A::CancelAgent,
        "stop the agent",
        false,
    ),
    bind(C::Versions, &[Key::char('[')], "[", A::PrevHunk, "previous hunk", true),
    bind(C::Versions, &[Key::char(']')], "]", A::NextHunk, "next hunk", true),
    bind(
        C::Versions,
        &[Key::char('r')],
        "r",
        A::Revert,
        "revert to this version",
        true,
    ),
    bind(
        C::Versions,
        &[Key::char('b')],
        "b",
        A::CompareBase,
        "compare from this version",
        false,
    ),
    bind(C::Versions, &[Key::char('y')], "y", A::Copy, "copy the diff", false),
    bind(
        C::Versions,
        &[Key::plain(KeyCode::Esc)],
        "Esc",
        A::Back,
        "close versions",
        true,
    ),
];

/// The action `event` triggers in the given contexts (the first listed context wins).
pub fn action_for(event: &KeyEvent, contexts: &[Context]) -> Option<Action> {
    contexts.iter().find_map(|context| {
        BINDINGS
            .iter()
            .filter(|binding| binding.context == *context)
            .find(|binding| binding.keys.iter().any(|key| key.matches(event)))
            .map(|binding| binding.action)
    })
}

/// Footer hints for the active contexts: `(keys, what)`, without duplicates.
pub fn footer_hints(contexts: &[Context]) -> Vec<(&'static str, &'static str)> {
    let mut hints: Vec<(&str, &str)> = Vec::new();
    for context in contexts {
        for binding in BINDINGS.iter().filter(|b| b.context == *context && b.in_footer) {
            if !hints.iter().any(|(label, _)| *label == binding.label) {
                hints.push((binding.label, binding.help));
            }
        }
    }
    hints
}

/// Every binding of a context, for the help overlay.
pub fn bindings_of(context: Context) -> impl Iterator<Item = &'static Binding> {
    BINDINGS.iter().filter(move |binding| binding.context == context)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(code: KeyCode, modifiers: KeyModifiers) -> KeyEvent {
        KeyEvent::new(code, modifiers)
    }

    #[test]
    fn the_first_matching_context_wins() {
        let enter = key(KeyCode::Enter, KeyModifiers::NONE);
        assert_eq!(action_for(&enter, &[C::Input, C::Global]), Some(A::Send));
        assert_eq!(action_for(&enter, &[C::Chat, C::Global]), Some(A::Open));
    }

    #[test]
    fn shift_is_ignored_for_capitals_and_backtab() {
        assert_eq!(
            action_for(&key(KeyCode::Char('R'), KeyModifiers::SHIFT), &[C::Browser]),
            Some(A::Rename)
        );
        assert_eq!(
            action_for(&key(KeyCode::BackTab, KeyModifiers::SHIFT), &[C::Global]),
            Some(A::PrevPane)
        );
        assert_eq!(
            action_for(&key(KeyCode::Enter, KeyModifiers::ALT), &[C::Input]),
            Some(A::Newline)
        );
    }

    #[test]
    fn no_key_is_bound_twice_in_one_context() {
        for a in BINDINGS {
            for b in BINDINGS
                .iter()
                .filter(|b| b.context == a.context && !std::ptr::eq(*b, a))
            {
                let clash = a.keys.iter().any(|k| b.keys.contains(k));
                assert!(
                    !clash,
                    "{:?} and {:?} share a key in {:?}",
                    a.action, b.action, a.context
                );
            }
        }
    }
}
