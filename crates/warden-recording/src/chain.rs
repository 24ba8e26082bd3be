//! A generic hex hash chain, for the store's session-end chain and audit table.
//!
//! Each entry's hash is `hex(SHA-256(prev || item))`, where `prev` is the previous
//! entry's hash as 32 raw bytes (the first entry uses [`GENESIS`]). Changing, removing
//! or reordering an entry changes every hash after it, so an anchored head (a hash
//! published or stored elsewhere) commits to the whole history.
//!
//! A plain SHA-256 chain is tamper-*evident* only relative to an anchor: whoever can
//! rewrite every entry can also recompute every hash.

use sha2::{Digest, Sha256};

use crate::line::decode_hex32;

/// The `prev` of a chain's first entry: 64 zeros.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// `hex(SHA-256(prev_bytes || item))`.
///
/// `prev_hex` should be 64 lowercase hex digits (a previous [`link`] or [`GENESIS`]).
/// Anything else is hashed as its text bytes instead of being decoded, so a damaged
/// `prev` gives a deterministic hash that never matches a correctly linked chain (and
/// never panics). Use [`try_link`] to reject it instead.
pub fn link(prev_hex: &str, item: &[u8]) -> String {
    let mut h = Sha256::new();
    match decode_hex32(prev_hex.as_bytes()) {
        Some(prev) => h.update(prev),
        None => h.update(prev_hex.as_bytes()),
    }
    h.update(item);
    hex::encode(h.finalize())
}

/// Like [`link`], but `None` when `prev_hex` is not 64 lowercase hex digits.
pub fn try_link(prev_hex: &str, item: &[u8]) -> Option<String> {
    decode_hex32(prev_hex.as_bytes()).map(|_| link(prev_hex, item))
}

/// Checks a chain of `(item, recorded hash)` entries starting from `genesis`.
/// Returns the index of the first entry whose recorded hash does not follow, or `None`
/// when every link holds.
pub fn first_broken<'a, I>(genesis: &str, entries: I) -> Option<usize>
where
    I: IntoIterator<Item = (&'a [u8], &'a str)>,
{
    let mut prev = genesis.to_owned();
    for (i, (item, recorded)) in entries.into_iter().enumerate() {
        if link(&prev, item) != recorded {
            return Some(i);
        }
        prev = recorded.to_owned();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn genesis_is_64_zeros() {
        assert_eq!(GENESIS.len(), 64);
        assert!(GENESIS.bytes().all(|b| b == b'0'));
    }

    #[test]
    fn link_matches_sha256_of_raw_prev_and_item() {
        let h1 = link(GENESIS, b"first");
        let mut d = Sha256::new();
        d.update([0u8; 32]);
        d.update(b"first");
        assert_eq!(h1, hex::encode(d.finalize()));
        assert_eq!(h1.len(), 64);
        // Deterministic, and depends on both inputs.
        assert_eq!(link(GENESIS, b"first"), h1);
        assert_ne!(link(GENESIS, b"firsT"), h1);
        assert_ne!(link(&h1, b"first"), h1);
    }

    #[test]
    fn chain_detects_change_removal_and_reorder() {
        let items: Vec<&[u8]> = vec![b"a", b"b", b"c", b"d"];
        let mut hashes = Vec::new();
        let mut prev = GENESIS.to_owned();
        for it in &items {
            prev = link(&prev, it);
            hashes.push(prev.clone());
        }
        let ok = items.iter().copied().zip(hashes.iter().map(String::as_str));
        assert_eq!(first_broken(GENESIS, ok), None);

        let mut changed = items.clone();
        changed[2] = b"C";
        let e = changed
            .iter()
            .copied()
            .zip(hashes.iter().map(String::as_str));
        assert_eq!(first_broken(GENESIS, e), Some(2));

        let removed: Vec<(&[u8], &str)> = vec![
            (items[0], hashes[0].as_str()),
            (items[2], hashes[2].as_str()),
            (items[3], hashes[3].as_str()),
        ];
        assert_eq!(first_broken(GENESIS, removed), Some(1));

        let swapped: Vec<(&[u8], &str)> = vec![
            (items[0], hashes[0].as_str()),
            (items[2], hashes[2].as_str()),
            (items[1], hashes[1].as_str()),
        ];
        assert_eq!(first_broken(GENESIS, swapped), Some(1));
    }

    #[test]
    fn damaged_prev_never_panics_and_never_matches() {
        let good = link(GENESIS, b"x");
        for bad in [
            "",
            "zz",
            &GENESIS[..63],
            &GENESIS.to_uppercase().replace('0', "G"),
        ] {
            let h = link(bad, b"x");
            assert_eq!(h.len(), 64);
            assert_ne!(h, good);
            assert_eq!(try_link(bad, b"x"), None);
        }
        assert_eq!(try_link(GENESIS, b"x"), Some(good));
    }
}
