//! Output records as plain text: what a failure report or a line match reads. Terminals
//! keep the raw bytes; this is only for places that show or compare text.

/// One record as the text a terminal would end up showing on that line: lossy UTF-8,
/// ANSI escape sequences (CSI, OSC, …) removed, carriage-return overwrites applied
/// (`"50%\r100%"` reads `"100%"`), the line ending dropped.
pub fn plain_line(raw: &[u8]) -> String {
    let text = String::from_utf8_lossy(raw);
    let stripped = anstream::adapter::strip_str(&text).to_string();
    let line = stripped.trim_end_matches(['\r', '\n']);
    if !line.contains('\r') {
        return line.to_owned();
    }
    // A carriage return moves the cursor to the start of the line; what follows writes
    // over what was there, character by character, and leaves the rest visible.
    let mut shown: Vec<char> = Vec::new();
    for segment in line.split('\r') {
        for (i, ch) in segment.chars().enumerate() {
            match shown.get_mut(i) {
                Some(slot) => *slot = ch,
                None => shown.push(ch),
            }
        }
    }
    shown.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::plain_line;

    #[test]
    fn colours_cursor_moves_and_titles_are_removed() {
        assert_eq!(plain_line(b"\x1b[31mred\x1b[0m text\n"), "red text");
        assert_eq!(plain_line(b"\x1b[2K\x1b[1Gcleared\r\n"), "cleared");
        assert_eq!(plain_line(b"\x1b]0;title\x07after"), "after");
        assert_eq!(
            plain_line(b"\x1b]8;;http://x\x1b\\link\x1b]8;;\x1b\\"),
            "link"
        );
    }

    #[test]
    fn carriage_returns_overwrite_from_the_line_start() {
        assert_eq!(plain_line(b"50%\r100%\n"), "100%");
        assert_eq!(plain_line(b"downloading\rdone\n"), "doneloading");
        assert_eq!(plain_line(b"a\r\n"), "a");
        assert_eq!(plain_line("进度 10%\r进度 99%".as_bytes()), "进度 99%");
    }

    #[test]
    fn plain_text_is_kept() {
        assert_eq!(
            plain_line("✅ Adapter 启动成功!".as_bytes()),
            "✅ Adapter 启动成功!"
        );
        assert_eq!(plain_line(b"tab\there"), "tab\there");
    }
}
