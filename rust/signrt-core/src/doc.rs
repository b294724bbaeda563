//! [`Doc`]: the document a FeatureSpec is validated from.
//!
//! A small JSON-like tree with two sources: JSON text (parsed with serde_json, strictly:
//! RFC 8259, no `NaN` tokens, no duplicate keys, at most 128 levels deep, at most
//! [`MAX_JSON_BYTES`]) and the Python objects the bindings convert (which may hold values
//! of no JSON type: a non-finite float, or an object described by [`Doc::Other`]). The one
//! validation in [`crate::spec`] reads this tree whatever its source, so the rules and their
//! messages exist once.

use std::collections::HashSet;
use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

use crate::error::{Error, Result};

/// Upper bound on the size of a FeatureSpec's JSON text. The largest valid spec (543
/// landmarks, 16 lags, indented) is under 16 KiB; 1 MiB leaves room for any formatting.
pub const MAX_JSON_BYTES: usize = 1 << 20;

/// Longest string quoted in full in a message; longer ones are cut with `...`.
const QUOTE_LIMIT: usize = 40;

/// A parsed document: the JSON value types, plus [`Doc::Other`] for values from Python that
/// have no JSON type.
#[derive(Debug, Clone, PartialEq)]
pub enum Doc {
    /// `null` (Python `None`).
    Null,
    /// `true` / `false`.
    Bool(bool),
    /// An integer (a JSON number without fraction or exponent, a Python `int`).
    Int(i128),
    /// A floating-point number (may be non-finite when it comes from Python).
    Float(f64),
    /// A string.
    Str(String),
    /// An array (a Python list, tuple or other sequence).
    List(Vec<Doc>),
    /// An object, in document order (a Python mapping).
    Map(Vec<(String, Doc)>),
    /// A value of no JSON type, as words for messages: `"a Python bytes object"`.
    Other(String),
}

impl Doc {
    /// Parse JSON text strictly (see the module documentation).
    ///
    /// # Errors
    /// [`Error::Spec`] about the whole document (no field), one line saying what is wrong.
    pub fn from_json(text: &str) -> Result<Doc> {
        if text.len() > MAX_JSON_BYTES {
            return Err(Error::spec_doc(format!(
                "FeatureSpec JSON is {} bytes, expected at most {MAX_JSON_BYTES} (a spec is a \
                 few KiB)",
                text.len()
            )));
        }
        serde_json::from_str(text)
            .map_err(|e| Error::spec_doc(format!("FeatureSpec is not valid JSON: {e}")))
    }

    /// Parse JSON bytes: UTF-8 (a leading byte-order mark is skipped), then as [`Doc::from_json`].
    ///
    /// # Errors
    /// [`Error::Spec`] about the whole document when the bytes are not UTF-8 or not JSON.
    pub fn from_json_bytes(bytes: &[u8]) -> Result<Doc> {
        let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
        let text = std::str::from_utf8(bytes).map_err(|e| {
            Error::spec_doc(format!(
                "FeatureSpec is not valid UTF-8 text: {e}; expected JSON encoded as UTF-8"
            ))
        })?;
        Doc::from_json(text)
    }

    /// The value of `key` when this is an object that has it.
    pub fn get(&self, key: &str) -> Option<&Doc> {
        match self {
            Doc::Map(entries) => entries.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// The value in words for a message: `17`, `64.0`, `"pad"`, `true`, `null`,
    /// `a list of 3 items`, `an object`, ... (strings are quoted and cut when long).
    pub fn describe(&self) -> String {
        match self {
            Doc::Null => "null".to_owned(),
            Doc::Bool(b) => b.to_string(),
            Doc::Int(i) => i.to_string(),
            Doc::Float(x) => float_text(*x),
            Doc::Str(s) => quote(s),
            Doc::List(items) => match items.len() {
                0 => "an empty list".to_owned(),
                1 => "a list of 1 item".to_owned(),
                n => format!("a list of {n} items"),
            },
            Doc::Map(entries) if entries.is_empty() => "an empty object".to_owned(),
            Doc::Map(_) => "an object".to_owned(),
            Doc::Other(words) => words.clone(),
        }
    }
}

/// A float as serde_json writes it (`64.0`, `0.00001`, `2.5e+300`), and `NaN`, `Infinity`, `-Infinity`.
pub(crate) fn float_text(x: f64) -> String {
    if x.is_nan() {
        "NaN".to_owned()
    } else if x.is_infinite() {
        if x > 0.0 { "Infinity" } else { "-Infinity" }.to_owned()
    } else {
        serde_json::Number::from_f64(x).map_or_else(|| x.to_string(), |n| n.to_string())
    }
}

/// `s` as a JSON string literal, cut after [`QUOTE_LIMIT`] characters.
pub(crate) fn quote(s: &str) -> String {
    let cut: String = s.chars().take(QUOTE_LIMIT).collect();
    let mut out = serde_json::Value::from(cut.as_str()).to_string();
    if cut.len() < s.len() {
        out.insert_str(out.len() - 1, "...");
    }
    out
}

impl<'de> Deserialize<'de> for Doc {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Doc, D::Error> {
        deserializer.deserialize_any(DocVisitor)
    }
}

struct DocVisitor;

impl<'de> Visitor<'de> for DocVisitor {
    type Value = Doc;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> std::result::Result<Doc, E> {
        Ok(Doc::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> std::result::Result<Doc, E> {
        Ok(Doc::Int(i128::from(v)))
    }

    fn visit_u64<E>(self, v: u64) -> std::result::Result<Doc, E> {
        Ok(Doc::Int(i128::from(v)))
    }

    fn visit_f64<E>(self, v: f64) -> std::result::Result<Doc, E> {
        Ok(Doc::Float(v))
    }

    fn visit_str<E>(self, v: &str) -> std::result::Result<Doc, E> {
        Ok(Doc::Str(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> std::result::Result<Doc, E> {
        Ok(Doc::Str(v))
    }

    fn visit_unit<E>(self) -> std::result::Result<Doc, E> {
        Ok(Doc::Null)
    }

    fn visit_none<E>(self) -> std::result::Result<Doc, E> {
        Ok(Doc::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> std::result::Result<Doc, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Doc::List(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<Doc, A::Error> {
        let mut entries: Vec<(String, Doc)> = Vec::new();
        let mut seen = HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            if !seen.insert(key.clone()) {
                return Err(de::Error::custom(format!(
                    "duplicate key {}, expected each key once",
                    quote(&key)
                )));
            }
            let value = map.next_value()?;
            entries.push((key, value));
        }
        Ok(Doc::Map(entries))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc_error(text: &str) -> String {
        match Doc::from_json(text) {
            Err(Error::Spec {
                field: None,
                message,
            }) => message,
            other => panic!("expected a document error, got {other:?}"),
        }
    }

    #[test]
    fn parses_every_json_type_in_order() {
        let doc = Doc::from_json(
            r#"{"b": [1, -2, 18446744073709551615], "a": {"x": null},
             "c": 1.5, "d": "s", "e": true, "f": 1e2}"#,
        )
        .unwrap();
        let Doc::Map(entries) = &doc else {
            panic!("{doc:?}")
        };
        let keys: Vec<&str> = entries.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["b", "a", "c", "d", "e", "f"]);
        assert_eq!(
            doc.get("b"),
            Some(&Doc::List(vec![
                Doc::Int(1),
                Doc::Int(-2),
                Doc::Int(i128::from(u64::MAX))
            ]))
        );
        assert_eq!(doc.get("a"), Some(&Doc::Map(vec![("x".into(), Doc::Null)])));
        assert_eq!(doc.get("c"), Some(&Doc::Float(1.5)));
        assert_eq!(doc.get("f"), Some(&Doc::Float(100.0)));
        assert_eq!(doc.get("e"), Some(&Doc::Bool(true)));
        assert_eq!(doc.get("zz"), None);
    }

    #[test]
    fn hostile_text_is_one_line_document_error() {
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert!(doc_error(&deep).contains("recursion limit"));
        let big = format!("{{\"max_len\": 1{}}}", "0".repeat(400));
        assert!(doc_error(&big).contains("number out of range"));
        assert!(doc_error(r#"{"nan_fill": NaN}"#).contains("not valid JSON"));
        assert!(doc_error(r#"{"a": 1, "a": 2}"#).contains("duplicate key \"a\""));
        assert!(doc_error("").contains("not valid JSON"));
        let huge = " ".repeat(MAX_JSON_BYTES + 1);
        assert!(doc_error(&huge).contains("expected at most"));
        for msg in [doc_error(&deep), doc_error(&big)] {
            assert!(!msg.contains('\n'), "{msg}");
        }
    }

    #[test]
    fn bytes_must_be_utf8() {
        let err = Doc::from_json_bytes(b"{\"a\": \"\xff\"}").unwrap_err();
        assert!(err.to_string().contains("not valid UTF-8"), "{err}");
        assert_eq!(
            Doc::from_json_bytes(b"\xEF\xBB\xBF[1]").unwrap(),
            Doc::List(vec![Doc::Int(1)])
        );
    }

    #[test]
    fn describe_is_short_and_typed() {
        assert_eq!(Doc::Float(64.0).describe(), "64.0");
        assert_eq!(Doc::Float(1e-5).describe(), "0.00001");
        assert_eq!(Doc::Float(2.5e300).describe(), "2.5e+300");
        assert_eq!(Doc::Float(f64::NAN).describe(), "NaN");
        assert_eq!(Doc::Float(f64::NEG_INFINITY).describe(), "-Infinity");
        assert_eq!(Doc::Int(-3).describe(), "-3");
        assert_eq!(Doc::Str("a\"b".into()).describe(), r#""a\"b""#);
        let long = Doc::Str("x".repeat(100)).describe();
        assert_eq!(long, format!("\"{}...\"", "x".repeat(40)));
        assert_eq!(Doc::List(vec![]).describe(), "an empty list");
        assert_eq!(Doc::List(vec![Doc::Null]).describe(), "a list of 1 item");
        assert_eq!(Doc::Map(vec![]).describe(), "an empty object");
        assert_eq!(Doc::Null.describe(), "null");
    }
}
