//! Eight bytes at a time: which bytes of a word (eight bytes, the first
//! the lowest) equal a given byte, without a loop over them. For the
//! hot scans of a large targets file (the blanks between its tokens, the
//! separators of its paths).

const LOW: u64 = 0x7f7f_7f7f_7f7f_7f7f;
const TOP: u64 = 0x8080_8080_8080_8080;

/// The eight bytes at `at` of `s` as a word, the first the lowest.
pub(crate) fn word_at(s: &[u8], at: usize) -> Option<u64> {
    let chunk: [u8; 8] = s.get(at..at.checked_add(8)?)?.try_into().ok()?;
    Some(u64::from_le_bytes(chunk))
}

/// The top bit of each byte of `word` that differs from `c`, the others
/// clear. No carry crosses a byte: a byte's low seven bits plus 0x7f fit
/// in it.
pub(crate) fn differs(word: u64, c: u8) -> u64 {
    let t = word ^ (u64::from(c) * 0x0101_0101_0101_0101);
    ((t & LOW).wrapping_add(LOW) | t) & TOP
}

/// The top bit of each byte of `word` that equals `c`, the others clear.
pub(crate) fn equals(word: u64, c: u8) -> u64 {
    !differs(word, c) & TOP
}

/// The index (0 to 7) of the first byte marked in `mask` (top bits).
pub(crate) fn first(mask: u64) -> usize {
    (mask.trailing_zeros() / 8) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every byte value at every position, beside every other value: the
    /// masks mark exactly the bytes that differ or are equal.
    #[test]
    fn the_masks_mark_exactly_the_bytes() {
        for c in [0u8, 1, b' ', b'/', 0x7f, 0x80, 0xff] {
            for v in 0..=255u8 {
                for other in [0u8, 1, c, c.wrapping_add(1), c.wrapping_sub(1), 0x80, 0xff] {
                    for pos in 0..8 {
                        let mut bytes = [other; 8];
                        bytes[pos] = v;
                        let w = u64::from_le_bytes(bytes);
                        let want: u64 = (0..8)
                            .filter(|&k| bytes[k] != c)
                            .map(|k| 0x80u64 << (8 * k))
                            .sum();
                        assert_eq!(differs(w, c), want, "{c} {bytes:?}");
                        assert_eq!(equals(w, c), !want & TOP, "{c} {bytes:?}");
                    }
                }
            }
        }
        assert_eq!(first(0x80 << 24), 3);
        assert_eq!(
            word_at(b"abcdefgh", 0),
            Some(u64::from_le_bytes(*b"abcdefgh"))
        );
        assert_eq!(word_at(b"abcdefgh", 1), None);
    }
}
