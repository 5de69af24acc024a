//! Writing one row as a JSON object, value by value.

use std::fmt::Write as _;

/// Builds `{"col":value,…}` text for one row.
pub(crate) struct RowWriter {
    buf: String,
    first: bool,
}

/// A column value as it will appear in JSON, and as text in a group key.
pub(crate) enum Val {
    Null,
    Int(i64),
    Float(f64),
    Text(String),
}

impl Val {
    /// The text used in a group key; `None` for NULL.
    pub(crate) fn key_text(&self) -> Option<String> {
        match self {
            Val::Null => None,
            Val::Int(i) => Some(i.to_string()),
            Val::Float(f) => Some(f.to_string()),
            Val::Text(s) => Some(s.clone()),
        }
    }
}

impl RowWriter {
    pub(crate) fn new() -> RowWriter {
        RowWriter {
            buf: String::with_capacity(256),
            first: true,
        }
    }

    pub(crate) fn push(&mut self, name: &str, v: &Val) {
        self.buf.push(if self.first { '{' } else { ',' });
        self.first = false;
        push_str(&mut self.buf, name);
        self.buf.push(':');
        match v {
            Val::Null => self.buf.push_str("null"),
            Val::Int(i) => {
                let _ = write!(self.buf, "{i}");
            }
            Val::Float(f) if f.is_finite() => {
                let _ = write!(self.buf, "{f}");
            }
            Val::Float(_) => self.buf.push_str("null"),
            Val::Text(s) => push_str(&mut self.buf, s),
        }
    }

    pub(crate) fn finish(mut self) -> String {
        if self.first {
            self.buf.push('{');
        }
        self.buf.push('}');
        self.buf
    }
}

pub(crate) fn push_str(buf: &mut String, s: &str) {
    if !s.bytes().any(|b| b == b'"' || b == b'\\' || b < 0x20) {
        buf.push('"');
        buf.push_str(s);
        buf.push('"');
        return;
    }
    // serde_json's string escaping is exact.
    let escaped = serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into());
    buf.push_str(&escaped);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_keep_their_json_types() {
        let mut w = RowWriter::new();
        w.push("a", &Val::Int(3));
        w.push("c", &Val::Null);
        w.push("d", &Val::Text("x\"y".into()));
        w.push("e", &Val::Float(f64::NAN));
        assert_eq!(w.finish(), r#"{"a":3,"c":null,"d":"x\"y","e":null}"#);
    }
}
