//! FeatureSpec: the preprocessing contract (DESIGN §3), implemented once.
//!
//! Validation, the JSON forms (the model-file form and the canonical form), the fingerprint
//! and the presets live here and nowhere else: the Python `signrt.FeatureSpec` is a typed
//! view built through the extension, and the bindings convert Python objects into the same
//! [`Doc`] tree that JSON text parses into, so one set of rules and one set of messages
//! serves both.
//!
//! Every rejection is an [`Error::Spec`] whose `field` is the field path (`"landmarks"`,
//! `"normalize.kind"`) and whose one-line message starts with the exact location
//! (`landmarks[3]: ...`), says what was expected and what was found.

use std::collections::HashMap;

use serde::Serialize;
use sha2::{Digest, Sha256};

pub use crate::doc::{Doc, MAX_JSON_BYTES};
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
/// Upper bound on the number of motion lags.
pub const MAX_LAGS: usize = 16;
/// Upper bound on `max_len × num_features`, the float32 values of one preprocessed clip
/// (2^25: 128 MiB). Larger specs are a mistake, and would make every clip an allocation of
/// gigabytes.
pub const MAX_VALUES_PER_CLIP: usize = 1 << 25;
/// Layout indices of the left and right shoulder (pose 11 and 12).
pub const SHOULDERS: [usize; 2] = [500, 501];

/// The keys of a FeatureSpec document, in DESIGN §3 order.
pub const KEYS: [&str; 10] = [
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
const NORMALIZE_KEYS: [&str; 2] = ["kind", "reference"];

/// The names [`FeatureSpec::preset`] accepts, sorted.
pub const PRESETS: [&str; 3] = ["hands_pose", "islr118", "parts4"];

// What each field must be, said once: the tail of every message about the field.
const EXPECT_VERSION: &str = "1 (the spec format version this signrt reads)";
const EXPECT_LAYOUT: &str = "\"holistic-543\" (other layouts are adapted by the readers)";
const EXPECT_INDEX: &str = "a layout index, an integer in 0..=542";
const EXPECT_LANDMARKS: &str = "a non-empty list of distinct layout indices (integers in 0..=542)";
const EXPECT_COORDS: &str = "2 (x, y) or 3 (x, y, z)";
const EXPECT_NORMALIZE: &str = "an object like {\"kind\": \"reference_rms\", \"reference\": 17}";
const EXPECT_KIND: &str = "one of \"reference_rms\", \"shoulders\", \"none\"";
const EXPECT_MAX_LEN: &str = "an integer in 1..=4096";
const EXPECT_FIT: &str = "\"truncate\" or \"resample\"";
const EXPECT_LAGS: &str = "a list of at most 16 strictly increasing lags, each in 1..max_len";
const EXPECT_DROP: &str = "true or false";
const EXPECT_NAN_FILL: &str = "a finite number";

fn expectation(key: &str) -> &'static str {
    match key {
        "version" => EXPECT_VERSION,
        "layout" => EXPECT_LAYOUT,
        "landmarks" => EXPECT_LANDMARKS,
        "coords" => EXPECT_COORDS,
        "normalize" => EXPECT_NORMALIZE,
        "max_len" => EXPECT_MAX_LEN,
        "fit" => EXPECT_FIT,
        "motion_lags" => EXPECT_LAGS,
        "drop_empty_frames" => EXPECT_DROP,
        "nan_fill" => EXPECT_NAN_FILL,
        "normalize.kind" => EXPECT_KIND,
        _ => "nothing",
    }
}

/// The one shape of a rejection: `{location}: expected {expected}, got {value}`.
fn invalid(field: &str, location: &str, expected: &str, got: &Doc) -> Error {
    Error::spec(
        field,
        format!("{location}: expected {expected}, got {}", got.describe()),
    )
}

fn missing(field: &str) -> Error {
    Error::spec(
        field,
        format!("{field}: missing key, expected {}", expectation(field)),
    )
}

fn unknown(field: &str, known: &[&str]) -> Error {
    Error::spec(
        field,
        format!(
            "{field}: unknown key, expected one of the keys {}",
            known.join(", ")
        ),
    )
}

/// Step 3 of the spec: how landmarks are centred and scaled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
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

impl Normalize {
    /// The `kind` of the JSON form.
    pub fn kind(self) -> &'static str {
        match self {
            Normalize::ReferenceRms { .. } => "reference_rms",
            Normalize::Shoulders => "shoulders",
            Normalize::None => "none",
        }
    }

    /// The reference landmark (only `reference_rms` has one).
    pub fn reference(self) -> Option<usize> {
        match self {
            Normalize::ReferenceRms { reference } => Some(reference),
            _ => None,
        }
    }

    /// Validate the `normalize` object of a spec. A `"reference": null` is the same as no
    /// reference.
    ///
    /// # Errors
    /// [`Error::Spec`] with the field `normalize`, `normalize.kind`, `normalize.reference`
    /// or `normalize.<unknown key>`.
    pub fn from_doc(doc: &Doc) -> Result<Normalize> {
        let Doc::Map(entries) = doc else {
            return Err(invalid("normalize", "normalize", EXPECT_NORMALIZE, doc));
        };
        if let Some((key, _)) = entries
            .iter()
            .find(|(k, _)| !NORMALIZE_KEYS.contains(&k.as_str()))
        {
            return Err(unknown(&format!("normalize.{key}"), &NORMALIZE_KEYS));
        }
        let kind = doc.get("kind").ok_or_else(|| missing("normalize.kind"))?;
        let reference = doc.get("reference").filter(|r| **r != Doc::Null);
        match (kind, reference) {
            (Doc::Str(k), Some(r)) if k == "reference_rms" => {
                let i = index(r, "normalize.reference", "normalize.reference")?;
                Ok(Normalize::ReferenceRms { reference: i })
            }
            (Doc::Str(k), None) if k == "reference_rms" => Err(Error::spec(
                "normalize.reference",
                format!(
                    "normalize.reference: missing key, expected {EXPECT_INDEX} (reference_rms \
                     centres on that landmark; 17 is the lower-lip centre)"
                ),
            )),
            (Doc::Str(k), r) if k == "shoulders" || k == "none" => match r {
                Some(r) => Err(invalid(
                    "normalize.reference",
                    "normalize.reference",
                    &format!("no reference for kind \"{k}\" (only reference_rms takes one)"),
                    r,
                )),
                None if k == "shoulders" => Ok(Normalize::Shoulders),
                None => Ok(Normalize::None),
            },
            (other, _) => Err(invalid(
                "normalize.kind",
                "normalize.kind",
                EXPECT_KIND,
                other,
            )),
        }
    }

    fn to_doc(self) -> Doc {
        let mut entries = vec![("kind".to_owned(), Doc::Str(self.kind().to_owned()))];
        if let Some(r) = self.reference() {
            entries.push(("reference".to_owned(), Doc::Int(r as i128)));
        }
        Doc::Map(entries)
    }
}

/// Step 4 of the spec: how a clip longer than `max_len` is fitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Fit {
    /// Keep the first `max_len` frames.
    Truncate,
    /// Linearly interpolate onto `max_len` evenly spaced positions.
    Resample,
}

impl Fit {
    /// The name of the JSON form.
    pub fn name(self) -> &'static str {
        match self {
            Fit::Truncate => "truncate",
            Fit::Resample => "resample",
        }
    }
}

/// An integer of the document, or `None` for any other value (a bool or a float with an
/// integral value is not an integer).
fn int_of(doc: &Doc) -> Option<i128> {
    match doc {
        Doc::Int(i) => Some(*i),
        _ => None,
    }
}

/// A layout index (0..543).
fn index(doc: &Doc, field: &str, location: &str) -> Result<usize> {
    match int_of(doc) {
        Some(i) if (0..NUM_LANDMARKS as i128).contains(&i) => Ok(i as usize),
        _ => Err(invalid(field, location, EXPECT_INDEX, doc)),
    }
}

/// A validated FeatureSpec. Construct with [`FeatureSpec::from_json`],
/// [`FeatureSpec::from_doc`], [`FeatureSpec::preset`] or [`FeatureSpec::new`].
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
    /// Build and validate a spec from its parts (through the same rules as a document).
    ///
    /// # Errors
    /// [`Error::Spec`] naming the part at fault.
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
        let ints = |v: &[usize]| Doc::List(v.iter().map(|&i| Doc::Int(i as i128)).collect());
        let doc = Doc::Map(vec![
            ("version".into(), Doc::Int(i128::from(SPEC_VERSION))),
            ("layout".into(), Doc::Str(LAYOUT.into())),
            ("landmarks".into(), ints(&landmarks)),
            ("coords".into(), Doc::Int(coords as i128)),
            ("normalize".into(), normalize.to_doc()),
            ("max_len".into(), Doc::Int(max_len as i128)),
            ("fit".into(), Doc::Str(fit.name().into())),
            ("motion_lags".into(), ints(&motion_lags)),
            ("drop_empty_frames".into(), Doc::Bool(drop_empty_frames)),
            ("nan_fill".into(), Doc::Float(nan_fill)),
        ]);
        FeatureSpec::from_doc(&doc)
    }

    /// Parse and validate a spec from JSON text (strict JSON, see [`Doc::from_json`]).
    ///
    /// # Errors
    /// [`Error::Spec`]: without a field when the text is not JSON, else naming the field.
    pub fn from_json(text: &str) -> Result<Self> {
        FeatureSpec::from_doc(&Doc::from_json(text)?)
    }

    /// Parse and validate a spec from UTF-8 JSON bytes.
    ///
    /// # Errors
    /// As [`FeatureSpec::from_json`], and when the bytes are not UTF-8.
    pub fn from_json_bytes(bytes: &[u8]) -> Result<Self> {
        FeatureSpec::from_doc(&Doc::from_json_bytes(bytes)?)
    }

    /// Validate a document: the one implementation of the rules of DESIGN §3.
    ///
    /// Order: the document is an object; no unknown key (the first in document order is
    /// named); no missing key (DESIGN order); then each field in DESIGN order; then the size
    /// limit over several fields.
    ///
    /// # Errors
    /// [`Error::Spec`] naming the field path; the message starts with the exact location.
    pub fn from_doc(doc: &Doc) -> Result<Self> {
        let Doc::Map(entries) = doc else {
            return Err(Error::spec_doc(format!(
                "a FeatureSpec must be a JSON object, got {}",
                doc.describe()
            )));
        };
        if let Some((key, _)) = entries.iter().find(|(k, _)| !KEYS.contains(&k.as_str())) {
            return Err(unknown(key, &KEYS));
        }
        let field = |key: &str| doc.get(key).ok_or_else(|| missing(key));
        for key in KEYS {
            field(key)?;
        }

        let version = field("version")?;
        if int_of(version) != Some(i128::from(SPEC_VERSION)) {
            return Err(invalid("version", "version", EXPECT_VERSION, version));
        }
        let layout = field("layout")?;
        if !matches!(layout, Doc::Str(s) if s == LAYOUT) {
            return Err(invalid("layout", "layout", EXPECT_LAYOUT, layout));
        }
        let landmarks = parse_landmarks(field("landmarks")?)?;
        let coords = field("coords")?;
        let coords = match int_of(coords) {
            Some(c @ (2 | 3)) => c as usize,
            _ => return Err(invalid("coords", "coords", EXPECT_COORDS, coords)),
        };
        let normalize = Normalize::from_doc(field("normalize")?)?;
        let max_len = field("max_len")?;
        let max_len = match int_of(max_len) {
            Some(l) if (1..=MAX_LEN_LIMIT as i128).contains(&l) => l as usize,
            _ => return Err(invalid("max_len", "max_len", EXPECT_MAX_LEN, max_len)),
        };
        let fit = match field("fit")? {
            Doc::Str(s) if s == "truncate" => Fit::Truncate,
            Doc::Str(s) if s == "resample" => Fit::Resample,
            other => return Err(invalid("fit", "fit", EXPECT_FIT, other)),
        };
        let motion_lags = parse_lags(field("motion_lags")?, max_len)?;
        let drop_empty_frames = match field("drop_empty_frames")? {
            Doc::Bool(b) => *b,
            other => {
                return Err(invalid(
                    "drop_empty_frames",
                    "drop_empty_frames",
                    EXPECT_DROP,
                    other,
                ))
            }
        };
        let nan_fill = match field("nan_fill")? {
            Doc::Int(i) => *i as f64,
            Doc::Float(x) if x.is_finite() => *x,
            other => return Err(invalid("nan_fill", "nan_fill", EXPECT_NAN_FILL, other)),
        };
        // -0.0 fills like 0.0 and compares equal to it: store one form, so that equal specs
        // have equal JSON and fingerprints.
        let nan_fill = if nan_fill == 0.0 { 0.0 } else { nan_fill };

        let features = landmarks.len() * coords * (1 + motion_lags.len());
        if max_len * features > MAX_VALUES_PER_CLIP {
            return Err(Error::spec(
                "max_len",
                format!(
                    "max_len: expected max_len x num_features <= {MAX_VALUES_PER_CLIP} values \
                     per clip (128 MiB of float32), got {max_len} x {features} = {} ({} \
                     landmarks x {coords} coords x {} channel groups); shorten max_len or \
                     select fewer landmarks, coords or motion_lags",
                    max_len * features,
                    landmarks.len(),
                    1 + motion_lags.len()
                ),
            ));
        }

        let mut gather: Vec<(usize, usize)> =
            landmarks.iter().enumerate().map(|(p, &l)| (l, p)).collect();
        gather.sort_unstable();
        Ok(FeatureSpec {
            landmarks,
            gather,
            coords,
            normalize,
            max_len,
            fit,
            motion_lags,
            drop_empty_frames,
            nan_fill,
        })
    }

    /// A named preset (DESIGN §3):
    /// * `islr118`: the Kaggle ASL Signs 1st-place landmark set (40 lips, left hand, right
    ///   hand, 4 nose, 16 + 16 eyes), xy, reference_rms on the lower-lip centre (17),
    ///   lags [1, 2], max_len 64, truncate;
    /// * `hands_pose`: upper-body pose (489–513) and both hands, shoulders normalisation,
    ///   for data without a face (otherwise as islr118);
    /// * `parts4`: upper-body pose, the 76 islr118 face points, right hand, left hand,
    ///   ordered by body part for models that tokenise by part (otherwise as islr118).
    ///
    /// # Errors
    /// [`Error::Spec`] (no field) for a name not in [`PRESETS`].
    pub fn preset(name: &str) -> Result<Self> {
        let landmarks: Vec<usize> = match name {
            "islr118" => [
                &LIPS[..],
                &LEFT_HAND,
                &RIGHT_HAND,
                &NOSE,
                &RIGHT_EYE,
                &LEFT_EYE,
            ]
            .concat(),
            "hands_pose" => [&POSE_UPPER[..], &LEFT_HAND, &RIGHT_HAND].concat(),
            "parts4" => [
                &POSE_UPPER[..],
                &LIPS,
                &NOSE,
                &RIGHT_EYE,
                &LEFT_EYE,
                &RIGHT_HAND,
                &LEFT_HAND,
            ]
            .concat(),
            _ => {
                return Err(Error::spec_doc(format!(
                    "unknown preset {}, expected one of {}",
                    crate::doc::quote(name),
                    PRESETS.join(", ")
                )))
            }
        };
        let normalize = if name == "hands_pose" {
            Normalize::Shoulders
        } else {
            Normalize::ReferenceRms { reference: 17 }
        };
        FeatureSpec::new(
            landmarks,
            2,
            normalize,
            64,
            Fit::Truncate,
            vec![1, 2],
            true,
            0.0,
        )
    }

    /// The spec as compact JSON text, keys in DESIGN §3 order: the form stored in model files.
    pub fn to_json(&self) -> String {
        // Serialising a struct of numbers and strings into memory cannot fail.
        serde_json::to_string(&self.json_doc()).unwrap_or_default()
    }

    /// The spec as JSON text indented by `indent` spaces, keys in DESIGN §3 order.
    pub fn to_json_pretty(&self, indent: usize) -> String {
        let pad = vec![b' '; indent];
        let mut out = Vec::with_capacity(256 + 8 * self.landmarks.len());
        let fmt = serde_json::ser::PrettyFormatter::with_indent(&pad);
        let mut ser = serde_json::Serializer::with_formatter(&mut out, fmt);
        match self.json_doc().serialize(&mut ser) {
            Ok(()) => String::from_utf8(out).unwrap_or_default(),
            Err(_) => String::new(),
        }
    }

    /// The canonical JSON: keys sorted, no white space, numbers as serde_json writes them
    /// (shortest round-trip form). [`FeatureSpec::fingerprint`] hashes it.
    pub fn canonical_json(&self) -> String {
        let n = self.normalize;
        let doc = CanonicalDoc {
            coords: self.coords,
            drop_empty_frames: self.drop_empty_frames,
            fit: self.fit.name(),
            landmarks: &self.landmarks,
            layout: LAYOUT,
            max_len: self.max_len,
            motion_lags: &self.motion_lags,
            nan_fill: self.nan_fill,
            normalize: NormalizeDoc {
                kind: n.kind(),
                reference: n.reference(),
            },
            version: SPEC_VERSION,
        };
        serde_json::to_string(&doc).unwrap_or_default()
    }

    /// A stable 16-hex-digit hash: the first 8 bytes of the SHA-256 of the canonical JSON.
    /// Equal specs share it, however their JSON was formatted.
    pub fn fingerprint(&self) -> String {
        let digest = Sha256::digest(self.canonical_json().as_bytes());
        digest[..8].iter().map(|b| format!("{b:02x}")).collect()
    }

    fn json_doc(&self) -> JsonDoc<'_> {
        JsonDoc {
            version: SPEC_VERSION,
            layout: LAYOUT,
            landmarks: &self.landmarks,
            coords: self.coords,
            normalize: NormalizeDoc {
                kind: self.normalize.kind(),
                reference: self.normalize.reference(),
            },
            max_len: self.max_len,
            fit: self.fit.name(),
            motion_lags: &self.motion_lags,
            drop_empty_frames: self.drop_empty_frames,
            nan_fill: self.nan_fill,
        }
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
    /// The value missing outputs are replaced with (finite; never -0.0).
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
}

impl Eq for FeatureSpec {}

impl std::hash::Hash for FeatureSpec {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        // nan_fill is finite and never -0.0, so equal values have equal bits.
        self.landmarks.hash(state);
        self.coords.hash(state);
        self.normalize.hash(state);
        self.max_len.hash(state);
        self.fit.hash(state);
        self.motion_lags.hash(state);
        self.drop_empty_frames.hash(state);
        self.nan_fill.to_bits().hash(state);
    }
}

fn parse_landmarks(doc: &Doc) -> Result<Vec<usize>> {
    let items = match doc {
        Doc::List(items) if !items.is_empty() => items,
        other => return Err(invalid("landmarks", "landmarks", EXPECT_LANDMARKS, other)),
    };
    if items.len() > NUM_LANDMARKS {
        return Err(invalid(
            "landmarks",
            "landmarks",
            "at most 543 layout indices (each index once)",
            doc,
        ));
    }
    let mut first_at: HashMap<usize, usize> = HashMap::with_capacity(items.len());
    let mut landmarks = Vec::with_capacity(items.len());
    for (pos, item) in items.iter().enumerate() {
        let i = index(item, "landmarks", &format!("landmarks[{pos}]"))?;
        if let Some(first) = first_at.insert(i, pos) {
            return Err(invalid(
                "landmarks",
                &format!("landmarks[{pos}]"),
                &format!("each layout index once ({i} is already landmarks[{first}])"),
                item,
            ));
        }
        landmarks.push(i);
    }
    Ok(landmarks)
}

fn parse_lags(doc: &Doc, max_len: usize) -> Result<Vec<usize>> {
    let Doc::List(items) = doc else {
        return Err(invalid("motion_lags", "motion_lags", EXPECT_LAGS, doc));
    };
    if items.len() > MAX_LAGS {
        return Err(invalid(
            "motion_lags",
            "motion_lags",
            "at most 16 lags",
            doc,
        ));
    }
    let mut lags: Vec<usize> = Vec::with_capacity(items.len());
    for (pos, item) in items.iter().enumerate() {
        let location = format!("motion_lags[{pos}]");
        let prev = lags.last().copied().unwrap_or(0);
        let expected = match lags.last() {
            Some(p) => format!(
                "a lag greater than the one before ({p}) and smaller than max_len ({max_len})"
            ),
            None => format!("a lag in 1..max_len (max_len is {max_len})"),
        };
        match int_of(item) {
            Some(k) if k > prev as i128 && k < max_len as i128 => lags.push(k as usize),
            _ => return Err(invalid("motion_lags", &location, &expected, item)),
        }
    }
    Ok(lags)
}

/// The model-file JSON form, fields in DESIGN §3 order.
#[derive(Serialize)]
struct JsonDoc<'a> {
    version: i64,
    layout: &'a str,
    landmarks: &'a [usize],
    coords: usize,
    normalize: NormalizeDoc,
    max_len: usize,
    fit: &'a str,
    motion_lags: &'a [usize],
    drop_empty_frames: bool,
    nan_fill: f64,
}

/// The canonical form: the same fields with the keys in sorted order (declaration order is
/// serialisation order; a test checks that it is sorted).
#[derive(Serialize)]
struct CanonicalDoc<'a> {
    coords: usize,
    drop_empty_frames: bool,
    fit: &'a str,
    landmarks: &'a [usize],
    layout: &'a str,
    max_len: usize,
    motion_lags: &'a [usize],
    nan_fill: f64,
    normalize: NormalizeDoc,
    version: i64,
}

#[derive(Serialize)]
struct NormalizeDoc {
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    reference: Option<usize>,
}

// ------------------------------------------------------------------------ preset parts
/// Lip contour (outer and inner), 40 points, in the order of the Kaggle 1st-place solution.
const LIPS: [usize; 40] = [
    61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291, 146, 91, 181, 84, 17, 314, 405, 321, 375, 78,
    191, 80, 81, 82, 13, 312, 311, 310, 415, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308,
];
const NOSE: [usize; 4] = [1, 2, 98, 327];
/// The subject's right eye contour.
const RIGHT_EYE: [usize; 16] = [
    33, 7, 163, 144, 145, 153, 154, 155, 133, 246, 161, 160, 159, 158, 157, 173,
];
/// The subject's left eye contour.
const LEFT_EYE: [usize; 16] = [
    263, 249, 390, 373, 374, 380, 381, 382, 362, 466, 388, 387, 386, 385, 384, 398,
];
const LEFT_HAND: [usize; 21] = range_array::<21>(468);
const RIGHT_HAND: [usize; 21] = range_array::<21>(522);
/// Upper-body pose: MediaPipe pose landmarks 0–24 (489–513).
const POSE_UPPER: [usize; 25] = range_array::<25>(489);

const fn range_array<const N: usize>(start: usize) -> [usize; N] {
    let mut out = [0; N];
    let mut i = 0;
    while i < N {
        out[i] = start + i;
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn base() -> Doc {
        Doc::from_json(
            r#"{"version": 1, "layout": "holistic-543", "landmarks": [0, 17, 468],
                "coords": 2, "normalize": {"kind": "reference_rms", "reference": 17},
                "max_len": 8, "fit": "truncate", "motion_lags": [1, 2],
                "drop_empty_frames": true, "nan_fill": 0.0}"#,
        )
        .unwrap()
    }

    /// `base()` with `key` set to the JSON `value` (or removed when `value` is empty).
    fn with(key: &str, value: &str) -> Doc {
        let Doc::Map(mut entries) = base() else {
            unreachable!()
        };
        entries.retain(|(k, _)| k != key);
        if !value.is_empty() {
            entries.push((key.to_owned(), Doc::from_json(value).unwrap()));
        }
        Doc::Map(entries)
    }

    fn rejection(doc: &Doc) -> (Option<String>, String) {
        match FeatureSpec::from_doc(doc) {
            Err(Error::Spec { field, message }) => (field, message),
            other => panic!("expected a spec error, got {other:?}"),
        }
    }

    #[test]
    fn base_parses_and_round_trips() {
        let s = FeatureSpec::from_doc(&base()).unwrap();
        assert_eq!((s.num_points(), s.channels(), s.num_features()), (3, 6, 18));
        assert_eq!(FeatureSpec::from_json(&s.to_json()).unwrap(), s);
        for indent in [0, 2, 4] {
            assert_eq!(
                FeatureSpec::from_json(&s.to_json_pretty(indent)).unwrap(),
                s
            );
        }
        assert_eq!(
            s.to_json(),
            "{\"version\":1,\"layout\":\"holistic-543\",\"landmarks\":[0,17,468],\"coords\":2,\
             \"normalize\":{\"kind\":\"reference_rms\",\"reference\":17},\"max_len\":8,\
             \"fit\":\"truncate\",\"motion_lags\":[1,2],\"drop_empty_frames\":true,\
             \"nan_fill\":0.0}"
        );
        assert!(s
            .to_json_pretty(2)
            .contains("\n  \"layout\": \"holistic-543\""));
    }

    #[test]
    fn the_model_file_form_of_earlier_versions_loads() {
        // What the bundled demo models carry (Python json.dumps layout).
        let text = "{\"version\": 1, \"layout\": \"holistic-543\", \"landmarks\": [0, 17, 468], \
                    \"coords\": 2, \"normalize\": {\"kind\": \"reference_rms\", \"reference\": \
                    17}, \"max_len\": 8, \"fit\": \"truncate\", \"motion_lags\": [1, 2], \
                    \"drop_empty_frames\": true, \"nan_fill\": 0.0}";
        assert_eq!(
            FeatureSpec::from_json(text).unwrap(),
            FeatureSpec::from_doc(&base()).unwrap()
        );
    }

    #[test]
    fn canonical_json_has_sorted_keys_and_pinned_fingerprint() {
        let s = FeatureSpec::preset("islr118").unwrap();
        let Doc::Map(entries) = Doc::from_json(&s.canonical_json()).unwrap() else {
            panic!()
        };
        let keys: Vec<&str> = entries.iter().map(|(k, _)| k.as_str()).collect();
        let mut sorted = keys.clone();
        sorted.sort_unstable();
        assert_eq!(keys, sorted);
        assert_eq!(keys.len(), KEYS.len());
        assert!(!s.canonical_json().contains(' '));
        // Pinned: the fingerprint keys every feature cache and is stored in model info. It
        // equals what earlier versions computed with Python's json.dumps(sort_keys=True).
        assert_eq!(s.fingerprint(), "1e2cb7bed66d1c20");
    }

    #[test]
    fn presets_are_the_design_sets() {
        let islr = FeatureSpec::preset("islr118").unwrap();
        assert_eq!(islr.num_points(), 118);
        assert_eq!(islr.num_features(), 708);
        assert_eq!(islr.landmarks()[..40], LIPS);
        assert_eq!(islr.normalize(), Normalize::ReferenceRms { reference: 17 });
        let hp = FeatureSpec::preset("hands_pose").unwrap();
        assert_eq!(hp.num_points(), 25 + 42);
        assert_eq!(hp.normalize(), Normalize::Shoulders);
        assert!(hp.landmarks().iter().all(|&l| l >= 468));
        let p4 = FeatureSpec::preset("parts4").unwrap();
        assert_eq!(p4.num_points(), 25 + 76 + 42);
        assert_eq!(p4.landmarks()[..25], POSE_UPPER);
        assert_eq!(p4.landmarks()[p4.num_points() - 21..], LEFT_HAND);
        for name in PRESETS {
            let s = FeatureSpec::preset(name).unwrap();
            assert_eq!((s.max_len(), s.motion_lags()), (64, &[1, 2][..]));
        }
        let (field, msg) = match FeatureSpec::preset("nope") {
            Err(Error::Spec { field, message }) => (field, message),
            other => panic!("{other:?}"),
        };
        assert_eq!(field, None);
        assert_eq!(
            msg,
            "unknown preset \"nope\", expected one of hands_pose, islr118, parts4"
        );
    }

    #[test]
    fn errors_name_the_field_path_and_what_was_expected() {
        let cases: &[(&str, &str, &str, &str)] = &[
            // key, JSON value ("" removes the key), field, message
            ("extra", "1", "extra", "extra: unknown key, expected one of the keys version, layout, landmarks, coords, normalize, max_len, fit, motion_lags, drop_empty_frames, nan_fill"),
            ("fit", "", "fit", "fit: missing key, expected \"truncate\" or \"resample\""),
            ("version", "2", "version", "version: expected 1 (the spec format version this signrt reads), got 2"),
            ("version", "true", "version", "version: expected 1 (the spec format version this signrt reads), got true"),
            ("version", "1.0", "version", "version: expected 1 (the spec format version this signrt reads), got 1.0"),
            ("layout", "\"mediapipe\"", "layout", "layout: expected \"holistic-543\" (other layouts are adapted by the readers), got \"mediapipe\""),
            ("landmarks", "[]", "landmarks", "landmarks: expected a non-empty list of distinct layout indices (integers in 0..=542), got an empty list"),
            ("landmarks", "\"0,1\"", "landmarks", "landmarks: expected a non-empty list of distinct layout indices (integers in 0..=542), got \"0,1\""),
            ("landmarks", "[0, 543]", "landmarks", "landmarks[1]: expected a layout index, an integer in 0..=542, got 543"),
            ("landmarks", "[-1]", "landmarks", "landmarks[0]: expected a layout index, an integer in 0..=542, got -1"),
            ("landmarks", "[true]", "landmarks", "landmarks[0]: expected a layout index, an integer in 0..=542, got true"),
            ("landmarks", "[1.5]", "landmarks", "landmarks[0]: expected a layout index, an integer in 0..=542, got 1.5"),
            ("landmarks", "[3, 5, 3]", "landmarks", "landmarks[2]: expected each layout index once (3 is already landmarks[0]), got 3"),
            ("coords", "4", "coords", "coords: expected 2 (x, y) or 3 (x, y, z), got 4"),
            ("coords", "2.0", "coords", "coords: expected 2 (x, y) or 3 (x, y, z), got 2.0"),
            ("normalize", "\"none\"", "normalize", "normalize: expected an object like {\"kind\": \"reference_rms\", \"reference\": 17}, got \"none\""),
            ("normalize", "{\"kind\": \"zscore\"}", "normalize.kind", "normalize.kind: expected one of \"reference_rms\", \"shoulders\", \"none\", got \"zscore\""),
            ("normalize", "{}", "normalize.kind", "normalize.kind: missing key, expected one of \"reference_rms\", \"shoulders\", \"none\""),
            ("normalize", "{\"kind\": \"none\", \"scale\": 1}", "normalize.scale", "normalize.scale: unknown key, expected one of the keys kind, reference"),
            ("normalize", "{\"kind\": \"reference_rms\"}", "normalize.reference", "normalize.reference: missing key, expected a layout index, an integer in 0..=542 (reference_rms centres on that landmark; 17 is the lower-lip centre)"),
            ("normalize", "{\"kind\": \"reference_rms\", \"reference\": 600}", "normalize.reference", "normalize.reference: expected a layout index, an integer in 0..=542, got 600"),
            ("normalize", "{\"kind\": \"shoulders\", \"reference\": 1}", "normalize.reference", "normalize.reference: expected no reference for kind \"shoulders\" (only reference_rms takes one), got 1"),
            ("max_len", "0", "max_len", "max_len: expected an integer in 1..=4096, got 0"),
            ("max_len", "4097", "max_len", "max_len: expected an integer in 1..=4096, got 4097"),
            ("fit", "\"pad\"", "fit", "fit: expected \"truncate\" or \"resample\", got \"pad\""),
            ("motion_lags", "[2, 1]", "motion_lags", "motion_lags[1]: expected a lag greater than the one before (2) and smaller than max_len (8), got 1"),
            ("motion_lags", "[0]", "motion_lags", "motion_lags[0]: expected a lag in 1..max_len (max_len is 8), got 0"),
            ("motion_lags", "[8]", "motion_lags", "motion_lags[0]: expected a lag in 1..max_len (max_len is 8), got 8"),
            ("motion_lags", "1", "motion_lags", "motion_lags: expected a list of at most 16 strictly increasing lags, each in 1..max_len, got 1"),
            ("drop_empty_frames", "1", "drop_empty_frames", "drop_empty_frames: expected true or false, got 1"),
            ("nan_fill", "true", "nan_fill", "nan_fill: expected a finite number, got true"),
            ("nan_fill", "\"0\"", "nan_fill", "nan_fill: expected a finite number, got \"0\""),
            ("nan_fill", "null", "nan_fill", "nan_fill: expected a finite number, got null"),
        ];
        for &(key, value, field, message) in cases {
            let got = rejection(&with(key, value));
            assert_eq!(
                got,
                (Some(field.to_owned()), message.to_owned()),
                "{key}={value}"
            );
        }
        assert_eq!(
            rejection(&Doc::from_json("[1, 2]").unwrap()),
            (
                None,
                "a FeatureSpec must be a JSON object, got a list of 2 items".to_owned()
            )
        );
        // Values of no JSON type (from Python) are rejected with their description.
        let Doc::Map(mut entries) = base() else {
            unreachable!()
        };
        entries.retain(|(k, _)| k != "nan_fill");
        entries.push(("nan_fill".into(), Doc::Float(f64::NAN)));
        assert_eq!(
            rejection(&Doc::Map(entries.clone())).1,
            "nan_fill: expected a finite number, got NaN"
        );
        entries.retain(|(k, _)| k != "nan_fill");
        entries.push((
            "nan_fill".into(),
            Doc::Other("a Python bytes object".into()),
        ));
        assert_eq!(
            rejection(&Doc::Map(entries)).1,
            "nan_fill: expected a finite number, got a Python bytes object"
        );
    }

    #[test]
    fn the_first_unknown_key_in_document_order_is_named() {
        let err = FeatureSpec::from_json(r#"{"zzz": 1, "aaa": 2, "version": 1}"#).unwrap_err();
        assert!(matches!(err, Error::Spec { field: Some(f), .. } if f == "zzz"));
    }

    #[test]
    fn null_reference_is_no_reference() {
        let doc = with("normalize", r#"{"kind": "shoulders", "reference": null}"#);
        let s = FeatureSpec::from_doc(&doc).unwrap();
        assert_eq!(s.normalize(), Normalize::Shoulders);
        assert_eq!(
            rejection(&with(
                "normalize",
                r#"{"kind": "reference_rms", "reference": null}"#
            ))
            .0,
            Some("normalize.reference".to_owned())
        );
    }

    #[test]
    fn absurd_sizes_are_rejected_naming_the_limit() {
        let all: Vec<usize> = (0..NUM_LANDMARKS).collect();
        let lags: Vec<usize> = (1..=MAX_LAGS).collect();
        let err = FeatureSpec::new(
            all.clone(),
            3,
            Normalize::None,
            4096,
            Fit::Truncate,
            lags.clone(),
            true,
            0.0,
        )
        .unwrap_err();
        let Error::Spec { field, message } = err else {
            panic!()
        };
        assert_eq!(field.as_deref(), Some("max_len"));
        assert!(message.starts_with("max_len: expected max_len x num_features <= 33554432"));
        assert!(message.contains("4096 x 27693 = 113430528"), "{message}");
        let too_many: Vec<usize> = (1..=MAX_LAGS + 1).collect();
        let err = FeatureSpec::new(
            all.clone(),
            2,
            Normalize::None,
            64,
            Fit::Truncate,
            too_many,
            true,
            0.0,
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "motion_lags: expected at most 16 lags, got a list of 17 items"
        );
        let doc = Doc::List((0..600).map(Doc::Int).collect());
        assert_eq!(
            parse_landmarks(&doc).unwrap_err().to_string(),
            "landmarks: expected at most 543 layout indices (each index once), got a list of 600 items"
        );
        // Large specs under the limit are accepted.
        let s = FeatureSpec::new(
            all,
            3,
            Normalize::None,
            4096,
            Fit::Resample,
            vec![1, 2],
            true,
            0.0,
        )
        .unwrap();
        assert_eq!(s.max_len() * s.num_features(), 4096 * 4887);
    }

    #[test]
    fn negative_zero_fill_is_zero() {
        let a = FeatureSpec::from_doc(&with("nan_fill", "-0.0")).unwrap();
        let b = FeatureSpec::from_doc(&with("nan_fill", "0")).unwrap();
        assert_eq!(a.nan_fill().to_bits(), 0.0f64.to_bits());
        assert_eq!(a, b);
        assert_eq!(a.fingerprint(), b.fingerprint());
        assert_eq!(a.to_json(), b.to_json());
    }

    fn spec_strategy() -> impl Strategy<Value = FeatureSpec> {
        (
            proptest::sample::subsequence((0..NUM_LANDMARKS).collect::<Vec<_>>(), 1..40),
            prop_oneof![Just(2usize), Just(3)],
            0usize..3,
            1usize..300,
            any::<bool>(),
            proptest::collection::btree_set(1usize..20, 0..4),
            any::<bool>(),
            prop_oneof![Just(0.0), -1e6f64..1e6, Just(1e-7), Just(-2.5e300)],
        )
            .prop_map(
                |(mut lm, coords, norm, max_len, resample, lags, drop, fill)| {
                    lm.reverse();
                    let normalize = match norm {
                        0 => Normalize::ReferenceRms { reference: lm[0] },
                        1 => Normalize::Shoulders,
                        _ => Normalize::None,
                    };
                    let fit = if resample {
                        Fit::Resample
                    } else {
                        Fit::Truncate
                    };
                    let lags: Vec<usize> = lags.into_iter().filter(|&k| k < max_len).collect();
                    FeatureSpec::new(lm, coords, normalize, max_len, fit, lags, drop, fill).unwrap()
                },
            )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        #[test]
        fn json_round_trips_and_fingerprint_ignores_formatting(
            s in spec_strategy(), indent in proptest::option::of(0usize..5), rev in any::<bool>()
        ) {
            let text = indent.map_or_else(|| s.to_json(), |n| s.to_json_pretty(n));
            let back = FeatureSpec::from_json(&text).unwrap();
            prop_assert_eq!(&back, &s);
            prop_assert_eq!(back.nan_fill().to_bits(), s.nan_fill().to_bits());
            prop_assert_eq!(back.fingerprint(), s.fingerprint());
            prop_assert_eq!(FeatureSpec::from_json(&s.canonical_json()).unwrap(), s.clone());
            // Key order does not matter.
            let Doc::Map(mut entries) = Doc::from_json(&text).unwrap() else { unreachable!() };
            if rev { entries.reverse() } else { entries.rotate_left(3) }
            let moved = FeatureSpec::from_doc(&Doc::Map(entries)).unwrap();
            prop_assert_eq!(moved.fingerprint(), s.fingerprint());
        }

        #[test]
        fn any_edit_of_a_document_is_accepted_or_one_line_spec_error(
            s in spec_strategy(),
            key in proptest::sample::select(KEYS.to_vec()),
            value in proptest::sample::select(vec![
                "null", "true", "0", "-1", "1", "2", "3", "17", "543", "4096", "1e300",
                "1.5", "\"\"", "\"truncate\"", "\"holistic-543\"", "[]", "[1]", "[1, 1]",
                "[[1]]", "{}", "{\"kind\": \"none\"}", "{\"kind\": \"reference_rms\"}",
                "18446744073709551616", "-9223372036854775809",
            ]),
        ) {
            let Doc::Map(mut entries) = Doc::from_json(&s.to_json()).unwrap() else { unreachable!() };
            for e in entries.iter_mut().filter(|(k, _)| k == key) {
                e.1 = Doc::from_json(value).unwrap();
            }
            match FeatureSpec::from_doc(&Doc::Map(entries)) {
                Ok(spec) => prop_assert_eq!(FeatureSpec::from_json(&spec.to_json()).unwrap(), spec),
                Err(Error::Spec { field, message }) => {
                    // The edited field, or one whose check reads it (a lag against max_len).
                    let field = field.unwrap();
                    prop_assert!(KEYS.iter().any(|k| field.starts_with(k)), "{} / {}", field, key);
                    prop_assert!(message.starts_with(&field), "{}", message);
                    prop_assert!(message.contains("expected"), "{}", message);
                    prop_assert!(!message.contains('\n'));
                }
                Err(other) => prop_assert!(false, "{:?}", other),
            }
        }
    }
}
