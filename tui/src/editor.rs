//! `e`: the user's own editor on a `.based` file. The content goes into a temporary file
//! (named after the file, so the editor sees `.based`), the editor runs with the terminal
//! handed over to it (see `terminal.rs`), and whatever it left there comes back.

use std::io;
use std::process::Command;

/// What to edit, and where the edit started (for the server's conflict check).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EditRequest {
    pub chat_id: String,
    pub file_id: String,
    pub filename: String,
    pub content: String,
    /// The version `content` is; `None` for a file whose versions are unknown.
    pub base_version_id: Option<String>,
}

/// The editor to run: `override_` (tests), else `$VISUAL`, else `$EDITOR`, else `vi`.
pub fn command(override_: Option<&str>) -> String {
    let from_env = |name: &str| std::env::var(name).ok().filter(|value| !value.trim().is_empty());
    override_
        .map(str::to_owned)
        .or_else(|| from_env("VISUAL"))
        .or_else(|| from_env("EDITOR"))
        .unwrap_or_else(|| "vi".to_owned())
}

/// Runs `editor` on a temporary copy of `content` and waits for it: `Some(new content)` when
/// it changed, `None` when not. The editor command may carry arguments (`code --wait`); it is
/// run by `sh` with the file's path as its last argument. Blocks: call it off the UI loop.
pub fn edit(editor: &str, filename: &str, content: &str) -> io::Result<Option<String>> {
    let (stem, extension) = match filename.rsplit_once('.') {
        Some((stem, extension)) => (stem, format!(".{extension}")),
        None => (filename, String::new()),
    };
    let stem: String = stem
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let file = tempfile::Builder::new()
        .prefix(&format!("{stem}-"))
        .suffix(&extension)
        .tempfile()?;
    std::fs::write(file.path(), content)?;
    let status = Command::new("sh")
        .arg("-c")
        .arg(format!("{editor} \"$1\""))
        .arg("sh")
        .arg(file.path())
        .status()?;
    if !status.success() {
        return Err(io::Error::other(format!(
            "{editor} exited with {status}; nothing was saved"
        )));
    }
    // Editors that save by renaming a new file into place leave a new file at the path.
    let edited = std::fs::read_to_string(file.path())?;
    Ok((edited != content).then_some(edited))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_editor_changes_the_file_or_leaves_it() {
        assert_eq!(edit("true", "a.based", "say(1)\n").unwrap(), None);
        let appended = edit("sh -c 'echo \"say(2)\" >> \"$0\"'", "a b.based", "say(1)\n").unwrap();
        assert_eq!(appended.as_deref(), Some("say(1)\nsay(2)\n"));
        assert!(edit("false", "a.based", "x").is_err());
        assert_eq!(command(Some("nano")), "nano");
    }
}
