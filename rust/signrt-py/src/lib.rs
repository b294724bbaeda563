//! Python bindings of signrt-core (module `signrt._native`): numpy in, numpy out.
//!
//! Thin on purpose: every rule lives in signrt-core. This crate only
//! * views numpy arrays without copying (float32/float64 in native byte order, aligned, any
//!   strides: C or Fortran order, sliced, reversed) or converts them once (any other real
//!   dtype, byte order or alignment) into float64,
//! * checks shapes and dtypes and raises `signrt.errors.ShapeError` saying expected vs got,
//! * converts Python objects into the core's spec document ([`Doc`]) without judging them:
//!   every spec rule and message is the core's,
//! * maps core errors onto the classes of `signrt.errors` (`SpecError` with its `field`)
//!   through handles imported once at module initialisation,
//! * releases the GIL around heavy work and catches panics, so that none crosses into
//!   Python as a crash (a panic becomes `signrt.errors.SignrtError`).
//!
//! Every class is `frozen` and shares its state through `Arc`/`Mutex`, so objects can be
//! used from several Python threads at once.

use std::any::Any;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Mutex, MutexGuard};

use numpy::ndarray::{Ix1, Ix2, Ix3};
use numpy::{
    dtype, Element, PyArray, PyArray1, PyArray2, PyArray3, PyArrayDescrMethods, PyArrayDyn,
    PyArrayMethods, PyReadonlyArrayDyn, PyUntypedArray, PyUntypedArrayMethods,
};
use pyo3::exceptions::{PyImportError, PyMemoryError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{
    PyBool, PyByteArray, PyBytes, PyDict, PyFloat, PyFrozenSet, PyInt, PyList, PyMapping, PySet,
    PyString, PyTuple, PyType,
};
use signrt_core::{
    ClipRef, Doc, Error, FeatureSpec, FrameRef, MotionUnit, Normalize, ScoreKind, SegmentDecider,
    SegmentSettings, SegmentView, WindowDecider, WindowSettings, NUM_COORDS, NUM_LANDMARKS,
};

// ------------------------------------------------------------------------------ errors
/// Handles on the exception classes of `signrt.errors`, imported (and checked) once when
/// the module initialises: raising never looks a class up by name.
mod py_errors {
    pyo3::import_exception!(signrt.errors, SignrtError);
    pyo3::import_exception!(signrt.errors, SpecError);
    pyo3::import_exception!(signrt.errors, ShapeError);
    pyo3::import_exception!(signrt.errors, ModelError);
    pyo3::import_exception!(signrt.errors, AllocationError);
    pyo3::import_exception!(signrt.errors, StreamOptionError);
}

/// Import `signrt.errors`, check that each class the extension raises is a `SignrtError`,
/// and fill the handles. A broken or missing module is an ImportError of `signrt._native`.
fn import_error_classes(py: Python<'_>) -> PyResult<()> {
    let module = py.import("signrt.errors")?;
    let base = module.getattr("SignrtError")?.cast_into::<PyType>()?;
    for name in [
        "SpecError",
        "ShapeError",
        "ModelError",
        "AllocationError",
        "StreamOptionError",
    ] {
        let class = module.getattr(name)?.cast_into::<PyType>()?;
        if !class.is_subclass(&base)? {
            return Err(PyImportError::new_err(format!(
                "signrt.errors.{name} is not a subclass of signrt.errors.SignrtError"
            )));
        }
    }
    // The handles import on first use; use them now, while the import is known to work.
    let _ = (
        py.get_type::<py_errors::SignrtError>(),
        py.get_type::<py_errors::SpecError>(),
        py.get_type::<py_errors::ShapeError>(),
        py.get_type::<py_errors::ModelError>(),
        py.get_type::<py_errors::AllocationError>(),
        py.get_type::<py_errors::StreamOptionError>(),
    );
    Ok(())
}

fn shape_error(_py: Python<'_>, msg: String) -> PyErr {
    py_errors::ShapeError::new_err(msg)
}

fn signrt_error(_py: Python<'_>, msg: String) -> PyErr {
    py_errors::SignrtError::new_err(msg)
}

fn core_error(_py: Python<'_>, err: Error) -> PyErr {
    match err {
        Error::Spec { field, message } => py_errors::SpecError::new_err((message, field)),
        Error::Shape(msg) => py_errors::ShapeError::new_err(msg),
        Error::Model(msg) => py_errors::ModelError::new_err(msg),
        Error::Alloc(msg) => py_errors::AllocationError::new_err(msg),
        Error::Setting(msg) => py_errors::StreamOptionError::new_err(msg),
        Error::Internal(msg) => {
            py_errors::SignrtError::new_err(format!("signrt internal error: {msg}"))
        }
    }
}

fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic".to_owned()
    }
}

/// The outcome of core work run under `catch_unwind`.
type Guarded<T> = Result<signrt_core::Result<T>, String>;

fn guard<T>(f: impl FnOnce() -> signrt_core::Result<T>) -> Guarded<T> {
    catch_unwind(AssertUnwindSafe(f)).map_err(|p| panic_message(p.as_ref()))
}

fn finish<T>(py: Python<'_>, outcome: Guarded<T>) -> PyResult<T> {
    match outcome {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(core_error(py, e)),
        Err(msg) => Err(signrt_error(
            py,
            format!("signrt native core failed (a bug, please report it): {msg}"),
        )),
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while locked is caught and reported; the state stays usable.
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

// ------------------------------------------------------------------------------ arrays
/// Landmark values viewed (or converted once) as float32/float64, any strides.
enum Landmarks<'py> {
    F32(PyReadonlyArrayDyn<'py, f32>),
    F64(PyReadonlyArrayDyn<'py, f64>),
}

impl Landmarks<'_> {
    /// The (T, 543, 3) view (shape checked by `landmarks`).
    fn clip(&self) -> ClipRef<'_> {
        const CHECKED: &str = "checked (T, 543, 3)";
        match self {
            Landmarks::F32(a) => ClipRef::F32(a.as_array().into_dimensionality().expect(CHECKED)),
            Landmarks::F64(a) => ClipRef::F64(a.as_array().into_dimensionality().expect(CHECKED)),
        }
    }

    /// The (543, 3) view (shape checked by `landmarks`).
    fn frame(&self) -> FrameRef<'_> {
        const CHECKED: &str = "checked (543, 3)";
        match self {
            Landmarks::F32(a) => FrameRef::F32(a.as_array().into_dimensionality().expect(CHECKED)),
            Landmarks::F64(a) => FrameRef::F64(a.as_array().into_dimensionality().expect(CHECKED)),
        }
    }
}

fn py_shape(shape: &[usize]) -> String {
    match shape {
        [one] => format!("({one},)"),
        _ => {
            let items: Vec<String> = shape.iter().map(usize::to_string).collect();
            format!("({})", items.join(", "))
        }
    }
}

/// A zero-copy view when `arr` is an array of `T` in native byte order whose data and
/// strides are aligned to `T` (any strides otherwise: C or Fortran order, sliced, reversed).
fn try_view<'py, T: Element>(
    arr: &Bound<'py, PyUntypedArray>,
) -> Option<PyReadonlyArrayDyn<'py, T>> {
    let py = arr.py();
    if !arr.dtype().is_equiv_to(&dtype::<T>(py)) {
        return None;
    }
    let typed = arr.cast::<PyArrayDyn<T>>().ok()?;
    let size = std::mem::size_of::<T>() as isize;
    let aligned = (typed.data() as usize).is_multiple_of(std::mem::align_of::<T>())
        && typed.strides().iter().all(|s| s % size == 0);
    if !aligned {
        return None;
    }
    typed.try_readonly().ok()
}

/// Check and view `obj` as landmarks of shape (T, 543, 3) (`frame = false`) or (543, 3)
/// (`frame = true`). `prefix` starts every error message (e.g. `"clip 3: "`).
fn landmarks<'py>(obj: &Bound<'py, PyAny>, frame: bool, prefix: &str) -> PyResult<Landmarks<'py>> {
    let py = obj.py();
    let expected = if frame {
        format!("a frame of shape ({NUM_LANDMARKS}, {NUM_COORDS}) (landmarks, xyz)")
    } else {
        format!("a clip of shape (T, {NUM_LANDMARKS}, {NUM_COORDS}) (frames, landmarks, xyz)")
    };
    let np = || py.import("numpy");
    let arr: Bound<'py, PyUntypedArray> = match obj.cast::<PyUntypedArray>() {
        Ok(a) => a.clone(),
        Err(_) => {
            let converted = np()?.call_method1("asarray", (obj,)).map_err(|e| {
                shape_error(
                    py,
                    format!("{prefix}expected {expected}, got an object numpy cannot read: {e}"),
                )
            })?;
            converted
                .cast_into::<PyUntypedArray>()
                .map_err(PyErr::from)?
        }
    };
    let shape = arr.shape();
    let ok = if frame {
        shape == [NUM_LANDMARKS, NUM_COORDS]
    } else {
        shape.len() == 3 && shape[1..] == [NUM_LANDMARKS, NUM_COORDS]
    };
    if !ok {
        return Err(shape_error(
            py,
            format!("{prefix}expected {expected}, got {}", py_shape(shape)),
        ));
    }
    let kind = arr.dtype().kind();
    if !matches!(kind, b'f' | b'i' | b'u') {
        let name = arr
            .dtype()
            .str()
            .map(|s| s.to_string())
            .unwrap_or_else(|_| "?".into());
        return Err(shape_error(
            py,
            format!(
                "{prefix}expected real-valued landmarks (a float or integer dtype), got dtype \
                 {name}"
            ),
        ));
    }
    if let Some(view) = try_view::<f32>(&arr) {
        return Ok(Landmarks::F32(view));
    }
    if let Some(view) = try_view::<f64>(&arr) {
        return Ok(Landmarks::F64(view));
    }
    // One conversion: any other dtype / byte order / alignment → C-contiguous float64.
    let converted = np()?.call_method1("ascontiguousarray", (&arr, "float64"))?;
    let typed = converted
        .cast_into::<PyArrayDyn<f64>>()
        .map_err(PyErr::from)?;
    let view = typed
        .try_readonly()
        .map_err(|e| signrt_error(py, e.to_string()))?;
    Ok(Landmarks::F64(view))
}

// ------------------------------------------------------------------------------ Spec
/// Deepest nesting of Python containers converted into a [`Doc`] (a spec needs 2); deeper
/// values are described, not converted, so no input can exhaust the stack.
const MAX_DOC_DEPTH: usize = 6;
/// Longest Python sequence or mapping converted into a [`Doc`] (a spec needs 543).
const MAX_DOC_ITEMS: usize = 1 << 16;

fn type_words(obj: &Bound<'_, PyAny>) -> String {
    let ty = obj.get_type();
    let name = ty
        .fully_qualified_name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "object".to_owned());
    format!("a Python {name} object")
}

fn too_long(n: usize) -> Doc {
    Doc::Other(format!(
        "a collection of {n} items (more than {MAX_DOC_ITEMS}, far beyond any FeatureSpec)"
    ))
}

/// Convert a Python value into the document tree the core validates (no rule is applied
/// here: every check and message is the core's). Containers: dict and other mappings;
/// list, tuple and other iterables except str/bytes/sets. Integers: int and objects with
/// `__index__` (numpy integers); numbers: float and objects with `__float__`.
fn doc_of(obj: &Bound<'_, PyAny>, depth: usize) -> PyResult<Doc> {
    if obj.is_none() {
        return Ok(Doc::Null);
    }
    if let Ok(b) = obj.cast::<PyBool>() {
        return Ok(Doc::Bool(b.is_true()));
    }
    if obj.is_instance_of::<PyInt>() {
        return Ok(obj.extract::<i128>().map_or_else(
            |_| Doc::Other("an integer beyond 128 bits".to_owned()),
            Doc::Int,
        ));
    }
    if let Ok(f) = obj.cast::<PyFloat>() {
        return Ok(Doc::Float(f.value()));
    }
    if let Ok(text) = obj.cast::<PyString>() {
        return Ok(Doc::Str(text.to_string_lossy().into_owned()));
    }
    if obj.is_instance_of::<PyBytes>() || obj.is_instance_of::<PyByteArray>() {
        return Ok(Doc::Other(type_words(obj)));
    }
    let ty = obj.get_type();
    let numpy_bool = ty.module().is_ok_and(|m| m.to_string_lossy() == "numpy")
        && ty
            .name()
            .is_ok_and(|n| matches!(&*n.to_string_lossy(), "bool" | "bool_"));
    if numpy_bool {
        return Ok(Doc::Bool(obj.is_truthy()?));
    }
    if depth >= MAX_DOC_DEPTH {
        return Ok(Doc::Other(format!("{} nested too deeply", type_words(obj))));
    }
    if let Ok(dict) = obj.cast::<PyDict>() {
        return map_doc(dict.as_any(), dict.len(), depth);
    }
    if let Ok(mapping) = obj.cast::<PyMapping>() {
        return map_doc(mapping.as_any(), mapping.len()?, depth);
    }
    if obj.hasattr("__index__")? {
        if let Ok(index) = obj.call_method0("__index__") {
            return doc_of(&index, depth);
        }
    }
    let is_set = obj.is_instance_of::<PySet>() || obj.is_instance_of::<PyFrozenSet>();
    if !is_set {
        if let Ok(list) = obj.cast::<PyList>() {
            return seq_doc(obj, list.len(), depth);
        }
        if let Ok(tuple) = obj.cast::<PyTuple>() {
            return seq_doc(obj, tuple.len(), depth);
        }
        if let Ok(items) = obj.try_iter() {
            if let Ok(n) = obj.len() {
                if n > MAX_DOC_ITEMS {
                    return Ok(too_long(n));
                }
            }
            let mut out = Vec::new();
            for item in items {
                if out.len() == MAX_DOC_ITEMS {
                    return Ok(too_long(MAX_DOC_ITEMS + 1));
                }
                out.push(doc_of(&item?, depth + 1)?);
            }
            return Ok(Doc::List(out));
        }
    }
    if obj.hasattr("__float__")? {
        if let Ok(x) = obj.extract::<f64>() {
            return Ok(Doc::Float(x));
        }
    }
    Ok(Doc::Other(type_words(obj)))
}

fn seq_doc(obj: &Bound<'_, PyAny>, len: usize, depth: usize) -> PyResult<Doc> {
    if len > MAX_DOC_ITEMS {
        return Ok(too_long(len));
    }
    let mut out = Vec::with_capacity(len);
    for item in obj.try_iter()? {
        out.push(doc_of(&item?, depth + 1)?);
    }
    Ok(Doc::List(out))
}

fn map_doc(obj: &Bound<'_, PyAny>, len: usize, depth: usize) -> PyResult<Doc> {
    if len > MAX_DOC_ITEMS {
        return Ok(too_long(len));
    }
    let mut out = Vec::with_capacity(len);
    for item in obj.call_method0("items")?.try_iter()? {
        let (key, value): (Bound<'_, PyAny>, Bound<'_, PyAny>) = item?.extract()?;
        let key = match key.cast::<PyString>() {
            Ok(k) => k.to_string_lossy().into_owned(),
            Err(_) => key.repr()?.to_string_lossy().into_owned(),
        };
        out.push((key, doc_of(&value, depth + 1)?));
    }
    Ok(Doc::Map(out))
}

/// Run core spec work under `catch_unwind` and map its error.
fn spec_result<T>(py: Python<'_>, f: impl FnOnce() -> signrt_core::Result<T>) -> PyResult<T> {
    finish(py, guard(f))
}

/// A FeatureSpec: the one implementation of DESIGN §3's contract (validation, JSON forms,
/// fingerprint, presets). `signrt.FeatureSpec` is the typed Python view of it.
#[pyclass(frozen, name = "Spec", module = "signrt._native")]
struct PySpec {
    inner: Arc<FeatureSpec>,
}

impl PySpec {
    fn wrap(spec: FeatureSpec) -> Self {
        PySpec {
            inner: Arc::new(spec),
        }
    }
}

#[pymethods]
impl PySpec {
    /// Parse and validate JSON text (str, or UTF-8 bytes).
    #[new]
    fn new(py: Python<'_>, json: &Bound<'_, PyAny>) -> PyResult<Self> {
        if let Ok(text) = json.cast::<PyString>() {
            let text = text.to_str().map_err(|_| {
                py_errors::SpecError::new_err(
                    "FeatureSpec text is not valid Unicode (it holds a lone surrogate); expected JSON text",
                )
            })?;
            return spec_result(py, || FeatureSpec::from_json(text)).map(PySpec::wrap);
        }
        if let Ok(bytes) = json.cast::<PyBytes>() {
            let bytes = bytes.as_bytes();
            return spec_result(py, || FeatureSpec::from_json_bytes(bytes)).map(PySpec::wrap);
        }
        if let Ok(bytes) = json.cast::<PyByteArray>() {
            let bytes = bytes.to_vec();
            return spec_result(py, || FeatureSpec::from_json_bytes(&bytes)).map(PySpec::wrap);
        }
        Err(py_errors::SpecError::new_err(format!(
            "a FeatureSpec JSON document must be str or bytes, got {}",
            type_words(json)
        )))
    }

    /// Validate a Python object (a mapping with the ten keys of a spec).
    #[staticmethod]
    fn from_object(py: Python<'_>, obj: &Bound<'_, PyAny>) -> PyResult<Self> {
        let doc = doc_of(obj, 0)?;
        spec_result(py, || FeatureSpec::from_doc(&doc)).map(PySpec::wrap)
    }

    /// A named preset.
    #[staticmethod]
    fn preset(py: Python<'_>, name: &str) -> PyResult<Self> {
        spec_result(py, || FeatureSpec::preset(name)).map(PySpec::wrap)
    }

    /// Names of the presets, sorted.
    #[staticmethod]
    fn presets() -> Vec<&'static str> {
        signrt_core::PRESETS.to_vec()
    }

    /// Compact JSON (the model-file form), or indented by `indent` spaces.
    #[pyo3(signature = (indent = None))]
    fn to_json(&self, indent: Option<usize>) -> String {
        match indent {
            None => self.inner.to_json(),
            Some(n) => self.inner.to_json_pretty(n),
        }
    }

    /// Sorted keys, no white space: the text the fingerprint hashes.
    fn canonical_json(&self) -> String {
        self.inner.canonical_json()
    }

    /// 16 hex digits of the SHA-256 of the canonical JSON.
    #[getter]
    fn fingerprint(&self) -> String {
        self.inner.fingerprint()
    }

    #[getter]
    fn landmarks<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        PyTuple::new(py, self.inner.landmarks())
    }

    #[getter]
    fn coords(&self) -> usize {
        self.inner.coords()
    }

    /// (kind, reference or None).
    #[getter]
    fn normalize(&self) -> (&'static str, Option<usize>) {
        let n = self.inner.normalize();
        (n.kind(), n.reference())
    }

    /// L, the number of output frames.
    #[getter]
    fn max_len(&self) -> usize {
        self.inner.max_len()
    }

    #[getter]
    fn fit(&self) -> &'static str {
        self.inner.fit().name()
    }

    #[getter]
    fn motion_lags<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        PyTuple::new(py, self.inner.motion_lags())
    }

    #[getter]
    fn drop_empty_frames(&self) -> bool {
        self.inner.drop_empty_frames()
    }

    #[getter]
    fn nan_fill(&self) -> f64 {
        self.inner.nan_fill()
    }

    /// P, the number of selected landmarks.
    #[getter]
    fn num_points(&self) -> usize {
        self.inner.num_points()
    }

    /// C_out, channels per point.
    #[getter]
    fn channels(&self) -> usize {
        self.inner.channels()
    }

    /// F = P · C_out, the width of a feature row.
    #[getter]
    fn num_features(&self) -> usize {
        self.inner.num_features()
    }

    fn __repr__(&self) -> String {
        format!(
            "Spec(fingerprint={}, num_points={}, num_features={}, max_len={})",
            self.inner.fingerprint(),
            self.inner.num_points(),
            self.inner.num_features(),
            self.inner.max_len()
        )
    }

    fn __eq__(&self, other: &Bound<'_, PyAny>) -> bool {
        other
            .cast::<PySpec>()
            .is_ok_and(|o| *o.get().inner == *self.inner)
    }

    fn __hash__(&self) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        self.inner.hash(&mut h);
        h.finish()
    }

    /// Pickle support: rebuilt from its JSON.
    fn __reduce__<'py>(slf: &Bound<'py, Self>) -> PyResult<(Bound<'py, PyAny>, (String,))> {
        Ok((slf.get_type().into_any(), (slf.get().inner.to_json(),)))
    }
}

/// Validate a `normalize` object on its own: (kind, reference or None).
#[pyfunction]
fn check_normalize(
    py: Python<'_>,
    obj: &Bound<'_, PyAny>,
) -> PyResult<(&'static str, Option<usize>)> {
    let doc = doc_of(obj, 0)?;
    let n: Normalize = spec_result(py, || Normalize::from_doc(&doc))?;
    Ok((n.kind(), n.reference()))
}

// ------------------------------------------------------------------------------ functions
type Features<'py> = (Bound<'py, PyArray2<f32>>, Bound<'py, PyArray1<f32>>);
type BatchFeatures<'py> = (Bound<'py, PyArray3<f32>>, Bound<'py, PyArray2<f32>>);

/// A pair of float32 output arrays (features, mask).
type Outputs<'py, D, M> = (Bound<'py, PyArray<f32, D>>, Bound<'py, PyArray<f32, M>>);

/// New float32 output arrays of shape `dims` (features) and `mask_dims` (mask), filled by
/// `compute` on their raw slices with the GIL released (panics caught). The arrays start
/// uninitialised: the core writes every value on success, and on error they are dropped
/// unseen. A size over the core's allocation limit, or one numpy cannot allocate, is a
/// `signrt.errors.AllocationError`.
fn compute_outputs<'py, D, M>(
    py: Python<'py>,
    dims: D,
    mask_dims: M,
    compute: impl FnOnce(&mut [f32], &mut [f32]) -> signrt_core::Result<()> + Send,
) -> PyResult<Outputs<'py, D, M>>
where
    D: numpy::ndarray::Dimension,
    M: numpy::ndarray::Dimension,
{
    let feats = new_output(py, dims, "the features")?;
    let mask = new_output(py, mask_dims, "the mask")?;
    {
        let mut fw = feats
            .try_readwrite()
            .map_err(|e| signrt_error(py, e.to_string()))?;
        let mut mw = mask
            .try_readwrite()
            .map_err(|e| signrt_error(py, e.to_string()))?;
        let (fs, ms) = (
            contiguous(py, fw.as_slice_mut())?,
            contiguous(py, mw.as_slice_mut())?,
        );
        let outcome = py.detach(|| guard(|| compute(fs, ms)));
        finish(py, outcome)?;
    }
    Ok((feats, mask))
}

/// An uninitialised float32 array of shape `dims` (`numpy.empty`), sized against the core's
/// allocation limit first; numpy's `MemoryError` becomes `AllocationError`.
fn new_output<'py, D: numpy::ndarray::Dimension>(
    py: Python<'py>,
    dims: D,
    what: &str,
) -> PyResult<Bound<'py, PyArray<f32, D>>> {
    static EMPTY: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    let shape = dims.slice();
    signrt_core::alloc::checked_len(shape, 4, what).map_err(|e| core_error(py, e))?;
    let empty = EMPTY.get_or_try_init(py, || {
        py.import("numpy")?.getattr("empty").map(Bound::unbind)
    })?;
    let array = empty
        .bind(py)
        .call1((PyTuple::new(py, shape)?, dtype::<f32>(py)))
        .map_err(|e| {
            if e.is_instance_of::<PyMemoryError>(py) {
                core_error(
                    py,
                    Error::Alloc(format!("cannot allocate {what} {}: {e}", py_shape(shape))),
                )
            } else {
                e
            }
        })?;
    Ok(array.cast_into::<PyArray<f32, D>>()?)
}

/// (T, 543, 3) -> features (max_len, F) float32, mask (max_len,) float32.
#[pyfunction]
fn preprocess<'py>(
    py: Python<'py>,
    clip: &Bound<'py, PyAny>,
    spec: &Bound<'py, PySpec>,
) -> PyResult<Features<'py>> {
    let spec = &spec.get().inner;
    let data = landmarks(clip, false, "")?;
    let view = data.clip();
    compute_outputs(
        py,
        Ix2(spec.max_len(), spec.num_features()),
        Ix1(spec.max_len()),
        |f, m| signrt_core::preprocess_into(view, spec, f, m),
    )
}

fn contiguous<'a, T>(
    py: Python<'_>,
    s: Result<&'a mut [T], numpy::AsSliceError>,
) -> PyResult<&'a mut [T]> {
    s.map_err(|e| signrt_error(py, format!("signrt internal error: {e}")))
}

/// Many clips in parallel (rayon, GIL released) -> (B, max_len, F), (B, max_len).
#[pyfunction]
fn preprocess_batch<'py>(
    py: Python<'py>,
    clips: &Bound<'py, PyAny>,
    spec: &Bound<'py, PySpec>,
) -> PyResult<BatchFeatures<'py>> {
    let spec = &spec.get().inner;
    let mut data = Vec::new();
    for (i, item) in clips.try_iter()?.enumerate() {
        let item = item?;
        data.push(landmarks(&item, false, &format!("clip {i}: "))?);
    }
    let views: Vec<ClipRef<'_>> = data.iter().map(Landmarks::clip).collect();
    let (b, l, f) = (views.len(), spec.max_len(), spec.num_features());
    compute_outputs(py, Ix3(b, l, f), Ix2(b, l), |fs, ms| {
        signrt_core::preprocess_batch_into(&views, spec, fs, ms)
    })
}

// ------------------------------------------------------------------------------ Stream
/// Sliding window of the last max_len frames with running statistics.
#[pyclass(frozen, name = "Stream", module = "signrt._native")]
struct PyStream {
    spec: Arc<FeatureSpec>,
    inner: Mutex<signrt_core::Stream>,
}

#[pymethods]
impl PyStream {
    #[new]
    fn new(py: Python<'_>, spec: &Bound<'_, PySpec>) -> PyResult<Self> {
        let spec = Arc::clone(&spec.get().inner);
        let stream = finish(py, guard(|| signrt_core::Stream::new((*spec).clone())))?;
        Ok(PyStream {
            inner: Mutex::new(stream),
            spec,
        })
    }

    /// Append one (543, 3) frame (any strides, read in place), evicting the oldest when the
    /// window is full.
    fn push(&self, py: Python<'_>, frame: &Bound<'_, PyAny>) -> PyResult<()> {
        let data = landmarks(frame, true, "")?;
        let view = data.frame();
        let outcome = guard(|| lock(&self.inner).push(view).map(drop));
        finish(py, outcome)
    }

    /// Features of the window; equal to preprocess() of the same frames.
    fn features<'py>(&self, py: Python<'py>) -> PyResult<Features<'py>> {
        let (l, f) = (self.spec.max_len(), self.spec.num_features());
        let inner = &self.inner;
        compute_outputs(py, Ix2(l, f), Ix1(l), |fs, ms| {
            lock(inner).features_into(fs, ms)
        })
    }

    /// Forget every frame.
    fn reset(&self) {
        lock(&self.inner).reset();
    }

    /// Frames in the window (at most max_len), empty frames included.
    fn __len__(&self) -> usize {
        lock(&self.inner).len()
    }

    /// W, the window size (= max_len).
    #[getter]
    fn capacity(&self) -> usize {
        self.spec.max_len()
    }

    /// Frames in the window with at least one selected value present.
    #[getter]
    fn num_valid(&self) -> usize {
        lock(&self.inner).num_valid()
    }

    fn __repr__(&self) -> String {
        let s = lock(&self.inner);
        format!(
            "Stream(len={}, capacity={}, num_valid={})",
            s.len(),
            s.capacity(),
            s.num_valid()
        )
    }
}

// ------------------------------------------------------------------------ decisions
/// A sign event decided by the core: (score, start, end, frames).
type PyEmit = Option<(f64, f64, f64, usize)>;

fn emit(e: Option<signrt_core::Emit>) -> PyEmit {
    e.map(|e| (e.score, e.start, e.end, e.frames))
}

/// Window mode's per-frame decisions (signrt-core `WindowDecider`): `push` says when the
/// window is to be classified; `decide` takes the top-1 and returns the event, if any.
#[pyclass(frozen, name = "WindowDecider", module = "signrt._native")]
struct PyWindowDecider {
    spec: Arc<FeatureSpec>,
    inner: Mutex<WindowDecider>,
}

#[pymethods]
impl PyWindowDecider {
    #[new]
    #[pyo3(signature = (spec, *, stride, threshold, confirm, cooldown, min_frames, require_hand, fps, score = "probability"))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        spec: &Bound<'_, PySpec>,
        stride: i64,
        threshold: f64,
        confirm: i64,
        cooldown: f64,
        min_frames: i64,
        require_hand: bool,
        fps: f64,
        score: &str,
    ) -> PyResult<Self> {
        let spec = Arc::clone(&spec.get().inner);
        let decider = finish(
            py,
            guard(|| {
                let s = WindowSettings::scored(
                    ScoreKind::from_name(score)?,
                    stride,
                    threshold,
                    confirm,
                    cooldown,
                    min_frames,
                    require_hand,
                    spec.max_len(),
                )?;
                WindowDecider::new((*spec).clone(), s, fps)
            }),
        )?;
        Ok(PyWindowDecider {
            spec,
            inner: Mutex::new(decider),
        })
    }

    /// Add one (543, 3) frame (any strides, read in place) at `timestamp` (default: the
    /// previous one + 1/fps); whether the window is to be classified now.
    #[pyo3(signature = (frame, timestamp = None))]
    fn push(
        &self,
        py: Python<'_>,
        frame: &Bound<'_, PyAny>,
        timestamp: Option<f64>,
    ) -> PyResult<bool> {
        let data = landmarks(frame, true, "")?;
        let view = data.frame();
        finish(py, guard(|| lock(&self.inner).push(view, timestamp)))
    }

    /// Features of the window; equal to preprocess() of its frames.
    fn features<'py>(&self, py: Python<'py>) -> PyResult<Features<'py>> {
        let (l, f) = (self.spec.max_len(), self.spec.num_features());
        let inner = &self.inner;
        compute_outputs(py, Ix2(l, f), Ix1(l), |fs, ms| {
            lock(inner).features_into(fs, ms)
        })
    }

    /// The top-1 of the classification the last push asked for (`score`: what the
    /// threshold compares; `value`: what the event reports, default `score`); the event
    /// (mean value, start, end, frames) it confirms, or None.
    #[pyo3(signature = (label, score, value = None))]
    fn decide(
        &self,
        py: Python<'_>,
        label: &str,
        score: f64,
        value: Option<f64>,
    ) -> PyResult<PyEmit> {
        let value = value.unwrap_or(score);
        finish(
            py,
            guard(|| {
                lock(&self.inner)
                    .decide_scored(label, score, value)
                    .map(emit)
            }),
        )
    }

    /// End of input: the run of confirmations ends (never a classification: False).
    fn flush(&self) -> bool {
        lock(&self.inner).flush()
    }

    /// Forget the window, the run of confirmations and the cooldowns (and the clock).
    #[pyo3(signature = (clock = false))]
    fn reset(&self, clock: bool) {
        lock(&self.inner).reset(clock);
    }

    #[getter]
    fn stride(&self) -> u64 {
        lock(&self.inner).settings().stride
    }
    #[getter]
    fn threshold(&self) -> f64 {
        lock(&self.inner).settings().threshold
    }
    /// What the threshold compares: "probability" or "energy".
    #[getter]
    fn score(&self) -> &'static str {
        lock(&self.inner).settings().score.name()
    }
    #[getter]
    fn confirm(&self) -> u64 {
        lock(&self.inner).settings().confirm
    }
    #[getter]
    fn cooldown(&self) -> f64 {
        lock(&self.inner).settings().cooldown
    }
    #[getter]
    fn min_frames(&self) -> usize {
        lock(&self.inner).settings().min_frames
    }
    #[getter]
    fn require_hand(&self) -> bool {
        lock(&self.inner).settings().require_hand
    }
    #[getter]
    fn fps(&self) -> f64 {
        lock(&self.inner).clock().fps()
    }
    /// Frames pushed so far.
    #[getter]
    fn frames(&self) -> u64 {
        lock(&self.inner).clock().frames()
    }
    /// Classifications decided so far.
    #[getter]
    fn engine_calls(&self) -> u64 {
        lock(&self.inner).engine_calls()
    }
}

/// Segment mode's per-frame decisions (signrt-core `SegmentDecider`): `push` says when a
/// segment closed; `segment` gives its frames; `decide` takes the top-1 score.
#[pyclass(frozen, name = "SegmentDecider", module = "signrt._native")]
struct PySegmentDecider {
    inner: Mutex<SegmentDecider>,
}

#[pymethods]
impl PySegmentDecider {
    #[new]
    #[pyo3(signature = (spec, *, threshold, rest_frames, motion_threshold, motion_unit, min_frames, max_frames, fps, score = "probability"))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        spec: &Bound<'_, PySpec>,
        threshold: f64,
        rest_frames: i64,
        motion_threshold: Option<f64>,
        motion_unit: &str,
        min_frames: i64,
        max_frames: Option<i64>,
        fps: f64,
        score: &str,
    ) -> PyResult<Self> {
        let max_len = spec.get().inner.max_len();
        let decider = finish(
            py,
            guard(|| {
                let unit = MotionUnit::from_name(motion_unit)?;
                let s = SegmentSettings::scored(
                    ScoreKind::from_name(score)?,
                    threshold,
                    rest_frames,
                    motion_threshold,
                    unit,
                    min_frames,
                    max_frames,
                    max_len,
                )?;
                SegmentDecider::new(s, fps)
            }),
        )?;
        Ok(PySegmentDecider {
            inner: Mutex::new(decider),
        })
    }

    /// Add one (543, 3) frame (any strides, read in place) at `timestamp` (default: the
    /// previous one + 1/fps); whether it closed a segment to classify.
    #[pyo3(signature = (frame, timestamp = None))]
    fn push(
        &self,
        py: Python<'_>,
        frame: &Bound<'_, PyAny>,
        timestamp: Option<f64>,
    ) -> PyResult<bool> {
        let data = landmarks(frame, true, "")?;
        let view = data.frame();
        finish(py, guard(|| lock(&self.inner).push(view, timestamp)))
    }

    /// The frames of the segment to classify, (n, 543, 3), float32 when every frame came
    /// as float32, else float64 (n = 0: none pending).
    fn segment<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let inner = lock(&self.inner);
        let (values, n) = inner.segment();
        let shape = [n, NUM_LANDMARKS, NUM_COORDS];
        Ok(match values {
            SegmentView::F32(v) => PyArray1::from_slice(py, v).reshape(shape)?.into_any(),
            SegmentView::F64(v) => PyArray1::from_slice(py, v).reshape(shape)?.into_any(),
        })
    }

    /// The top-1 score of the pending segment (`score`: what the threshold compares;
    /// `value`: what the event reports, default `score`); its event (value, start, end,
    /// frames) if the score reaches the threshold, else None.
    #[pyo3(signature = (score, value = None))]
    fn decide(&self, py: Python<'_>, score: f64, value: Option<f64>) -> PyResult<PyEmit> {
        let value = value.unwrap_or(score);
        finish(
            py,
            guard(|| lock(&self.inner).decide_scored(score, value).map(emit)),
        )
    }

    /// End of input: close the open segment; whether it is to be classified.
    fn flush(&self) -> bool {
        lock(&self.inner).flush()
    }

    /// Drop the open segment and the remembered shoulder width (and the clock).
    #[pyo3(signature = (clock = false))]
    fn reset(&self, clock: bool) {
        lock(&self.inner).reset(clock);
    }

    #[getter]
    fn threshold(&self) -> f64 {
        lock(&self.inner).settings().threshold
    }
    /// What the threshold compares: "probability" or "energy".
    #[getter]
    fn score(&self) -> &'static str {
        lock(&self.inner).settings().score.name()
    }
    #[getter]
    fn rest_frames(&self) -> u64 {
        lock(&self.inner).settings().rest_frames
    }
    #[getter]
    fn motion_threshold(&self) -> f64 {
        lock(&self.inner).settings().motion_threshold
    }
    #[getter]
    fn motion_unit(&self) -> &'static str {
        lock(&self.inner).settings().motion_unit.name()
    }
    #[getter]
    fn min_frames(&self) -> usize {
        lock(&self.inner).settings().min_frames
    }
    #[getter]
    fn max_frames(&self) -> usize {
        lock(&self.inner).settings().max_frames
    }
    #[getter]
    fn fps(&self) -> f64 {
        lock(&self.inner).clock().fps()
    }
    /// Frames pushed so far.
    #[getter]
    fn frames(&self) -> u64 {
        lock(&self.inner).clock().frames()
    }
    /// Classifications decided so far.
    #[getter]
    fn engine_calls(&self) -> u64 {
        lock(&self.inner).engine_calls()
    }
    /// Frames in the open segment (0: none open).
    #[getter]
    fn open_frames(&self) -> usize {
        lock(&self.inner).open_frames()
    }
}

/// Softmax of each row of (B, K) logits and its k best classes, best first:
/// `[[(class, probability), ...], ...]` (`k = 0`: an empty list per row). Panics are
/// caught and core errors mapped like every other binding.
#[pyfunction]
fn softmax_topk(
    py: Python<'_>,
    logits: numpy::PyReadonlyArray2<'_, f32>,
    k: usize,
) -> PyResult<Vec<Vec<(usize, f64)>>> {
    let view = logits.as_array();
    let outcome = guard(|| {
        let mut out = Vec::with_capacity(view.nrows());
        let mut row_buf = Vec::new();
        for row in view.rows() {
            let row = match row.as_slice() {
                Some(s) => s,
                None => {
                    row_buf.clear();
                    row_buf.extend(row.iter().copied());
                    &row_buf[..]
                }
            };
            out.push(signrt_core::softmax_topk(row, k)?);
        }
        Ok(out)
    });
    finish(py, outcome)
}

/// Set the largest single allocation (bytes) the core asks for and return the previous
/// one (default: `isize::MAX`). For tests of the allocation errors, and for a process that
/// must stay within a memory budget.
#[pyfunction]
fn _set_alloc_limit(bytes: usize) -> usize {
    signrt_core::alloc::set_limit(bytes)
}

// ------------------------------------------------------------------------------ module
#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    import_error_classes(m.py())?;
    m.add("__version__", signrt_core::VERSION)?;
    m.add("SPEC_VERSION", signrt_core::spec::SPEC_VERSION)?;
    m.add("LAYOUT", signrt_core::spec::LAYOUT)?;
    m.add("MAX_LEN_LIMIT", signrt_core::MAX_LEN_LIMIT)?;
    m.add("MAX_LAGS", signrt_core::MAX_LAGS)?;
    m.add("MAX_VALUES_PER_CLIP", signrt_core::MAX_VALUES_PER_CLIP)?;
    m.add(
        "DEFAULT_MOTION_SHOULDER",
        signrt_core::live::DEFAULT_MOTION_SHOULDER,
    )?;
    m.add(
        "DEFAULT_MOTION_IMAGE",
        signrt_core::live::DEFAULT_MOTION_IMAGE,
    )?;
    // The vector instruction set of the preprocessing hot path (baseline, avx2, avx512).
    m.add("simd", signrt_core::Isa::active().name())?;
    m.add_class::<PySpec>()?;
    m.add_class::<PyStream>()?;
    m.add_class::<PyWindowDecider>()?;
    m.add_class::<PySegmentDecider>()?;
    m.add_function(wrap_pyfunction!(preprocess, m)?)?;
    m.add_function(wrap_pyfunction!(preprocess_batch, m)?)?;
    m.add_function(wrap_pyfunction!(softmax_topk, m)?)?;
    m.add_function(wrap_pyfunction!(check_normalize, m)?)?;
    m.add_function(wrap_pyfunction!(_set_alloc_limit, m)?)?;
    Ok(())
}
