//! Python bindings of signrt-core (module `signrt._native`): numpy in, numpy out.
//!
//! Thin on purpose: every rule lives in signrt-core. This crate only
//! * views numpy arrays without copying (float32/float64 in native byte order, aligned, any
//!   strides: C or Fortran order, sliced, reversed) or converts them once (any other real
//!   dtype, byte order or alignment) into float64,
//! * checks shapes and dtypes and raises `signrt.errors.ShapeError` saying expected vs got,
//! * maps core errors onto the classes of `signrt.errors` (`SpecError` with its `field`),
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
use pyo3::exceptions::{PyMemoryError, PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyTuple;
use signrt_core::{ClipRef, Error, FeatureSpec, FrameRef, NUM_COORDS, NUM_LANDMARKS};

// ------------------------------------------------------------------------------ errors
fn error_class<'py>(py: Python<'py>, name: &str) -> PyResult<Bound<'py, PyAny>> {
    py.import("signrt.errors")?.getattr(name)
}

fn make_error(py: Python<'_>, class: &str, args: Bound<'_, PyTuple>, fallback: PyErr) -> PyErr {
    match error_class(py, class).and_then(|cls| cls.call1(args)) {
        Ok(instance) => PyErr::from_value(instance),
        Err(_) => fallback,
    }
}

fn shape_error(py: Python<'_>, msg: String) -> PyErr {
    let args = PyTuple::new(py, [msg.as_str()]).expect("a tuple of one str");
    make_error(py, "ShapeError", args, PyValueError::new_err(msg))
}

fn spec_error(py: Python<'_>, msg: String, field: Option<String>) -> PyErr {
    let args = (msg.as_str(), field.as_deref())
        .into_pyobject(py)
        .expect("a tuple");
    make_error(py, "SpecError", args, PyValueError::new_err(msg))
}

fn signrt_error(py: Python<'_>, msg: String) -> PyErr {
    let args = PyTuple::new(py, [msg.as_str()]).expect("a tuple of one str");
    make_error(py, "SignrtError", args, PyRuntimeError::new_err(msg))
}

fn core_error(py: Python<'_>, err: Error) -> PyErr {
    match err {
        Error::Spec { field, message } => spec_error(py, message, field),
        Error::Shape(msg) => shape_error(py, msg),
        Error::Model(msg) => {
            let args = PyTuple::new(py, [msg.as_str()]).expect("a tuple of one str");
            make_error(py, "ModelError", args, PyValueError::new_err(msg))
        }
        Error::Alloc(msg) => {
            let args = PyTuple::new(py, [msg.as_str()]).expect("a tuple of one str");
            make_error(py, "AllocationError", args, PyMemoryError::new_err(msg))
        }
        Error::Internal(msg) => signrt_error(py, format!("signrt internal error: {msg}")),
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
/// A FeatureSpec parsed and validated by the Rust core (same rules as spec.py).
#[pyclass(frozen, name = "Spec", module = "signrt._native")]
struct PySpec {
    inner: Arc<FeatureSpec>,
}

#[pymethods]
impl PySpec {
    #[new]
    fn new(py: Python<'_>, json: &str) -> PyResult<Self> {
        let parsed = guard(|| FeatureSpec::from_json(json));
        Ok(PySpec {
            inner: Arc::new(finish(py, parsed)?),
        })
    }

    /// The spec as JSON text (formatted like FeatureSpec.to_json()).
    fn to_json(&self) -> String {
        self.inner.to_json()
    }

    /// L, the number of output frames.
    #[getter]
    fn max_len(&self) -> usize {
        self.inner.max_len()
    }

    /// P, the number of selected landmarks.
    #[getter]
    fn num_points(&self) -> usize {
        self.inner.num_points()
    }

    /// F = P · C_out, the width of a feature row.
    #[getter]
    fn num_features(&self) -> usize {
        self.inner.num_features()
    }

    fn __repr__(&self) -> String {
        format!(
            "Spec(num_points={}, num_features={}, max_len={})",
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
        self.inner.to_json().hash(&mut h);
        h.finish()
    }

    /// Pickle support: rebuilt from its JSON.
    fn __reduce__<'py>(slf: &Bound<'py, Self>) -> PyResult<(Bound<'py, PyAny>, (String,))> {
        Ok((slf.get_type().into_any(), (slf.get().inner.to_json(),)))
    }
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
        let outcome = guard(|| lock(&self.inner).push(view));
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

/// Softmax of each row of (B, K) logits and its k best classes, best first:
/// `[[(class, probability), ...], ...]`.
#[pyfunction]
fn softmax_topk(
    py: Python<'_>,
    logits: numpy::PyReadonlyArray2<'_, f32>,
    k: usize,
) -> PyResult<Vec<Vec<(usize, f64)>>> {
    if k == 0 {
        return Err(shape_error(py, "k must be >= 1, got 0".to_owned()));
    }
    let view = logits.as_array();
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
        out.push(signrt_core::softmax_topk(row, k).map_err(|e| core_error(py, e))?);
    }
    Ok(out)
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
    m.add("__version__", signrt_core::VERSION)?;
    // The vector instruction set of the preprocessing hot path (baseline, avx2, avx512).
    m.add("simd", signrt_core::Isa::active().name())?;
    m.add_class::<PySpec>()?;
    m.add_class::<PyStream>()?;
    m.add_function(wrap_pyfunction!(preprocess, m)?)?;
    m.add_function(wrap_pyfunction!(preprocess_batch, m)?)?;
    m.add_function(wrap_pyfunction!(softmax_topk, m)?)?;
    m.add_function(wrap_pyfunction!(_set_alloc_limit, m)?)?;
    Ok(())
}
