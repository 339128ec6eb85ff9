//! Deterministic randomness: every draw is a pure function of a seed and what it is for (retry jitter in apply, every object and fault of the sandbox).
//!
//! No global generator is shared between requests, so the same scenario and seed produce the same
//! objects, tokens and fault decisions whatever the scheduling of concurrent requests was; a fault
//! draw depends only on how many requests that provider had seen before.

/// SplitMix64's finaliser: a cheap, well-mixed 64-bit permutation.
#[must_use]
pub fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A 64-bit digest of the seed and some labelled parts (FNV-1a, then mixed).
#[must_use]
pub fn hash(seed: u64, parts: &[&[u8]]) -> u64 {
    let mut h: u64 = 0xCBF2_9CE4_8422_2325 ^ mix(seed);
    for part in parts {
        for byte in *part {
            h ^= u64::from(*byte);
            h = h.wrapping_mul(0x0000_0100_0000_01B3);
        }
        // A separator, so ("ab", "c") and ("a", "bc") differ.
        h ^= 0xFF;
        h = h.wrapping_mul(0x0000_0100_0000_01B3);
    }
    mix(h)
}

/// A number in `[0, 1)` derived from `bits`.
#[must_use]
pub fn unit(bits: u64) -> f64 {
    // 53 random bits are what an f64 mantissa holds.
    #[allow(clippy::cast_precision_loss)]
    let top = (bits >> 11) as f64;
    top / (1u64 << 53) as f64
}

/// Deterministic bytes for ids and tokens.
#[must_use]
pub fn bytes<const N: usize>(seed: u64, parts: &[&[u8]]) -> [u8; N] {
    let mut out = [0u8; N];
    let mut state = hash(seed, parts);
    for chunk in out.chunks_mut(8) {
        state = mix(state);
        chunk.copy_from_slice(&state.to_le_bytes()[..chunk.len()]);
    }
    out
}

/// A version-4-shaped UUID derived from the seed and the parts.
#[must_use]
pub fn uuid(seed: u64, parts: &[&[u8]]) -> String {
    let mut b: [u8; 16] = bytes(seed, parts);
    b[6] = (b[6] & 0x0F) | 0x40;
    b[8] = (b[8] & 0x3F) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_are_stable_and_spread() {
        assert_eq!(hash(7, &[b"a", b"bc"]), hash(7, &[b"a", b"bc"]));
        assert_ne!(hash(7, &[b"a", b"bc"]), hash(7, &[b"ab", b"c"]));
        assert_ne!(hash(7, &[b"x"]), hash(8, &[b"x"]));
        let mean: f64 = (0..10_000u64).map(|i| unit(mix(i))).sum::<f64>() / 10_000.0;
        assert!((mean - 0.5).abs() < 0.02, "mean {mean}");
        let id = uuid(1, &[b"task"]);
        assert_eq!(id.len(), 36);
        assert_eq!(&id[14..15], "4");
    }
}
