//! An editable text with a cursor: the chat input (multi-line), the login and popup fields.

use unicode_width::UnicodeWidthChar;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TextInput {
    text: String,
    /// Byte offset of the cursor, always on a char boundary.
    cursor: usize,
}

impl TextInput {
    pub fn with_text(text: &str) -> Self {
        Self {
            text: text.to_owned(),
            cursor: text.len(),
        }
    }

    pub fn text(&self) -> &str {
        &self.text
    }

    pub fn is_blank(&self) -> bool {
        self.text.trim().is_empty()
    }

    pub fn set(&mut self, text: &str) {
        self.text = text.to_owned();
        self.cursor = self.text.len();
    }

    /// Empties the input and hands back what it held.
    pub fn take(&mut self) -> String {
        self.cursor = 0;
        std::mem::take(&mut self.text)
    }

    pub fn insert(&mut self, c: char) {
        self.text.insert(self.cursor, c);
        self.cursor += c.len_utf8();
    }

    /// Inserts pasted text; `\r\n` and `\r` become `\n`.
    pub fn insert_str(&mut self, pasted: &str) {
        let normalized = pasted.replace("\r\n", "\n").replace('\r', "\n");
        self.text.insert_str(self.cursor, &normalized);
        self.cursor += normalized.len();
    }

    pub fn backspace(&mut self) {
        if let Some(previous) = self.text[..self.cursor].chars().next_back() {
            self.cursor -= previous.len_utf8();
            self.text.remove(self.cursor);
        }
    }

    pub fn delete(&mut self) {
        if self.cursor < self.text.len() {
            self.text.remove(self.cursor);
        }
    }

    pub fn left(&mut self) {
        if let Some(previous) = self.text[..self.cursor].chars().next_back() {
            self.cursor -= previous.len_utf8();
        }
    }

    pub fn right(&mut self) {
        if let Some(next) = self.text[self.cursor..].chars().next() {
            self.cursor += next.len_utf8();
        }
    }

    pub fn home(&mut self) {
        self.cursor = self.text[..self.cursor].rfind('\n').map_or(0, |at| at + 1);
    }

    pub fn end(&mut self) {
        self.cursor = self.text[self.cursor..]
            .find('\n')
            .map_or(self.text.len(), |at| self.cursor + at);
    }

    /// The text wrapped to `width` columns, and the cursor's (row, column) in it.
    pub fn layout(&self, width: u16, mask: bool) -> (Vec<String>, (u16, u16)) {
        let width = usize::from(width.max(1));
        let mut rows = vec![String::new()];
        let mut column = 0;
        let mut cursor = (0, 0);
        for (at, c) in self.text.char_indices() {
            if at == self.cursor {
                cursor = (rows.len() - 1, column);
            }
            if c == '\n' {
                rows.push(String::new());
                column = 0;
                continue;
            }
            let shown = if mask { '•' } else { c };
            let cells = shown.width().unwrap_or(0);
            if column + cells > width {
                rows.push(String::new());
                column = 0;
            }
            if let Some(row) = rows.last_mut() {
                row.push(shown);
            }
            column += cells;
        }
        if self.cursor >= self.text.len() {
            cursor = (rows.len() - 1, column);
        }
        if cursor.1 >= width {
            rows.push(String::new());
            cursor = (rows.len() - 1, 0);
        }
        (rows, (cursor.0 as u16, cursor.1 as u16))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn editing_keeps_the_cursor_on_char_boundaries() {
        let mut input = TextInput::default();
        for c in "héllo".chars() {
            input.insert(c);
        }
        input.left();
        input.left();
        input.left();
        input.left();
        input.backspace();
        assert_eq!(input.text(), "éllo");
        input.delete();
        assert_eq!(input.text(), "llo");
        input.end();
        input.insert_str("\r\nnext");
        assert_eq!(input.take(), "llo\nnext");
        assert!(input.is_blank());
    }

    #[test]
    fn layout_wraps_wide_characters_and_places_the_cursor() {
        let input = TextInput::with_text("日本語です\nab");
        let (rows, cursor) = input.layout(4, false);
        assert_eq!(rows, ["日本", "語で", "す", "ab"]);
        assert_eq!(cursor, (3, 2));
        let (masked, _) = TextInput::with_text("key").layout(10, true);
        assert_eq!(masked, ["•••"]);
    }
}
