//! `KerasArchive::from_bytes` never panics on truncations, bit flips or overwritten bytes of valid
//! archives (stored, deflated, zip64), and every accessor on whatever opens never panics either.

mod archive_support;

use archive_support::*;
use proptest::prelude::*;
use strata_format::archive::KerasArchive;
use strata_format::limits::Limits;

fn seeds() -> Vec<Vec<u8>> {
    let mut deflated = standard();
    deflated[1] = Entry::deflated("config.json", CONFIG);
    deflated[2] = Entry::deflated("model.weights.h5", &weights());
    deflated.push(Entry::stored("assets/v.txt", b"a\nb\n"));
    vec![build(&standard()), build(&deflated), build_with(&standard(), Options { zip64: true, ..Options::default() })]
}

fn exercise(bytes: Vec<u8>) {
    let Ok(a) = KerasArchive::from_bytes(bytes, &Limits::default()) else {
        return;
    };
    let _ = a.config_bytes();
    let _ = a.metadata();
    let _ = a.weights_bytes();
    let _ = a.weights_range();
    let names: Vec<String> = a.members().iter().map(|m| m.name.clone()).collect();
    for n in names {
        let _ = a.read_member(&n);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn truncation_never_panics(seed in 0usize..3, cut in any::<prop::sample::Index>()) {
        let s = &seeds()[seed];
        let n = cut.index(s.len() + 1);
        exercise(s[..n].to_vec());
    }

    #[test]
    fn bit_flips_never_panic(seed in 0usize..3, flips in prop::collection::vec((any::<prop::sample::Index>(), 0u8..8), 1..8)) {
        let mut s = seeds()[seed].clone();
        let len = s.len();
        for (i, bit) in flips {
            s[i.index(len)] ^= 1 << bit;
        }
        exercise(s);
    }

    #[test]
    fn byte_overwrites_never_panic(seed in 0usize..3, writes in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6)) {
        let mut s = seeds()[seed].clone();
        let len = s.len();
        for (i, v) in writes {
            // bias towards 0xff / 0x00 (size and offset fields)
            s[i.index(len)] = if v % 3 == 0 { 0xff } else if v % 3 == 1 { 0 } else { v };
        }
        exercise(s);
    }
}

#[test]
fn every_truncation_of_the_seeds() {
    for s in seeds() {
        for n in 0..=s.len() {
            exercise(s[..n].to_vec());
        }
    }
}
