//! Identifiers from paths are checked before any lookup.

use crate::ApiError;

/// An instance id: 1–64 characters of `[A-Za-z0-9-]`.
pub(crate) fn instance_id(raw: &str) -> Result<&str, ApiError> {
    let ok = !raw.is_empty()
        && raw.len() <= 64
        && raw.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    if ok {
        Ok(raw)
    } else {
        Err(ApiError::bad_request_code(
            "invalid_id",
            format!("{raw:?} is not a valid instance id"),
        ))
    }
}

/// A component kind: 1–32 characters of `[a-z0-9-]`.
pub(crate) fn component(raw: &str) -> Result<&str, ApiError> {
    let ok = !raw.is_empty()
        && raw.len() <= 32
        && raw
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if ok {
        Ok(raw)
    } else {
        Err(ApiError::bad_request_code(
            "invalid_component",
            format!("{raw:?} is not a valid component name"),
        ))
    }
}

/// A trash entry id: 1–64 characters of `[A-Za-z0-9-]` (the launcher makes 16 lowercase
/// alphanumerics); never joined into a path unchecked.
pub(crate) fn trash_entry(raw: &str) -> Result<&str, ApiError> {
    let ok = !raw.is_empty()
        && raw.len() <= 64
        && raw.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    if ok {
        Ok(raw)
    } else {
        Err(ApiError::bad_request_code(
            "invalid_id",
            format!("{raw:?} is not a valid trash entry id"),
        ))
    }
}
