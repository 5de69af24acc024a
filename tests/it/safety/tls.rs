//! TLS: Postgres honours `sslmode` and the profile's CA file; a Redis URL
//! that turns certificate checks off is warned about.

use crate::support::{CliRunner, RedisServer, TestDb};

/// A CA that signed nothing the test servers use.
const OTHER_CA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/other-ca.pem");

/// The local Postgres must have TLS on (Debian's package enables it with
/// the snakeoil certificate); returns its certificate file.
async fn server_cert(db: &TestDb) -> String {
    let pool = db.pool().await;
    let (ssl, cert): (String, String) =
        sqlx::query_as("SELECT current_setting('ssl'), current_setting('ssl_cert_file')")
            .fetch_one(&pool)
            .await
            .expect("ssl settings");
    pool.close().await;
    assert_eq!(
        ssl, "on",
        "the test Postgres has ssl=off: turn it on (Debian's postgresql package does, with the snakeoil certificate)"
    );
    cert
}

fn profile(cli: &CliRunner, redis: &str, db_url: &str, ca: &str) {
    cli.write_profiles(&format!(
        "default_profile = \"p\"\n[profiles.p]\nredis.urls = [\"{redis}\"]\n\
         database.url = \"{db_url}\"\ndatabase.tls_ca_file = \"{ca}\"\n"
    ));
}

#[tokio::test]
async fn postgres_sslmode_and_the_profile_ca_file_are_honoured() {
    let redis = RedisServer::start();
    let db = TestDb::create();
    let cert = server_cert(&db).await;
    let url = db.url().to_string();
    assert!(!url.contains('?'), "{url}");

    // sslmode=require: encrypted; the source query sees its own TLS session.
    let cli = CliRunner::new()
        .database(format!("{url}?sslmode=require"))
        .redis(redis.url());
    let sql = "SELECT 'M' AS measure, 1 AS practice_uid, NULL::int AS provider_uid, 'Monthly' AS frequency, \
               (SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()) AS tls";
    cli.run_async(&[
        "datasource",
        "add",
        "--id",
        "1",
        "--name",
        "Tls",
        "--sql",
        sql,
    ])
    .await
    .success();
    cli.run_async(&["warm", "--datasource", "1"])
        .await
        .success();
    let rows = cli
        .run_async(&[
            "--json",
            "query",
            "--datasource",
            "1",
            "--measure",
            "M",
            "--frequency",
            "Monthly",
        ])
        .await
        .success()
        .json();
    assert!(rows.to_string().contains("\"tls\":true"), "{rows}");

    // verify-full (what a CA file in the profile turns on) against a CA that
    // did not sign the server's certificate: refused, and the message says
    // what to check.
    let cli = CliRunner::new();
    profile(&cli, &redis.url(), &url, OTHER_CA);
    let o = cli
        .run_async(&["datasource", "list"])
        .await
        .failure_one_line();
    assert_eq!(o.code, 1, "{o}");
    assert!(
        o.stderr.contains("certificate") && o.stderr.contains("database.tls_ca_file"),
        "{o}"
    );
    assert!(
        o.stderr.contains("UnknownIssuer"),
        "the CA was not what failed: {o}"
    );
    // The right CA with verify-full: the chain is accepted, and the host
    // name is checked. Through `localhost` it connects when the server's
    // certificate names localhost (Debian's snakeoil certificate names the
    // machine it was made on); through 127.0.0.1, which it does not name,
    // it is refused for the name alone.
    let cli = CliRunner::new();
    let localhost = url.replace("@127.0.0.1:", "@localhost:");
    profile(&cli, &redis.url(), &localhost, &cert);
    let o = cli.run_async(&["datasource", "list"]).await;
    assert!(
        o.code == 0
            || (o.stderr.contains("not valid for name") && !o.stderr.contains("UnknownIssuer")),
        "{o}"
    );
    let cli = CliRunner::new();
    profile(&cli, &redis.url(), &url, &cert);
    let o = cli
        .run_async(&["datasource", "list"])
        .await
        .failure_one_line();
    assert!(
        o.stderr.contains("not valid for name \"127.0.0.1\"")
            && !o.stderr.contains("UnknownIssuer"),
        "{o}"
    );
}

#[tokio::test]
async fn a_redis_url_without_certificate_checks_is_warned_about() {
    let data = crate::support::SqliteFile::create();
    let cli = CliRunner::new()
        .database(data.url())
        .redis("rediss://127.0.0.1:6390/#insecure");
    let o = cli.run_async(&["datasource", "list"]).await.success();
    let warnings: Vec<&str> = o
        .stderr
        .lines()
        .filter(|l| l.starts_with("warning:"))
        .collect();
    assert_eq!(warnings.len(), 1, "{o}");
    assert!(
        warnings[0].contains("TLS certificate checks are off"),
        "{o}"
    );
    // A verified TLS URL and a plain one say nothing.
    for url in ["rediss://127.0.0.1:6390/", "redis://127.0.0.1:6390/"] {
        let cli = CliRunner::new().database(data.url()).redis(url);
        let o = cli.run_async(&["datasource", "list"]).await.success();
        assert!(!o.stderr.contains("warning:"), "{url}: {o}");
    }
}

#[tokio::test]
async fn sslmode_require_with_a_ca_file_checks_the_chain_as_libpq_does() {
    let redis = RedisServer::start();
    let db = TestDb::create();
    let cert = server_cert(&db).await;
    // Through the name the server's certificate carries (Debian's snakeoil
    // certificate names localhost; the host name is not what is tested).
    let url = db.url().replace("@127.0.0.1:", "@localhost:");
    let require = format!("{url}?sslmode=require");

    // The profile's CA file did not sign the server's certificate: refused
    // in one line that says what to check.
    let cli = CliRunner::new();
    profile(&cli, &redis.url(), &require, OTHER_CA);
    let o = cli
        .run_async(&["datasource", "list"])
        .await
        .failure_one_line();
    assert_eq!(o.code, 1, "{o}");
    assert!(
        o.stderr.contains("UnknownIssuer") && o.stderr.contains("database.tls_ca_file"),
        "sslmode=require with a CA file did not check the chain: {o}"
    );
    // The same through `sslrootcert` in the URL, without a profile.
    let with_root = format!(
        "{require}&sslrootcert={}",
        url::form_urlencoded::byte_serialize(OTHER_CA.as_bytes()).collect::<String>()
    );
    let o = CliRunner::new()
        .database(with_root)
        .redis(redis.url())
        .run_async(&["datasource", "list"])
        .await
        .failure_one_line();
    assert!(o.stderr.contains("UnknownIssuer"), "{o}");

    // The right CA connects.
    let cli = CliRunner::new();
    profile(&cli, &redis.url(), &require, &cert);
    cli.run_async(&["datasource", "list"]).await.success();

    // A datasource whose source URL says `sslmode=require` with the wrong
    // CA is refused at the source too.
    let source = format!(
        "{}?sslmode=require&sslrootcert={}",
        url,
        url::form_urlencoded::byte_serialize(OTHER_CA.as_bytes()).collect::<String>()
    );
    let err = cachedeck::source::Source::open(&source, std::time::Duration::from_secs(5))
        .await
        .expect_err("the source connected with the wrong CA");
    assert!(err.to_string().contains("UnknownIssuer"), "{err}");
    let good = format!(
        "{}?sslmode=require&sslrootcert={}",
        url,
        url::form_urlencoded::byte_serialize(cert.as_bytes()).collect::<String>()
    );
    cachedeck::source::Source::open(&good, std::time::Duration::from_secs(5))
        .await
        .expect("the source with the right CA")
        .close()
        .await;
}

#[tokio::test]
async fn a_tls_cluster_announced_by_ip_is_checked_against_the_configured_host_name() {
    // The certificate names only `localhost`; the cluster announces its
    // nodes as 127.0.0.1.
    let files = crate::support::TlsFiles::create();
    let cluster = crate::support::RedisCluster::start_tls(&files);
    let seed = format!("rediss://localhost:{}", cluster.tls_ports()[0]);
    let data = crate::support::SqliteFile::create();
    let write = |cli: &CliRunner, ca: &str| {
        cli.write_profiles(&format!(
            "default_profile = \"p\"\n[profiles.p]\nredis.urls = [\"{seed}\"]\n\
             redis.tls_ca_file = \"{ca}\"\ndatabase.url = \"{}\"\n",
            data.url()
        ));
    };

    // In the core: every master is reached (keys on each slot range), and
    // directly (the per-master figures).
    let target = cachedeck::redis_conn::RedisTarget {
        urls: vec![seed.clone()],
        tls_ca_file: Some(files.ca()),
        ..Default::default()
    };
    let redis = cachedeck::redis_conn::Redis::connect(&target)
        .await
        .unwrap_or_else(|e| panic!("connecting to the TLS cluster: {e}"));
    for k in 0..30 {
        let key = format!("tls-cluster-{k}");
        let _: () = redis
            .query("SET", redis::cmd("SET").arg(&key).arg(k))
            .await
            .expect("SET");
        let v: i64 = redis
            .query("GET", redis::cmd("GET").arg(&key))
            .await
            .expect("GET");
        assert_eq!(v, k);
    }
    let memory = redis.masters_memory().await.expect("every master directly");
    assert_eq!(memory.len(), 3, "{memory:?}");

    // The CLI with the profile's CA: works.
    let cli = CliRunner::new();
    write(&cli, &files.ca().to_string_lossy());
    cli.run_async(&["stats"]).await.success();

    // A CA that did not sign the servers' certificate: one clear line.
    let cli = CliRunner::new();
    write(&cli, OTHER_CA);
    let o = cli.run_async(&["stats"]).await.failure_one_line();
    assert!(
        o.stderr.contains("UnknownIssuer") && o.stderr.contains("localhost"),
        "{o}"
    );
}
