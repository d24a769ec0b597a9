//! Word wrapping by display width, so wide characters (CJK, emoji) wrap where they should.

use unicode_width::UnicodeWidthChar;

/// `text` wrapped to `width` columns: at spaces when a word fits, inside words when not.
/// Every `\n` starts a new row; an empty text is one empty row.
pub fn wrap(text: &str, width: usize) -> Vec<String> {
    let width = width.max(1);
    let mut rows = Vec::new();
    for line in text.split('\n') {
        wrap_line(&line.replace('\t', "    "), width, &mut rows);
    }
    rows
}

fn wrap_line(line: &str, width: usize, rows: &mut Vec<String>) {
    let mut row = String::new();
    let mut row_width = 0;
    for word in line.split_inclusive(' ') {
        // The space after a word may hang past the edge; it never forces a wrap.
        let word_width: usize = word.trim_end_matches(' ').chars().map(|c| c.width().unwrap_or(0)).sum();
        if row_width + word_width.min(width) > width && !row.is_empty() {
            rows.push(std::mem::take(&mut row).trim_end().to_owned());
            row_width = 0;
        }
        for c in word.chars() {
            let cells = c.width().unwrap_or(0);
            if row_width + cells > width {
                if c == ' ' {
                    continue;
                }
                rows.push(std::mem::take(&mut row));
                row_width = 0;
            }
            row.push(c);
            row_width += cells;
        }
    }
    rows.push(row);
}

#[cfg(test)]
mod tests {
    use super::wrap;

    #[test]
    fn wraps_at_spaces_and_inside_long_words() {
        assert_eq!(wrap("hello big world", 9), ["hello big", "world"]);
        assert_eq!(wrap("abcdefghij", 4), ["abcd", "efgh", "ij"]);
        assert_eq!(wrap("a\n\nb", 5), ["a", "", "b"]);
        assert_eq!(wrap("", 5), [""]);
    }

    #[test]
    fn wide_characters_count_two_columns() {
        assert_eq!(wrap("日本語テキスト", 6), ["日本語", "テキス", "ト"]);
    }
}
