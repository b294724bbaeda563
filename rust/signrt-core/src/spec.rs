//! FeatureSpec: the preprocessing contract (DESIGN §3), parsed and validated exactly like
//! `python/signrt/spec.py`.
//!
//! Parsing goes through [`serde_json::Value`] rather than a derived deserializer so that the
//! checks run in the same order as the Python side and every error names the same field
//! (`"landmarks"`, `"normalize.kind"`, ...). Python's `json` module accepts the non-standard
//! tokens `NaN`, `Infinity` and `-Infinity`; they are accepted here too (as non-finite
//! numbers), so a document such as `"nan_fill": NaN` is rejected for the same reason
//! (`nan_fill` not finite) on both sides.

use std::collections::HashSet;
use std::fmt::Write as _;

use serde_json::{Map, Value};

use crate::error::{Error, Result};

/// Landmarks per frame in the holistic-543 layout.
pub const NUM_LANDMARKS: usize = 543;
/// Values per landmark in an input frame (x, y, z).
pub const NUM_COORDS: usize = 3;
/// Values per input frame: 543 × 3.
pub const FRAME_LEN: usize = NUM_LANDMARKS * NUM_COORDS;
/// The only layout this version reads.
pub const LAYOUT: &str = "holistic-543";
/// The spec format version this version reads.
pub const SPEC_VERSION: i64 = 1;
/// Upper bound on `max_len`.
pub const MAX_LEN_LIMIT: usize = 4096;
/// Layout indices of the left and right shoulder (pose 11 and 12).
pub const SHOULDERS: [usize; 2] = [500, 501];

const KEYS: [&str; 10] = [
    "version",
    "layout",
    "landmarks",
    "coords",
    "normalize",
    "max_len",
    "fit",
    "motion_lags",
    "drop_empty_frames",
    "nan_fill",
];
const NORMALIZE_KINDS: [&str; 3] = ["reference_rms", "shoulders", "none"];
const FITS: [&str; 2] = ["truncate", "resample"];

// Stand-ins for the non-finite number tokens that Python's json accepts and serde_json does
// not: they are rewritten into these (impossible) strings before parsing.
const NAN_TOKEN: &str = "\u{0}signrt:NaN";
const INF_TOKEN: &str = "\u{0}signrt:Infinity";
const NEG_INF_TOKEN: &str = "\u{0}signrt:-Infinity";

/// Step 3 of the spec: how landmarks are centred and scaled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Normalize {
    /// Centre on a reference landmark, scale by the RMS distance of the selected points.
    ReferenceRms {
        /// Layout index of the reference landmark.
        reference: usize,
    },
    /// Centre between the shoulders (500, 501), scale by their xy distance.
    Shoulders,
    /// No normalisation.
    None,
}

/// Step 4 of the spec: how a clip longer than `max_len` is fitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fit {
    /// Keep the first `max_len` frames.
    Truncate,
    /// Linearly interpolate onto `max_len` evenly spaced positions.
    Resample,
}

/// A validated FeatureSpec. Construct with [`FeatureSpec::from_json`] or [`FeatureSpec::new`].
#[derive(Debug, Clone, PartialEq)]
pub struct FeatureSpec {
    landmarks: Vec<usize>,
    /// (layout index, output position) pairs sorted by layout index: gathering a frame in
    /// address order is friendlier to the caches than the output order.
    gather: Vec<(usize, usize)>,
    coords: usize,
    normalize: Normalize,
    max_len: usize,
    fit: Fit,
    motion_lags: Vec<usize>,
    drop_empty_frames: bool,
    nan_fill: f64,
}

impl FeatureSpec {
    /// Build and validate a spec from its parts.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        landmarks: Vec<usize>,
        coords: usize,
        normalize: Normalize,
        max_len: usize,
        fit: Fit,
        motion_lags: Vec<usize>,
        drop_empty_frames: bool,
        nan_fill: f64,
    ) -> Result<Self> {
        let spec = FeatureSpec {
            gather: Vec::new(),
            landmarks,
            coords,
            normalize,
            max_len,
            fit,
            motion_lags,
            drop_empty_frames,
            nan_fill,
        };
        // One code path for the rules: serialise and re-parse.
        FeatureSpec::from_value(&spec.to_value())
    }

    /// Parse and validate a spec from JSON text.
    ///
    /// # Errors
    /// [`Error::Spec`] naming the field at fault, the same field `spec.py` names.
    pub fn from_json(text: &str) -> Result<Self> {
        let text = rewrite_nonfinite_tokens(text);
        let value: Value = serde_json::from_str(&text)
            .map_err(|e| Error::spec_doc(format!("FeatureSpec is not valid JSON: {e}")))?;
        FeatureSpec::from_value(&value)
    }

    /// Validate a parsed JSON document (in the order `spec.py` checks it).
    pub fn from_value(value: &Value) -> Result<Self> {
        let Some(obj) = value.as_object() else {
            return Err(Error::spec_doc(format!(
                "a FeatureSpec must be a JSON object, got {}",
                py_type_name(value)
            )));
        };
        if let Some(key) = obj.keys().find(|k| !KEYS.contains(&k.as_str())) {
            return Err(Error::spec(
                key.clone(),
                format!(
                    "{key}: unknown key in FeatureSpec (known keys: {})",
                    KEYS.join(", ")
                ),
            ));
        }
        for key in KEYS {
            if !obj.contains_key(key) {
                return Err(Error::spec(
                    key,
                    format!("{key}: missing key in FeatureSpec"),
                ));
            }
        }
        for key in ["landmarks", "motion_lags"] {
            if !obj[key].is_array() {
                return Err(Error::spec(
                    key,
                    format!(
                        "{key}: must be a list of integers, got {}",
                        py_repr(&obj[key])
                    ),
                ));
            }
        }
        for key in ["layout", "fit"] {
            if !obj[key].is_string() {
                return Err(Error::spec(
                    key,
                    format!("{key}: must be a string, got {}", py_repr(&obj[key])),
                ));
            }
        }
        let normalize = parse_normalize(&obj["normalize"])?;

        // The checks of FeatureSpec._validate, in its order.
        let version = int_of(&obj["version"], "version")?;
        if version != i128::from(SPEC_VERSION) {
            return Err(Error::spec(
                "version",
                format!(
                    "version: unsupported spec version {version}, this signrt reads version \
                     {SPEC_VERSION}"
                ),
            ));
        }
        let layout = obj["layout"].as_str().unwrap_or_default();
        if layout != LAYOUT {
            return Err(Error::spec(
                "layout",
                format!(
                    "layout: unknown layout {}, expected '{LAYOUT}' (other layouts are adapted \
                     by the readers)",
                    py_repr(&obj["layout"])
                ),
            ));
        }
        let raw_landmarks = obj["landmarks"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default();
        if raw_landmarks.is_empty() {
            return Err(Error::spec(
                "landmarks",
                "landmarks: the list is empty, select at least one",
            ));
        }
        let mut landmarks = Vec::with_capacity(raw_landmarks.len());
        let mut seen = HashSet::with_capacity(raw_landmarks.len());
        for v in raw_landmarks {
            let i = int_of(v, "landmarks")?;
            if !(0..NUM_LANDMARKS as i128).contains(&i) {
                return Err(Error::spec(
                    "landmarks",
                    format!(
                        "landmarks: index {i} is outside the layout (0-{})",
                        NUM_LANDMARKS - 1
                    ),
                ));
            }
            if !seen.insert(i) {
                return Err(Error::spec(
                    "landmarks",
                    format!("landmarks: index {i} appears twice"),
                ));
            }
            landmarks.push(i as usize);
        }
        let coords = int_of(&obj["coords"], "coords")?;
        if coords != 2 && coords != 3 {
            return Err(Error::spec(
                "coords",
                format!("coords: must be 2 (x, y) or 3 (x, y, z), got {coords}"),
            ));
        }
        let max_len = int_of(&obj["max_len"], "max_len")?;
        if !(1..=MAX_LEN_LIMIT as i128).contains(&max_len) {
            return Err(Error::spec(
                "max_len",
                format!("max_len: must be between 1 and {MAX_LEN_LIMIT}, got {max_len}"),
            ));
        }
        let fit = match obj["fit"].as_str() {
            Some("truncate") => Fit::Truncate,
            Some("resample") => Fit::Resample,
            _ => {
                return Err(Error::spec(
                    "fit",
                    format!(
                        "fit: must be one of {}, got {}",
                        py_list(&FITS),
                        py_repr(&obj["fit"])
                    ),
                ))
            }
        };
        let raw_lags = obj["motion_lags"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default();
        let mut motion_lags = Vec::with_capacity(raw_lags.len());
        let mut prev = 0i128;
        for v in raw_lags {
            let k = int_of(v, "motion_lags")?;
            if k <= prev {
                let all: Vec<String> = raw_lags.iter().map(py_repr).collect();
                return Err(Error::spec(
                    "motion_lags",
                    format!(
                        "motion_lags: lags must be positive and strictly increasing, got [{}]",
                        all.join(", ")
                    ),
                ));
            }
            if k >= max_len {
                return Err(Error::spec(
                    "motion_lags",
                    format!("motion_lags: lag {k} must be smaller than max_len ({max_len})"),
                ));
            }
            motion_lags.push(k as usize);
            prev = k;
        }
        let Some(drop_empty_frames) = obj["drop_empty_frames"].as_bool() else {
            return Err(Error::spec(
                "drop_empty_frames",
                format!(
                    "drop_empty_frames: must be true or false, got {}",
                    py_repr(&obj["drop_empty_frames"])
                ),
            ));
        };
        let nan_fill = match &obj["nan_fill"] {
            Value::Number(n) => n.as_f64().unwrap_or(f64::NAN),
            Value::String(s) if s == NAN_TOKEN => f64::NAN,
            Value::String(s) if s == INF_TOKEN => f64::INFINITY,
            Value::String(s) if s == NEG_INF_TOKEN => f64::NEG_INFINITY,
            other => {
                return Err(Error::spec(
                    "nan_fill",
                    format!("nan_fill: must be a number, got {}", py_repr(other)),
                ))
            }
        };
        if !nan_fill.is_finite() {
            return Err(Error::spec(
                "nan_fill",
                format!(
                    "nan_fill: must be finite, got {}",
                    py_repr(&obj["nan_fill"])
                ),
            ));
        }
        let mut gather: Vec<(usize, usize)> =
            landmarks.iter().enumerate().map(|(p, &l)| (l, p)).collect();
        gather.sort_unstable();
        Ok(FeatureSpec {
            gather,
            landmarks,
            coords: coords as usize,
            normalize,
            max_len: max_len as usize,
            fit,
            motion_lags,
            drop_empty_frames,
            nan_fill,
        })
    }

    /// The JSON object of this spec (all keys, in DESIGN §3 order).
    pub fn to_value(&self) -> Value {
        let mut m = Map::new();
        m.insert("version".into(), Value::from(SPEC_VERSION));
        m.insert("layout".into(), Value::from(LAYOUT));
        m.insert("landmarks".into(), Value::from(self.landmarks.clone()));
        m.insert("coords".into(), Value::from(self.coords));
        let mut n = Map::new();
        match self.normalize {
            Normalize::ReferenceRms { reference } => {
                n.insert("kind".into(), Value::from("reference_rms"));
                n.insert("reference".into(), Value::from(reference));
            }
            Normalize::Shoulders => {
                n.insert("kind".into(), Value::from("shoulders"));
            }
            Normalize::None => {
                n.insert("kind".into(), Value::from("none"));
            }
        }
        m.insert("normalize".into(), Value::Object(n));
        m.insert("max_len".into(), Value::from(self.max_len));
        m.insert("fit".into(), Value::from(self.fit_name()));
        m.insert("motion_lags".into(), Value::from(self.motion_lags.clone()));
        m.insert(
            "drop_empty_frames".into(),
            Value::from(self.drop_empty_frames),
        );
        m.insert(
            "nan_fill".into(),
            serde_json::Number::from_f64(self.nan_fill).map_or(Value::Null, Value::Number),
        );
        Value::Object(m)
    }

    /// Serialise to JSON text, formatted like Python's `json.dumps(spec.to_dict())` (same key
    /// order, `", "` and `": "` separators, `nan_fill` written as Python writes a float), so
    /// `FeatureSpec.to_json()` and this agree character for character.
    pub fn to_json(&self) -> String {
        let mut s = String::with_capacity(64 + 6 * self.landmarks.len());
        s.push_str("{\"version\": 1, \"layout\": \"holistic-543\", \"landmarks\": ");
        write_int_list(&mut s, &self.landmarks);
        let _ = write!(s, ", \"coords\": {}, \"normalize\": ", self.coords);
        match self.normalize {
            Normalize::ReferenceRms { reference } => {
                let _ = write!(
                    s,
                    "{{\"kind\": \"reference_rms\", \"reference\": {reference}}}"
                );
            }
            Normalize::Shoulders => s.push_str("{\"kind\": \"shoulders\"}"),
            Normalize::None => s.push_str("{\"kind\": \"none\"}"),
        }
        let _ = write!(
            s,
            ", \"max_len\": {}, \"fit\": \"{}\", \"motion_lags\": ",
            self.max_len,
            self.fit_name()
        );
        write_int_list(&mut s, &self.motion_lags);
        let _ = write!(
            s,
            ", \"drop_empty_frames\": {}, \"nan_fill\": {}}}",
            self.drop_empty_frames,
            py_float_repr(self.nan_fill)
        );
        s
    }

    /// Layout indices selected, in output order.
    pub fn landmarks(&self) -> &[usize] {
        &self.landmarks
    }
    /// (layout index, output position) of every selected landmark, by layout index.
    pub fn gather_order(&self) -> &[(usize, usize)] {
        &self.gather
    }
    /// C: 2 (x, y) or 3 (x, y, z).
    pub fn coords(&self) -> usize {
        self.coords
    }
    /// The normalisation step.
    pub fn normalize(&self) -> Normalize {
        self.normalize
    }
    /// L: output frames.
    pub fn max_len(&self) -> usize {
        self.max_len
    }
    /// How clips longer than `max_len` are fitted.
    pub fn fit(&self) -> Fit {
        self.fit
    }
    /// Motion lags, strictly increasing, each in 1..max_len.
    pub fn motion_lags(&self) -> &[usize] {
        &self.motion_lags
    }
    /// Whether frames with no selected value are removed.
    pub fn drop_empty_frames(&self) -> bool {
        self.drop_empty_frames
    }
    /// The value missing outputs are replaced with.
    pub fn nan_fill(&self) -> f64 {
        self.nan_fill
    }
    /// P: selected points.
    pub fn num_points(&self) -> usize {
        self.landmarks.len()
    }
    /// C_out = C · (1 + number of lags).
    pub fn channels(&self) -> usize {
        self.coords * (1 + self.motion_lags.len())
    }
    /// F = P · C_out, the width of a feature row.
    pub fn num_features(&self) -> usize {
        self.num_points() * self.channels()
    }

    fn fit_name(&self) -> &'static str {
        match self.fit {
            Fit::Truncate => "truncate",
            Fit::Resample => "resample",
        }
    }
}

fn parse_normalize(value: &Value) -> Result<Normalize> {
    let Some(obj) = value.as_object() else {
        return Err(Error::spec(
            "normalize",
            format!(
                "normalize: must be an object like {{\"kind\": \"reference_rms\", \"reference\": \
                 17}}, got {}",
                py_repr(value)
            ),
        ));
    };
    if let Some(key) = obj
        .keys()
        .find(|k| k.as_str() != "kind" && k.as_str() != "reference")
    {
        return Err(Error::spec(
            format!("normalize.{key}"),
            format!("normalize.{key}: unknown key (known keys: kind, reference)"),
        ));
    }
    let Some(kind) = obj.get("kind") else {
        return Err(Error::spec("normalize.kind", "normalize.kind: missing key"));
    };
    let reference = obj.get("reference").filter(|v| !v.is_null());
    match kind.as_str() {
        Some("reference_rms") => {
            let Some(reference) = reference else {
                return Err(Error::spec(
                    "normalize.reference",
                    "normalize.reference: reference_rms needs a reference landmark index",
                ));
            };
            let r = int_of(reference, "normalize.reference")?;
            if !(0..NUM_LANDMARKS as i128).contains(&r) {
                return Err(Error::spec(
                    "normalize.reference",
                    format!(
                        "normalize.reference: index {r} is outside the layout (0-{})",
                        NUM_LANDMARKS - 1
                    ),
                ));
            }
            Ok(Normalize::ReferenceRms {
                reference: r as usize,
            })
        }
        Some(k @ ("shoulders" | "none")) => {
            if reference.is_some() {
                return Err(Error::spec(
                    "normalize.reference",
                    format!("normalize.reference: only reference_rms takes a reference, not '{k}'"),
                ));
            }
            Ok(if k == "shoulders" {
                Normalize::Shoulders
            } else {
                Normalize::None
            })
        }
        _ => Err(Error::spec(
            "normalize.kind",
            format!(
                "normalize.kind: unknown normalisation {}, expected one of {}",
                py_repr(kind),
                py_list(&NORMALIZE_KINDS)
            ),
        )),
    }
}

/// Python's `_int`: an integer that is not a bool (a JSON `1.0` is a float, not an integer).
fn int_of(value: &Value, name: &str) -> Result<i128> {
    if let Value::Number(n) = value {
        if let Some(i) = n.as_i64() {
            return Ok(i128::from(i));
        }
        if let Some(u) = n.as_u64() {
            return Ok(i128::from(u));
        }
    }
    Err(Error::spec(
        name,
        format!("{name} must be an integer, got {}", py_repr(value)),
    ))
}

fn write_int_list(s: &mut String, items: &[usize]) {
    s.push('[');
    for (i, v) in items.iter().enumerate() {
        if i > 0 {
            s.push_str(", ");
        }
        let _ = write!(s, "{v}");
    }
    s.push(']');
}

fn py_list(items: &[&str]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| format!("'{s}'")).collect();
    format!("[{}]", quoted.join(", "))
}

fn py_type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "NoneType",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_f64() => "float",
        Value::Number(_) => "int",
        Value::String(s) if s == NAN_TOKEN || s == INF_TOKEN || s == NEG_INF_TOKEN => "float",
        Value::String(_) => "str",
        Value::Array(_) => "list",
        Value::Object(_) => "dict",
    }
}

/// Roughly Python's `repr()` of a parsed JSON value, for messages.
fn py_repr(value: &Value) -> String {
    match value {
        Value::Null => "None".into(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => i.to_string(),
            (_, Some(u), _) => u.to_string(),
            (_, _, Some(f)) => py_float_repr(f),
            _ => n.to_string(),
        },
        Value::String(s) if s == NAN_TOKEN => "nan".into(),
        Value::String(s) if s == INF_TOKEN => "inf".into(),
        Value::String(s) if s == NEG_INF_TOKEN => "-inf".into(),
        Value::String(s) => format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'")),
        Value::Array(a) => {
            let items: Vec<String> = a.iter().map(py_repr).collect();
            format!("[{}]", items.join(", "))
        }
        Value::Object(o) => {
            let items: Vec<String> = o
                .iter()
                .map(|(k, v)| format!("'{k}': {}", py_repr(v)))
                .collect();
            format!("{{{}}}", items.join(", "))
        }
    }
}

/// Python's `repr(float)`: shortest round-trip digits, exponent form outside 1e-4 ..< 1e16.
pub(crate) fn py_float_repr(x: f64) -> String {
    if x.is_nan() {
        return "NaN".into();
    }
    if x.is_infinite() {
        return if x > 0.0 {
            "Infinity".into()
        } else {
            "-Infinity".into()
        };
    }
    if x == 0.0 {
        return if x.is_sign_negative() {
            "-0.0".into()
        } else {
            "0.0".into()
        };
    }
    let sci = format!("{x:e}"); // e.g. "-1.2345e-7", shortest round-trip digits
    let (mantissa, exp) = sci.split_once('e').unwrap_or((sci.as_str(), "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let (sign, mantissa) = mantissa
        .strip_prefix('-')
        .map_or(("", mantissa), |m| ("-", m));
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    if (-4..16).contains(&exp) {
        let n = digits.len() as i32;
        if exp < 0 {
            format!("{sign}0.{}{digits}", "0".repeat((-exp - 1) as usize))
        } else if exp + 1 >= n {
            format!("{sign}{digits}{}.0", "0".repeat((exp + 1 - n) as usize))
        } else {
            let (a, b) = digits.split_at((exp + 1) as usize);
            format!("{sign}{a}.{b}")
        }
    } else {
        let m = if digits.len() > 1 {
            format!("{}.{}", &digits[..1], &digits[1..])
        } else {
            digits
        };
        format!(
            "{sign}{m}e{}{:02}",
            if exp < 0 { '-' } else { '+' },
            exp.abs()
        )
    }
}

/// Rewrite the bare tokens `NaN`, `Infinity`, `-Infinity` (outside strings) into stand-in
/// strings, so that serde_json parses what Python's json parses.
fn rewrite_nonfinite_tokens(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.contains("NaN") && !text.contains("Infinity") {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 32);
    let mut rest = text;
    let mut in_string = false;
    while let Some(c) = rest.chars().next() {
        if in_string {
            if c == '\\' {
                let mut it = rest.chars();
                out.push(it.next().unwrap_or('\\'));
                if let Some(n) = it.next() {
                    out.push(n);
                }
                rest = it.as_str();
                continue;
            }
            if c == '"' {
                in_string = false;
            }
        } else if c == '"' {
            in_string = true;
        } else {
            let token = [
                ("-Infinity", NEG_INF_TOKEN),
                ("Infinity", INF_TOKEN),
                ("NaN", NAN_TOKEN),
            ]
            .into_iter()
            .find(|(t, _)| rest.starts_with(t));
            if let Some((t, stand_in)) = token {
                out.push('"');
                out.push_str(&stand_in.replace('\u{0}', "\\u0000"));
                out.push('"');
                rest = &rest[t.len()..];
                continue;
            }
        }
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    std::borrow::Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Value {
        serde_json::json!({
            "version": 1, "layout": "holistic-543", "landmarks": [0, 17, 468],
            "coords": 2, "normalize": {"kind": "reference_rms", "reference": 17},
            "max_len": 8, "fit": "truncate", "motion_lags": [1, 2],
            "drop_empty_frames": true, "nan_fill": 0.0
        })
    }

    fn field_of(v: &Value) -> Option<String> {
        match FeatureSpec::from_value(v) {
            Err(Error::Spec { field, .. }) => field,
            other => panic!("expected a spec error, got {other:?}"),
        }
    }

    fn with(key: &str, val: Value) -> Value {
        let mut v = base();
        v[key] = val;
        v
    }

    #[test]
    fn base_parses_and_round_trips() {
        let s = FeatureSpec::from_value(&base()).unwrap();
        assert_eq!(s.num_points(), 3);
        assert_eq!(s.channels(), 6);
        assert_eq!(s.num_features(), 18);
        let again = FeatureSpec::from_json(&s.to_json()).unwrap();
        assert_eq!(s, again);
        assert_eq!(
            serde_json::from_str::<Value>(&s.to_json()).unwrap(),
            s.to_value()
        );
    }

    #[test]
    fn to_json_matches_python_format() {
        let s = FeatureSpec::from_value(&base()).unwrap();
        assert_eq!(
            s.to_json(),
            "{\"version\": 1, \"layout\": \"holistic-543\", \"landmarks\": [0, 17, 468], \
             \"coords\": 2, \"normalize\": {\"kind\": \"reference_rms\", \"reference\": 17}, \
             \"max_len\": 8, \"fit\": \"truncate\", \"motion_lags\": [1, 2], \
             \"drop_empty_frames\": true, \"nan_fill\": 0.0}"
        );
    }

    #[test]
    fn float_repr_like_python() {
        for (x, want) in [
            (0.0, "0.0"),
            (-1.5, "-1.5"),
            (1e-5, "1e-05"),
            (0.0001, "0.0001"),
            (1e16, "1e+16"),
            (123.25, "123.25"),
            (1e15, "1000000000000000.0"),
            (0.1, "0.1"),
            (-2.5e-7, "-2.5e-07"),
            (1.2345678901234567e20, "1.2345678901234567e+20"),
        ] {
            assert_eq!(py_float_repr(x), want, "{x}");
        }
    }

    #[test]
    fn errors_name_the_field() {
        let cases: Vec<(Value, Option<&str>)> = vec![
            (serde_json::json!([1, 2]), None),
            (with("extra", Value::from(1)), Some("extra")),
            (with("version", Value::from(2)), Some("version")),
            (with("version", Value::from(true)), Some("version")),
            (with("version", Value::from(1.0)), Some("version")),
            (with("layout", Value::from("mediapipe")), Some("layout")),
            (with("layout", Value::from(5)), Some("layout")),
            (with("landmarks", serde_json::json!([])), Some("landmarks")),
            (
                with("landmarks", serde_json::json!([543])),
                Some("landmarks"),
            ),
            (
                with("landmarks", serde_json::json!([-1])),
                Some("landmarks"),
            ),
            (
                with("landmarks", serde_json::json!([1, 1])),
                Some("landmarks"),
            ),
            (
                with("landmarks", serde_json::json!([true])),
                Some("landmarks"),
            ),
            (
                with("landmarks", serde_json::json!("0,1")),
                Some("landmarks"),
            ),
            (with("coords", Value::from(4)), Some("coords")),
            (with("coords", Value::from(2.0)), Some("coords")),
            (with("normalize", Value::from("none")), Some("normalize")),
            (
                with("normalize", serde_json::json!({"kind": "zscore"})),
                Some("normalize.kind"),
            ),
            (
                with("normalize", serde_json::json!({})),
                Some("normalize.kind"),
            ),
            (
                with("normalize", serde_json::json!({"kind": "none", "scale": 1})),
                Some("normalize.scale"),
            ),
            (
                with("normalize", serde_json::json!({"kind": "reference_rms"})),
                Some("normalize.reference"),
            ),
            (
                with(
                    "normalize",
                    serde_json::json!({"kind": "reference_rms", "reference": 600}),
                ),
                Some("normalize.reference"),
            ),
            (
                with(
                    "normalize",
                    serde_json::json!({"kind": "shoulders", "reference": 1}),
                ),
                Some("normalize.reference"),
            ),
            (with("max_len", Value::from(0)), Some("max_len")),
            (with("max_len", Value::from(4097)), Some("max_len")),
            (with("fit", Value::from("pad")), Some("fit")),
            (
                with("motion_lags", serde_json::json!([2, 1])),
                Some("motion_lags"),
            ),
            (
                with("motion_lags", serde_json::json!([0])),
                Some("motion_lags"),
            ),
            (
                with("motion_lags", serde_json::json!([8])),
                Some("motion_lags"),
            ),
            (
                with("drop_empty_frames", Value::from(1)),
                Some("drop_empty_frames"),
            ),
            (with("nan_fill", Value::from(true)), Some("nan_fill")),
            (with("nan_fill", Value::from("0")), Some("nan_fill")),
        ];
        for (doc, want) in cases {
            assert_eq!(field_of(&doc).as_deref(), want, "{doc}");
        }
        let mut missing = base();
        missing.as_object_mut().unwrap().remove("fit");
        assert_eq!(field_of(&missing).as_deref(), Some("fit"));
    }

    #[test]
    fn shoulders_accepts_null_reference() {
        let v = with(
            "normalize",
            serde_json::json!({"kind": "shoulders", "reference": null}),
        );
        assert_eq!(
            FeatureSpec::from_value(&v).unwrap().normalize(),
            Normalize::Shoulders
        );
    }

    #[test]
    fn nonfinite_tokens_like_python() {
        let text = base()
            .to_string()
            .replace("\"nan_fill\":0.0", "\"nan_fill\":NaN");
        assert!(text.contains("NaN"));
        match FeatureSpec::from_json(&text) {
            Err(Error::Spec { field, message }) => {
                assert_eq!(field.as_deref(), Some("nan_fill"));
                assert!(message.contains("finite"), "{message}");
            }
            other => panic!("{other:?}"),
        }
        let text = base()
            .to_string()
            .replace("\"max_len\":8", "\"max_len\":-Infinity");
        let err = FeatureSpec::from_json(&text).unwrap_err();
        assert!(matches!(err, Error::Spec { field: Some(f), .. } if f == "max_len"));
        // Inside strings the tokens are left alone.
        let text = base().to_string().replace("\"truncate\"", "\"NaN\"");
        let err = FeatureSpec::from_json(&text).unwrap_err();
        assert!(matches!(err, Error::Spec { field: Some(f), .. } if f == "fit"));
    }

    #[test]
    fn first_unknown_key_in_document_order() {
        let text = r#"{"zzz": 1, "aaa": 2, "version": 1}"#;
        let err = FeatureSpec::from_json(text).unwrap_err();
        assert!(matches!(err, Error::Spec { field: Some(f), .. } if f == "zzz"));
    }

    #[test]
    fn invalid_json_is_a_document_error() {
        let err = FeatureSpec::from_json("{not json").unwrap_err();
        assert!(matches!(err, Error::Spec { field: None, .. }));
    }
}
