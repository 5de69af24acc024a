//! CSV cells that are safe to open in a spreadsheet.
//!
//! Spreadsheet programs run a cell as a formula when its text starts with
//! `=`, `+`, `-` or `@` (and some treat a leading tab or carriage return the
//! same way), so a datasource named `=HYPERLINK("http://x/","y")` in an
//! exported CSV would become a live link, or worse, when the file is opened.
//! Every CSV cachedeck writes passes each cell through [`cell`], which puts a
//! `'` in front of such a cell; spreadsheets show the text as it was and run
//! nothing. A plain signed number (`-3`, `+1.5`, `-2e3`) is left alone, so
//! figures stay figures.
//!
//! Spreadsheets set to a locale whose list separator is `;` (much of
//! Europe) split an unquoted cell at every `;`, so every CSV is written
//! through [`writer`], which quotes every cell that is not a number: a
//! name like `a;b` stays one cell, whichever separator the reader expects.

use std::borrow::Cow;

/// The CSV writer for every file cachedeck writes: comma-separated, with
/// every cell that is not a number in double quotes (so a `;` in it does not
/// split it in a `;` locale). Cells still go through [`record`].
pub fn writer<W: std::io::Write>(w: W) -> csv::Writer<W> {
    csv::WriterBuilder::new()
        .quote_style(csv::QuoteStyle::NonNumeric)
        .from_writer(w)
}

/// `text`, with a leading `'` when a spreadsheet would otherwise run it.
/// The same goes for each part after a `;`: a reader that splits at `;`
/// without honouring the quotes would otherwise start a cell there.
pub fn cell(text: &str) -> Cow<'_, str> {
    if !text.split(';').any(runs) {
        return Cow::Borrowed(text);
    }
    let parts: Vec<String> = text
        .split(';')
        .map(|p| {
            if runs(p) {
                format!("'{p}")
            } else {
                p.to_string()
            }
        })
        .collect();
    Cow::Owned(parts.join(";"))
}

/// Whether a spreadsheet would run a cell that starts like `text`.
fn runs(text: &str) -> bool {
    match text.as_bytes().first() {
        Some(b'=' | b'@' | b'\t' | b'\r') => true,
        Some(b'+' | b'-') => !is_number(text),
        _ => false,
    }
}

/// Every cell of `record` through [`cell`], as the bytes `csv` writes.
pub fn record<'a, I, S>(record: I) -> Vec<Cow<'a, [u8]>>
where
    I: IntoIterator<Item = &'a S>,
    S: AsRef<str> + ?Sized + 'a,
{
    record
        .into_iter()
        .map(|c| match cell(c.as_ref()) {
            Cow::Borrowed(b) => Cow::Borrowed(b.as_bytes()),
            Cow::Owned(o) => Cow::Owned(o.into_bytes()),
        })
        .collect()
}

/// True for a decimal number: an optional sign, digits with at most one
/// `.`, and an optional exponent (`e`/`E`, optional sign, digits). Nothing
/// else (no `inf`, no spaces), so nothing a spreadsheet could read as a
/// formula.
fn is_number(text: &str) -> bool {
    let b = text.as_bytes();
    let mut i = 0;
    if matches!(b.first(), Some(b'+' | b'-')) {
        i = 1;
    }
    let mut digits = 0;
    let mut dot = false;
    while i < b.len() {
        match b[i] {
            b'0'..=b'9' => digits += 1,
            b'.' if !dot => dot = true,
            _ => break,
        }
        i += 1;
    }
    if digits == 0 {
        return false;
    }
    if i < b.len() && matches!(b[i], b'e' | b'E') {
        i += 1;
        if i < b.len() && matches!(b[i], b'+' | b'-') {
            i += 1;
        }
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == start {
            return false;
        }
    }
    i == b.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formulas_get_a_leading_quote() {
        for text in [
            "=HYPERLINK(\"http://x/\",\"y\")",
            "=1+1",
            "+1+2",
            "-1+2",
            "-A1",
            "@SUM(A1)",
            "\tcmd",
            "\r=1",
            "+",
            "-",
            "- 3",
            "-3e",
            "-inf",
            "-.",
        ] {
            assert_eq!(cell(text), format!("'{text}"), "{text:?}");
        }
        // Each part a `;` would start.
        assert_eq!(cell("x;=cmd|' /C calc'!A0;y"), "x;'=cmd|' /C calc'!A0;y");
        assert_eq!(cell("=1;@2;-3;+a"), "'=1;'@2;-3;'+a");
    }

    #[test]
    fn numbers_and_plain_text_stay() {
        for text in [
            "-3",
            "+3",
            "-3.25",
            "-.5",
            "-5.",
            "+1e5",
            "-2E-3",
            "0",
            "12.5",
            "",
            "Charges",
            "a=b",
            "x-1",
            "'=already",
            " =1",
            "{\"a\":1}",
            "a;b",
            "-3;-4",
            "x; =1",
        ] {
            assert_eq!(cell(text), text, "{text:?}");
            assert!(matches!(cell(text), Cow::Borrowed(_)));
        }
    }

    #[test]
    fn text_cells_are_quoted_and_numbers_are_not() {
        let mut w = writer(Vec::new());
        w.write_record(record(
            ["a;b", "-3", "=1;2", "12.5", "plain", ""].iter().copied(),
        ))
        .unwrap();
        let text = String::from_utf8(w.into_inner().unwrap()).unwrap();
        assert_eq!(text, "\"a;b\",-3,\"'=1;2\",12.5,\"plain\",\"\"\n");
    }

    #[test]
    fn record_maps_every_cell() {
        let r = record(["=1", "ok", "-2"].iter().copied());
        assert_eq!(r, vec![&b"'=1"[..], b"ok", b"-2"]);
        let owned = vec!["@x".to_string()];
        assert_eq!(record(&owned), vec![&b"'@x"[..]]);
    }
}
