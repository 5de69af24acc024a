//! The one place that takes passwords out of text before it is shown,
//! logged or stored: errors, log lines, job records, `warm_jobs.error`,
//! audit details, toasts and reports all pass through [`redact`].
//!
//! It covers every form a secret takes in cachedeck's text:
//! - URL user info: `redis://user:pw@host` → `redis://user:***@host`
//!   (also `://:pw@`, and a password holding `@` or `/` unencoded);
//! - `key=value` pairs whose key names a secret, in a query string or a
//!   libpq-style connection string: `?password=`, `&pass=`, `sslpassword=`,
//!   `passwd=`, `pwd=`, and any key ending in `password`, `secret` or
//!   `token` (quoted values too: `password='a b'`);
//! - Redis `AUTH` / `AUTH2` arguments (`AUTH pw`, `AUTH user pw`,
//!   `HELLO 3 AUTH user pw`, `MIGRATE … AUTH2 user pw`) and the value after
//!   `requirepass` / `masterauth`. In free text both words after `AUTH` are
//!   hidden, since text cannot say whether one is a user name; a command
//!   given as arguments ([`redact_args`]) keeps the user name.

use std::borrow::Cow;

/// What a hidden secret is replaced with.
pub const MASK: &str = "***";

/// `text` with every password it carries replaced by `***`.
pub fn redact(text: &str) -> String {
    let step = url_userinfo(text);
    let step = key_values(&step);
    auth_words(&step).into_owned()
}

/// A connection URL (or a comma-separated list of them, as cluster seeds
/// are given) as it may be shown: each one parsed the way redis-rs and sqlx
/// parse it, its user-info password and every query parameter whose
/// decoded name is a secret replaced by `***`. A URL that does not parse
/// is shown as its scheme only, since text cannot say where its password
/// ends (`redis://u:pa ss@h`, `redis://u:it's@h`). [`redact`] runs last.
pub fn url(text: &str) -> String {
    let one = |part: &str| -> String {
        let Ok(mut u) = url::Url::parse(part.trim()) else {
            // Only a real scheme is kept: a piece of a password split off
            // at a comma (`redis://u:a,b@h`) must not be shown as one.
            return match part.trim().split_once("://") {
                Some((scheme, _))
                    if !scheme.is_empty()
                        && scheme
                            .chars()
                            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.')) =>
                {
                    format!("{scheme}://…")
                }
                _ => "(a URL that does not parse)".to_string(),
            };
        };
        if u.password().is_some() {
            let _ = u.set_password(Some(MASK));
        }
        if u.query().is_some() {
            let pairs: Vec<(String, String)> = u
                .query_pairs()
                .map(|(k, v)| {
                    let v = if secret_key(&k) {
                        MASK.to_string()
                    } else {
                        v.into_owned()
                    };
                    (k.into_owned(), v)
                })
                .collect();
            u.query_pairs_mut().clear().extend_pairs(pairs);
        }
        u.to_string().replace("%2A%2A%2A", MASK)
    };
    let shown: Vec<String> = text.split(',').map(one).collect();
    redact(&shown.join(","))
}

/// A Redis command's arguments as they may be shown: the password of
/// `AUTH`, `AUTH2` and `HELLO … AUTH`, `CONFIG SET requirepass|masterauth`,
/// `MIGRATE … AUTH|AUTH2` and `ACL SETUSER … >pw` / `#hash` replaced by
/// `***` (user names are kept).
pub fn redact_args(args: &[String]) -> Vec<String> {
    let mut out: Vec<String> = args.to_vec();
    let upper: Vec<String> = args.iter().map(|a| a.to_ascii_uppercase()).collect();
    let first = upper.first().map(String::as_str).unwrap_or("");
    let mask = |out: &mut Vec<String>, i: usize| {
        if let Some(a) = out.get_mut(i) {
            *a = MASK.to_string();
        }
    };
    match first {
        // AUTH pw | AUTH user pw: the last argument is the password.
        "AUTH" if args.len() >= 2 => mask(&mut out, args.len() - 1),
        "ACL" if upper.get(1).map(String::as_str) == Some("SETUSER") => {
            for (i, a) in args.iter().enumerate().skip(3) {
                if a.starts_with(['>', '#', '<', '!']) {
                    out[i] = format!("{}{MASK}", &a[..1]);
                }
            }
        }
        "CONFIG" => {
            for (i, word) in upper.iter().enumerate().skip(2) {
                if matches!(
                    word.as_str(),
                    "REQUIREPASS" | "MASTERAUTH" | "TLS-KEY-FILE-PASS" | "TLS-CLIENT-KEY-FILE-PASS"
                ) {
                    mask(&mut out, i + 1);
                }
            }
        }
        _ => {}
    }
    // HELLO … AUTH user pw, MIGRATE … AUTH pw, MIGRATE … AUTH2 user pw.
    if matches!(first, "HELLO" | "MIGRATE") {
        for (i, word) in upper.iter().enumerate().skip(1) {
            match word.as_str() {
                "AUTH" if first == "HELLO" => mask(&mut out, i + 2),
                "AUTH" => mask(&mut out, i + 1),
                "AUTH2" => mask(&mut out, i + 2),
                _ => {}
            }
        }
    }
    out
}

/// `scheme://user:password@host` → `scheme://user:***@host`.
fn url_userinfo(text: &str) -> Cow<'_, str> {
    if !text.contains("://") {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = 0;
    let mut search = 0;
    while let Some(found) = text[search..].find("://") {
        let start = search + found + 3;
        // Not `token_end`: url::Url leaves `'` unencoded in a password.
        let mut end = text[start..]
            .find(|c: char| c.is_whitespace() || matches!(c, '"' | '`' | '<' | '>'))
            .map_or(text.len(), |i| start + i);
        // A list of URLs (`a://…,b://…`): this one ends at the comma
        // before the next scheme.
        if let Some(next) = text[start..end].find("://")
            && let Some(comma) = text[start..start + next].rfind(',')
        {
            end = start + comma;
        }
        let token = &text[start..end];
        // User info ends at the last `@` before the query (a password may
        // hold `/` or `@` when it was not percent-encoded).
        let before_query = token.find(['?', '#']).unwrap_or(token.len());
        if let Some(at) = token[..before_query].rfind('@')
            && let Some(colon) = token[..at].find(':')
        {
            let pw_start = start + colon + 1;
            let pw_end = start + at;
            if &text[pw_start..pw_end] != MASK {
                out.push_str(&text[rest..pw_start]);
                out.push_str(MASK);
                rest = pw_end;
            }
        }
        search = end.max(start);
        if search >= text.len() {
            break;
        }
    }
    if rest == 0 {
        return Cow::Borrowed(text);
    }
    out.push_str(&text[rest..]);
    Cow::Owned(out)
}

/// Whether a `key=` names a secret.
fn secret_key(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    matches!(k.as_str(), "pass" | "pwd" | "passwd" | "auth")
        || k.ends_with("password")
        || k.ends_with("passwd")
        || k.ends_with("secret")
        || k.ends_with("token")
}

fn key_char(c: u8) -> bool {
    // `%`: sqlx and redis-rs percent-decode query keys (`p%61ssword`).
    c.is_ascii_alphanumeric() || c == b'_' || c == b'-' || c == b'%'
}

/// `password=pw`, `&pass=pw`, `sslpassword='p w'` → value `***`.
fn key_values(text: &str) -> Cow<'_, str> {
    if !text.contains('=') {
        return Cow::Borrowed(text);
    }
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut rest = 0;
    let mut i = 0;
    // The previous pair was `key=<a secret's name>`.
    let mut secret_value_next = false;
    while i < bytes.len() {
        if bytes[i] != b'=' {
            i += 1;
            continue;
        }
        let mut k = i;
        while k > 0 && key_char(bytes[k - 1]) {
            k -= 1;
        }
        if k == i || k < rest {
            i += 1;
            continue;
        }
        let key_decoded = percent_encoding::percent_decode_str(&text[k..i]).decode_utf8_lossy();
        let key: &str = &key_decoded;
        // A log line's `key=password value=pw` (sqlx names an ignored
        // parameter so): the `value` after a secret key name is secret too.
        let named_next = std::mem::take(&mut secret_value_next);
        if key.eq_ignore_ascii_case("key") {
            let v_end = text[i + 1..]
                .find(|c: char| c.is_whitespace() || matches!(c, '&' | ';' | ','))
                .map_or(text.len(), |j| i + 1 + j);
            secret_value_next = secret_key(text[i + 1..v_end].trim_matches(['"', '\'']));
        }
        if !(secret_key(key) || (named_next && key.eq_ignore_ascii_case("value"))) {
            i += 1;
            continue;
        }
        let v = i + 1;
        let end = match bytes.get(v) {
            Some(q @ (b'\'' | b'"')) => {
                // A quoted value runs to its closing quote (or the end).
                let mut j = v + 1;
                while j < bytes.len() && bytes[j] != *q {
                    j += if bytes[j] == b'\\' { 2 } else { 1 };
                }
                (j + 1).min(bytes.len())
            }
            // A log line's `value=` after a secret key name is the decoded
            // value, which may hold spaces (`+`, `%20`): it runs to the end
            // of the line (the event's last field).
            _ if named_next && key.eq_ignore_ascii_case("value") => {
                text[v..].find(['\n', '\r']).map_or(text.len(), |j| v + j)
            }
            _ => text[v..]
                .find(|c: char| {
                    c.is_whitespace() || matches!(c, '&' | ';' | '"' | '\'' | ',' | '#')
                })
                .map_or(text.len(), |j| v + j),
        };
        if end > v && &text[v..end] != MASK {
            out.push_str(&text[rest..v]);
            out.push_str(MASK);
            rest = end;
        }
        i = end.max(i + 1);
    }
    if rest == 0 {
        return Cow::Borrowed(text);
    }
    out.push_str(&text[rest..]);
    Cow::Owned(out)
}

/// How many of the words after a keyword are secrets.
fn secret_words_after(word: &str) -> usize {
    match word.to_ascii_uppercase().as_str() {
        "AUTH" | "AUTH2" => 2,
        "REQUIREPASS" | "MASTERAUTH" => 1,
        _ => 0,
    }
}

/// The words after `AUTH` (two), `requirepass` and `masterauth` (one) → `***`.
fn auth_words(text: &str) -> Cow<'_, str> {
    let lower = text.to_ascii_lowercase();
    if !(lower.contains("auth") || lower.contains("requirepass")) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = 0;
    let mut pos = 0;
    // Words of one line; a line break ends a command.
    while pos < text.len() {
        let start = match text[pos..].find(|c: char| !c.is_whitespace()) {
            Some(s) => pos + s,
            None => break,
        };
        let end = text[start..]
            .find(char::is_whitespace)
            .map_or(text.len(), |e| start + e);
        let word = text[start..end]
            .trim_matches(|c: char| matches!(c, '"' | '\'' | '`' | '[' | '(' | ','));
        let mut hide = secret_words_after(word);
        pos = end;
        while hide > 0 && pos < text.len() {
            // Stay on this line.
            let gap = &text[pos..];
            let skip = gap
                .find(|c: char| !(c == ' ' || c == '\t'))
                .unwrap_or(gap.len());
            if gap[skip..].starts_with(['\n', '\r']) || pos + skip >= text.len() {
                break;
            }
            let s = pos + skip;
            let e = if text[s..].starts_with('"') {
                text[s + 1..].find('"').map_or(text.len(), |q| s + 2 + q)
            } else {
                text[s..]
                    .find(|c: char| c.is_whitespace() || matches!(c, '"' | ']' | ')' | ','))
                    .map_or(text.len(), |q| s + q)
            };
            if e == s {
                break;
            }
            if &text[s..e] != MASK {
                out.push_str(&text[rest..s]);
                out.push_str(MASK);
                rest = e;
            }
            pos = e;
            hide -= 1;
        }
    }
    if rest == 0 {
        return Cow::Borrowed(text);
    }
    out.push_str(&text[rest..]);
    Cow::Owned(out)
}

/// The log's writer: each event is gathered, redacted and written to
/// standard error in one piece (`tracing_subscriber::fmt().with_writer(…)`).
#[derive(Debug, Clone, Copy, Default)]
pub struct RedactingStderr;

/// One log event on its way to standard error.
pub struct RedactingLine(Vec<u8>);

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for RedactingStderr {
    type Writer = RedactingLine;

    fn make_writer(&'a self) -> RedactingLine {
        RedactingLine(Vec::with_capacity(256))
    }
}

impl std::io::Write for RedactingLine {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for RedactingLine {
    fn drop(&mut self) {
        if self.0.is_empty() {
            return;
        }
        let line = redact(&String::from_utf8_lossy(&self.0));
        let _ = std::io::Write::write_all(&mut std::io::stderr().lock(), line.as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(words: &[&str]) -> Vec<String> {
        words.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn url_user_info() {
        assert_eq!(
            redact("redis://admin:secret@host:6379"),
            "redis://admin:***@host:6379"
        );
        assert_eq!(redact("redis://:secret@host"), "redis://:***@host");
        assert_eq!(
            redact("cannot open postgres://u:p@ss/w0rd@db:5432/x?sslmode=require: refused"),
            "cannot open postgres://u:***@db:5432/x?sslmode=require: refused"
        );
        assert_eq!(
            redact("a rediss://u:s1@h:1,rediss://u:s2@h:2 b"),
            "a rediss://u:***@h:1,rediss://u:***@h:2 b"
        );
        // No password: unchanged.
        assert_eq!(redact("redis://user@host:1/0"), "redis://user@host:1/0");
        assert_eq!(
            redact("sqlite:///tmp/x.db?mode=rwc"),
            "sqlite:///tmp/x.db?mode=rwc"
        );
        // Idempotent.
        let once = redact("redis://a:b@c");
        assert_eq!(redact(&once), once);
    }

    #[test]
    fn query_and_connection_string_passwords() {
        assert_eq!(
            redact("postgres://db/x?user=u&password=hunter2&sslmode=require"),
            "postgres://db/x?user=u&password=***&sslmode=require"
        );
        assert_eq!(
            redact("postgres://db/x?pass=hunter2"),
            "postgres://db/x?pass=***"
        );
        assert_eq!(
            redact("postgres://db/x?sslpassword=hunter2&sslkey=/k"),
            "postgres://db/x?sslpassword=***&sslkey=/k"
        );
        assert_eq!(
            redact("host=db user=u password='hunter 2' dbname=x"),
            "host=db user=u password=*** dbname=x"
        );
        assert_eq!(redact("PASSWORD=hunter2;x=1"), "PASSWORD=***;x=1");
        // A log line naming the parameter apart from its value.
        assert_eq!(
            redact("ignoring unrecognized connect parameter key=sslpassword value=hunter2"),
            "ignoring unrecognized connect parameter key=sslpassword value=***"
        );
        assert_eq!(
            redact("ignoring key=sslpassword value=hun Secret9\nnext"),
            "ignoring key=sslpassword value=***\nnext"
        );
        assert_eq!(
            redact("key=sslmode value=require"),
            "key=sslmode value=require"
        );
        // Keys that merely contain the letters are not secrets.
        assert_eq!(redact("passes=3 compass=north"), "passes=3 compass=north");
    }

    #[test]
    fn redis_auth_arguments() {
        assert_eq!(redact("AUTH hunter2"), "AUTH ***");
        assert_eq!(redact("AUTH alice hunter2"), "AUTH *** ***");
        assert_eq!(
            redact("HELLO 3 AUTH alice hunter2 SETNAME x"),
            "HELLO 3 AUTH *** *** SETNAME x"
        );
        assert_eq!(
            redact("command: \"auth\" \"alice\" \"hunter2\""),
            "command: \"auth\" *** ***"
        );
        assert_eq!(
            redact("CONFIG SET requirepass hunter2"),
            "CONFIG SET requirepass ***"
        );
        // A line break ends the command.
        assert_eq!(redact("AUTH\nnext line"), "AUTH\nnext line");
        assert_eq!(
            redact_args(&args(&["AUTH", "alice", "hunter2"])),
            args(&["AUTH", "alice", "***"])
        );
        assert_eq!(
            redact_args(&args(&["auth", "hunter2"])),
            args(&["auth", "***"])
        );
        assert_eq!(
            redact_args(&args(&[
                "HELLO", "3", "AUTH", "alice", "hunter2", "SETNAME", "n"
            ])),
            args(&["HELLO", "3", "AUTH", "alice", "***", "SETNAME", "n"])
        );
        assert_eq!(
            redact_args(&args(&[
                "MIGRATE", "h", "1", "", "0", "5", "AUTH2", "u", "pw", "KEYS", "k"
            ])),
            args(&[
                "MIGRATE", "h", "1", "", "0", "5", "AUTH2", "u", "***", "KEYS", "k"
            ])
        );
        assert_eq!(
            redact_args(&args(&["ACL", "SETUSER", "bob", "on", ">hunter2", "~*"])),
            args(&["ACL", "SETUSER", "bob", "on", ">***", "~*"])
        );
        assert_eq!(
            redact_args(&args(&["CONFIG", "SET", "masterauth", "hunter2"])),
            args(&["CONFIG", "SET", "masterauth", "***"])
        );
        assert_eq!(
            redact_args(&args(&["ACL", "SETUSER", "bob", "!5e88489", "nopass"])),
            args(&["ACL", "SETUSER", "bob", "!***", "nopass"])
        );
        assert_eq!(
            redact_args(&args(&[
                "config",
                "set",
                "maxmemory",
                "1gb",
                "tls-key-file-pass",
                "hunter2"
            ])),
            args(&[
                "config",
                "set",
                "maxmemory",
                "1gb",
                "tls-key-file-pass",
                "***"
            ])
        );
    }

    #[test]
    fn review_bypasses() {
        // url::Url keeps `'` in a password unencoded (with_password makes such
        // URLs from keyring secrets).
        let u = crate::config::with_password("redis://u@127.0.0.1:1", "ab'cd").unwrap();
        assert!(!redact(&format!("cannot reach Redis at {u}: refused")).contains("cd@"));
        assert!(!url(&u).contains("ab'cd"));
        // A space in a password given in a URL: url::Url accepts it.
        assert!(!url("redis://u:sp ace@127.0.0.1:1").contains("ace"));
        // sqlx and redis-rs decode query keys.
        assert!(!redact("postgres://u@h/d?p%61ssword=hunter2").contains("hunter2"));
        assert!(!redact("redis+unix:///r.sock?p%61ss=hunter2").contains("hunter2"));
        assert!(!url("postgres://u@h/d?p%61ssword=hunter2&x=1").contains("hunter2"));
        assert!(
            crate::source::password::check_source_url("postgres://u@h/d?p%61ssword=hunter2")
                .is_err()
        );
        // Seeds.
        let seeds = url("redis://u:a@h:1,redis://u:b'c@h:2");
        assert!(!seeds.contains("b'c") && !seeds.contains(":a@"), "{seeds}");
        // Unparseable: scheme only.
        assert_eq!(url("redis://u:pa#ss@h"), "redis://…");
        // A password with a comma, split as seeds are.
        assert!(!url("b@h:1").contains('b'));
        assert!(!url("redis://u:a,b@h:1").contains("a,b"));
    }

    #[test]
    fn plain_text_is_left_alone() {
        let t = "warm of datasource 3 failed: the source query failed (42P01)";
        assert!(matches!(url_userinfo(t), Cow::Borrowed(_)));
        assert_eq!(redact(t), t);
    }
}
