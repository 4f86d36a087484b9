//! Tolerant readers for request values. IronMQ clients send numbers as numbers or strings, zero
//! or an empty string for "not set", and nulls; these helpers turn all of that into `Option`s
//! and leave range checks to each request type's `validate()`.

use serde::{Deserialize, Deserializer};
use serde_json::Value;

fn invalid<E: serde::de::Error>(what: &str, got: &Value) -> E {
    E::custom(format!("expected {what}, got {got}"))
}

/// A whole number of at least 0; `null`, `0`, `""` and absence all mean "not set".
pub fn opt_u64<'de, D: Deserializer<'de>>(de: D) -> Result<Option<u64>, D::Error> {
    let value = Value::deserialize(de)?;
    let n = match &value {
        Value::Null => return Ok(None),
        Value::Number(n) => n.as_u64().or_else(|| {
            n.as_f64()
                .filter(|f| f.fract() == 0.0 && *f >= 0.0)
                .map(|f| f as u64)
        }),
        Value::String(s) if s.trim().is_empty() => return Ok(None),
        Value::String(s) => s.trim().parse::<u64>().ok(),
        _ => None,
    };
    match n {
        Some(0) => Ok(None),
        Some(n) => Ok(Some(n)),
        None => Err(invalid("a whole number", &value)),
    }
}

/// A whole number where 0 is a value (a count such as `retries`); `null` and `""` mean "not set".
pub fn opt_count<'de, D: Deserializer<'de>>(de: D) -> Result<Option<u64>, D::Error> {
    let value = Value::deserialize(de)?;
    match &value {
        Value::Null => Ok(None),
        Value::String(s) if s.trim().is_empty() => Ok(None),
        Value::Number(n) if n.as_u64().is_some() => Ok(n.as_u64()),
        Value::String(s) => s
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| invalid("a whole number", &value)),
        _ => Err(invalid("a whole number", &value)),
    }
}

/// A number, also given as a string; `null` and `""` mean "not set". Ranges are the caller's.
pub fn opt_number<'de, D: Deserializer<'de>>(de: D) -> Result<Option<f64>, D::Error> {
    let value = Value::deserialize(de)?;
    let n = match &value {
        Value::Null => return Ok(None),
        Value::String(s) if s.trim().is_empty() => return Ok(None),
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok().filter(|f| f.is_finite()),
        _ => None,
    };
    n.map(Some).ok_or_else(|| invalid("a number", &value))
}

/// A boolean, also given as `0`/`1` or `"true"`/`"false"`; `null` means false.
pub fn lenient_bool<'de, D: Deserializer<'de>>(de: D) -> Result<bool, D::Error> {
    let value = Value::deserialize(de)?;
    match &value {
        Value::Null => Ok(false),
        Value::Bool(b) => Ok(*b),
        Value::Number(n) if n.as_u64() == Some(0) => Ok(false),
        Value::Number(n) if n.as_u64() == Some(1) => Ok(true),
        Value::String(s) if s == "true" || s == "1" => Ok(true),
        Value::String(s) if s == "false" || s == "0" || s.is_empty() => Ok(false),
        _ => Err(invalid("true or false", &value)),
    }
}

/// A string where `null` and `""` mean "not set".
pub fn opt_string<'de, D: Deserializer<'de>>(de: D) -> Result<Option<String>, D::Error> {
    let value = Option::<String>::deserialize(de)?;
    Ok(value.filter(|s| !s.is_empty()))
}

/// A query-string number: absent or empty is `None`, anything else must be a whole number.
pub fn query_u64(name: &str, value: Option<&String>) -> Result<Option<u64>, super::ApiError> {
    match value.map(|v| v.trim()) {
        None | Some("") => Ok(None),
        Some(v) => v.parse::<u64>().map(Some).map_err(|_| {
            super::ApiError::bad_request(format!("{name} must be a whole number, got {v:?}"))
        }),
    }
}
