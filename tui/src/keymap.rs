//! The one list of keys. Dispatch, the footer hints and the `?` help overlay all read it, so
//! they cannot disagree.

use std::str::FromStr;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

/// Something the user asks for; the app decides what it means where the focus is. Its name in
/// `keys.conf` is derived (strum): `NewChat` is `new_chat`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::EnumString, strum::VariantNames)]
#[strum(serialize_all = "snake_case")]
pub enum Action {
    Help,
    Quit,
    NextPane,
    PrevPane,
    Up,
    Down,
    Left,
    Right,
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
    /// Edit the selected `.based` file in `$VISUAL` / `$EDITOR`; saved as the user's version.
    Edit,
    /// Write the selected file to a path.
    WriteFile,
    DeleteFile,
    Copy,
    /// Start (or cancel) a line selection in the code pane.
    Select,
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
    /// While lines are selected in the code pane (before `Versions` and `Chat`).
    Selection,
}

impl Context {
    pub fn title(self) -> &'static str {
        match self {
            Context::Global => "Everywhere",
            Context::Browser => "Workspaces and chats",
            Context::Chat => "Chat (panes)",
            Context::Input => "Chat (typing)",
            Context::Versions => "Versions and diff",
            Context::Selection => "Selecting lines",
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

#[derive(Debug, Clone)]
pub struct Binding {
    pub keys: Vec<Key>,
    /// How the keys are written in the footer and the help.
    pub label: String,
    pub action: Action,
    pub help: &'static str,
    /// Shown in the footer (the most useful few per context).
    pub in_footer: bool,
    pub context: Context,
}

fn bind(context: Context, keys: &[Key], label: &str, action: Action, help: &'static str, in_footer: bool) -> Binding {
    Binding {
        keys: keys.to_vec(),
        label: label.to_owned(),
        action,
        help,
        in_footer,
        context,
    }
}

use Action as A;
use Context as C;

/// The default keys. `keys.conf` in the data dir can rebind any action (see [`configure`]).
#[rustfmt::skip]
fn defaults() -> Vec<Binding> {
    vec![
        bind(C::Global, &[Key::char('?'), Key::plain(KeyCode::F(1))], "?/F1", A::Help, "help", true),
        bind(C::Global, &[Key::char('q'), Key::ctrl('c')], "q/^C", A::Quit, "quit", true),
        bind(C::Global, &[Key::plain(KeyCode::Tab)], "Tab", A::NextPane, "next pane", true),
        bind(C::Global, &[Key::plain(KeyCode::BackTab)], "S-Tab", A::PrevPane, "previous pane", false),
        bind(C::Global, &[Key::plain(KeyCode::Up), Key::char('k')], "↑/k", A::Up, "move up", false),
        bind(C::Global, &[Key::plain(KeyCode::Down), Key::char('j')], "↓/j", A::Down, "move down", false),
        bind(C::Global, &[Key::plain(KeyCode::PageUp)], "PgUp", A::PageUp, "scroll up a page", false),
        bind(C::Global, &[Key::plain(KeyCode::PageDown)], "PgDn", A::PageDown, "scroll down a page", false),
        bind(C::Global, &[Key::plain(KeyCode::Enter)], "Enter", A::Open, "open / type", true),
        bind(C::Global, &[Key::plain(KeyCode::Esc)], "Esc", A::Back, "back / close", true),
        bind(C::Global, &[Key::char('m')], "m", A::Model, "choose or add a model", true),
        bind(C::Browser, &[Key::char('n')], "n", A::NewChat, "new chat / workspace", true),
        bind(C::Browser, &[Key::char('R')], "R", A::Rename, "rename chat / workspace", true),
        bind(C::Browser, &[Key::char('D')], "D", A::Delete, "delete chat / workspace", true),
        bind(C::Chat, &[Key::plain(KeyCode::Left), Key::char('h')], "←/h", A::Left, "scroll the code left", false),
        bind(C::Chat, &[Key::plain(KeyCode::Right), Key::char('l')], "→/l", A::Right, "scroll the code right", false),
        bind(C::Chat, &[Key::char('c')], "c", A::ToggleMode, "chat / composer mode", true),
        bind(C::Chat, &[Key::char('v')], "v", A::Versions, "versions of the file", true),
        bind(C::Chat, &[Key::char('u')], "u", A::Upload, "upload a file", true),
        bind(C::Chat, &[Key::char('e')], "e", A::Edit, "edit the file in $EDITOR", true),
        bind(C::Chat, &[Key::char('w')], "w", A::WriteFile, "write the file to a path", false),
        bind(C::Chat, &[Key::char('x')], "x", A::DeleteFile, "delete the file", false),
        bind(C::Chat, &[Key::char('y')], "y", A::Copy, "copy code / message", false),
        bind(C::Chat, &[Key::char('V')], "V", A::Select, "select lines of the code", false),
        bind(C::Chat, &[Key::char('n')], "n", A::NewChat, "new chat", false),
        bind(C::Chat, &[Key::ctrl('x')], "^X", A::CancelAgent, "stop the agent", false),
        bind(C::Input, &[Key::plain(KeyCode::Enter)], "Enter", A::Send, "send the message", true),
        bind(C::Input, &[Key::plain(KeyCode::F(1))], "F1", A::Help, "help", true),
        bind(C::Input, &[Key::alt(KeyCode::Enter)], "Alt+Enter", A::Newline, "new line", true),
        bind(C::Input, &[Key::plain(KeyCode::Esc)], "Esc", A::Back, "leave the input", true),
        bind(C::Input, &[Key::plain(KeyCode::Tab)], "Tab", A::NextPane, "next pane", false),
        bind(C::Input, &[Key::ctrl('c')], "^C", A::Quit, "quit", false),
        bind(C::Input, &[Key::ctrl('x')], "^X", A::CancelAgent, "stop the agent", false),
        bind(C::Versions, &[Key::char('[')], "[", A::PrevHunk, "previous hunk", true),
        bind(C::Versions, &[Key::char(']')], "]", A::NextHunk, "next hunk", true),
        bind(C::Versions, &[Key::char('r')], "r", A::Revert, "revert to this version", true),
        bind(C::Versions, &[Key::char('b')], "b", A::CompareBase, "compare from this version", false),
        bind(C::Versions, &[Key::char('y')], "y", A::Copy, "copy the diff", false),
        bind(C::Versions, &[Key::plain(KeyCode::Esc)], "Esc", A::Back, "close versions", true),
        bind(C::Selection, &[Key::plain(KeyCode::Up), Key::char('k')], "↑/k", A::Up, "extend up", false),
        bind(C::Selection, &[Key::plain(KeyCode::Down), Key::char('j')], "↓/j", A::Down, "extend down", true),
        bind(C::Selection, &[Key::char('y')], "y", A::Copy, "copy the selected lines", true),
        bind(C::Selection, &[Key::char('V')], "V", A::Select, "cancel the selection", false),
        bind(C::Selection, &[Key::plain(KeyCode::Esc)], "Esc", A::Back, "cancel the selection", true),
    ]
}

/// The bindings in force: the defaults, or the defaults as `keys.conf` rebinds them. The app
/// owns one; dispatch, the footer hints and the `?` help all read it.
#[derive(Debug, Clone)]
pub struct Keymap {
    bindings: Vec<Binding>,
}

impl Default for Keymap {
    fn default() -> Self {
        Self { bindings: defaults() }
    }
}

impl Keymap {
    /// The defaults rebound by `keys.conf` text. Each line is `action = key, key`
    /// (`versions = V`, `send = ctrl+s`, `cancel_agent = ctrl+g`); `#` starts a comment. The
    /// new keys replace the action's keys in every context.
    pub fn configured(text: &str) -> Result<Self, String> {
        let mut bindings = defaults();
        apply_overrides(&mut bindings, text)?;
        Ok(Self { bindings })
    }

    /// The action `event` triggers in the given contexts (the first listed context wins).
    pub fn action_for(&self, event: &KeyEvent, contexts: &[Context]) -> Option<Action> {
        contexts.iter().find_map(|context| {
            self.bindings
                .iter()
                .filter(|binding| binding.context == *context)
                .find(|binding| binding.keys.iter().any(|key| key.matches(event)))
                .map(|binding| binding.action)
        })
    }

    /// `(keys, what they do)` for the footer: the contexts' bindings marked for it, first
    /// context first, each label once.
    pub fn footer_hints(&self, contexts: &[Context]) -> Vec<(&str, &'static str)> {
        let mut hints: Vec<(&str, &str)> = Vec::new();
        for context in contexts {
            for binding in self.bindings.iter().filter(|b| b.context == *context && b.in_footer) {
                if !hints.iter().any(|(label, _)| *label == binding.label) {
                    hints.push((binding.label.as_str(), binding.help));
                }
            }
        }
        hints
    }

    /// Every binding of a context, for the help overlay.
    pub fn bindings_of(&self, context: Context) -> impl Iterator<Item = &Binding> {
        self.bindings.iter().filter(move |binding| binding.context == context)
    }
}

fn apply_overrides(bindings: &mut [Binding], text: &str) -> Result<(), String> {
    for (number, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or_default().trim();
        if line.is_empty() {
            continue;
        }
        let at = |error: String| format!("line {}: {error}", number + 1);
        let (name, keys) = line
            .split_once('=')
            .ok_or_else(|| at("expected `action = key`".into()))?;
        let action = Action::from_str(name.trim()).map_err(|_| at(format!("unknown action {:?}", name.trim())))?;
        let keys = keys
            .split(',')
            .map(parse_key)
            .collect::<Result<Vec<_>, _>>()
            .map_err(at)?;
        let label = keys.iter().map(key_label).collect::<Vec<_>>().join("/");
        for binding in bindings.iter_mut().filter(|binding| binding.action == action) {
            binding.keys = keys.clone();
            binding.label = label.clone();
        }
    }
    Ok(())
}

/// `x`, `X`, `ctrl+x`, `alt+enter`, `enter`, `esc`, `tab`, `backtab`, `up`, `down`, `pgup`,
/// `pgdn`, `f1`…`f12`.
fn parse_key(text: &str) -> Result<Key, String> {
    let text = text.trim();
    let (modifiers, name) = match text.split_once('+') {
        Some((modifier, name)) if modifier.eq_ignore_ascii_case("ctrl") => (KeyModifiers::CONTROL, name),
        Some((modifier, name)) if modifier.eq_ignore_ascii_case("alt") => (KeyModifiers::ALT, name),
        _ => (KeyModifiers::NONE, text),
    };
    let mut chars = name.chars();
    let code = match (chars.next(), chars.next()) {
        (Some(c), None) => KeyCode::Char(if modifiers == KeyModifiers::CONTROL {
            c.to_ascii_lowercase()
        } else {
            c
        }),
        _ => named_key(&name.to_ascii_lowercase()).ok_or_else(|| format!("unknown key {text:?}"))?,
    };
    Ok(Key { code, modifiers })
}

fn named_key(name: &str) -> Option<KeyCode> {
    let code = match name {
        "enter" => KeyCode::Enter,
        "esc" => KeyCode::Esc,
        "tab" => KeyCode::Tab,
        "backtab" => KeyCode::BackTab,
        "up" => KeyCode::Up,
        "down" => KeyCode::Down,
        "left" => KeyCode::Left,
        "right" => KeyCode::Right,
        "pgup" => KeyCode::PageUp,
        "pgdn" => KeyCode::PageDown,
        "space" => KeyCode::Char(' '),
        _ => {
            return name
                .strip_prefix('f')?
                .parse()
                .ok()
                .filter(|n| (1..=12).contains(n))
                .map(KeyCode::F);
        }
    };
    Some(code)
}

/// How a rebound key is written in the footer and the help.
fn key_label(key: &Key) -> String {
    let name = match key.code {
        KeyCode::Char(' ') => "Space".to_owned(),
        KeyCode::Char(c) => c.to_string(),
        KeyCode::F(n) => format!("F{n}"),
        KeyCode::PageUp => "PgUp".to_owned(),
        KeyCode::PageDown => "PgDn".to_owned(),
        KeyCode::BackTab => "S-Tab".to_owned(),
        other => format!("{other:?}"),
    };
    if key.modifiers.contains(KeyModifiers::CONTROL) {
        format!("^{}", name.to_uppercase())
    } else if key.modifiers.contains(KeyModifiers::ALT) {
        format!("Alt+{name}")
    } else {
        name
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(code: KeyCode, modifiers: KeyModifiers) -> KeyEvent {
        KeyEvent::new(code, modifiers)
    }

    fn action_for(event: &KeyEvent, contexts: &[Context]) -> Option<Action> {
        Keymap::default().action_for(event, contexts)
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
        let keymap = Keymap::default();
        for a in &keymap.bindings {
            for b in keymap
                .bindings
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

    #[test]
    fn keys_conf_rebinds_actions_everywhere_and_relabels_them() {
        let mut bindings = defaults();
        let conf = "# mine\nversions = V\ncancel_agent = ctrl+g, f5\n\nsend = alt+s # not Enter\n";
        apply_overrides(&mut bindings, conf).unwrap();
        let versions = bindings.iter().find(|b| b.action == A::Versions).unwrap();
        assert_eq!(
            (versions.keys.as_slice(), versions.label.as_str()),
            ([Key::char('V')].as_slice(), "V")
        );
        let cancels: Vec<_> = bindings.iter().filter(|b| b.action == A::CancelAgent).collect();
        assert_eq!(cancels.len(), 2, "in the panes and in the input");
        assert!(
            cancels
                .iter()
                .all(|b| b.label == "^G/F5" && b.keys == [Key::ctrl('g'), Key::plain(KeyCode::F(5))])
        );
        let send = bindings.iter().find(|b| b.action == A::Send).unwrap();
        assert_eq!(
            send.keys,
            [Key {
                code: KeyCode::Char('s'),
                modifiers: KeyModifiers::ALT
            }]
        );
    }

    #[test]
    fn every_action_is_named_in_snake_case() {
        use strum::VariantNames;
        assert_eq!(Action::from_str("new_chat"), Ok(A::NewChat));
        assert_eq!(Action::from_str("cancel_agent"), Ok(A::CancelAgent));
        for name in Action::VARIANTS {
            assert!(
                Action::from_str(name).is_ok() && !name.contains(char::is_uppercase),
                "{name}"
            );
        }
    }

    #[test]
    fn keys_conf_errors_name_the_line() {
        let mut bindings = defaults();
        assert_eq!(
            apply_overrides(&mut bindings, "fly = x"),
            Err("line 1: unknown action \"fly\"".into())
        );
        assert_eq!(
            apply_overrides(&mut bindings, "\nquit = hyper+q"),
            Err("line 2: unknown key \"hyper+q\"".into())
        );
        assert!(apply_overrides(&mut bindings, "quit").is_err());
    }
}
