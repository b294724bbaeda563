//! Fallible allocation: every buffer whose size follows from the input (a clip's length,
//! the batch size, a spec's `max_len`, landmarks and lags) is sized with checked arithmetic,
//! compared with a process-wide limit and reserved with `try_reserve`, so that a request
//! that cannot be met is an [`Error::Alloc`], never an abort or a panic.
//!
//! The limit defaults to `isize::MAX` bytes (the most any allocation can be); a caller may
//! lower it ([`set_limit`]) to turn an oversized request into an error before the
//! allocator is asked, e.g. a service that must not take more than its share of memory, or
//! a test that exercises the error without exhausting the machine.

use std::sync::atomic::{AtomicUsize, Ordering};

use crate::error::{Error, Result};

static LIMIT: AtomicUsize = AtomicUsize::new(isize::MAX as usize);

/// The largest single allocation (bytes) the core asks for.
pub fn limit() -> usize {
    LIMIT.load(Ordering::Relaxed)
}

/// Set the largest single allocation (bytes) the core asks for; returns the previous
/// limit. Values above `isize::MAX` are clamped to it.
pub fn set_limit(bytes: usize) -> usize {
    LIMIT.swap(bytes.min(isize::MAX as usize), Ordering::Relaxed)
}

fn too_big(what: &str, dims: &[usize], elem_bytes: usize, bytes: Option<usize>) -> Error {
    let dims: Vec<String> = dims.iter().map(usize::to_string).collect();
    let size = match bytes {
        Some(b) => format!("{:.1} MiB", b as f64 / (1u64 << 20) as f64),
        None => "more than usize::MAX bytes".to_owned(),
    };
    Error::Alloc(format!(
        "cannot allocate {what}: ({}) values of {elem_bytes} bytes is {size}, over the limit \
         of {:.1} MiB",
        dims.join(" × "),
        limit() as f64 / (1u64 << 20) as f64
    ))
}

/// The number of values of an array of shape `dims` with `elem_bytes` bytes each, if its
/// size in bytes is within [`limit`].
///
/// # Errors
/// [`Error::Alloc`] naming `what` if the size overflows or is over the limit.
pub fn checked_len(dims: &[usize], elem_bytes: usize, what: &str) -> Result<usize> {
    let len = dims.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d));
    let bytes = len.and_then(|n| n.checked_mul(elem_bytes));
    match (len, bytes) {
        (Some(n), Some(b)) if b <= limit() => Ok(n),
        _ => Err(too_big(what, dims, elem_bytes, bytes)),
    }
}

/// Grow `v` to at least `len` values (new ones are `fill`); never shrinks.
///
/// # Errors
/// [`Error::Alloc`] naming `what` if the memory is over the limit or cannot be had.
pub fn grow<T: Clone>(v: &mut Vec<T>, len: usize, fill: T, what: &str) -> Result<()> {
    if v.len() >= len {
        return Ok(());
    }
    checked_len(&[len], std::mem::size_of::<T>(), what)?;
    v.try_reserve_exact(len - v.len())
        .map_err(|e| Error::Alloc(format!("cannot allocate {what} ({len} values): {e}")))?;
    v.resize(len, fill);
    Ok(())
}

/// A vector of shape `dims` (flattened) filled with `T::default()`.
///
/// # Errors
/// [`Error::Alloc`] naming `what` if the memory is over the limit or cannot be had.
pub fn zeroed<T: Clone + Default>(dims: &[usize], what: &str) -> Result<Vec<T>> {
    let len = checked_len(dims, std::mem::size_of::<T>(), what)?;
    let mut v = Vec::new();
    grow(&mut v, len, T::default(), what)?;
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overflow_and_limit_are_errors() {
        assert_eq!(checked_len(&[3, 4], 8, "x").unwrap(), 12);
        assert!(matches!(
            checked_len(&[usize::MAX, 2], 1, "x"),
            Err(Error::Alloc(_))
        ));
        // Over isize::MAX bytes: the default limit.
        let err = checked_len(&[1 << 40, 1 << 22], 4, "the features").unwrap_err();
        assert!(err.to_string().contains("the features"), "{err}");
        let mut v: Vec<f64> = Vec::new();
        assert!(matches!(
            grow(&mut v, usize::MAX / 4, 0.0, "x"),
            Err(Error::Alloc(_))
        ));
        assert!(v.is_empty());
        grow(&mut v, 5, 1.5, "x").unwrap();
        assert_eq!(v, vec![1.5; 5]);
        grow(&mut v, 2, 0.0, "x").unwrap();
        assert_eq!(v.len(), 5);
        assert_eq!(zeroed::<f32>(&[2, 3], "x").unwrap(), vec![0.0; 6]);
    }
}
