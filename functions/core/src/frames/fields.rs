//! Typed access to a frame's JSON fields with protocol error messages.

use super::Problem;
use crate::ids::FieldError;
use serde_json::{Map, Value};

pub(crate) struct Fields<'a>(pub &'a Map<String, Value>);

/// Cursors are opaque to clients; this bounds what the server is asked to decode.
pub const MAX_CURSOR_BYTES: usize = 8192;

/// A cursor field (`cursor`, `before`): what the server returned, so non-empty and bounded.
pub(super) fn cursor(s: &str) -> Result<String, FieldError> {
    if s.is_empty() || s.len() > MAX_CURSOR_BYTES {
        Err(FieldError::Invalid("a cursor returned by the server"))
    } else {
        Ok(s.to_owned())
    }
}

impl Fields<'_> {
    pub fn has(&self, name: &str) -> bool {
        !matches!(self.0.get(name), None | Some(Value::Null))
    }

    pub fn opt_str(&self, name: &str) -> Result<Option<&str>, Problem> {
        match self.0.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(Problem::bad(format!("`{name}` must be a string"))),
        }
    }

    /// The `op` of a directory frame, one of `allowed` (checked by the caller's match).
    pub fn op(&self, allowed: &str) -> Result<&str, Problem> {
        self.str("op")
            .map_err(|_| Problem::bad(format!("`op` is required: one of {allowed}")))
    }

    pub fn str(&self, name: &str) -> Result<&str, Problem> {
        self.opt_str(name)?
            .ok_or_else(|| Problem::bad(format!("`{name}` is required")))
    }

    /// A required field through a validating parser.
    pub fn parsed<T>(&self, name: &str, parse: impl Fn(&str) -> Result<T, FieldError>) -> Result<T, Problem> {
        parse(self.str(name)?).map_err(|e| Problem::field(name, e))
    }

    pub fn opt_parsed<T>(
        &self,
        name: &str,
        parse: impl Fn(&str) -> Result<T, FieldError>,
    ) -> Result<Option<T>, Problem> {
        self.opt_str(name)?
            .map(|s| parse(s).map_err(|e| Problem::field(name, e)))
            .transpose()
    }

    /// An optional whole number in `min..=max`.
    pub fn opt_uint(&self, name: &str, min: u64, max: u64) -> Result<Option<u64>, Problem> {
        match self.0.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => match n.as_u64() {
                Some(v) if (min..=max).contains(&v) => Ok(Some(v)),
                _ => Err(Problem::bad(format!(
                    "`{name}` must be a whole number from {min} to {max}"
                ))),
            },
            Some(_) => Err(Problem::bad(format!("`{name}` must be a number"))),
        }
    }

    pub fn uint(&self, name: &str, min: u64, max: u64) -> Result<u64, Problem> {
        self.opt_uint(name, min, max)?
            .ok_or_else(|| Problem::bad(format!("`{name}` is required")))
    }

    /// A required array of strings, each parsed, with a bound on its length.
    pub fn list<T>(
        &self,
        name: &str,
        min: usize,
        max: usize,
        parse: impl Fn(&str) -> Result<T, FieldError>,
    ) -> Result<Vec<T>, Problem> {
        let Some(v) = self.0.get(name).filter(|v| !v.is_null()) else {
            return Err(Problem::bad(format!("`{name}` is required")));
        };
        let Value::Array(items) = v else {
            return Err(Problem::bad(format!("`{name}` must be an array")));
        };
        if items.len() < min || items.len() > max {
            return Err(Problem::bad(format!("`{name}` must hold {min} to {max} entries")));
        }
        items
            .iter()
            .map(|item| match item {
                Value::String(s) => parse(s).map_err(|e| Problem::field(name, e)),
                _ => Err(Problem::bad(format!("`{name}` entries must be strings"))),
            })
            .collect()
    }

    /// Exactly one of two fields must be present.
    pub fn one_of(&self, a: &str, b: &str) -> Result<bool, Problem> {
        match (self.has(a), self.has(b)) {
            (true, false) => Ok(true),
            (false, true) => Ok(false),
            (true, true) => Err(Problem::bad(format!("give either `{a}` or `{b}`, not both"))),
            (false, false) => Err(Problem::bad(format!("`{a}` or `{b}` is required"))),
        }
    }
}
