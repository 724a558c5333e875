//! Property tests of the gpt-image-2 size rules against an independent restatement of them.

use fourk_api::{Capabilities, ModelCaps, Size};
use proptest::prelude::*;

fn gpt2() -> ModelCaps {
    Capabilities::builtin().model("gpt-image-2").unwrap().clone()
}

/// The rules as the issue states them, written separately from the implementation.
fn expected_rules(w: u32, h: u32) -> Vec<&'static str> {
    let (l, s) = (w.max(h), w.min(h));
    let p = u64::from(w) * u64::from(h);
    let mut v = Vec::new();
    if l > 3840 {
        v.push("max_edge");
    }
    if !w.is_multiple_of(16) || !h.is_multiple_of(16) {
        v.push("multiple_of_16");
    }
    if l > 3 * s {
        v.push("aspect_ratio");
    }
    if p < 655_360 {
        v.push("min_pixels");
    }
    if p > 8_294_400 {
        v.push("max_pixels");
    }
    v
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4000))]

    #[test]
    fn every_violation_is_detected_and_nothing_else(w in 1u32..6000, h in 1u32..6000) {
        let m = gpt2();
        let v = m.check_size(Size::new(w, h));
        let got: Vec<&str> = v.violations.iter().map(|x| x.rule.id()).collect();
        prop_assert_eq!(&got, &expected_rules(w, h));
        prop_assert_eq!(v.valid, got.is_empty());
        prop_assert_eq!(v.experimental, v.valid && u64::from(w) * u64::from(h) > 2560 * 1440);
    }

    #[test]
    fn every_valid_grid_size_is_accepted(a in 1u32..=240, b in 1u32..=240) {
        let (w, h) = (a * 16, b * 16);
        let v = gpt2().check_size(Size::new(w, h));
        prop_assert_eq!(v.valid, expected_rules(w, h).is_empty());
    }

    #[test]
    fn suggestions_are_always_valid_and_keep_orientation(w in 16u32..8000, h in 16u32..8000) {
        let m = gpt2();
        let v = m.check_size(Size::new(w, h));
        if !v.valid {
            prop_assert!(!v.suggestions.is_empty(), "no suggestion for {}x{}", w, h);
            for s in &v.suggestions {
                let size: Size = s.parse().unwrap();
                prop_assert!(m.check_size(size).valid, "suggested {} for {}x{} is invalid", s, w, h);
                let (sw, sh) = size.dims().unwrap();
                if w.max(h) <= 3 * w.min(h) && (w as f64 / h as f64 - 1.0).abs() > 0.1 {
                    prop_assert_eq!(sw > sh, w > h, "{} flips the orientation of {}x{}", s, w, h);
                }
            }
        }
    }

    #[test]
    fn wire_string_round_trips(w in 1u32..100_000, h in 1u32..100_000) {
        let s = Size::new(w, h);
        prop_assert_eq!(s.to_string().parse::<Size>().unwrap(), s);
    }
}
