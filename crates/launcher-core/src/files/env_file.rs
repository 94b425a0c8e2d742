//! Lossless `.env` editing that reads values the way MaiBot does.
//!
//! MaiBot loads `.env` with python-dotenv, so that library's grammar is the reference here,
//! not the shell's:
//!
//! * `KEY=value`, optional leading whitespace and `export ` prefix, spaces around `=`;
//! * unquoted values are literal (no escapes); a ` # comment` (whitespace, then `#`) ends
//!   them, and trailing whitespace is dropped;
//! * `"double"` quotes decode `\\ \' \" \a \b \f \n \r \t \v`;
//! * `'single'` quotes decode only `\\` and `\'`;
//! * quoted values may span lines; a later occurrence of a key wins;
//! * a line python-dotenv cannot parse is ignored by it, and kept verbatim here.
//!
//! Values are returned raw: python-dotenv expands `${NAME}` when it *loads* the file, and that
//! expansion has no escape, so it is not modelled here.
//!
//! [`EnvFile::render`] reproduces the input byte for byte (comments, blank lines, quoting,
//! `export`, CRLF, a missing final newline, a UTF-8 BOM). Edits only rewrite the value part of
//! the affected line.

use std::collections::BTreeMap;

use super::error::FileError;

/// A parsed `.env` file that remembers every byte of its source.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EnvFile {
    bom: bool,
    entries: Vec<Entry>,
}

/// What a line (or a multi-line quoted binding) of a `.env` file is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnvLineKind {
    /// Empty or whitespace only.
    Blank,
    /// A `#` comment.
    Comment,
    /// `KEY=value`, or a bare `KEY` (which python-dotenv reads as "no value").
    Binding,
    /// Something python-dotenv would skip (for example an unterminated quote); kept verbatim.
    Invalid,
}

/// A read-only view of one entry, from [`EnvFile::lines`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EnvLine<'a> {
    /// What the entry is.
    pub kind: EnvLineKind,
    /// The key, for bindings.
    pub key: Option<&'a str>,
    /// The decoded value; `None` for everything but `KEY=...` bindings.
    pub value: Option<&'a str>,
    /// Whether the binding has an `export ` prefix.
    pub export: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Entry {
    /// Blank, comment or invalid text, including its line ending.
    Verbatim {
        kind: EnvLineKind,
        raw: String,
    },
    Binding(Binding),
}

/// One binding, split so that an edit can swap the value and keep everything around it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Binding {
    /// Indentation, `export `, key, and `=` with its surrounding spaces.
    head: String,
    /// The value as written, quotes included.
    value_raw: String,
    /// Whitespace and `# comment` after the value.
    tail: String,
    /// `\n`, `\r\n`, `\r` or empty at end of file.
    eol: String,
    key: String,
    /// `None` for a bare `KEY` without `=`.
    value: Option<String>,
    export: bool,
    quote: Quote,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Quote {
    Bare,
    Single,
    Double,
}

impl EnvFile {
    /// Parses `.env` text. Never fails: what python-dotenv would skip is kept as
    /// [`EnvLineKind::Invalid`] and left out of [`EnvFile::to_map`].
    pub fn parse(text: &str) -> EnvFile {
        let (bom, body) = match text.strip_prefix('\u{feff}') {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        let mut entries = Vec::new();
        let mut pos = 0;
        while pos < body.len() {
            let (entry, next) = parse_entry(body, pos);
            entries.push(entry);
            // Every entry consumes at least one character, so this loop terminates.
            pos = next.max(pos + 1);
        }
        EnvFile { bom, entries }
    }

    /// The file's text; byte-identical to the parsed input if nothing was changed.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if self.bom {
            out.push('\u{feff}');
        }
        for entry in &self.entries {
            match entry {
                Entry::Verbatim { raw, .. } => out.push_str(raw),
                Entry::Binding(b) => {
                    out.push_str(&b.head);
                    out.push_str(&b.value_raw);
                    out.push_str(&b.tail);
                    out.push_str(&b.eol);
                }
            }
        }
        out
    }

    /// Key → decoded value as MaiBot would see it (the last occurrence of a key wins; bare
    /// `KEY` lines without `=` are omitted).
    pub fn to_map(&self) -> BTreeMap<String, String> {
        let mut map = BTreeMap::new();
        for b in self.bindings() {
            if let Some(v) = &b.value {
                map.insert(b.key.clone(), v.clone());
            }
        }
        map
    }

    /// The effective value of `key`, if any.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.bindings()
            .filter(|b| b.key == key)
            .filter_map(|b| b.value.as_deref())
            .last()
    }

    /// Every entry in file order.
    pub fn lines(&self) -> impl Iterator<Item = EnvLine<'_>> {
        self.entries.iter().map(|entry| match entry {
            Entry::Verbatim { kind, .. } => EnvLine {
                kind: *kind,
                key: None,
                value: None,
                export: false,
            },
            Entry::Binding(b) => EnvLine {
                kind: EnvLineKind::Binding,
                key: Some(&b.key),
                value: b.value.as_deref(),
                export: b.export,
            },
        })
    }

    /// Sets the given keys, returning the keys whose value actually changed, in order.
    ///
    /// * An existing key is edited in place (its last occurrence, the one that takes effect),
    ///   keeping indentation, `export`, spacing, quoting style where the new value allows it,
    ///   and its trailing comment.
    /// * A new key is appended at the end, in the order given. New keys must match
    ///   `[A-Za-z_][A-Za-z0-9_]*` ([`FileError::InvalidEnvKey`]); keys already in the file are
    ///   accepted as they are, since their text is never rewritten.
    /// * Keys not mentioned are **kept**: a full map from the frontend never deletes
    ///   anything. Use [`EnvFile::remove`] to delete.
    ///
    /// New values are written bare when they only use `[A-Za-z0-9_./:@+,-]`, otherwise in
    /// double quotes with `\`, `"`, newline and CR escaped. `$` is written as is: python-dotenv
    /// has no escape for it, so `${NAME}` in a value is expanded when MaiBot loads the file.
    /// A value ending in `\` cannot be double-quoted safely (python-dotenv reads `\"` as an
    /// escaped quote there), so it is written bare (python-dotenv reads bare values literally)
    /// unless it has a line break, whitespace at either end, a leading quote or `#`, or a `#`
    /// after whitespace; those are rejected with [`FileError::EnvUnrepresentable`].
    ///
    /// All-or-nothing: on error nothing is changed. The result is re-parsed and checked to
    /// read back exactly the expected map before it is accepted.
    pub fn update<I, K, V>(&mut self, changes: I) -> Result<Vec<String>, FileError>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: AsRef<str>,
    {
        let mut work = self.clone();
        let mut expected = self.to_map();
        let mut touched: Vec<String> = Vec::new();
        for (key, value) in changes {
            let (key, value) = (key.as_ref(), value.as_ref());
            if work.set(key, value)? && !touched.iter().any(|k| k == key) {
                touched.push(key.to_owned());
            }
            expected.insert(key.to_owned(), value.to_owned());
        }
        work.verify(&expected)?;
        *self = work;
        Ok(touched)
    }

    /// Deletes every occurrence of `key` (so no earlier one becomes effective); returns
    /// whether anything was removed.
    pub fn remove(&mut self, key: &str) -> bool {
        let before = self.entries.len();
        self.entries
            .retain(|e| !matches!(e, Entry::Binding(b) if b.key == key));
        self.entries.len() != before
    }

    fn bindings(&self) -> impl Iterator<Item = &Binding> {
        self.entries.iter().filter_map(|e| match e {
            Entry::Binding(b) => Some(b),
            Entry::Verbatim { .. } => None,
        })
    }

    fn set(&mut self, key: &str, value: &str) -> Result<bool, FileError> {
        let existing = self.entries.iter_mut().rev().find_map(|e| match e {
            Entry::Binding(b) if b.key == key => Some(b),
            _ => None,
        });
        if let Some(b) = existing {
            if b.value.as_deref() == Some(value) {
                return Ok(false);
            }
            let (raw, quote) = encode_value(key, value, b.quote)?;
            if b.value.is_none() {
                b.head = format!("{}=", b.head.trim_end());
            }
            b.value_raw = raw;
            b.quote = quote;
            b.value = Some(value.to_owned());
            // `KEY="v"#c` is a comment after a quote, but `KEY=v#c` would swallow it.
            if !b.tail.is_empty() && !b.tail.starts_with(is_hspace) {
                b.tail.insert(0, ' ');
            }
            return Ok(true);
        }
        if !is_identifier(key) {
            return Err(FileError::InvalidEnvKey {
                key: key.to_owned(),
            });
        }
        let (raw, quote) = encode_value(key, value, Quote::Bare)?;
        let eol = self.dominant_eol();
        self.terminate_last_line(&eol);
        self.entries.push(Entry::Binding(Binding {
            head: format!("{key}="),
            value_raw: raw,
            tail: String::new(),
            eol,
            key: key.to_owned(),
            value: Some(value.to_owned()),
            export: false,
            quote,
        }));
        Ok(true)
    }

    fn verify(&self, expected: &BTreeMap<String, String>) -> Result<(), FileError> {
        let reread = EnvFile::parse(&self.render()).to_map();
        if &reread == expected {
            return Ok(());
        }
        let culprit = expected
            .iter()
            .find(|(k, v)| reread.get(*k) != Some(*v))
            .map(|(k, _)| k.clone())
            .or_else(|| reread.keys().find(|k| !expected.contains_key(*k)).cloned())
            .unwrap_or_default();
        // Only a damaged existing line (e.g. an unterminated quote that swallows the lines
        // after it) can cause this, so it is reported as a problem with the file.
        Err(FileError::Parse {
            file: ".env".into(),
            detail: format!(
                "after the edit, key {culprit:?} would not read back as intended; \
                 check the file for unterminated quotes"
            ),
        })
    }

    fn dominant_eol(&self) -> String {
        self.entries
            .iter()
            .find_map(|e| {
                let text = match e {
                    Entry::Verbatim { raw, .. } => raw.as_str(),
                    Entry::Binding(b) => b.eol.as_str(),
                };
                if text.ends_with("\r\n") {
                    Some("\r\n")
                } else if text.ends_with('\n') {
                    Some("\n")
                } else {
                    None
                }
            })
            .unwrap_or("\n")
            .to_owned()
    }

    fn terminate_last_line(&mut self, eol: &str) {
        match self.entries.last_mut() {
            Some(Entry::Binding(b)) if b.eol.is_empty() => b.eol = eol.to_owned(),
            Some(Entry::Verbatim { raw, .. }) if !raw.ends_with(['\n', '\r']) => raw.push_str(eol),
            _ => {}
        }
    }
}

fn is_identifier(key: &str) -> bool {
    let mut chars = key.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// python-dotenv's `[^\S\r\n]`: whitespace that does not end a line.
fn is_hspace(c: char) -> bool {
    c.is_whitespace() && c != '\n' && c != '\r'
}

fn skip_hspace(s: &str, pos: usize) -> usize {
    s[pos..]
        .find(|c: char| !is_hspace(c))
        .map_or(s.len(), |off| pos + off)
}

/// Returns (end of the line's content, start of the next line).
fn line_end(s: &str, pos: usize) -> (usize, usize) {
    match s[pos..].find(['\r', '\n']) {
        None => (s.len(), s.len()),
        Some(off) => {
            let end = pos + off;
            let next = if s[end..].starts_with("\r\n") {
                end + 2
            } else {
                end + 1
            };
            (end, next)
        }
    }
}

fn parse_entry(s: &str, start: usize) -> (Entry, usize) {
    let (content_end, next) = line_end(s, start);
    if s[start..content_end].chars().all(char::is_whitespace) {
        let raw = s[start..next].to_owned();
        return (
            Entry::Verbatim {
                kind: EnvLineKind::Blank,
                raw,
            },
            next,
        );
    }
    match parse_binding(s, start) {
        Ok(parsed) => parsed,
        Err(fail_pos) => {
            // Like python-dotenv, skip to the end of the line where parsing failed.
            let (_, next) = line_end(s, fail_pos.max(start));
            let raw = s[start..next].to_owned();
            (
                Entry::Verbatim {
                    kind: EnvLineKind::Invalid,
                    raw,
                },
                next,
            )
        }
    }
}

/// Parses one binding starting at a non-blank line; `Err` carries the failure position.
fn parse_binding(s: &str, start: usize) -> Result<(Entry, usize), usize> {
    let mut p = skip_hspace(s, start);
    let mut export = false;
    if s[p..].starts_with("export") {
        let after = skip_hspace(s, p + "export".len());
        if after > p + "export".len() {
            p = after;
            export = true;
        }
    }
    let key = if s[p..].starts_with('#') {
        let (_, next) = line_end(s, p);
        let raw = s[start..next].to_owned();
        return Ok((
            Entry::Verbatim {
                kind: EnvLineKind::Comment,
                raw,
            },
            next,
        ));
    } else if let Some(rest) = s[p..].strip_prefix('\'') {
        let len = rest.find('\'').filter(|&n| n > 0).ok_or(p)?;
        let key = rest[..len].to_owned();
        p += len + 2;
        key
    } else {
        let len = s[p..]
            .find(|c: char| c == '=' || c == '#' || c.is_whitespace())
            .unwrap_or(s.len() - p);
        if len == 0 {
            return Err(p);
        }
        let key = s[p..p + len].to_owned();
        p += len;
        key
    };
    p = skip_hspace(s, p);

    if !s[p..].starts_with('=') {
        // A bare `KEY`: python-dotenv reports it with no value.
        let tail_end = comment_and_eol(s, p)?;
        let (_, next) = line_end(s, tail_end);
        return Ok((
            Entry::Binding(Binding {
                head: s[start..p].to_owned(),
                value_raw: String::new(),
                tail: s[p..tail_end].to_owned(),
                eol: s[tail_end..next].to_owned(),
                key,
                value: None,
                export,
                quote: Quote::Bare,
            }),
            next,
        ));
    }
    let after_eq = p + 1;
    p = skip_hspace(s, after_eq);
    let spaced = p > after_eq;
    let value_start = p;
    let (value, value_end, quote) = match s[p..].chars().next() {
        Some(q @ ('\'' | '"')) => {
            let close = scan_quoted(s, p, q as u8).ok_or(p)?;
            let body = &s[p + 1..close];
            let value = if q == '"' {
                decode_escapes(body, "\\'\"abfnrtv")
            } else {
                decode_escapes(body, "\\'")
            };
            let quote = if q == '"' {
                Quote::Double
            } else {
                Quote::Single
            };
            (value, close + 1, quote)
        }
        None | Some('\n' | '\r') => (String::new(), p, Quote::Bare),
        Some(_) => {
            let (content_end, _) = line_end(s, p);
            let part = &s[p..content_end];
            if spaced && part.starts_with('#') {
                // `KEY=   # note` is an empty value followed by a comment.
                (String::new(), p, Quote::Bare)
            } else {
                let value = part[..comment_cut(part)].trim_end();
                (value.to_owned(), p + value.len(), Quote::Bare)
            }
        }
    };
    let tail_end = comment_and_eol(s, value_end)?;
    let (_, next) = line_end(s, tail_end);
    Ok((
        Entry::Binding(Binding {
            head: s[start..value_start].to_owned(),
            value_raw: s[value_start..value_end].to_owned(),
            tail: s[value_end..tail_end].to_owned(),
            eol: s[tail_end..next].to_owned(),
            key,
            value: Some(value),
            export,
            quote,
        }),
        next,
    ))
}

/// Matches optional whitespace, an optional `# comment` and whitespace up to the line end;
/// returns where the line ending starts.
fn comment_and_eol(s: &str, pos: usize) -> Result<usize, usize> {
    let mut p = skip_hspace(s, pos);
    if s[p..].starts_with('#') {
        p = line_end(s, p).0;
    }
    p = skip_hspace(s, p);
    if p == s.len() || s[p..].starts_with(['\r', '\n']) {
        Ok(p)
    } else {
        Err(p)
    }
}

/// Finds the closing quote the way python-dotenv's `"((?:\\"|[^"])*)"` regex does, including
/// its backtracking: `\q` is skipped as an escaped quote, and if no plain quote follows, the
/// quote of the last `\q` closes the value.
fn scan_quoted(s: &str, open: usize, q: u8) -> Option<usize> {
    let bytes = s.as_bytes();
    let mut i = open + 1;
    let mut last_escaped = None;
    while let Some(&b) = bytes.get(i) {
        if b == b'\\' && bytes.get(i + 1) == Some(&q) {
            last_escaped = Some(i + 1);
            i += 2;
        } else if b == q {
            return Some(i);
        } else {
            i += 1;
        }
    }
    last_escaped
}

/// Where python-dotenv's `\s+#.*` cuts an unquoted value: the start of the first whitespace
/// run that is directly followed by `#`.
fn comment_cut(part: &str) -> usize {
    let mut run_start = None;
    for (i, c) in part.char_indices() {
        if c.is_whitespace() {
            run_start.get_or_insert(i);
        } else if let (Some(start), '#') = (run_start, c) {
            return start;
        } else {
            run_start = None;
        }
    }
    part.len()
}

fn decode_escapes(body: &str, escapable: &str) -> String {
    let mut out = String::with_capacity(body.len());
    let mut chars = body.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, chars.peek()) {
            ('\\', Some(&n)) if escapable.contains(n) => {
                chars.next();
                out.push(match n {
                    'a' => '\u{07}',
                    'b' => '\u{08}',
                    'f' => '\u{0c}',
                    'n' => '\n',
                    'r' => '\r',
                    't' => '\t',
                    'v' => '\u{0b}',
                    other => other,
                });
            }
            _ => out.push(c),
        }
    }
    out
}

/// Chooses the spelling of a new value: keeps the line's old quoting style when the value
/// allows it, else bare if safe, else double-quoted, else bare-literal (see
/// [`EnvFile::update`]).
fn encode_value(key: &str, value: &str, prefer: Quote) -> Result<(String, Quote), FileError> {
    let single_ok = !value.contains(['\'', '\\', '\n', '\r']);
    if prefer == Quote::Single && single_ok {
        return Ok((format!("'{value}'"), Quote::Single));
    }
    let bare_safe = value
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "_./:@+,-".contains(c));
    if prefer != Quote::Double && bare_safe {
        return Ok((value.to_owned(), Quote::Bare));
    }
    if !value.ends_with('\\') {
        let mut out = String::with_capacity(value.len() + 2);
        out.push('"');
        for c in value.chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '"' => out.push_str("\\\""),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                other => out.push(other),
            }
        }
        out.push('"');
        return Ok((out, Quote::Double));
    }
    let bare_literal_ok = !value.contains(['\n', '\r'])
        && !value.starts_with(|c: char| c.is_whitespace() || "'\"#".contains(c))
        && !value.ends_with(char::is_whitespace)
        && comment_cut(value) == value.len();
    if bare_literal_ok {
        return Ok((value.to_owned(), Quote::Bare));
    }
    Err(FileError::EnvUnrepresentable {
        key: key.to_owned(),
        detail: "a value ending in a backslash must not start with a quote or '#', \
                 contain line breaks, or have whitespace at either end or before a '#'"
            .to_owned(),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn map(text: &str) -> BTreeMap<String, String> {
        EnvFile::parse(text).to_map()
    }

    #[test]
    fn python_dotenv_value_rules() {
        let m = map(
            "A=x # c\nB=x#c\nC='a\\'b\\\\c\\n'\nD=\"a\\tb\\\\\\\"\"\nE=  # only\nF=#v\nexport G = spaced  \nH\n 'I'=1\n",
        );
        assert_eq!(m["A"], "x");
        assert_eq!(m["B"], "x#c");
        assert_eq!(m["C"], "a'b\\c\\n");
        assert_eq!(m["D"], "a\tb\\\"");
        assert_eq!(m["E"], "");
        assert_eq!(m["F"], "#v");
        assert_eq!(m["G"], "spaced");
        assert!(!m.contains_key("H"));
        assert_eq!(m["I"], "1");
    }

    #[test]
    fn multiline_and_invalid_lines() {
        let f = EnvFile::parse("A=\"one\ntwo\"\nB=\"open\nC=3\n=bad\n");
        let m = f.to_map();
        assert_eq!(m["A"], "one\ntwo");
        assert!(!m.contains_key("B"));
        assert_eq!(m["C"], "3");
        let kinds: Vec<_> = f.lines().map(|l| l.kind).collect();
        assert_eq!(
            kinds,
            vec![
                EnvLineKind::Binding,
                EnvLineKind::Invalid,
                EnvLineKind::Binding,
                EnvLineKind::Invalid
            ]
        );
    }

    #[test]
    fn quote_scan_backtracks_like_python() {
        // python-dotenv's regex treats `\"` as an escaped quote even after `\\`.
        // With nothing after it, the regex backtracks and the value ends in a backslash...
        assert_eq!(map("A=\"x\\\\\"\n")["A"], "x\\");
        // ...but a later quote is taken as the closing one and both lines are lost.
        assert!(map("A=\"x\\\\\"\nB=\"y\"\n").is_empty());
    }

    #[test]
    fn keeps_style_and_comment_on_update() {
        let mut f = EnvFile::parse("export A='old' # keep\nB=\"q\"#c\nC\n");
        f.update([("A", "new"), ("B", "v"), ("C", "set")]).unwrap();
        assert_eq!(f.render(), "export A='new' # keep\nB=\"v\" #c\nC=set\n");
    }

    #[test]
    fn trailing_backslash_rules() {
        let mut f = EnvFile::parse("");
        f.update([("P", "C:\\dir\\")]).unwrap();
        assert_eq!(f.render(), "P=C:\\dir\\\n");
        f.update([("Q", "C:\\Program Files\\")]).unwrap();
        assert_eq!(f.to_map()["Q"], "C:\\Program Files\\");
        let err = f.update([("R", "a #b\\")]).unwrap_err();
        assert_eq!(err.code(), "env_invalid_value");
    }
}
