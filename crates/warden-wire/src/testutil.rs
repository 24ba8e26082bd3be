//! Test support: a tiny deterministic PRNG and the "random bytes never panic" driver that
//! every parser's tests run.

use std::fmt::Debug;

use crate::{Frame, Message};

/// xorshift64*: deterministic, dependency-free, good enough to shake parsers.
pub(crate) struct XorShift(u64);

impl XorShift {
    pub(crate) fn new(seed: u64) -> Self {
        XorShift(seed | 1)
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A value in `0..n` (0 when `n` is 0).
    pub(crate) fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next_u64() % n as u64) as usize
        }
    }

    /// A byte skewed towards values that matter to the protocol: 0 (terminators, high
    /// bytes of lengths), small numbers, 0xff (-1 lengths), tags and ASCII.
    pub(crate) fn byte(&mut self) -> u8 {
        match self.below(8) {
            0 | 1 => 0,
            2 => self.below(8) as u8,
            3 => 0xff,
            4 => b"QPBEDCSHXpRKZTNAvIdcf"[self.below(21)],
            5 => b'a' + self.below(26) as u8,
            _ => self.next_u64() as u8,
        }
    }

    /// Up to `max_len` skewed bytes.
    pub(crate) fn bytes_biased(&mut self, max_len: usize) -> Vec<u8> {
        let len = self.below(max_len + 1);
        (0..len).map(|_| self.byte()).collect()
    }

    /// `sample` with a few random edits: flips, overwrites, truncation, insertions.
    pub(crate) fn mutate(&mut self, sample: &[u8]) -> Vec<u8> {
        let mut out = sample.to_vec();
        for _ in 0..=self.below(3) {
            match self.below(5) {
                0 if !out.is_empty() => {
                    let i = self.below(out.len());
                    out[i] ^= 1 << self.below(8);
                }
                1 if !out.is_empty() => {
                    let i = self.below(out.len());
                    out[i] = self.byte();
                }
                2 => out.truncate(self.below(out.len() + 1)),
                3 => {
                    let i = self.below(out.len() + 1);
                    out.insert(i, self.byte());
                }
                _ => {
                    let i = self.below(out.len() + 1);
                    out.truncate(i);
                    let extra = self.bytes_biased(8);
                    out.extend_from_slice(&extra);
                }
            }
        }
        out
    }
}

/// Feeds thousands of random and mutated bodies to `M`'s parser. Whenever a body parses, the
/// message must re-encode to a frame that parses to an equal message, and with `exact` the
/// re-encoding must reproduce the input bytes.
///
/// Returns how many bodies parsed, so callers can assert the samples were exercised.
pub(crate) fn check_parser<M: Message + PartialEq + Debug>(
    samples: &[&[u8]],
    exact: bool,
) -> usize {
    let mut rng = XorShift::new(u64::from(M::TAG) * 0x9e37_79b9 + samples.len() as u64);
    let mut parsed = 0;
    for sample in samples {
        let frame = Frame::new(M::TAG, sample);
        let message = M::from_frame(&frame)
            .unwrap_or_else(|e| panic!("{} sample {sample:?} must parse: {e}", M::NAME));
        check_round_trip(&frame, &message, exact);
    }
    for i in 0..3000 {
        let body = if i % 4 == 0 || samples.is_empty() {
            rng.bytes_biased(48)
        } else {
            let pick = rng.below(samples.len());
            rng.mutate(samples[pick])
        };
        let frame = Frame::new(M::TAG, &body);
        if let Ok(message) = M::from_frame(&frame) {
            parsed += 1;
            check_round_trip(&frame, &message, exact);
        }
    }
    parsed
}

fn check_round_trip<M: Message + PartialEq + Debug>(frame: &Frame, message: &M, exact: bool) {
    let encoded = message.encode();
    let again = Frame::from_raw(encoded.clone(), usize::MAX)
        .unwrap_or_else(|e| panic!("{} encoded an invalid frame: {e}", M::NAME));
    assert_eq!(again.tag(), M::TAG);
    let reparsed = M::from_frame(&again)
        .unwrap_or_else(|e| panic!("{} re-encoding {message:?} did not parse: {e}", M::NAME));
    assert_eq!(&reparsed, message, "{} round trip", M::NAME);
    if exact {
        assert_eq!(encoded, frame.raw(), "{} byte-exact round trip", M::NAME);
    }
}
