//! The stable driver's mutator: byte-level changes (flips, random bytes, inserts, deletes,
//! copies, interesting integers), the target's dictionary tokens, and splices of two corpus
//! inputs. No coverage feedback: it relies on good seeds and many executions.

/// Byte values that often sit on an edge.
const INTERESTING: &[u8] = &[
    0, 1, 0x7f, 0x80, 0xff, b'0', b'9', b'"', b'\\', b'\n', b'\r', b' ', b'{', b'}', b'-',
];

/// Change `input` by one to four random edits; `other` is another corpus input to splice
/// from, `dict` the target's tokens. The result is at most `max_len` bytes.
#[must_use]
pub fn mutate(rng: &mut fastrand::Rng, input: &[u8], other: &[u8], dict: &[&str], max_len: usize) -> Vec<u8> {
    let mut v = input.to_vec();
    for _ in 0..rng.usize(1..=4) {
        edit(rng, &mut v, other, dict);
    }
    v.truncate(max_len);
    v
}

fn edit(rng: &mut fastrand::Rng, v: &mut Vec<u8>, other: &[u8], dict: &[&str]) {
    let at = |rng: &mut fastrand::Rng, v: &Vec<u8>| rng.usize(0..=v.len());
    match rng.u8(0..10) {
        0 if !v.is_empty() => {
            let i = rng.usize(0..v.len());
            v[i] ^= 1 << rng.u8(0..8);
        }
        1 if !v.is_empty() => {
            let i = rng.usize(0..v.len());
            v[i] = if rng.bool() {
                rng.u8(..)
            } else {
                INTERESTING[rng.usize(0..INTERESTING.len())]
            };
        }
        2 => {
            let i = at(rng, v);
            let n = rng.usize(1..=8);
            let bytes: Vec<u8> = (0..n).map(|_| rng.u8(..)).collect();
            v.splice(i..i, bytes);
        }
        3 if !v.is_empty() => {
            let i = rng.usize(0..v.len());
            let n = rng.usize(1..=(v.len() - i).min(64));
            v.drain(i..i + n);
        }
        4 if !v.is_empty() => {
            // Copy a piece of the input elsewhere in it (repeats fields, lines and chunks).
            let i = rng.usize(0..v.len());
            let n = rng.usize(1..=(v.len() - i).min(256));
            let piece = v[i..i + n].to_vec();
            let j = at(rng, v);
            v.splice(j..j, piece);
        }
        5 | 6 if !dict.is_empty() => {
            let token = dict[rng.usize(0..dict.len())].as_bytes();
            let i = at(rng, v);
            if rng.bool() || i + token.len() > v.len() {
                v.splice(i..i, token.iter().copied());
            } else {
                v[i..i + token.len()].copy_from_slice(token);
            }
        }
        7 if !other.is_empty() => {
            // Splice: the head of this input, the tail of another.
            let i = at(rng, v);
            let j = rng.usize(0..other.len());
            v.truncate(i);
            v.extend_from_slice(&other[j..]);
        }
        8 if !v.is_empty() => {
            // An ASCII number nudged or replaced by an edge value.
            let i = rng.usize(0..v.len());
            let edge: &[&str] = &[
                "0",
                "-1",
                "1",
                "255",
                "256",
                "65535",
                "65536",
                "4294967295",
                "4294967296",
                "1e308",
                "-0",
            ];
            let token = edge[rng.usize(0..edge.len())].as_bytes();
            let end = v[i..]
                .iter()
                .position(|b| !b.is_ascii_digit())
                .map_or(v.len(), |p| i + p);
            v.splice(i..end.max(i), token.iter().copied());
        }
        _ => {
            if !v.is_empty() && rng.bool() {
                let n = rng.usize(0..v.len());
                v.truncate(n);
            } else {
                let i = at(rng, v);
                v.insert(i, INTERESTING[rng.usize(0..INTERESTING.len())]);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mutations_stay_under_the_length_and_change_something() {
        let mut rng = fastrand::Rng::with_seed(7);
        let mut changed = 0;
        for _ in 0..1000 {
            let m = mutate(&mut rng, b"{\"size\": \"1024x1024\"}", b"abc", &["x", "auto"], 64);
            assert!(m.len() <= 64);
            changed += usize::from(m != b"{\"size\": \"1024x1024\"}");
        }
        assert!(changed > 900, "{changed}");
    }
}
