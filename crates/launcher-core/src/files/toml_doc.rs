//! Format-preserving edits of TOML documents driven by JSON from the web frontend.
//!
//! The legacy launcher turned the document into plain data and dumped it back, which threw
//! away every comment MaiBot ships in its templates. Here the parsed [`DocumentMut`] is edited
//! in place: a value is only touched when its *meaning* changes, so untouched keys keep their
//! exact text, comments, order and formatting.
//!
//! # JSON view of a document
//!
//! [`toml_to_json`] maps tables and inline tables to objects, arrays of tables to arrays of
//! objects, and scalars to their JSON counterparts. Two TOML types have no JSON equivalent:
//!
//! * datetimes become strings holding the text as written in the file;
//! * non-finite floats become the strings `"nan"`, `"inf"` and `"-inf"`.
//!
//! Both are accepted back by [`apply_full`] and [`apply_patch`], so GET-then-POST is lossless.
//!
//! # Type rules for writes
//!
//! Where the file already holds a value, the submitted JSON must have a compatible type:
//!
//! | file holds       | accepted JSON                                                   |
//! |------------------|-----------------------------------------------------------------|
//! | integer          | integer that fits in `i64` (a float is a type error)            |
//! | float            | any number, or `"nan"` / `"inf"` / `"+inf"` / `"-inf"`          |
//! | string, boolean  | the same JSON type                                              |
//! | datetime         | a string that parses as a TOML datetime *of the same kind*      |
//! | array            | array; if the old array was non-empty and all one type, every   |
//! |                  | new element must fit that type (a mixed array takes anything)   |
//! | table            | object                                                          |
//! | array of tables  | array of objects (it stays `[[...]]`; an empty array becomes    |
//! |                  | `key = []`, since zero `[[...]]` headers would drop the key)    |
//!
//! New keys take the natural TOML type of the JSON value (strings stay strings even if they
//! look like dates). Under a standard table, a new object becomes a `[table]` and a new
//! non-empty array of objects becomes `[[array of tables]]`; elsewhere they are inline.
//!
//! JSON `null` is always an error naming the key path: TOML cannot store it, and treating it
//! as "delete" would let a frontend bug silently drop settings.
//!
//! Every function here is all-or-nothing: on error the document is left exactly as it was.

use serde_json::{Map, Number, Value as Json};
use toml_edit::visit_mut::VisitMut;
use toml_edit::{
    Array, ArrayOfTables, Datetime, Decor, DocumentMut, Formatted, InlineTable, Item, Table,
    TableLike, Value,
};

use super::error::FileError;

/// How [`FileError`] key paths spell the document itself.
const ROOT: &str = "<root>";

/// Relative tolerance for "this float did not change".
///
/// serde_json (without its `float_roundtrip` feature) may parse a float one ulp away from the
/// value it printed. Without a tolerance such a float would count as edited on every save and
/// lose its original spelling.
const FLOAT_TOLERANCE: f64 = 4.0 * f64::EPSILON;

/// Which keys an edit touched, as dotted paths (array elements as `key[3]`, keys that need it
/// quoted, e.g. `models."gpt-4o.mini"`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChangeSummary {
    /// Keys whose value was replaced.
    pub changed: Vec<String>,
    /// Keys (or array elements) that did not exist before.
    pub added: Vec<String>,
    /// Keys (or array elements) that were deleted.
    pub removed: Vec<String>,
}

impl ChangeSummary {
    /// True when the edit was a no-op.
    pub fn is_empty(&self) -> bool {
        self.changed.is_empty() && self.added.is_empty() && self.removed.is_empty()
    }

    /// The number of touched paths.
    pub fn len(&self) -> usize {
        self.changed.len() + self.added.len() + self.removed.len()
    }

    /// Every touched path: changed, then added, then removed.
    pub fn paths(&self) -> impl Iterator<Item = &str> {
        self.changed
            .iter()
            .chain(&self.added)
            .chain(&self.removed)
            .map(String::as_str)
    }
}

/// Parses TOML text for editing; the error names the source as `<input>`.
pub fn parse_document(text: &str) -> Result<DocumentMut, FileError> {
    text.parse::<DocumentMut>().map_err(|e| FileError::Parse {
        file: "<input>".into(),
        detail: e.to_string(),
    })
}

/// The JSON view of a document (see the module docs for the datetime and float rules).
///
/// This cannot fail: every TOML value has a JSON representation under those rules.
pub fn toml_to_json(doc: &DocumentMut) -> Json {
    table_to_json(doc.as_table())
}

/// Parses `text` and returns its JSON view.
pub fn toml_str_to_json(text: &str) -> Result<Json, FileError> {
    parse_document(text).map(|doc| toml_to_json(&doc))
}

/// Renders `doc` for writing back over `original`, the text it was parsed from.
///
/// toml_edit always emits `\n` and drops a UTF-8 BOM. For a file that consistently used
/// `\r\n` (common on Windows) this restores CRLF, and the BOM if there was one, so an
/// unchanged document renders byte-for-byte as `original`. In CRLF mode, strings written by an
/// edit that would contain raw line breaks are spelled as escaped one-line strings instead,
/// so converting line endings cannot alter their value.
pub fn render(doc: &DocumentMut, original: &str) -> String {
    let bom = if original.starts_with('\u{feff}') {
        "\u{feff}"
    } else {
        ""
    };
    let text = if uses_crlf(original) {
        let mut doc = doc.clone();
        CrlfSafeStrings.visit_document_mut(&mut doc);
        to_crlf(&doc.to_string())
    } else {
        doc.to_string()
    };
    format!("{bom}{text}")
}

/// Makes `doc` hold exactly the tree `new` (a JSON object), preserving formatting.
///
/// Render the result with [`render`] to keep CRLF line endings. This is a
/// **full-document replace**: keys present in the file but absent from `new` are
/// removed (with the comments attached above them). Unchanged values keep their text; changed
/// values keep their surrounding comments; new keys are appended to their table. Type rules
/// and the `null` ban are described in the module docs. On error `doc` is unchanged.
pub fn apply_full(doc: &mut DocumentMut, new: &Json) -> Result<ChangeSummary, FileError> {
    apply(doc, new, Mode::Full)
}

/// Merges `patch` (a JSON object) into `doc`, RFC 7396 style, preserving formatting.
///
/// Objects merge recursively; any other value (including arrays) replaces the old one. Keys
/// not mentioned are left alone. Unlike RFC 7396, `null` is an **error**, never a delete: a
/// partial update must not be able to drop settings by accident. On error `doc` is unchanged.
pub fn apply_patch(doc: &mut DocumentMut, patch: &Json) -> Result<ChangeSummary, FileError> {
    apply(doc, patch, Mode::Patch)
}

fn apply(doc: &mut DocumentMut, new: &Json, mode: Mode) -> Result<ChangeSummary, FileError> {
    let obj = expect_object(new, "", "table")?;
    // Editing a clone makes every error path trivially leave the caller's document intact.
    let mut work = doc.clone();
    let mut editor = Editor::default();
    editor.merge_table(work.as_table_mut(), Parent::Std, obj, "", mode)?;
    *doc = work;
    Ok(editor.summary)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Keys missing from the JSON object are removed.
    Full,
    /// Keys missing from the JSON object are kept.
    Patch,
}

/// What kind of table new keys are inserted into, which decides how new objects are spelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Parent {
    /// A `[header]` table (or the root): new objects become `[sub.tables]`.
    Std,
    /// A table made of dotted keys or an inline table: new objects must be inline.
    Inline,
}

#[derive(Debug, Default)]
struct Editor {
    summary: ChangeSummary,
}

impl Editor {
    fn merge_table(
        &mut self,
        table: &mut dyn TableLike,
        parent: Parent,
        obj: &Map<String, Json>,
        path: &str,
        mode: Mode,
    ) -> Result<(), FileError> {
        let inline_table = parent == Parent::Inline;
        if mode == Mode::Full {
            let stale: Vec<String> = table
                .iter()
                .map(|(k, _)| k.to_owned())
                .filter(|k| !obj.contains_key(k))
                .collect();
            for key in stale {
                let removed = table.remove(&key);
                if inline_table {
                    // Removing the last key must not pull `}` against the new last value.
                    let space = removed
                        .and_then(|item| item.into_value().ok())
                        .and_then(|mut v| take_blank_suffix(&mut v));
                    if let (Some(space), Some(last)) = (space, last_value_mut(table)) {
                        give_blank_suffix(last, space);
                    }
                }
                self.summary.removed.push(join_key(path, &key));
            }
        }
        // Dotted-key tables cannot grow `[headers]` in a readable way, so treat them as inline.
        let parent = if table.is_dotted() {
            Parent::Inline
        } else {
            parent
        };
        for (key, value) in obj {
            let child = join_key(path, key);
            match table.get_mut(key) {
                Some(item) if !item.is_none() => self.update_item(item, value, &child, mode)?,
                _ => {
                    let mut item = new_item(value, &child, parent)?;
                    if inline_table {
                        // `{ a = 1 }`: the space before `}` belongs to the last value; hand it
                        // on, or the new key would render as `{ a = 1 , b = 2}`.
                        let closing = last_value_mut(table).and_then(take_blank_suffix);
                        if let (Some(space), Some(v)) = (closing, item.as_value_mut()) {
                            v.decor_mut().set_suffix(space);
                        }
                    }
                    table.insert(key, item);
                    self.summary.added.push(child);
                }
            }
        }
        Ok(())
    }

    fn update_item(
        &mut self,
        item: &mut Item,
        new: &Json,
        path: &str,
        mode: Mode,
    ) -> Result<(), FileError> {
        match item {
            Item::None => Err(FileError::Internal {
                detail: format!("{path}: unexpected empty item"),
            }),
            Item::Value(value) => self.update_value(value, new, path, mode),
            Item::Table(table) => {
                let obj = expect_object(new, path, "table")?;
                self.merge_table(table, Parent::Std, obj, path, mode)
            }
            Item::ArrayOfTables(aot) => {
                let elems = expect_array(new, path, "array of tables")?;
                let mut objects = Vec::with_capacity(elems.len());
                for (i, elem) in elems.iter().enumerate() {
                    objects.push(expect_object(elem, &join_index(path, i), "table")?);
                }
                if objects.is_empty() {
                    // Zero `[[key]]` headers would make the key vanish from the file.
                    *item = Item::Value(Value::Array(Array::new()));
                    self.summary.changed.push(path.to_owned());
                    return Ok(());
                }
                self.update_array_of_tables(aot, &objects, path)
            }
        }
    }

    fn update_array_of_tables(
        &mut self,
        aot: &mut ArrayOfTables,
        objects: &[&Map<String, Json>],
        path: &str,
    ) -> Result<(), FileError> {
        for (i, obj) in objects.iter().enumerate() {
            let elem_path = join_index(path, i);
            match aot.get_mut(i) {
                // An array replaces its old value wholesale (RFC 7396), so elements use Full.
                Some(table) => self.merge_table(table, Parent::Std, obj, &elem_path, Mode::Full)?,
                None => {
                    aot.push(build_table(obj, &elem_path)?);
                    self.summary.added.push(elem_path);
                }
            }
        }
        while aot.len() > objects.len() {
            let last = aot.len() - 1;
            aot.remove(last);
            self.summary.removed.push(join_index(path, last));
        }
        Ok(())
    }

    fn update_value(
        &mut self,
        value: &mut Value,
        new: &Json,
        path: &str,
        mode: Mode,
    ) -> Result<(), FileError> {
        match value {
            Value::InlineTable(table) => {
                let obj = expect_object(new, path, "table")?;
                self.merge_table(table, Parent::Inline, obj, path, mode)
            }
            Value::Array(array) => {
                let elems = expect_array(new, path, "array")?;
                self.update_array(array, elems, path)
            }
            _ => {
                let mut replacement = convert_like(value, new, path)?;
                if !scalars_equal(value, &replacement) {
                    // The value's decor holds the trailing `# comment`; keep it.
                    *replacement.decor_mut() = value.decor().clone();
                    *value = replacement;
                    self.summary.changed.push(path.to_owned());
                }
                Ok(())
            }
        }
    }

    fn update_array(
        &mut self,
        array: &mut Array,
        elems: &[Json],
        path: &str,
    ) -> Result<(), FileError> {
        let template = homogeneous_template(array);
        for (i, elem) in elems.iter().enumerate() {
            let elem_path = join_index(path, i);
            if elem.is_null() {
                return Err(FileError::NullValue { key: elem_path });
            }
            match array.get_mut(i) {
                Some(old) if template.is_some() => {
                    self.update_value(old, elem, &elem_path, Mode::Full)?
                }
                Some(old) => {
                    // Mixed arrays have no element type to enforce: keep the old element's type
                    // when the new value fits it, otherwise take the JSON value as it is.
                    let mut trial = old.clone();
                    let mut sub = Editor::default();
                    match sub.update_value(&mut trial, elem, &elem_path, Mode::Full) {
                        Ok(()) => {
                            *old = trial;
                            self.absorb(sub.summary);
                        }
                        Err(FileError::TypeMismatch { .. }) => {
                            let mut replacement = json_to_value(elem, &elem_path)?;
                            *replacement.decor_mut() = old.decor().clone();
                            *old = replacement;
                            self.summary.changed.push(elem_path);
                        }
                        Err(e) => return Err(e),
                    }
                }
                None => {
                    let mut fresh = match &template {
                        Some(t) => convert_like(t, elem, &elem_path)?,
                        None => json_to_value(elem, &elem_path)?,
                    };
                    *fresh.decor_mut() = appended_element_decor(array);
                    if !array.trailing_comma() {
                        // Same as for inline tables: whitespace before `]` moves to the end.
                        let closing = array
                            .len()
                            .checked_sub(1)
                            .and_then(|last| array.get_mut(last));
                        if let Some(space) = closing.and_then(take_blank_suffix) {
                            fresh.decor_mut().set_suffix(space);
                        }
                    }
                    array.push_formatted(fresh);
                    self.summary.added.push(elem_path);
                }
            }
        }
        while array.len() > elems.len() {
            let last = array.len() - 1;
            let mut removed = array.remove(last);
            if !array.trailing_comma() {
                let space = take_blank_suffix(&mut removed);
                let new_last = last.checked_sub(1).and_then(|i| array.get_mut(i));
                if let (Some(space), Some(prev)) = (space, new_last) {
                    give_blank_suffix(prev, space);
                }
            }
            self.summary.removed.push(join_index(path, last));
        }
        Ok(())
    }

    fn absorb(&mut self, other: ChangeSummary) {
        self.summary.changed.extend(other.changed);
        self.summary.added.extend(other.added);
        self.summary.removed.extend(other.removed);
    }
}

fn last_value_mut(table: &mut dyn TableLike) -> Option<&mut Value> {
    let key = table.iter().last().map(|(k, _)| k.to_owned())?;
    table.get_mut(&key)?.as_value_mut()
}

/// Removes and returns a value's suffix if it is only whitespace (no comment).
fn take_blank_suffix(value: &mut Value) -> Option<String> {
    let suffix = value.decor().suffix()?.as_str()?;
    if suffix.is_empty() || !suffix.chars().all(char::is_whitespace) {
        return None;
    }
    let suffix = suffix.to_owned();
    value.decor_mut().set_suffix("");
    Some(suffix)
}

/// Sets a value's suffix unless it already has one (which may hold a comment).
fn give_blank_suffix(value: &mut Value, space: String) {
    let current = value
        .decor()
        .suffix()
        .and_then(|s| s.as_str())
        .unwrap_or("");
    if current.is_empty() {
        value.decor_mut().set_suffix(space);
    }
}

/// Decor for an element appended to `array`, copying the layout of the last element so a
/// one-per-line array stays one-per-line.
fn appended_element_decor(array: &Array) -> Decor {
    let Some(last) = array.iter().last() else {
        return Decor::new("", "");
    };
    let prefix = last
        .decor()
        .prefix()
        .and_then(|p| p.as_str())
        .unwrap_or(" ");
    match prefix.rfind('\n') {
        // Only the indentation after the last newline: copying the whole prefix would also
        // copy the comment lines that belong to the previous element.
        Some(pos) => Decor::new(format!("\n{}", &prefix[pos + 1..]), ""),
        None => Decor::new(" ", ""),
    }
}

/// The first element, if the array is non-empty and all its elements have one type.
fn homogeneous_template(array: &Array) -> Option<Value> {
    let first = array.get(0)?;
    let kind = value_kind(first);
    array
        .iter()
        .all(|v| value_kind(v) == kind)
        .then(|| first.clone())
}

/// A TOML type name precise enough for the array-homogeneity check and error messages.
fn value_kind(value: &Value) -> &'static str {
    match value {
        Value::Datetime(dt) => datetime_kind(dt.value()),
        other => match other.type_name() {
            "inline table" => "table",
            name => name,
        },
    }
}

fn datetime_kind(dt: &Datetime) -> &'static str {
    match (dt.date.is_some(), dt.time.is_some(), dt.offset.is_some()) {
        (true, true, true) => "offset datetime",
        (true, true, false) => "local datetime",
        (true, false, _) => "local date",
        (false, true, _) => "local time",
        (false, false, _) => "datetime",
    }
}

/// Converts `new` to a TOML value of the same type as `old`, or explains why it cannot.
fn convert_like(old: &Value, new: &Json, path: &str) -> Result<Value, FileError> {
    let mismatch = |expected: &'static str| FileError::TypeMismatch {
        key: display_path(path),
        expected,
        actual: json_type(new),
    };
    if new.is_null() {
        return Err(FileError::NullValue {
            key: display_path(path),
        });
    }
    match old {
        Value::String(_) => match new {
            Json::String(s) => Ok(Value::from(s.clone())),
            _ => Err(mismatch("string")),
        },
        Value::Integer(_) => match new {
            Json::Number(n) if n.is_f64() => Err(mismatch("integer")),
            Json::Number(n) => Ok(Value::from(json_integer(n, path)?)),
            _ => Err(mismatch("integer")),
        },
        Value::Float(_) => match new {
            Json::Number(n) => n.as_f64().map(Value::from).ok_or_else(|| mismatch("float")),
            Json::String(s) => special_float(s)
                .map(Value::from)
                .ok_or_else(|| mismatch("float")),
            _ => Err(mismatch("float")),
        },
        Value::Boolean(_) => match new {
            Json::Bool(b) => Ok(Value::from(*b)),
            _ => Err(mismatch("boolean")),
        },
        Value::Datetime(dt) => {
            let kind = datetime_kind(dt.value());
            let Json::String(s) = new else {
                return Err(mismatch(kind));
            };
            match s.trim().parse::<Datetime>() {
                Ok(parsed) if datetime_kind(&parsed) == kind => Ok(Value::from(parsed)),
                Ok(parsed) => Err(FileError::TypeMismatch {
                    key: display_path(path),
                    expected: kind,
                    actual: datetime_kind(&parsed),
                }),
                Err(_) => Err(mismatch(kind)),
            }
        }
        Value::Array(_) => match new {
            Json::Array(_) => json_to_value(new, path),
            _ => Err(mismatch("array")),
        },
        Value::InlineTable(_) => match new {
            Json::Object(_) => json_to_value(new, path),
            _ => Err(mismatch("table")),
        },
    }
}

/// Semantic equality of two scalars (arrays and tables are compared element by element by
/// the editor itself, so they never reach here).
fn scalars_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::String(x), Value::String(y)) => x.value() == y.value(),
        (Value::Integer(x), Value::Integer(y)) => x.value() == y.value(),
        (Value::Float(x), Value::Float(y)) => floats_equal(*x.value(), *y.value()),
        (Value::Boolean(x), Value::Boolean(y)) => x.value() == y.value(),
        (Value::Datetime(x), Value::Datetime(y)) => x.value() == y.value(),
        _ => false,
    }
}

fn floats_equal(x: f64, y: f64) -> bool {
    if x.is_nan() || y.is_nan() {
        return x.is_nan() && y.is_nan();
    }
    if x == y {
        return true;
    }
    x.is_finite() && y.is_finite() && (x - y).abs() <= FLOAT_TOLERANCE * x.abs().max(y.abs())
}

fn special_float(s: &str) -> Option<f64> {
    match s {
        "nan" | "+nan" | "-nan" => Some(f64::NAN),
        "inf" | "+inf" => Some(f64::INFINITY),
        "-inf" => Some(f64::NEG_INFINITY),
        _ => None,
    }
}

fn json_integer(n: &Number, path: &str) -> Result<i64, FileError> {
    n.as_i64().ok_or_else(|| FileError::Invalid {
        what: display_path(path),
        detail: format!("integer {n} does not fit in a signed 64-bit integer"),
    })
}

/// Builds the item for a key that does not exist in the file yet.
fn new_item(new: &Json, path: &str, parent: Parent) -> Result<Item, FileError> {
    if parent == Parent::Std {
        match new {
            Json::Object(obj) => return build_table(obj, path).map(Item::Table),
            Json::Array(elems) if !elems.is_empty() && elems.iter().all(Json::is_object) => {
                let mut aot = ArrayOfTables::new();
                for (i, elem) in elems.iter().enumerate() {
                    let elem_path = join_index(path, i);
                    aot.push(build_table(
                        expect_object(elem, &elem_path, "table")?,
                        &elem_path,
                    )?);
                }
                return Ok(Item::ArrayOfTables(aot));
            }
            _ => {}
        }
    }
    json_to_value(new, path).map(Item::Value)
}

fn build_table(obj: &Map<String, Json>, path: &str) -> Result<Table, FileError> {
    let mut table = Table::new();
    for (key, value) in obj {
        let child = join_key(path, key);
        table.insert(key, new_item(value, &child, Parent::Std)?);
    }
    let has_values = table.iter().any(|(_, item)| item.is_value());
    let has_tables = table
        .iter()
        .any(|(_, item)| item.is_table() || item.is_array_of_tables());
    // An empty `[a]` header above `[a.b]` is noise; but a table with nothing at all in it
    // must keep its header or the key would disappear.
    table.set_implicit(!has_values && has_tables);
    Ok(table)
}

/// The natural TOML value for a JSON value, for places with no existing type to follow.
fn json_to_value(new: &Json, path: &str) -> Result<Value, FileError> {
    Ok(match new {
        Json::Null => {
            return Err(FileError::NullValue {
                key: display_path(path),
            });
        }
        Json::Bool(b) => Value::from(*b),
        Json::Number(n) if n.is_f64() => Value::from(n.as_f64().unwrap_or(f64::NAN)),
        Json::Number(n) => Value::from(json_integer(n, path)?),
        Json::String(s) => Value::from(s.clone()),
        Json::Array(elems) => {
            let mut array = Array::new();
            for (i, elem) in elems.iter().enumerate() {
                array.push(json_to_value(elem, &join_index(path, i))?);
            }
            Value::Array(array)
        }
        Json::Object(obj) => {
            let mut table = InlineTable::new();
            for (key, value) in obj {
                table.insert(key, json_to_value(value, &join_key(path, key))?);
            }
            Value::InlineTable(table)
        }
    })
}

fn expect_object<'j>(
    new: &'j Json,
    path: &str,
    expected: &'static str,
) -> Result<&'j Map<String, Json>, FileError> {
    match new {
        Json::Object(obj) => Ok(obj),
        other => Err(type_error(other, path, expected)),
    }
}

fn expect_array<'j>(
    new: &'j Json,
    path: &str,
    expected: &'static str,
) -> Result<&'j [Json], FileError> {
    match new {
        Json::Array(elems) => Ok(elems),
        other => Err(type_error(other, path, expected)),
    }
}

fn type_error(new: &Json, path: &str, expected: &'static str) -> FileError {
    if new.is_null() {
        FileError::NullValue {
            key: display_path(path),
        }
    } else {
        FileError::TypeMismatch {
            key: display_path(path),
            expected,
            actual: json_type(new),
        }
    }
}

fn json_type(v: &Json) -> &'static str {
    match v {
        Json::Null => "null",
        Json::Bool(_) => "boolean",
        Json::Number(n) if n.is_f64() => "float",
        Json::Number(_) => "integer",
        Json::String(_) => "string",
        Json::Array(_) => "array",
        Json::Object(_) => "object",
    }
}

fn table_to_json(table: &dyn TableLike) -> Json {
    let mut obj = Map::new();
    for (key, item) in table.iter() {
        if let Some(v) = item_to_json(item) {
            obj.insert(key.to_owned(), v);
        }
    }
    Json::Object(obj)
}

fn item_to_json(item: &Item) -> Option<Json> {
    match item {
        Item::None => None,
        Item::Value(v) => Some(value_to_json(v)),
        Item::Table(t) => Some(table_to_json(t)),
        Item::ArrayOfTables(aot) => {
            Some(Json::Array(aot.iter().map(|t| table_to_json(t)).collect()))
        }
    }
}

fn value_to_json(value: &Value) -> Json {
    match value {
        Value::String(s) => Json::String(s.value().clone()),
        Value::Integer(i) => Json::from(*i.value()),
        Value::Float(f) => {
            let x = *f.value();
            match Number::from_f64(x) {
                Some(n) => Json::Number(n),
                None if x.is_nan() => Json::String("nan".into()),
                None if x > 0.0 => Json::String("inf".into()),
                None => Json::String("-inf".into()),
            }
        }
        Value::Boolean(b) => Json::Bool(*b.value()),
        Value::Datetime(dt) => Json::String(dt.display_repr().into_owned()),
        Value::Array(array) => Json::Array(array.iter().map(value_to_json).collect()),
        Value::InlineTable(table) => table_to_json(table),
    }
}

fn uses_crlf(text: &str) -> bool {
    text.contains("\r\n") && !has_lone_lf(text)
}

fn has_lone_lf(text: &str) -> bool {
    let bytes = text.as_bytes();
    bytes
        .iter()
        .enumerate()
        .any(|(i, &b)| b == b'\n' && (i == 0 || bytes[i - 1] != b'\r'))
}

fn to_crlf(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 16);
    let mut prev = '\0';
    for c in text.chars() {
        if c == '\n' && prev != '\r' {
            out.push('\r');
        }
        out.push(c);
        prev = c;
    }
    out
}

/// Re-spells strings whose TOML text has a bare `\n` as escaped one-line strings. In a CRLF
/// file only strings this module wrote can have one (parsed ones keep their `\r\n`).
#[derive(Debug)]
struct CrlfSafeStrings;

impl VisitMut for CrlfSafeStrings {
    fn visit_string_mut(&mut self, node: &mut Formatted<String>) {
        if !has_lone_lf(&node.display_repr()) {
            return;
        }
        if let Ok(Value::String(mut escaped)) = basic_string_literal(node.value()).parse::<Value>()
        {
            *escaped.decor_mut() = node.decor().clone();
            *node = escaped;
        }
    }
}

/// A TOML basic string literal for `s`, with every control character escaped.
fn basic_string_literal(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn display_path(path: &str) -> String {
    if path.is_empty() {
        ROOT.to_owned()
    } else {
        path.to_owned()
    }
}

/// Appends `key` to a dotted path, quoting it when it is not a bare TOML key.
fn join_key(parent: &str, key: &str) -> String {
    let bare = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    let segment = if bare {
        key.to_owned()
    } else {
        format!("{key:?}")
    };
    if parent.is_empty() {
        segment
    } else {
        format!("{parent}.{segment}")
    }
}

fn join_index(parent: &str, index: usize) -> String {
    format!("{}[{index}]", display_path(parent))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use serde_json::json;

    fn doc(text: &str) -> DocumentMut {
        parse_document(text).unwrap()
    }

    #[test]
    fn same_json_is_a_no_op() {
        let text = "# top\na = 1 # one\n\n[t]\nb = 'x'\nc = [1, 2]\nd = 1979-05-27T07:32:00Z\n";
        let mut d = doc(text);
        let json = toml_to_json(&d);
        let summary = apply_full(&mut d, &json).unwrap();
        assert!(summary.is_empty(), "{summary:?}");
        assert_eq!(d.to_string(), text);
    }

    #[test]
    fn changed_scalar_keeps_comments() {
        let mut d = doc("# above\na = 1 # after\nb = 2\n");
        let s = apply_patch(&mut d, &json!({"a": 5})).unwrap();
        assert_eq!(s.changed, vec!["a"]);
        assert_eq!(d.to_string(), "# above\na = 5 # after\nb = 2\n");
    }

    #[test]
    fn float_accepts_int_and_keeps_float_type() {
        let mut d = doc("t = 1.0\n");
        assert!(apply_patch(&mut d, &json!({"t": 1})).unwrap().is_empty());
        apply_patch(&mut d, &json!({"t": 2})).unwrap();
        assert_eq!(d.to_string(), "t = 2.0\n");
    }

    #[test]
    fn non_finite_floats_round_trip() {
        let text = "a = nan\nb = -inf\n";
        let mut d = doc(text);
        let json = toml_to_json(&d);
        assert_eq!(json, json!({"a": "nan", "b": "-inf"}));
        assert!(apply_full(&mut d, &json).unwrap().is_empty());
        assert_eq!(d.to_string(), text);
    }

    #[test]
    fn datetime_kind_is_enforced() {
        let mut d = doc("when = 1979-05-27\n");
        let err = apply_patch(&mut d, &json!({"when": "1979-05-27T00:00:00Z"})).unwrap_err();
        assert_eq!(err.code(), "config_type_mismatch");
        apply_patch(&mut d, &json!({"when": "2024-01-02"})).unwrap();
        assert_eq!(d.to_string(), "when = 2024-01-02\n");
    }

    #[test]
    fn integer_out_of_range_and_float_for_int() {
        let mut d = doc("n = 1\n");
        let err = apply_patch(&mut d, &json!({"n": u64::MAX})).unwrap_err();
        assert_eq!(err.code(), "config_invalid_value");
        let err = apply_patch(&mut d, &json!({"n": 1.5})).unwrap_err();
        assert!(matches!(
            err,
            FileError::TypeMismatch {
                expected: "integer",
                actual: "float",
                ..
            }
        ));
        assert_eq!(d.to_string(), "n = 1\n");
    }

    #[test]
    fn multiline_array_append_keeps_layout() {
        let text = "a = [\n    \"x\", # first\n    \"y\",\n]\n";
        let mut d = doc(text);
        apply_patch(&mut d, &json!({"a": ["x", "y", "z"]})).unwrap();
        assert_eq!(
            d.to_string(),
            "a = [\n    \"x\", # first\n    \"y\",\n    \"z\",\n]\n"
        );
    }

    #[test]
    fn homogeneous_array_rejects_other_types_mixed_accepts() {
        let mut d = doc("a = [1, 2]\nb = [1, \"s\"]\n");
        let err = apply_patch(&mut d, &json!({"a": [1, "x"]})).unwrap_err();
        assert_eq!(err.to_string(), "a[1]: expected integer, got string");
        apply_patch(&mut d, &json!({"b": [true, "s", 3]})).unwrap();
        assert_eq!(d.to_string(), "a = [1, 2]\nb = [true, \"s\", 3]\n");
    }

    #[test]
    fn appending_moves_closing_space() {
        let mut d = doc("t = { a = 1 }\nv = [ 1, 2 ]\nw = [\n  1,\n  2\n]\n");
        apply_patch(
            &mut d,
            &json!({"t": {"b": 2}, "v": [1, 2, 3], "w": [1, 2, 3]}),
        )
        .unwrap();
        assert_eq!(
            d.to_string(),
            "t = { a = 1, b = 2 }\nv = [ 1, 2, 3 ]\nw = [\n  1,\n  2,\n  3\n]\n"
        );
    }

    #[test]
    fn removing_last_keeps_closing_space() {
        let mut d = doc("t = { a = 1, b = 2 }\nv = [ 1, 2, 3 ]\nw = [\n  1,\n  2\n]\n");
        apply_full(&mut d, &json!({"t": {"a": 1}, "v": [1], "w": [1]})).unwrap();
        assert_eq!(d.to_string(), "t = { a = 1 }\nv = [ 1 ]\nw = [\n  1\n]\n");
    }

    #[test]
    fn render_keeps_crlf_and_bom() {
        let text = "\u{feff}# c\r\na = '''x\r\ny'''\r\nb = 1\r\n";
        let mut d = doc(text);
        assert_eq!(render(&d, text), text);
        apply_patch(&mut d, &json!({"b": 2, "c": "multi\nline"})).unwrap();
        let out = render(&d, text);
        assert_eq!(
            out,
            "\u{feff}# c\r\na = '''x\r\ny'''\r\nb = 2\r\nc = \"multi\\nline\"\r\n"
        );
        assert_eq!(toml_str_to_json(&out).unwrap()["c"], json!("multi\nline"));
        // LF files keep readable multi-line strings.
        let mut d = doc("a = 1\n");
        apply_patch(&mut d, &json!({"c": "multi\nline"})).unwrap();
        assert_eq!(
            render(&d, "a = 1\n"),
            "a = 1\nc = \"\"\"\nmulti\nline\"\"\"\n"
        );
    }

    #[test]
    fn paths_quote_odd_keys() {
        assert_eq!(join_key("a", "b.c"), "a.\"b.c\"");
        assert_eq!(join_key("", "plain_key-1"), "plain_key-1");
        assert_eq!(join_index("", 2), "<root>[2]");
    }

    #[test]
    fn new_nested_objects_become_tables() {
        let mut d = doc("a = 1\n");
        apply_patch(
            &mut d,
            &json!({"x": {"y": {"z": 1}}, "list": [{"n": 1}, {"n": 2}]}),
        )
        .unwrap();
        let out = d.to_string();
        assert!(out.contains("[x.y]\nz = 1\n"), "{out}");
        assert!(!out.contains("[x]\n"), "{out}");
        assert!(out.contains("[[list]]\nn = 1\n"), "{out}");
        assert_eq!(toml_str_to_json(&out).unwrap()["list"][1]["n"], json!(2));
    }

    #[test]
    fn dotted_tables_get_inline_children() {
        let mut d = doc("a.b = 1\n");
        apply_patch(&mut d, &json!({"a": {"c": {"d": 2}}})).unwrap();
        assert_eq!(d.to_string(), "a.b = 1\na.c = { d = 2 }\n");
    }
}
