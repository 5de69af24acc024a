//! Property tests of the key contract: every key parses back to what made it,
//! and different components never give the same key or a SCAN glob.

use cachedeck::keys::{self, Gen, GroupKey, ParsedKey, SecondaryIndex};
use proptest::prelude::*;

fn component() -> impl Strategy<Value = String> {
    prop_oneof![
        "[A-Za-z0-9_.-]{0,12}",
        "[:{}*?\\[\\]\\\\% ]{1,6}",
        ".{0,10}",
        "%N|%4|%zz|%3A|%%".prop_map(String::from),
    ]
}

fn group() -> impl Strategy<Value = GroupKey> {
    (
        component(),
        component(),
        proptest::option::of(component()),
        component(),
    )
        .prop_map(|(measure, practice, provider, frequency)| GroupKey {
            measure,
            practice,
            provider,
            frequency,
        })
}

proptest! {
    #[test]
    fn entries_round_trip(ds in 0i64..1_000_000, g in group(), shadow in proptest::option::of(any::<u64>())) {
        let generation = shadow.map_or(Gen::Live, Gen::Shadow);
        let k = keys::entry(ds, generation, &g);
        prop_assert!(!k.contains(['*', '?', '[', ']', ' ']));
        prop_assert_eq!(keys::parse(&k), Some(ParsedKey::Entry { ds, generation, group: g }));
    }

    #[test]
    fn secondary_indexes_round_trip(ds in 0i64..1000, g in group()) {
        for index in SecondaryIndex::for_group(&g) {
            let k = index.key(ds, Gen::Live);
            prop_assert_eq!(keys::parse(&k), Some(ParsedKey::Secondary { ds, generation: Gen::Live, index }));
        }
    }

    #[test]
    fn different_groups_never_collide(a in group(), b in group()) {
        prop_assume!(a != b);
        prop_assert_ne!(keys::entry(1, Gen::Live, &a), keys::entry(1, Gen::Live, &b));
    }

    #[test]
    fn escape_round_trips(v in proptest::option::of(".*")) {
        prop_assert_eq!(keys::unescape(&keys::escape(v.as_deref())), Some(v));
    }
}
