//! Postgres connect options with libpq's reading of `sslmode=require`.
//!
//! libpq treats `require` as `verify-ca` when a root certificate file is
//! given: a person who names the CA expects it to be checked. sqlx reads
//! `require` literally (encrypt, check nothing), so a profile's
//! `database.tls_ca_file` (or `sslrootcert` in the URL, or `PGSSLROOTCERT`)
//! next to `sslmode=require` would verify nothing. Every Postgres
//! connection cachedeck opens (the store and every datasource source) parses
//! its URL here. (libpq's default file `~/.postgresql/root.crt` is not looked
//! for: only a CA that is named counts.)

use sqlx::postgres::{PgConnectOptions, PgSslMode};

/// Query keys sqlx reads as the root certificate file.
const ROOT_CERT_KEYS: [&str; 3] = ["sslrootcert", "ssl-root-cert", "ssl-ca"];

/// Parses a Postgres URL; `require` with a root certificate becomes
/// `verify-ca`.
pub(crate) fn options(url: &str) -> Result<PgConnectOptions, sqlx::Error> {
    let opts: PgConnectOptions = url.parse()?;
    let mode = effective_mode(opts.get_ssl_mode(), names_root_cert(url));
    Ok(opts.ssl_mode(mode))
}

/// libpq's rule: `require` with a root certificate checks the chain.
fn effective_mode(mode: PgSslMode, root_cert: bool) -> PgSslMode {
    match mode {
        PgSslMode::Require if root_cert => PgSslMode::VerifyCa,
        m => m,
    }
}

/// Whether the URL (or `PGSSLROOTCERT`, which sqlx also reads) names a root
/// certificate file.
fn names_root_cert(url: &str) -> bool {
    let in_url = url::Url::parse(url).is_ok_and(|u| {
        u.query_pairs()
            .any(|(k, v)| ROOT_CERT_KEYS.contains(&k.as_ref()) && !v.is_empty())
    });
    in_url || std::env::var_os("PGSSLROOTCERT").is_some_and(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn require_with_a_root_certificate_verifies_the_chain() {
        assert!(matches!(
            effective_mode(PgSslMode::Require, true),
            PgSslMode::VerifyCa
        ));
        for (mode, want) in [
            (PgSslMode::Require, PgSslMode::Require),
            (PgSslMode::Prefer, PgSslMode::Prefer),
            (PgSslMode::VerifyFull, PgSslMode::VerifyFull),
        ] {
            assert_eq!(
                format!("{:?}", effective_mode(mode, false)),
                format!("{want:?}")
            );
        }
        // Other modes keep their meaning with a CA too.
        for mode in [PgSslMode::Disable, PgSslMode::Prefer, PgSslMode::VerifyFull] {
            let shown = format!("{mode:?}");
            assert_eq!(format!("{:?}", effective_mode(mode, true)), shown);
        }
    }

    #[test]
    fn the_url_names_the_root_certificate() {
        let o = options("postgres://u@db/x?sslmode=require&sslrootcert=%2Fetc%2Fca.pem").unwrap();
        assert!(matches!(o.get_ssl_mode(), PgSslMode::VerifyCa));
        let o = options("postgres://u@db/x?ssl-ca=%2Fetc%2Fca.pem&sslmode=require").unwrap();
        assert!(matches!(o.get_ssl_mode(), PgSslMode::VerifyCa));
        let o =
            options("postgres://u@db/x?sslmode=verify-full&sslrootcert=%2Fetc%2Fca.pem").unwrap();
        assert!(matches!(o.get_ssl_mode(), PgSslMode::VerifyFull));
    }
}
