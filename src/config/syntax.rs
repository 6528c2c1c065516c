//! Parser for the nats-server configuration file format ("NATS conf").
//!
//! This module owns the *syntax* only: it turns configuration text into a
//! tree of [`Value`]s, each tagged with the [`Pos`] (file, line, column) where
//! it starts, so that callers can report precise errors. It knows nothing
//! about server options; mapping keys to options happens elsewhere.
//!
//! Supported syntax (as read by nats-server):
//!
//! * `key: value`, `key = value` and `key value`; keys are bare words or
//!   quoted strings. Entries may be separated by newlines, `,` or `;`.
//! * `#` and `//` comments to the end of the line. `//` only starts a comment
//!   where a new token could start, so `url: nats://host:4222` is a string.
//! * Blocks `key { ... }`, `key: { ... }`, `key = { ... }`, nested up to
//!   [`MAX_DEPTH`] levels; the top level is an implicit map. A block's `{`
//!   may open on a later line than its key (`authorization` then `{`).
//! * Each entry records whether a later `$NAME` used it as a variable
//!   ([`Entry::used_as_variable`]), so that callers can tell a variable
//!   definition from an unknown option.
//! * Arrays `[a, b, c]` whose elements are separated by commas and/or
//!   newlines (a trailing comma is allowed).
//! * Double-quoted strings with escapes (`\" \\ \/ \n \t \r \b \f \uXXXX`),
//!   raw single-quoted strings, and bare words (which may contain `:`, e.g.
//!   `listen: 127.0.0.1:4222`).
//! * Bare `true/false/yes/no/on/off` (any case) are booleans; bare integers
//!   may carry a size suffix (`k m g t` = powers of 1000; `kb mb gb tb`,
//!   `ki mi gi ti`, `kib mib gib tib` = powers of 1024, any case); bare
//!   `1.5`-style words are floats. Everything else is a string.
//! * `include <path>` merges the top-level entries of another file in place;
//!   the path is relative to the including file's directory. Include cycles
//!   and chains deeper than [`MAX_INCLUDE_DEPTH`] are errors.
//! * `$NAME` (bare, never inside quotes) refers to an entry `NAME` defined
//!   earlier in the current block or an enclosing block of the same file,
//!   falling back to the environment variable `NAME`.
//!
//! Behaviours chosen where the format is loose:
//!
//! * Duplicate keys are all kept in order in [`Map::entries`];
//!   [`Map::get`] returns the last one (keys compare case-insensitively).
//! * Variable names are matched case-sensitively (like environment variables)
//!   and the resolved item takes the position of the `$NAME` reference.
//!   Variable definitions stay in the map as ordinary entries.
//! * An environment value is classified like a bare word (so `4222` becomes
//!   an integer and `true` a boolean) but is never itself expanded.
//! * An included file starts with a fresh variable scope, but its entries,
//!   once merged, can be referenced by later entries of the including file.
//! * A bare key `include` followed by whitespace and a file name (not `:`,
//!   `=`, `{` or `[`) is the include directive; `include: x` is an ordinary key.
//! * A value must be followed by a newline, `,`, `;`, a comment or a closing
//!   brace, except after a block or array, where the next entry may follow
//!   directly (`a {x: 1} b {y: 2}`).
//! * A bare `m` suffix means mega, so unquoted `2m` is the integer 2000000;
//!   durations should be quoted strings and read with [`parse_duration`].
//! * Floats need digits on both sides of the dot and no exponent (`2.5`);
//!   `1.`, `.5`, `1e5` and `1.2.3` are strings.
//! * With [`parse_str`] and no base directory, includes are relative to the
//!   current directory.
//! * Columns count Unicode scalar values (a tab is one column); a leading
//!   byte-order mark is ignored; `\r\n` line endings are accepted.
//! * Not supported: nats-server's parenthesised multi-line block strings and
//!   its date-time literals (a bare date-time is read as a string).

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// Maximum nesting of blocks and arrays (counted across included files).
pub const MAX_DEPTH: usize = 64;

/// Maximum nesting of `include` directives.
pub const MAX_INCLUDE_DEPTH: usize = 16;

/// A source position: file name plus 1-based line and column.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Pos {
    /// The file name as given to the parser (or the resolved include path).
    pub file: Arc<str>,
    /// 1-based line number (0 for errors not tied to a location).
    pub line: u32,
    /// 1-based column, counted in characters (0 for errors not tied to a location).
    pub col: u32,
}

impl fmt::Display for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.col)
    }
}

/// A parsed configuration value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `true`/`false`/`yes`/`no`/`on`/`off`.
    Bool(bool),
    /// An integer, with any size suffix already applied.
    Int(i64),
    /// A decimal number such as `2.5`.
    Float(f64),
    /// A quoted or bare string.
    Str(String),
    /// An array `[ ... ]`.
    Array(Vec<Item>),
    /// A block `{ ... }`.
    Map(Map),
}

impl Value {
    /// A short name of the value's type, for error messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Bool(_) => "boolean",
            Value::Int(_) => "integer",
            Value::Float(_) => "float",
            Value::Str(_) => "string",
            Value::Array(_) => "array",
            Value::Map(_) => "map",
        }
    }

    /// The string contents, if this is a string.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The integer, if this is an integer or a string holding an integer
    /// (with optional size suffix, e.g. `"64MB"`).
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Value::Int(n) => Some(*n),
            Value::Str(s) => parse_sized_int(s.trim()).ok().flatten(),
            _ => None,
        }
    }

    /// The number as a float, if this is a float or an integer.
    pub fn as_float(&self) -> Option<f64> {
        match self {
            Value::Float(f) => Some(*f),
            Value::Int(n) => Some(*n as f64),
            _ => None,
        }
    }

    /// The boolean, if this is a boolean.
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }

    /// The map, if this is a block.
    pub fn as_map(&self) -> Option<&Map> {
        match self {
            Value::Map(m) => Some(m),
            _ => None,
        }
    }

    /// The elements, if this is an array.
    pub fn as_array(&self) -> Option<&[Item]> {
        match self {
            Value::Array(a) => Some(a),
            _ => None,
        }
    }
}

/// A value together with the position where it starts.
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    /// The value.
    pub value: Value,
    /// Where the value starts (for a variable reference: where `$NAME` is).
    pub pos: Pos,
}

impl Item {
    /// See [`Value::type_name`].
    pub fn type_name(&self) -> &'static str {
        self.value.type_name()
    }

    /// See [`Value::as_str`].
    pub fn as_str(&self) -> Option<&str> {
        self.value.as_str()
    }

    /// See [`Value::as_int`].
    pub fn as_int(&self) -> Option<i64> {
        self.value.as_int()
    }

    /// See [`Value::as_float`].
    pub fn as_float(&self) -> Option<f64> {
        self.value.as_float()
    }

    /// See [`Value::as_bool`].
    pub fn as_bool(&self) -> Option<bool> {
        self.value.as_bool()
    }

    /// See [`Value::as_map`].
    pub fn as_map(&self) -> Option<&Map> {
        self.value.as_map()
    }

    /// See [`Value::as_array`].
    pub fn as_array(&self) -> Option<&[Item]> {
        self.value.as_array()
    }
}

/// One `key: value` entry of a map.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// The key exactly as written (case preserved).
    pub key: String,
    /// Where the key starts.
    pub key_pos: Pos,
    /// The value.
    pub value: Item,
    /// Whether a later `$NAME` referred to this entry: a variable definition
    /// rather than an option (nats-server does not call it an unknown field).
    pub used_as_variable: bool,
}

/// An ordered list of entries; duplicates are kept, lookups return the last.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Map {
    /// All entries in source order (included files merged in place).
    pub entries: Vec<Entry>,
}

impl Map {
    /// The value of the last entry whose key matches `key` case-insensitively.
    pub fn get(&self, key: &str) -> Option<&Item> {
        self.entries
            .iter()
            .rev()
            .find(|e| e.key.eq_ignore_ascii_case(key))
            .map(|e| &e.value)
    }

    /// All values whose key matches `key` case-insensitively, in source order.
    pub fn get_all<'a>(&'a self, key: &'a str) -> impl Iterator<Item = &'a Item> + 'a {
        self.entries
            .iter()
            .filter(move |e| e.key.eq_ignore_ascii_case(key))
            .map(|e| &e.value)
    }

    /// All entries in source order, duplicates included.
    pub fn iter(&self) -> impl Iterator<Item = &Entry> {
        self.entries.iter()
    }

    /// The number of entries (duplicates included).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the map has no entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// A syntax, variable, include or I/O error with its position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfError {
    /// Where the error was detected (line and column 0 for file-level I/O errors).
    pub pos: Pos,
    /// A lower-case description of the problem.
    pub message: String,
}

impl ConfError {
    /// Builds an error at `pos`.
    fn new(pos: Pos, message: impl Into<String>) -> Self {
        ConfError {
            pos,
            message: message.into(),
        }
    }
}

impl fmt::Display for ConfError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.pos.line == 0 {
            // Not tied to a place in the file (it could not be read).
            write!(f, "{}: {}", self.pos.file, self.message)
        } else {
            write!(f, "{}: {}", self.pos, self.message)
        }
    }
}

impl std::error::Error for ConfError {}

/// Looks up an environment variable for `$NAME` fallback.
type EnvFn<'e> = &'e dyn Fn(&str) -> Option<String>;

/// The process environment, used by [`parse_str`] and [`parse_file`].
fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// Parses configuration text. `file_name` is used in positions; includes are
/// resolved relative to `base_dir` (or the current directory if `None`).
pub fn parse_str(text: &str, file_name: &str, base_dir: Option<&Path>) -> Result<Map, ConfError> {
    parse_str_with_env(text, file_name, base_dir, &process_env)
}

/// Like [`parse_str`], but `$NAME` falls back to `env(NAME)` instead of the
/// process environment (useful for tests and for embedding).
pub fn parse_str_with_env(
    text: &str,
    file_name: &str,
    base_dir: Option<&Path>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Map, ConfError> {
    let mut files = Vec::new();
    // If the text is really that file, record it so a self-include is a cycle.
    if let Some(dir) = base_dir
        && let Ok(canon) = std::fs::canonicalize(dir.join(file_name))
        && canon.is_file()
    {
        files.push(canon);
    }
    let base = base_dir.map(Path::to_path_buf);
    Parser::new(text, Arc::from(file_name), base, env, &mut files, 0).parse_top()
}

/// Reads and parses a configuration file; includes are relative to its directory.
pub fn parse_file(path: &Path) -> Result<Map, ConfError> {
    parse_file_with_env(path, &process_env)
}

/// Like [`parse_file`], with a custom environment lookup (see [`parse_str_with_env`]).
pub fn parse_file_with_env(
    path: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Map, ConfError> {
    let name: Arc<str> = Arc::from(path.display().to_string());
    let io_err = |e: std::io::Error| {
        let pos = Pos {
            file: name.clone(),
            line: 0,
            col: 0,
        };
        ConfError::new(pos, format!("cannot read configuration file: {e}"))
    };
    let canon = std::fs::canonicalize(path).map_err(io_err)?;
    let text = std::fs::read_to_string(&canon).map_err(io_err)?;
    let mut files = vec![canon];
    let base = path.parent().map(Path::to_path_buf);
    Parser::new(&text, name.clone(), base, env, &mut files, 0).parse_top()
}

/// Parses a Go-style duration such as `"2m"`, `"10s"`, `"1h30m"`, `"500ms"`
/// or `"1.5s"`. Units: `ns`, `us`/`µs`, `ms`, `s`, `m`, `h`. A bare `"0"` is
/// zero; negative or out-of-range durations give `None`.
pub fn parse_duration(s: &str) -> Option<Duration> {
    const NS_PER_SEC: u128 = 1_000_000_000;
    let s = s.trim();
    let s = s.strip_prefix('+').unwrap_or(s);
    if s == "0" {
        return Some(Duration::ZERO);
    }
    if s.is_empty() {
        return None;
    }
    let mut total: u128 = 0;
    let mut rest = s;
    while !rest.is_empty() {
        let (int_part, after) = split_digits(rest);
        let (frac_part, after) = match after.strip_prefix('.') {
            Some(a) => split_digits(a),
            None => ("", after),
        };
        if int_part.is_empty() && frac_part.is_empty() {
            return None;
        }
        let unit_end = after
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(after.len());
        let (unit, next) = after.split_at(unit_end);
        let unit_ns: u128 = match unit {
            "ns" => 1,
            "us" | "\u{b5}s" | "\u{3bc}s" => 1_000,
            "ms" => 1_000_000,
            "s" => NS_PER_SEC,
            "m" => 60 * NS_PER_SEC,
            "h" => 3600 * NS_PER_SEC,
            _ => return None,
        };
        total = total.checked_add(digits_value(int_part)?.checked_mul(unit_ns)?)?;
        // Only the first 20 fractional digits matter at nanosecond precision.
        let frac = frac_part.get(..20).unwrap_or(frac_part);
        let scale = 10u128.checked_pow(u32::try_from(frac.len()).ok()?)?;
        total = total.checked_add(digits_value(frac)?.checked_mul(unit_ns)? / scale)?;
        rest = next;
    }
    let secs = u64::try_from(total / NS_PER_SEC).ok()?;
    let nanos = u32::try_from(total % NS_PER_SEC).ok()?;
    Some(Duration::new(secs, nanos))
}

/// Splits `s` into its leading ASCII digits and the rest.
fn split_digits(s: &str) -> (&str, &str) {
    let end = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    s.split_at(end)
}

/// The value of a string of ASCII digits (empty is 0); `None` on overflow.
fn digits_value(digits: &str) -> Option<u128> {
    digits.bytes().try_fold(0u128, |acc, b| {
        acc.checked_mul(10)?
            .checked_add(u128::from(b.wrapping_sub(b'0')))
    })
}

/// Parses a bare integer with an optional size suffix. `Ok(None)` means the
/// word is not an integer at all; `Err` means it is one but out of range.
fn parse_sized_int(word: &str) -> Result<Option<i64>, String> {
    let (negative, rest) = match word.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, word.strip_prefix('+').unwrap_or(word)),
    };
    let (digits, suffix) = split_digits(rest);
    if digits.is_empty() {
        return Ok(None);
    }
    const K: i128 = 1000;
    const KI: i128 = 1024;
    let multiplier: i128 = match suffix.to_ascii_lowercase().as_str() {
        "" => 1,
        "k" => K,
        "m" => K * K,
        "g" => K * K * K,
        "t" => K * K * K * K,
        "kb" | "ki" | "kib" => KI,
        "mb" | "mi" | "mib" => KI * KI,
        "gb" | "gi" | "gib" => KI * KI * KI,
        "tb" | "ti" | "tib" => KI * KI * KI * KI,
        _ => return Ok(None),
    };
    let out_of_range = || format!("integer out of range: '{word}'");
    let magnitude = digits_value(digits)
        .and_then(|n| i128::try_from(n).ok())
        .and_then(|n| n.checked_mul(multiplier))
        .ok_or_else(out_of_range)?;
    let signed = if negative { -magnitude } else { magnitude };
    i64::try_from(signed).map(Some).map_err(|_| out_of_range())
}

/// Parses a bare decimal such as `2.5` or `-0.25` (digits on both sides of
/// the dot, no exponent); anything else is not a float.
fn parse_plain_float(word: &str) -> Option<f64> {
    let body = word
        .strip_prefix('-')
        .or_else(|| word.strip_prefix('+'))
        .unwrap_or(word);
    let (int_part, frac_part) = body.split_once('.')?;
    let all_digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !all_digits(int_part) || !all_digits(frac_part) {
        return None;
    }
    word.parse::<f64>().ok().filter(|f| f.is_finite())
}

/// Classifies a bare word as a boolean, integer, float or plain string.
fn classify_word(word: &str) -> Result<Value, String> {
    match word.to_ascii_lowercase().as_str() {
        "true" | "yes" | "on" => return Ok(Value::Bool(true)),
        "false" | "no" | "off" => return Ok(Value::Bool(false)),
        _ => {}
    }
    if let Some(n) = parse_sized_int(word)? {
        return Ok(Value::Int(n));
    }
    if let Some(f) = parse_plain_float(word) {
        return Ok(Value::Float(f));
    }
    Ok(Value::Str(word.to_string()))
}

/// Classifies an environment variable's value like a bare word; values that
/// do not look like a boolean or number (or overflow) stay strings.
fn classify_env_value(raw: &str) -> Value {
    match classify_word(raw.trim()) {
        Ok(Value::Str(_)) | Err(_) => Value::Str(raw.to_string()),
        Ok(v) => v,
    }
}

/// Whether `c` ends a bare value.
fn is_value_terminator(c: char) -> bool {
    c.is_whitespace() || matches!(c, ',' | ']' | '}' | '#' | ';')
}

/// Whether `c` ends a bare key.
fn is_key_terminator(c: char) -> bool {
    c.is_whitespace()
        || matches!(
            c,
            ':' | '=' | '{' | '}' | '[' | ']' | ',' | ';' | '#' | '"' | '\''
        )
}

/// Describes a (possibly missing) character for error messages.
fn describe(c: Option<char>) -> String {
    match c {
        None => "end of file".to_string(),
        Some('\n') => "end of line".to_string(),
        Some(c) if c.is_control() => format!("character U+{:04X}", u32::from(c)),
        Some(c) => format!("'{c}'"),
    }
}

/// A character cursor that tracks the 1-based line and column of the next character.
struct Cursor {
    chars: Vec<char>,
    idx: usize,
    line: u32,
    col: u32,
}

impl Cursor {
    /// Starts at the beginning of `text`, skipping a byte-order mark.
    fn new(text: &str) -> Self {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        Cursor {
            chars: text.chars().collect(),
            idx: 0,
            line: 1,
            col: 1,
        }
    }

    /// The next character, if any.
    fn peek(&self) -> Option<char> {
        self.chars.get(self.idx).copied()
    }

    /// The character after the next one, if any.
    fn peek_second(&self) -> Option<char> {
        self.chars.get(self.idx.saturating_add(1)).copied()
    }

    /// The most recently consumed character, if any.
    fn prev(&self) -> Option<char> {
        self.idx
            .checked_sub(1)
            .and_then(|i| self.chars.get(i))
            .copied()
    }

    /// Consumes and returns the next character, updating line and column.
    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.idx += 1;
        if c == '\n' {
            self.line = self.line.saturating_add(1);
            self.col = 1;
        } else {
            self.col = self.col.saturating_add(1);
        }
        Some(c)
    }
}

/// Recursive-descent parser for one file (included files get their own parser).
struct Parser<'c, 'e> {
    cur: Cursor,
    file: Arc<str>,
    base_dir: Option<PathBuf>,
    env: EnvFn<'e>,
    /// Canonical paths of the files currently being parsed, outermost first.
    files: &'c mut Vec<PathBuf>,
    /// Current block/array nesting, including that of including files.
    depth: usize,
    /// Maps under construction, innermost last; these are the variable scopes.
    scopes: Vec<Map>,
}

impl<'c, 'e> Parser<'c, 'e> {
    /// Creates a parser for `text` starting at nesting level `depth`.
    fn new(
        text: &str,
        file: Arc<str>,
        base_dir: Option<PathBuf>,
        env: EnvFn<'e>,
        files: &'c mut Vec<PathBuf>,
        depth: usize,
    ) -> Self {
        Parser {
            cur: Cursor::new(text),
            file,
            base_dir,
            env,
            files,
            depth,
            scopes: Vec::new(),
        }
    }

    /// The position of the next character.
    fn pos(&self) -> Pos {
        Pos {
            file: self.file.clone(),
            line: self.cur.line,
            col: self.cur.col,
        }
    }

    /// An error at the next character.
    fn err_here(&self, message: impl Into<String>) -> ConfError {
        ConfError::new(self.pos(), message)
    }

    /// Describes what is at the cursor, treating comments specially.
    fn describe_here(&self) -> String {
        if self.at_comment() {
            "comment".to_string()
        } else {
            describe(self.cur.peek())
        }
    }

    /// Whether a `#` or `//` comment starts at the cursor.
    fn at_comment(&self) -> bool {
        match self.cur.peek() {
            Some('#') => true,
            Some('/') => self.cur.peek_second() == Some('/'),
            _ => false,
        }
    }

    /// Skips the rest of a comment, stopping before the newline.
    fn skip_comment(&mut self) {
        while let Some(c) = self.cur.peek() {
            if c == '\n' {
                break;
            }
            self.cur.bump();
        }
    }

    /// Skips spaces and tabs (not newlines); returns whether anything was skipped.
    fn skip_inline_ws(&mut self) -> bool {
        let mut skipped = false;
        while let Some(c) = self.cur.peek() {
            if c == '\n' || !c.is_whitespace() {
                break;
            }
            self.cur.bump();
            skipped = true;
        }
        skipped
    }

    /// Skips whitespace, newlines and comments.
    fn skip_blank(&mut self) {
        loop {
            match self.cur.peek() {
                Some(c) if c.is_whitespace() => {
                    self.cur.bump();
                }
                _ if self.at_comment() => self.skip_comment(),
                _ => break,
            }
        }
    }

    /// Skips whitespace, newlines, comments and `,`/`;` entry separators.
    fn skip_blank_and_separators(&mut self) {
        loop {
            self.skip_blank();
            match self.cur.peek() {
                Some(',' | ';') => {
                    self.cur.bump();
                }
                _ => break,
            }
        }
    }

    /// Whether the cursor is where a value would end (so no value is present).
    fn at_value_end(&self) -> bool {
        match self.cur.peek() {
            None => true,
            Some(c) => is_value_terminator(c) || self.at_comment(),
        }
    }

    /// Parses the whole text as the top-level map.
    fn parse_top(mut self) -> Result<Map, ConfError> {
        self.parse_map_body(None)
    }

    /// Parses entries until end of input (top level, `open` is `None`) or
    /// until the `}` closing the block whose `{` is at `open`.
    fn parse_map_body(&mut self, open: Option<&Pos>) -> Result<Map, ConfError> {
        self.scopes.push(Map::default());
        loop {
            self.skip_blank_and_separators();
            match (self.cur.peek(), open) {
                (None, None) => break,
                (None, Some(o)) => {
                    return Err(self.err_here(format!(
                        "expected '}}' to close block opened at {}:{}",
                        o.line, o.col
                    )));
                }
                (Some('}'), Some(_)) => {
                    self.cur.bump();
                    break;
                }
                (Some('}'), None) => {
                    return Err(self.err_here("unexpected '}' with no block open"));
                }
                (Some(_), _) => self.parse_entry()?,
            }
        }
        Ok(self.scopes.pop().unwrap_or_default())
    }

    /// Appends an entry to the innermost map under construction.
    fn push_entry(&mut self, entry: Entry) {
        if let Some(map) = self.scopes.last_mut() {
            map.entries.push(entry);
        }
    }

    /// Parses one `key [:|=] value` entry or an `include` directive.
    fn parse_entry(&mut self) -> Result<(), ConfError> {
        let key_pos = self.pos();
        let (key, quoted) = self.parse_key()?;
        let spaced = self.skip_inline_ws();
        let separator_next = matches!(self.cur.peek(), Some(':' | '=' | '{' | '['));
        if !quoted
            && spaced
            && key.eq_ignore_ascii_case("include")
            && !separator_next
            && !self.at_value_end()
        {
            return self.parse_include();
        }
        match self.cur.peek() {
            Some(':' | '=') => {
                self.cur.bump();
                self.skip_inline_ws();
            }
            Some('{' | '[') => {}
            Some('\n' | '\r') | Some('#' | '/') if self.block_on_a_later_line() => {}
            _ if self.at_value_end() => {}
            Some(c) if !spaced => {
                return Err(self.err_here(format!(
                    "expected ':', '=' or whitespace after key '{key}', found {}",
                    describe(Some(c))
                )));
            }
            _ => {}
        }
        if self.at_value_end() {
            return Err(self.err_here(format!(
                "expected value for key '{key}', found {}",
                self.describe_here()
            )));
        }
        let value = self.parse_value()?;
        let bracketed = matches!(self.cur.prev(), Some('}' | ']'));
        self.expect_entry_end(bracketed)?;
        self.push_entry(Entry {
            key,
            key_pos,
            value,
            used_as_variable: false,
        });
        Ok(())
    }

    /// After a key with nothing else on its line: whether the value is a
    /// block whose `{` opens on a later line (`authorization\n{ ... }`, as
    /// nats-server reads it). If so the cursor is left at the `{`;
    /// otherwise it has not moved.
    fn block_on_a_later_line(&mut self) -> bool {
        let at = (self.cur.idx, self.cur.line, self.cur.col);
        self.skip_blank();
        if self.cur.peek() == Some('{') {
            return true;
        }
        (self.cur.idx, self.cur.line, self.cur.col) = at;
        false
    }

    /// Parses a key: a quoted string or a bare word. Returns it and whether it was quoted.
    fn parse_key(&mut self) -> Result<(String, bool), ConfError> {
        match self.cur.peek() {
            Some('"') => Ok((self.parse_double_quoted()?, true)),
            Some('\'') => Ok((self.parse_single_quoted()?, true)),
            _ => {
                let mut key = String::new();
                while let Some(c) = self.cur.peek() {
                    if is_key_terminator(c) {
                        break;
                    }
                    key.push(c);
                    self.cur.bump();
                }
                if key.is_empty() {
                    return Err(
                        self.err_here(format!("expected key, found {}", self.describe_here()))
                    );
                }
                Ok((key, false))
            }
        }
    }

    /// Checks that a value is properly terminated: by a newline, `,`, `;`, a
    /// comment, `}` or end of input (anything may follow a block or array).
    fn expect_entry_end(&mut self, bracketed: bool) -> Result<(), ConfError> {
        self.skip_inline_ws();
        match self.cur.peek() {
            None | Some('\n' | ',' | ';' | '}') => Ok(()),
            _ if bracketed || self.at_comment() => Ok(()),
            _ => Err(self.err_here(format!(
                "expected newline, ',' or ';' after value, found {}",
                self.describe_here()
            ))),
        }
    }

    /// Increases the nesting depth for a container starting at `pos`, or fails past [`MAX_DEPTH`].
    fn enter(&mut self, pos: &Pos) -> Result<(), ConfError> {
        if self.depth >= MAX_DEPTH {
            return Err(ConfError::new(
                pos.clone(),
                format!("nesting too deep (limit is {MAX_DEPTH} levels)"),
            ));
        }
        self.depth += 1;
        Ok(())
    }

    /// Parses any value: block, array, quoted string, variable or bare word.
    fn parse_value(&mut self) -> Result<Item, ConfError> {
        let pos = self.pos();
        let value = match self.cur.peek() {
            Some('{') => {
                self.enter(&pos)?;
                self.cur.bump();
                let map = self.parse_map_body(Some(&pos))?;
                self.depth = self.depth.saturating_sub(1);
                Value::Map(map)
            }
            Some('[') => {
                self.enter(&pos)?;
                let items = self.parse_array(&pos)?;
                self.depth = self.depth.saturating_sub(1);
                Value::Array(items)
            }
            Some('"') => Value::Str(self.parse_double_quoted()?),
            Some('\'') => Value::Str(self.parse_single_quoted()?),
            _ if self.at_value_end() => {
                return Err(
                    self.err_here(format!("expected value, found {}", self.describe_here()))
                );
            }
            _ => {
                let word = self.read_word();
                if let Some(name) = word.strip_prefix('$') {
                    return self.resolve_variable(name, pos);
                }
                classify_word(&word).map_err(|m| ConfError::new(pos.clone(), m))?
            }
        };
        Ok(Item { value, pos })
    }

    /// Reads a bare word up to whitespace, `,`, `]`, `}`, `#` or `;`.
    fn read_word(&mut self) -> String {
        let mut word = String::new();
        while let Some(c) = self.cur.peek() {
            if is_value_terminator(c) {
                break;
            }
            word.push(c);
            self.cur.bump();
        }
        word
    }

    /// Parses `[ ... ]` (cursor on `[`, which is at `open`).
    fn parse_array(&mut self, open: &Pos) -> Result<Vec<Item>, ConfError> {
        self.cur.bump();
        let unclosed = |p: &Self| {
            p.err_here(format!(
                "expected ']' to close array opened at {}:{}",
                open.line, open.col
            ))
        };
        let mut items = Vec::new();
        loop {
            self.skip_blank();
            match self.cur.peek() {
                None => return Err(unclosed(self)),
                Some(']') => {
                    self.cur.bump();
                    return Ok(items);
                }
                Some(',') => {
                    return Err(self.err_here("expected value or ']', found ','"));
                }
                _ => {}
            }
            items.push(self.parse_value()?);
            let bracketed = matches!(self.cur.prev(), Some('}' | ']'));
            self.skip_inline_ws();
            let newline = self.cur.peek() == Some('\n') || self.at_comment();
            self.skip_blank();
            match self.cur.peek() {
                Some(',') => {
                    self.cur.bump();
                }
                Some(']') => {
                    self.cur.bump();
                    return Ok(items);
                }
                None => return Err(unclosed(self)),
                Some(_) if newline || bracketed => {}
                Some(c) => {
                    return Err(self.err_here(format!(
                        "expected ',' or ']' after array element, found {}",
                        describe(Some(c))
                    )));
                }
            }
        }
    }

    /// An "unterminated string" error at the cursor for a string opened at `open`.
    fn unterminated(&self, open: &Pos) -> ConfError {
        self.err_here(format!(
            "unterminated string opened at {}:{}",
            open.line, open.col
        ))
    }

    /// Parses a `"..."` string with escapes (cursor on the opening quote).
    fn parse_double_quoted(&mut self) -> Result<String, ConfError> {
        let open = self.pos();
        self.cur.bump();
        let mut out = String::new();
        loop {
            match self.cur.peek() {
                None | Some('\n') => return Err(self.unterminated(&open)),
                Some('"') => {
                    self.cur.bump();
                    return Ok(out);
                }
                Some('\\') => {
                    let escape_pos = self.pos();
                    self.cur.bump();
                    let c = match self.cur.peek() {
                        None | Some('\n') => return Err(self.unterminated(&open)),
                        Some(c) => c,
                    };
                    self.cur.bump();
                    let decoded = match c {
                        '"' => '"',
                        '\\' => '\\',
                        '/' => '/',
                        'n' => '\n',
                        't' => '\t',
                        'r' => '\r',
                        'b' => '\u{8}',
                        'f' => '\u{c}',
                        'u' => self.parse_unicode_escape(&escape_pos)?,
                        other => {
                            return Err(ConfError::new(
                                escape_pos,
                                format!(
                                    "invalid escape sequence '\\{}' in string",
                                    other.escape_debug()
                                ),
                            ));
                        }
                    };
                    out.push(decoded);
                }
                Some(c) => {
                    out.push(c);
                    self.cur.bump();
                }
            }
        }
    }

    /// Reads exactly four hex digits, if present.
    fn read_hex4(&mut self) -> Option<u32> {
        let mut value = 0u32;
        for _ in 0..4 {
            let digit = self.cur.peek()?.to_digit(16)?;
            self.cur.bump();
            value = value * 16 + digit;
        }
        Some(value)
    }

    /// Decodes the rest of a `\uXXXX` escape (after the `u`), including a
    /// following `\uXXXX` low surrogate when the first is a high surrogate.
    fn parse_unicode_escape(&mut self, escape_pos: &Pos) -> Result<char, ConfError> {
        let invalid = |what: &str| ConfError::new(escape_pos.clone(), what.to_string());
        let first = self
            .read_hex4()
            .ok_or_else(|| invalid("invalid unicode escape: expected 4 hex digits after '\\u'"))?;
        let code = if (0xD800..0xDC00).contains(&first) {
            if self.cur.peek() != Some('\\') || self.cur.peek_second() != Some('u') {
                return Err(invalid("invalid unicode escape: unpaired surrogate"));
            }
            self.cur.bump();
            self.cur.bump();
            match self.read_hex4() {
                Some(low) if (0xDC00..0xE000).contains(&low) => {
                    0x10000 + ((first - 0xD800) << 10) + (low - 0xDC00)
                }
                _ => return Err(invalid("invalid unicode escape: unpaired surrogate")),
            }
        } else {
            first
        };
        char::from_u32(code).ok_or_else(|| invalid("invalid unicode escape: unpaired surrogate"))
    }

    /// Parses a raw `'...'` string (cursor on the opening quote).
    fn parse_single_quoted(&mut self) -> Result<String, ConfError> {
        let open = self.pos();
        self.cur.bump();
        let mut out = String::new();
        loop {
            match self.cur.peek() {
                None | Some('\n') => return Err(self.unterminated(&open)),
                Some('\'') => {
                    self.cur.bump();
                    return Ok(out);
                }
                Some(c) => {
                    out.push(c);
                    self.cur.bump();
                }
            }
        }
    }

    /// Resolves `$name` (written at `pos`) from enclosing blocks, then the environment.
    fn resolve_variable(&mut self, name: &str, pos: Pos) -> Result<Item, ConfError> {
        let valid = !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
        if !valid {
            return Err(ConfError::new(
                pos,
                format!(
                    "invalid variable reference '${name}' (quote the value if it is a literal string)"
                ),
            ));
        }
        let defined = self
            .scopes
            .iter_mut()
            .rev()
            .find_map(|scope| scope.entries.iter_mut().rev().find(|e| e.key == name));
        if let Some(entry) = defined {
            entry.used_as_variable = true;
            return Ok(Item {
                value: entry.value.value.clone(),
                pos,
            });
        }
        if let Some(raw) = (self.env)(name) {
            return Ok(Item {
                value: classify_env_value(&raw),
                pos,
            });
        }
        Err(ConfError::new(
            pos,
            format!(
                "variable '${name}' is not defined in this block, an enclosing block or the environment"
            ),
        ))
    }

    /// Parses the target of an `include` directive (cursor after the keyword)
    /// and merges the included file's top-level entries into the current map.
    fn parse_include(&mut self) -> Result<(), ConfError> {
        let path_pos = self.pos();
        let target = match self.cur.peek() {
            Some('"') => self.parse_double_quoted()?,
            Some('\'') => self.parse_single_quoted()?,
            _ => self.read_word(),
        };
        if target.is_empty() {
            return Err(ConfError::new(
                path_pos,
                "expected file name after 'include'",
            ));
        }
        self.expect_entry_end(false)?;
        if self.files.len() >= MAX_INCLUDE_DEPTH {
            return Err(ConfError::new(
                path_pos,
                format!("includes nested too deeply (limit is {MAX_INCLUDE_DEPTH} levels)"),
            ));
        }
        let path = match &self.base_dir {
            Some(dir) => dir.join(&target),
            None => PathBuf::from(&target),
        };
        let read_err = |e: std::io::Error| {
            ConfError::new(
                path_pos.clone(),
                format!("cannot read included file '{}': {e}", path.display()),
            )
        };
        let canon = std::fs::canonicalize(&path).map_err(read_err)?;
        if self.files.contains(&canon) {
            return Err(ConfError::new(
                path_pos,
                format!(
                    "include cycle: '{}' is already being parsed",
                    path.display()
                ),
            ));
        }
        let text = std::fs::read_to_string(&canon).map_err(read_err)?;
        self.files.push(canon);
        let file_name: Arc<str> = Arc::from(path.display().to_string());
        let base = path.parent().map(Path::to_path_buf);
        let depth = self.depth;
        let included =
            Parser::new(&text, file_name, base, self.env, &mut *self.files, depth).parse_top();
        self.files.pop();
        for entry in included?.entries {
            self.push_entry(entry);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// An environment with no variables.
    fn no_env(_: &str) -> Option<String> {
        None
    }

    /// Parses `text` as "test.conf" with an empty environment, panicking on error.
    fn parse(text: &str) -> Map {
        parse_str_with_env(text, "test.conf", None, &no_env).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Parses `text`, expecting an error.
    fn parse_err(text: &str) -> ConfError {
        match parse_str_with_env(text, "test.conf", None, &no_env) {
            Ok(m) => panic!("expected an error, got {m:?}"),
            Err(e) => e,
        }
    }

    /// Asserts an error's line, column and message fragment.
    fn assert_err(text: &str, line: u32, col: u32, fragment: &str) {
        let e = parse_err(text);
        assert_eq!(
            (e.pos.line, e.pos.col),
            (line, col),
            "wrong position for {text:?}: {e}"
        );
        assert!(
            e.message.contains(fragment),
            "message {:?} lacks {fragment:?}",
            e.message
        );
    }

    /// Follows a path of keys through nested maps.
    fn at<'a>(map: &'a Map, path: &[&str]) -> &'a Item {
        let (last, init) = path.split_last().expect("non-empty path");
        let mut m = map;
        for key in init {
            m = m
                .get(key)
                .and_then(Item::as_map)
                .unwrap_or_else(|| panic!("no map at {key}"));
        }
        m.get(last).unwrap_or_else(|| panic!("no key {last}"))
    }

    /// A unique temporary directory, removed on drop.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(tag: &str) -> Self {
            static COUNTER: AtomicUsize = AtomicUsize::new(0);
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0);
            let dir = std::env::temp_dir().join(format!(
                "natrium-conf-{tag}-{}-{nanos}-{}",
                std::process::id(),
                COUNTER.fetch_add(1, Ordering::Relaxed)
            ));
            std::fs::create_dir_all(&dir).unwrap();
            TempDir(dir)
        }

        fn write(&self, name: &str, text: &str) -> PathBuf {
            let path = self.0.join(name);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).unwrap();
            }
            std::fs::write(&path, text).unwrap();
            path
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn key_value_separators() {
        let m = parse("a: 1\nb = 2\nc 3\nd:4\ne=5\nf\t6\n");
        for (k, v) in [("a", 1), ("b", 2), ("c", 3), ("d", 4), ("e", 5), ("f", 6)] {
            assert_eq!(m.get(k).and_then(Item::as_int), Some(v), "key {k}");
        }
        assert_eq!(m.len(), 6);
    }

    #[test]
    fn entry_separators_commas_and_semicolons() {
        let m = parse("host: 127.0.0.1; port: 4222;\na: 1, b: 2,\nc: x;;");
        assert_eq!(m.get("host").and_then(Item::as_str), Some("127.0.0.1"));
        assert_eq!(m.get("port").and_then(Item::as_int), Some(4222));
        assert_eq!(m.get("a").and_then(Item::as_int), Some(1));
        assert_eq!(m.get("b").and_then(Item::as_int), Some(2));
        assert_eq!(m.get("c").and_then(Item::as_str), Some("x"));
    }

    #[test]
    fn comments_both_kinds() {
        let m = parse(
            "# leading comment\n// another\na: 1 # trailing\nb: \"x\" // trailing too\n\
             c { # in block\n  d: 2 // here\n}\nurl: nats://host:4222\npath: /var/log/x.log\n",
        );
        assert_eq!(m.len(), 5);
        assert_eq!(m.get("a").and_then(Item::as_int), Some(1));
        assert_eq!(m.get("b").and_then(Item::as_str), Some("x"));
        assert_eq!(at(&m, &["c", "d"]).as_int(), Some(2));
        assert_eq!(
            m.get("url").and_then(Item::as_str),
            Some("nats://host:4222")
        );
        assert_eq!(m.get("path").and_then(Item::as_str), Some("/var/log/x.log"));
        assert!(parse("# only a comment").is_empty());
        assert!(parse("").is_empty());
    }

    #[test]
    fn block_brace_on_a_later_line() {
        let m =
            parse("authorization\n{\n  user: a\n}\ntls # why\n\n  {\n verify: true }\nport: 1\n");
        assert_eq!(at(&m, &["authorization", "user"]).as_str(), Some("a"));
        assert_eq!(at(&m, &["tls", "verify"]).as_bool(), Some(true));
        assert_eq!(m.get("port").and_then(Item::as_int), Some(1));
        assert_err("a\nb: 1\n", 1, 2, "expected value for key 'a'");
    }

    #[test]
    fn entries_used_as_variables_are_marked() {
        let m = parse("TOKEN: abc\nUNUSED: x\nauthorization { token: $TOKEN }\n");
        let used: Vec<(&str, bool)> = m
            .iter()
            .map(|e| (e.key.as_str(), e.used_as_variable))
            .collect();
        assert_eq!(
            used,
            [("TOKEN", true), ("UNUSED", false), ("authorization", false)]
        );
    }

    #[test]
    fn nested_blocks_all_forms() {
        let m = parse("a { b { c: 1 } }\nd: { e = { f: true } }\ng = {h: x, i: y}\nj{k:1}\n");
        assert_eq!(at(&m, &["a", "b", "c"]).as_int(), Some(1));
        assert_eq!(at(&m, &["d", "e", "f"]).as_bool(), Some(true));
        assert_eq!(at(&m, &["g", "h"]).as_str(), Some("x"));
        assert_eq!(at(&m, &["g", "i"]).as_str(), Some("y"));
        assert_eq!(at(&m, &["j", "k"]).as_int(), Some(1));
        let a = m.get("a").unwrap();
        assert_eq!((a.pos.line, a.pos.col), (1, 3));
        assert_eq!(a.type_name(), "map");
    }

    #[test]
    fn blocks_may_follow_each_other_on_one_line() {
        let m = parse("accounts { SYS {users: []}, cloud-user {x: 1} } y {z: 2}");
        assert_eq!(at(&m, &["accounts", "cloud-user", "x"]).as_int(), Some(1));
        assert_eq!(
            at(&m, &["accounts", "SYS", "users"])
                .as_array()
                .map(<[Item]>::len),
            Some(0)
        );
        assert_eq!(at(&m, &["y", "z"]).as_int(), Some(2));
    }

    #[test]
    fn arrays_with_commas_newlines_and_trailing_comma() {
        let m = parse(
            "a: [1, 2, 3]\nb: [\n  x\n  y, z,\n]\nc: []\nd [ [1, 2], [] ]\ne: [\"q\" # c\n 'r']",
        );
        let ints: Vec<_> = m
            .get("a")
            .unwrap()
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i.as_int())
            .collect();
        assert_eq!(ints, [Some(1), Some(2), Some(3)]);
        let strs: Vec<_> = m
            .get("b")
            .unwrap()
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i.as_str())
            .collect();
        assert_eq!(strs, [Some("x"), Some("y"), Some("z")]);
        assert!(m.get("c").unwrap().as_array().unwrap().is_empty());
        let d = m.get("d").unwrap().as_array().unwrap();
        assert_eq!(d.len(), 2);
        assert_eq!(d[0].as_array().map(<[Item]>::len), Some(2));
        let e = m.get("e").unwrap().as_array().unwrap();
        assert_eq!(e[1].as_str(), Some("r"));
        assert_eq!((e[1].pos.line, e[1].pos.col), (9, 2));
    }

    #[test]
    fn arrays_of_maps() {
        let m = parse(
            "users: [ {user: a, password: b}, {user: c} ]\nmore [\n {x: 1}\n {x: 2} {x: 3}\n]",
        );
        let users = m.get("users").unwrap().as_array().unwrap();
        assert_eq!(users.len(), 2);
        assert_eq!(
            users[0]
                .as_map()
                .unwrap()
                .get("password")
                .and_then(Item::as_str),
            Some("b")
        );
        assert_eq!(
            users[1]
                .as_map()
                .unwrap()
                .get("user")
                .and_then(Item::as_str),
            Some("c")
        );
        assert_eq!(m.get("more").unwrap().as_array().unwrap().len(), 3);
    }

    #[test]
    fn quoted_unquoted_and_single_quoted_strings() {
        let m = parse(
            "a: \"hello world\"\nb: 'raw \\n text'\nc: bare.word-with_stuff\n\"quoted key\": 1\n'sq key' = 2\nd: \"\"\ne: \"# not a comment\"\n",
        );
        assert_eq!(m.get("a").and_then(Item::as_str), Some("hello world"));
        assert_eq!(m.get("b").and_then(Item::as_str), Some("raw \\n text"));
        assert_eq!(
            m.get("c").and_then(Item::as_str),
            Some("bare.word-with_stuff")
        );
        assert_eq!(m.get("quoted key").and_then(Item::as_int), Some(1));
        assert_eq!(m.get("sq key").and_then(Item::as_int), Some(2));
        assert_eq!(m.get("d").and_then(Item::as_str), Some(""));
        assert_eq!(m.get("e").and_then(Item::as_str), Some("# not a comment"));
        // Quoted numbers and booleans stay strings.
        let m = parse("n: \"42\"\nb: 'true'");
        assert_eq!(m.get("n").unwrap().value, Value::Str("42".into()));
        assert_eq!(m.get("b").unwrap().value, Value::Str("true".into()));
        assert_eq!(m.get("n").and_then(Item::as_int), Some(42));
    }

    #[test]
    fn double_quoted_escapes() {
        let m = parse(r#"s: "q\" b\\ n\n t\t r\r s\/ \u00e9 \uD83D\uDE00 \b\f""#);
        assert_eq!(
            m.get("s").and_then(Item::as_str),
            Some("q\" b\\ n\n t\t r\r s/ \u{e9} \u{1F600} \u{8}\u{c}")
        );
        assert_err(r#"s: "a\qb""#, 1, 6, "invalid escape sequence '\\q'");
        assert_err(r#"s: "\u12""#, 1, 5, "expected 4 hex digits");
        assert_err(r#"s: "\uD800x""#, 1, 5, "unpaired surrogate");
        assert_err(r#"s: "\uDC00""#, 1, 5, "unpaired surrogate");
    }

    #[test]
    fn booleans_any_case() {
        let m = parse("a: true\nb: FALSE\nc: yes\nd: No\ne: on\nf: OFF\ng: truthy");
        let expect = [
            ("a", true),
            ("b", false),
            ("c", true),
            ("d", false),
            ("e", true),
            ("f", false),
        ];
        for (k, v) in expect {
            assert_eq!(m.get(k).and_then(Item::as_bool), Some(v), "key {k}");
        }
        assert_eq!(m.get("g").and_then(Item::as_str), Some("truthy"));
    }

    #[test]
    fn integers_with_size_suffixes() {
        let cases: &[(&str, i64)] = &[
            ("42", 42),
            ("-7", -7),
            ("+9", 9),
            ("1k", 1000),
            ("2K", 2000),
            ("1m", 1_000_000),
            ("3g", 3_000_000_000),
            ("1t", 1_000_000_000_000),
            ("1kb", 1024),
            ("64KB", 65536),
            ("1MB", 1_048_576),
            ("2gb", 2 * 1024 * 1024 * 1024),
            ("1TB", 1 << 40),
            ("4Ki", 4096),
            ("1mi", 1 << 20),
            ("1Gi", 1 << 30),
            ("1Ti", 1 << 40),
            ("1KiB", 1024),
            ("2MiB", 2 << 20),
            ("1gib", 1 << 30),
            ("1tib", 1 << 40),
            ("-2k", -2000),
            ("9223372036854775807", i64::MAX),
            ("-9223372036854775808", i64::MIN),
        ];
        for (text, want) in cases {
            let m = parse(&format!("v: {text}"));
            assert_eq!(m.get("v").unwrap().value, Value::Int(*want), "for {text}");
        }
        // Not integers: unknown suffixes stay strings.
        for text in ["1x", "10s", "1h30m", "3secret", "1kbb", "-", "0x10"] {
            let m = parse(&format!("v: {text}"));
            assert_eq!(m.get("v").and_then(Item::as_str), Some(text), "for {text}");
        }
        assert_err("v: 9223372036854775808", 1, 4, "integer out of range");
        assert_err("v: 10000000TB", 1, 4, "integer out of range");
        assert_err(
            "a: [1, 99999999999999999999999999999999999999999]",
            1,
            8,
            "out of range",
        );
    }

    #[test]
    fn floats_and_negative_numbers() {
        let m = parse("a: 2.5\nb: -0.25\nc: +1.0\nd: 1.2.3\ne: 1.\nf: .5\ng: -3");
        assert_eq!(m.get("a").unwrap().value, Value::Float(2.5));
        assert_eq!(m.get("b").unwrap().value, Value::Float(-0.25));
        assert_eq!(m.get("c").unwrap().value, Value::Float(1.0));
        assert_eq!(m.get("d").and_then(Item::as_str), Some("1.2.3"));
        assert_eq!(m.get("e").and_then(Item::as_str), Some("1."));
        assert_eq!(m.get("f").and_then(Item::as_str), Some(".5"));
        assert_eq!(m.get("g").unwrap().value, Value::Int(-3));
        assert_eq!(m.get("a").and_then(Item::as_float), Some(2.5));
        assert_eq!(m.get("g").and_then(Item::as_float), Some(-3.0));
        assert_eq!(m.get("a").unwrap().type_name(), "float");
    }

    #[test]
    fn listen_with_colon_is_a_string() {
        let m = parse("listen: 127.0.0.1:4222\nlisten2 0.0.0.0:4222\nl3: \"[::1]:4222\"");
        assert_eq!(
            m.get("listen").and_then(Item::as_str),
            Some("127.0.0.1:4222")
        );
        assert_eq!(
            m.get("listen2").and_then(Item::as_str),
            Some("0.0.0.0:4222")
        );
        assert_eq!(m.get("l3").and_then(Item::as_str), Some("[::1]:4222"));
        // A bare IPv6 literal starts an array, so it must be quoted.
        assert_err("l: [::1]:4222", 1, 9, "expected key, found ':'");
    }

    #[test]
    fn duplicate_keys_last_wins_but_all_kept() {
        let m = parse("port: 1\nPORT: 2\nother: x\nPort: 3");
        assert_eq!(m.get("port").and_then(Item::as_int), Some(3));
        assert_eq!(m.get("pOrT").and_then(Item::as_int), Some(3));
        let all: Vec<_> = m.get_all("port").filter_map(Item::as_int).collect();
        assert_eq!(all, [1, 2, 3]);
        let keys: Vec<_> = m.iter().map(|e| e.key.as_str()).collect();
        assert_eq!(keys, ["port", "PORT", "other", "Port"]);
        assert!(m.get("missing").is_none());
    }

    #[test]
    fn positions_of_keys_and_values() {
        let m = parse("\n  alpha:   \"x\"\nbeta {\n  gamma = [1,\n    2]\n}");
        let e = &m.entries[0];
        assert_eq!((e.key_pos.line, e.key_pos.col), (2, 3));
        assert_eq!((e.value.pos.line, e.value.pos.col), (2, 12));
        assert_eq!(&*e.value.pos.file, "test.conf");
        let gamma = at(&m, &["beta", "gamma"]).as_array().unwrap();
        assert_eq!((gamma[1].pos.line, gamma[1].pos.col), (5, 5));
    }

    #[test]
    fn crlf_bom_and_unicode_columns() {
        let m = parse("\u{feff}a: 1\r\nb: \"x\"\r\nc {\r\n d: 2\r\n}\r\n");
        assert_eq!(m.get("a").and_then(Item::as_int), Some(1));
        assert_eq!(m.get("b").and_then(Item::as_str), Some("x"));
        assert_eq!(at(&m, &["c", "d"]).as_int(), Some(2));
        assert_err(
            "a: \"\u{e9}\u{e9}",
            1,
            7,
            "unterminated string opened at 1:4",
        );
    }

    #[test]
    fn variables_from_file_and_scoping() {
        let m = parse(
            "PORT: 4222\nlisten_port: $PORT\nTOKEN = \"s3cret\"\nauth {\n  LOCAL: 5\n  token: $TOKEN\n  n: $LOCAL\n  inner { t: $TOKEN, l: $LOCAL }\n}\nlist: [$PORT, $TOKEN]\nobj: { copy: $PORT }\nPORT: 1\nagain: $PORT\n",
        );
        assert_eq!(m.get("listen_port").and_then(Item::as_int), Some(4222));
        assert_eq!(at(&m, &["auth", "token"]).as_str(), Some("s3cret"));
        assert_eq!(at(&m, &["auth", "n"]).as_int(), Some(5));
        assert_eq!(at(&m, &["auth", "inner", "l"]).as_int(), Some(5));
        assert_eq!(at(&m, &["auth", "inner", "t"]).as_str(), Some("s3cret"));
        let list = m.get("list").unwrap().as_array().unwrap();
        assert_eq!(list[0].as_int(), Some(4222));
        assert_eq!(at(&m, &["obj", "copy"]).as_int(), Some(4222));
        assert_eq!(m.get("again").and_then(Item::as_int), Some(1));
        // The reference carries its own position.
        let port = m.get("listen_port").unwrap();
        assert_eq!((port.pos.line, port.pos.col), (2, 14));
        // Block variables are not visible outside their block.
        assert_err("a { X: 1 }\nb: $X", 2, 4, "variable '$X' is not defined");
        // Maps can be referenced too.
        let m = parse("DEF { a: 1 }\nuse: $DEF");
        assert_eq!(at(&m, &["use", "a"]).as_int(), Some(1));
    }

    #[test]
    fn variables_from_environment() {
        let env = |name: &str| match name {
            "NATS_PORT" => Some("4333".to_string()),
            "FLAG" => Some("true".to_string()),
            "NAME" => Some("edge 1".to_string()),
            "SELF" => Some("$SELF".to_string()),
            _ => None,
        };
        let m = parse_str_with_env(
            "port: $NATS_PORT\nflag: $FLAG\nn1: $NAME\nself: $SELF\nNAME: local\nn2: $NAME",
            "env.conf",
            None,
            &env,
        )
        .unwrap();
        assert_eq!(m.get("port").unwrap().value, Value::Int(4333));
        assert_eq!(m.get("flag").unwrap().value, Value::Bool(true));
        assert_eq!(m.get("n1").and_then(Item::as_str), Some("edge 1"));
        assert_eq!(m.get("self").and_then(Item::as_str), Some("$SELF"));
        assert_eq!(m.get("n2").and_then(Item::as_str), Some("local"));
        // The real process environment via parse_str (PATH is normally set).
        if let Ok(path) = std::env::var("PATH") {
            let m = parse_str("p: $PATH", "t.conf", None).unwrap();
            assert_eq!(m.get("p").unwrap().value, classify_env_value(&path));
        }
    }

    #[test]
    fn undefined_variable_error_with_position() {
        let e = parse_err("a: 1\nb {\n  c: $NOPE_NOT_DEFINED\n}");
        assert_eq!((e.pos.line, e.pos.col), (3, 6));
        assert!(e.message.contains("$NOPE_NOT_DEFINED"), "{e}");
        assert_eq!(
            e.to_string(),
            format!("test.conf:3:6: {}", e.message),
            "display format"
        );
        assert_err("a: $", 1, 4, "invalid variable reference");
    }

    #[test]
    fn quoted_bcrypt_hash_is_not_a_variable() {
        let hash = "$2a$11$W2zko751KUvVy59mUTWmpOdWjpEm5qhcCZRd05GjI/sSOT.xtiHyG";
        let m = parse(&format!("a: \"{hash}\"\nb: '{hash}'"));
        assert_eq!(m.get("a").and_then(Item::as_str), Some(hash));
        assert_eq!(m.get("b").and_then(Item::as_str), Some(hash));
        let e = parse_err(&format!("password: {hash}"));
        assert_eq!((e.pos.line, e.pos.col), (1, 11));
        assert!(e.message.contains("quote the value"), "{e}");
    }

    #[test]
    fn include_merges_entries_relative_to_including_file() {
        let dir = TempDir::new("include");
        dir.write(
            "sub/auth.conf",
            "user: bob\ninclude 'more.conf'\nINNER: 7\n",
        );
        dir.write("sub/more.conf", "password = \"pw\"\n");
        dir.write("top.conf", "port: 1\n");
        dir.write("plain.conf", "plain: yes\n");
        let main = dir.write(
            "main.conf",
            "include \"top.conf\"\nauthorization {\n  include sub/auth.conf\n  x: $INNER\n}\ninclude plain.conf # comment\nport: 2\ninclude: not-a-directive\n",
        );
        let m = parse_file(&main).unwrap();
        assert_eq!(m.get("port").and_then(Item::as_int), Some(2));
        assert_eq!(m.get_all("port").count(), 2);
        assert_eq!(m.get("plain").and_then(Item::as_bool), Some(true));
        assert_eq!(at(&m, &["authorization", "user"]).as_str(), Some("bob"));
        assert_eq!(at(&m, &["authorization", "password"]).as_str(), Some("pw"));
        assert_eq!(at(&m, &["authorization", "x"]).as_int(), Some(7));
        assert_eq!(
            m.get("include").and_then(Item::as_str),
            Some("not-a-directive")
        );
        // Merged entries keep their own file positions.
        let pw = at(&m, &["authorization", "password"]);
        assert!(pw.pos.file.ends_with("more.conf"), "{}", pw.pos.file);
        assert_eq!((pw.pos.line, pw.pos.col), (1, 12));
        // parse_str with a base dir resolves includes the same way.
        let m = parse_str("include 'top.conf'", "inline.conf", Some(&dir.0)).unwrap();
        assert_eq!(m.get("port").and_then(Item::as_int), Some(1));
    }

    #[test]
    fn include_errors() {
        let dir = TempDir::new("include-err");
        dir.write("a.conf", "x: 1\ninclude b.conf\n");
        dir.write("b.conf", "\n  include \"a.conf\"\n");
        dir.write("self.conf", "include self.conf");
        dir.write("bad.conf", "ok: 1\noops: [1 2]\n");
        let e = parse_file(&dir.0.join("a.conf")).unwrap_err();
        assert!(e.message.contains("include cycle"), "{e}");
        assert!(e.pos.file.ends_with("b.conf"), "{e}");
        assert_eq!((e.pos.line, e.pos.col), (2, 11));
        let e = parse_file(&dir.0.join("self.conf")).unwrap_err();
        assert!(e.message.contains("include cycle"), "{e}");
        let e = parse_str("include self.conf", "self.conf", Some(&dir.0)).unwrap_err();
        assert!(e.message.contains("include cycle"), "{e}");
        // Missing file: error at the path, in the including file.
        let e = parse_str("a: 1\ninclude 'missing.conf'", "m.conf", Some(&dir.0)).unwrap_err();
        assert_eq!((&*e.pos.file, e.pos.line, e.pos.col), ("m.conf", 2, 9));
        assert!(e.message.contains("cannot read included file"), "{e}");
        // Syntax errors inside an included file point into that file.
        let e = parse_str("include bad.conf", "m.conf", Some(&dir.0)).unwrap_err();
        assert!(e.pos.file.ends_with("bad.conf"), "{e}");
        assert_eq!((e.pos.line, e.pos.col), (2, 10));
        // Too-long include chain.
        for i in 0..30 {
            dir.write(
                &format!("chain{i}.conf"),
                &format!("include chain{}.conf\n", i + 1),
            );
        }
        dir.write("chain30.conf", "end: 1\n");
        let e = parse_file(&dir.0.join("chain0.conf")).unwrap_err();
        assert!(e.message.contains("nested too deeply"), "{e}");
        assert_err("include \nx: 1", 1, 9, "expected value for key 'include'");
    }

    #[test]
    fn parse_file_io_error() {
        let dir = TempDir::new("io");
        let missing = dir.0.join("nope.conf");
        let e = parse_file(&missing).unwrap_err();
        assert_eq!((e.pos.line, e.pos.col), (0, 0));
        assert!(e.message.contains("cannot read"), "{e}");
        assert!(
            e.to_string()
                .starts_with(&format!("{}: cannot read", missing.display())),
            "no :0:0: position for a file that cannot be read: {e}"
        );
        let bin = dir.0.join("bin.conf");
        std::fs::write(&bin, [0x61, 0x3a, 0x20, 0xff, 0xfe]).unwrap();
        assert!(parse_file(&bin).is_err());
    }

    #[test]
    fn syntax_errors_have_accurate_positions() {
        assert_err(
            "a {\n  b: 1\n",
            3,
            1,
            "expected '}' to close block opened at 1:3",
        );
        assert_err(
            "a: [1, 2",
            1,
            9,
            "expected ']' to close array opened at 1:4",
        );
        assert_err("a: \"abc\nb: 1", 1, 8, "unterminated string opened at 1:4");
        assert_err("a: 'abc", 1, 8, "unterminated string opened at 1:4");
        assert_err(
            "a: 1\nb:\nc: 2",
            2,
            3,
            "expected value for key 'b', found end of line",
        );
        assert_err(
            "a: 1\nb",
            2,
            2,
            "expected value for key 'b', found end of file",
        );
        assert_err("a: 1\n}", 2, 1, "unexpected '}'");
        assert_err(
            "a: \"x\" b: 2",
            1,
            8,
            "expected newline, ',' or ';' after value",
        );
        assert_err("a: [1 2]", 1, 7, "expected ',' or ']' after array element");
        assert_err("a: [1,,2]", 1, 7, "expected value or ']', found ','");
        assert_err(
            "x {\n  a: }\n}",
            2,
            6,
            "expected value for key 'a', found '}'",
        );
        assert_err(
            "a\"b\": 1",
            1,
            2,
            "expected ':', '=' or whitespace after key 'a'",
        );
        assert_err(": 1", 1, 1, "expected key, found ':'");
        assert_err("a: [ } ]", 1, 6, "expected value, found '}'");
        assert_err("a { b: 1 ]", 1, 10, "found ']'");
        assert_err("a: // c\n", 1, 4, "found comment");
    }

    #[test]
    fn nesting_depth_is_capped() {
        let ok = format!("a: {}{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
        assert!(parse_str_with_env(&ok, "t", None, &no_env).is_ok());
        let too_deep = format!(
            "a: {}{}",
            "[".repeat(MAX_DEPTH + 1),
            "]".repeat(MAX_DEPTH + 1)
        );
        let e = parse_err(&too_deep);
        assert_eq!((e.pos.line, e.pos.col), (1, 4 + MAX_DEPTH as u32));
        assert!(e.message.contains("nesting too deep"));
        let huge = "a {".repeat(100_000);
        assert!(parse_err(&huge).message.contains("nesting too deep"));
        let huge = format!("x: {}", "[{a: ".repeat(100_000));
        assert!(parse_err(&huge).message.contains("nesting too deep"));
    }

    #[test]
    fn parse_duration_go_style() {
        let cases: &[(&str, Duration)] = &[
            ("2m", Duration::from_secs(120)),
            ("10s", Duration::from_secs(10)),
            ("1h30m", Duration::from_secs(5400)),
            ("500ms", Duration::from_millis(500)),
            ("1.5s", Duration::from_millis(1500)),
            ("250us", Duration::from_micros(250)),
            ("3\u{b5}s", Duration::from_micros(3)),
            ("3\u{3bc}s", Duration::from_micros(3)),
            ("42ns", Duration::from_nanos(42)),
            ("1h2m3s4ms5us6ns", Duration::new(3723, 4_005_006)),
            ("0", Duration::ZERO),
            ("0s", Duration::ZERO),
            (".5m", Duration::from_secs(30)),
            ("1.s", Duration::from_secs(1)),
            ("0.000000001s", Duration::from_nanos(1)),
            (
                "0.1234567891234567891234s",
                Duration::from_nanos(123_456_789),
            ),
            ("+5s", Duration::from_secs(5)),
        ];
        for (text, want) in cases {
            assert_eq!(parse_duration(text), Some(*want), "for {text}");
        }
        for bad in [
            "",
            "5",
            "s",
            "-5s",
            "1d",
            "1.5",
            "1hh",
            ".s",
            "1 s",
            "99999999999999999999999h",
            "5sm",
        ] {
            assert_eq!(parse_duration(bad), None, "for {bad:?}");
        }
    }

    #[test]
    fn accessors_and_type_names() {
        let m = parse("s: \"64MB\"\nt: hello\ni: 5\nb: on\nf: 1.5\narr: [1]\nmap {}\n");
        assert_eq!(m.get("s").and_then(Item::as_int), Some(64 << 20));
        assert_eq!(m.get("t").and_then(Item::as_int), None);
        assert_eq!(m.get("i").and_then(Item::as_str), None);
        assert_eq!(m.get("b").and_then(Item::as_bool), Some(true));
        assert!(m.get("map").and_then(Item::as_map).unwrap().is_empty());
        let names: Vec<_> = m.iter().map(|e| e.value.type_name()).collect();
        assert_eq!(
            names,
            [
                "string", "string", "integer", "boolean", "float", "array", "map"
            ]
        );
        assert_eq!(m.get("arr").unwrap().as_map(), None);
        assert_eq!(m.get("map").unwrap().as_array(), None);
    }

    #[test]
    fn realistic_server_config() {
        let text = r#"
listen: 127.0.0.1:4222
server_name: edge-1
http_port: 8222
max_payload: 1MB
max_pending: 64MB
max_control_line: 4KB
max_connections: 10000
ping_interval: "2m"
ping_max: 2
write_deadline: "10s"
debug: false
logfile: "nats.log"
authorization {
  timeout: 2
  users = [
    { user: sensor, password: "$2a$11$abc", permissions: { publish: { allow: ["telemetry.>"], deny: ["telemetry.admin.*"] }, subscribe: ["cmd.sensor.*", "jobs.* workers"], allow_responses: true } }
    { nkey: UDXU4RCSJNZOIQHZNWXHXORDPRTGNJAHAHFRGZNEEJCPQTT2M7NLCNF4 }
  ]
}
"#;
        let m = parse(text);
        assert_eq!(
            m.get("listen").and_then(Item::as_str),
            Some("127.0.0.1:4222")
        );
        assert_eq!(m.get("server_name").and_then(Item::as_str), Some("edge-1"));
        assert_eq!(m.get("http_port").and_then(Item::as_int), Some(8222));
        assert_eq!(m.get("max_payload").and_then(Item::as_int), Some(1_048_576));
        assert_eq!(
            m.get("max_pending").and_then(Item::as_int),
            Some(64 * 1_048_576)
        );
        assert_eq!(m.get("max_control_line").and_then(Item::as_int), Some(4096));
        assert_eq!(
            m.get("max_connections").and_then(Item::as_int),
            Some(10_000)
        );
        let ping = m
            .get("ping_interval")
            .and_then(Item::as_str)
            .and_then(parse_duration);
        assert_eq!(ping, Some(Duration::from_secs(120)));
        assert_eq!(m.get("ping_max").and_then(Item::as_int), Some(2));
        let wd = m
            .get("write_deadline")
            .and_then(Item::as_str)
            .and_then(parse_duration);
        assert_eq!(wd, Some(Duration::from_secs(10)));
        assert_eq!(m.get("debug").and_then(Item::as_bool), Some(false));
        assert_eq!(m.get("logfile").and_then(Item::as_str), Some("nats.log"));
        assert_eq!(at(&m, &["authorization", "timeout"]).as_int(), Some(2));
        let users = at(&m, &["authorization", "users"]).as_array().unwrap();
        assert_eq!(users.len(), 2);
        let sensor = users[0].as_map().unwrap();
        assert_eq!(sensor.get("user").and_then(Item::as_str), Some("sensor"));
        assert_eq!(
            sensor.get("password").and_then(Item::as_str),
            Some("$2a$11$abc")
        );
        let allow = at(sensor, &["permissions", "publish", "allow"])
            .as_array()
            .unwrap();
        assert_eq!(allow[0].as_str(), Some("telemetry.>"));
        let deny = at(sensor, &["permissions", "publish", "deny"])
            .as_array()
            .unwrap();
        assert_eq!(deny[0].as_str(), Some("telemetry.admin.*"));
        let sub = at(sensor, &["permissions", "subscribe"])
            .as_array()
            .unwrap();
        let subs: Vec<_> = sub.iter().filter_map(Item::as_str).collect();
        assert_eq!(subs, ["cmd.sensor.*", "jobs.* workers"]);
        assert_eq!(
            at(sensor, &["permissions", "allow_responses"]).as_bool(),
            Some(true)
        );
        let nkey = users[1].as_map().unwrap().get("nkey").unwrap();
        assert_eq!(
            nkey.as_str(),
            Some("UDXU4RCSJNZOIQHZNWXHXORDPRTGNJAHAHFRGZNEEJCPQTT2M7NLCNF4")
        );
        assert_eq!((nkey.pos.line, nkey.pos.col), (18, 13));
        assert_eq!((users[0].pos.line, users[0].pos.col), (17, 5));
        assert_eq!(m.len(), 13);
    }

    /// A small xorshift64 generator for the property-style test.
    struct XorShift(u64);

    impl XorShift {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        fn below(&mut self, n: usize) -> usize {
            (self.next() % n.max(1) as u64) as usize
        }
    }

    /// Parses `text` and checks that any error is well formed; panics propagate.
    fn parse_checked(text: &str, dir: &Path) {
        let env = |name: &str| (name == "a").then(|| "1k".to_string());
        if let Err(e) = parse_str_with_env(text, "fuzz.conf", Some(dir), &env) {
            assert!(!e.message.is_empty());
            assert!(e.pos.line >= 1 && e.pos.col >= 1, "{text:?}: {e}");
        }
        let _ = parse_duration(text);
    }

    #[test]
    fn random_inputs_never_panic() {
        // Pieces of the format, separated by '|'.
        let pieces: Vec<&str> = "{|}|[|]|:|=|,|;|#|//|/|\"|'|\\|\\u|\\uD83D|$|$a|$A_1|\n|\r\n| |\t|\
             a|b|key|1|0|.|-|+|k|KB|MiB|e|x|include |include|true|off|\u{e9}|\u{feff}|\
             9999999999999999999|2.5|a: |{a: $a}|a = [|\"$2a$\"|127.0.0.1:4222|nats://h|\0|\u{7f}|µs|1h30m"
            .split('|')
            .collect();
        let dir = TempDir::new("fuzz");
        let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
        for _ in 0..4000 {
            let len = rng.below(48);
            let text: String = (0..len).map(|_| pieces[rng.below(pieces.len())]).collect();
            parse_checked(&text, &dir.0);
        }
        // Mutations of a valid configuration: replace, delete or truncate characters.
        let base: Vec<char> =
            "a: 1\nb { c: [1, 'x', {d: \"e\\n\"}], f = $a }\ng 2KB # c\nh: [\n 1\n 2\n]\n"
                .chars()
                .collect();
        let base_text: String = base.iter().collect();
        let env = |name: &str| (name == "a").then(|| "1k".to_string());
        assert!(parse_str_with_env(&base_text, "base.conf", None, &env).is_ok());
        let alphabet: Vec<char> = "{}[]:=,;#/\"'\\$ \n\tak1.-".chars().collect();
        for _ in 0..2000 {
            let mut text = base.clone();
            for _ in 0..1 + rng.below(4) {
                let at = rng.below(text.len());
                match rng.below(3) {
                    0 => text[at] = alphabet[rng.below(alphabet.len())],
                    1 => {
                        text.remove(at);
                    }
                    _ => text.truncate(at),
                }
                if text.is_empty() {
                    break;
                }
            }
            parse_checked(&text.iter().collect::<String>(), &dir.0);
        }
    }
}
