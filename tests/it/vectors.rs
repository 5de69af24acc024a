//! The read contract's shared test vectors (`tests/vectors/read-contract.json`),
//! which the TypeScript reader's tests read too: src/keys.rs must give exactly
//! these key names, and cachedeck's reader these answers.

use cachedeck::cache::query::{QueryRequest, query};
use cachedeck::keys::{self, Gen, GroupKey, SecondaryIndex};
use serde_json::Value;

use crate::support::{AnyRedis, each_topology};

fn vectors() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/vectors/read-contract.json"
    );
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path} is not JSON: {e}"))
}

fn opt_str(v: &Value) -> Option<String> {
    v.as_str().map(str::to_string)
}

fn str_of(v: &Value) -> String {
    v.as_str()
        .unwrap_or_else(|| panic!("expected a string, got {v}"))
        .to_string()
}

fn group_of(v: &Value) -> GroupKey {
    GroupKey {
        measure: str_of(&v["measure"]),
        practice: str_of(&v["practice"]),
        provider: opt_str(&v["provider"]),
        frequency: str_of(&v["frequency"]),
    }
}

fn list(v: &Value) -> &Vec<Value> {
    v.as_array()
        .unwrap_or_else(|| panic!("expected an array, got {v}"))
}

#[test]
fn components_escape_as_the_vectors_say() {
    let v = vectors();
    for case in list(&v["escape"]) {
        let value = opt_str(&case["value"]);
        let escaped = keys::escape(value.as_deref());
        assert_eq!(escaped, str_of(&case["escaped"]), "escaping {case}");
        assert_eq!(keys::unescape(&escaped), Some(value), "unescaping {case}");
    }
}

#[test]
fn entry_and_index_keys_are_the_vectors_names() {
    let v = vectors();
    for case in list(&v["keys"]) {
        let ds = case["datasource"].as_i64().expect("datasource id");
        let g = group_of(case);
        assert_eq!(
            keys::entry(ds, Gen::Live, &g),
            str_of(&case["entry"]),
            "{case}"
        );
        let [mf, practice, provider] = SecondaryIndex::for_group(&g);
        let idx = &case["indexes"];
        assert_eq!(mf.key(ds, Gen::Live), str_of(&idx["measureFreq"]), "{case}");
        assert_eq!(
            practice.key(ds, Gen::Live),
            str_of(&idx["practice"]),
            "{case}"
        );
        assert_eq!(
            provider.key(ds, Gen::Live),
            str_of(&idx["provider"]),
            "{case}"
        );
        // And each name parses back to what made it.
        match keys::parse(&str_of(&case["entry"])) {
            Some(keys::ParsedKey::Entry { ds: d, group, .. }) => {
                assert_eq!((d, group), (ds, g.clone()), "{case}")
            }
            other => panic!("{case} parsed as {other:?}"),
        }
    }
}

/// Writes the vectors' groups the way the seed's application does.
fn write_groups(r: &AnyRedis, q: &Value) {
    let ds = q["datasource"].as_i64().expect("datasource id");
    for g in list(&q["groups"]) {
        let group = group_of(g);
        let entry = keys::entry(ds, Gen::Live, &group);
        assert_eq!(entry, str_of(&g["entry"]));
        r.query::<()>(redis::cmd("SET").arg(&entry).arg(g["rows"].to_string()));
        r.query::<()>(
            redis::cmd("SADD")
                .arg(keys::master_index(ds, Gen::Live))
                .arg(&entry),
        );
        for idx in SecondaryIndex::for_group(&group) {
            let name = idx.key(ds, Gen::Live);
            r.query::<()>(redis::cmd("SADD").arg(&name).arg(&entry));
            r.query::<()>(
                redis::cmd("SADD")
                    .arg(keys::index_list(ds, Gen::Live))
                    .arg(&name),
            );
        }
    }
    r.query::<()>(
        redis::cmd("HSET")
            .arg(keys::meta(ds))
            .arg("generation")
            .arg(q["generation"].as_u64().expect("generation")),
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_reader_answers_the_query_vectors() {
    let v = vectors();
    let q = &v["queries"];
    let ds = q["datasource"].as_i64().expect("datasource id");
    each_topology(async |r: &AnyRedis| {
        let redis = r.connect().await;
        for case in list(&q["cases"]) {
            write_groups(r, q);
            // Members written by something else: ignored by every reader.
            for planted in case["before"]["add"].as_array().into_iter().flatten() {
                let member = hex::decode(str_of(&planted["memberHex"])).expect("memberHex");
                r.query::<()>(redis::cmd("SADD").arg(str_of(&planted["set"])).arg(member));
            }
            if let Some(gone) = case["before"]["delete"].as_array() {
                for k in gone {
                    r.cmd::<()>(&["DEL", &str_of(k)]);
                }
            }
            let query_of = &case["query"];
            let mut providers: Vec<Option<String>> = list(&query_of["providers"])
                .iter()
                .map(|p| Some(str_of(p)))
                .collect();
            if query_of["nullProvider"] == true {
                providers.push(None);
            }
            let req = QueryRequest {
                datasource: ds,
                measure: str_of(&query_of["measure"]),
                frequency: str_of(&query_of["frequency"]),
                practices: list(&query_of["practices"]).iter().map(str_of).collect(),
                providers,
            };
            let got = query(&redis, &req)
                .await
                .unwrap_or_else(|e| panic!("{case}: {e}"));
            assert_eq!(Value::Bool(got.hit), case["hit"], "{}", case["name"]);
            if got.hit {
                assert_eq!(
                    Value::Array(got.rows.clone()),
                    case["rows"],
                    "{}",
                    case["name"]
                );
                assert_eq!(
                    got.entries,
                    list(&case["entries"]).len(),
                    "{}",
                    case["name"]
                );
                assert_eq!(Value::from(got.generation), case["generation"]);
            }
        }
    })
    .await;
}
