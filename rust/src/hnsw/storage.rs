//! Where an `Hnsw` keeps each node: its vector (f32, f16 or int8 + scale) and its links per layer, in the
//! flat arrays `data0` (layer 0: link count, links, vector) and `upper` (higher layers, found through
//! `upper_at`), plus the distance from a query to a stored node. Accessors only; the graph algorithms
//! live in `mod.rs` (insert, linking) and `search.rs`.

use super::kernels::{dot, dot_f16, dot_i8, f16_slice_to_f32, f32_to_f16};
use super::query_i16::QueryI16;
use super::{Hnsw, Precision};

impl Hnsw {
    pub(super) fn vector_words(&self, node: u32) -> &[u32] {
        let i = node as usize * self.stride0 + 1 + self.m0;
        &self.data0[i..i + self.vwords]
    }

    pub(super) fn vec_f32(&self, node: u32) -> &[f32] {
        let bits = self.vector_words(node);
        // SAFETY: u32 and f32 have the same size and alignment, and every bit pattern is a valid f32.
        unsafe { std::slice::from_raw_parts(bits.as_ptr() as *const f32, bits.len()) }
    }

    pub(super) fn vec_f16(&self, node: u32) -> &[u16] {
        let words = self.vector_words(node);
        // SAFETY: a u32 slice viewed as twice as many u16 (alignment 4 >= 2, every bit pattern valid).
        let halves =
            unsafe { std::slice::from_raw_parts(words.as_ptr() as *const u16, words.len() * 2) };
        &halves[..self.dim]
    }

    /// An `I8` node's scale and its signed bytes.
    pub(super) fn vec_i8(&self, node: u32) -> (f32, &[i8]) {
        let words = self.vector_words(node);
        // SAFETY: a u32 slice viewed as four times as many i8 (alignment 4 >= 1, every bit pattern valid).
        let bytes = unsafe {
            std::slice::from_raw_parts(words[1..].as_ptr() as *const i8, (words.len() - 1) * 4)
        };
        (f32::from_bits(words[0]), &bytes[..self.dim])
    }

    /// For an `I8` index, `node`'s stored vector as an exact integer query (`QueryI16::from_i8`): what
    /// insertion measures stored vectors against each other with. None for other precisions.
    pub(super) fn stored_query(&self, node: u32) -> Option<QueryI16> {
        if self.precision != Precision::I8 {
            return None;
        }
        let (scale, bytes) = self.vec_i8(node);
        QueryI16::from_i8(scale, bytes)
    }

    /// The stored vector of `node` as f32 (decoded from f16 / i8 when stored so).
    pub(super) fn decoded(&self, node: u32) -> Vec<f32> {
        let mut out = vec![0.0; self.dim];
        self.decode_into(node, &mut out);
        out
    }

    pub(super) fn decode_into(&self, node: u32, out: &mut [f32]) {
        match self.precision {
            Precision::F16 => f16_slice_to_f32(self.vec_f16(node), out),
            Precision::F32 => out.copy_from_slice(self.vec_f32(node)),
            Precision::I8 => {
                let (scale, bytes) = self.vec_i8(node);
                out.iter_mut()
                    .zip(bytes)
                    .for_each(|(o, b)| *o = f32::from(*b) * scale);
            }
        }
    }

    pub(super) fn write_vec(&mut self, node: u32, v: &[f32]) {
        let i = node as usize * self.stride0 + 1 + self.m0;
        let words = &mut self.data0[i..i + self.vwords];
        if self.precision == Precision::I8 {
            let peak = v.iter().fold(0.0f32, |m, x| m.max(x.abs()));
            let scale = if peak > 0.0 && peak.is_finite() {
                peak / 127.0
            } else {
                1.0
            };
            words.fill(0);
            words[0] = scale.to_bits();
            // Byte j of the packed run is the byte at address offset j (what `vec_i8` reads back), whatever
            // the target's endianness.
            // SAFETY: a u32 slice viewed as four times as many i8 (alignment 4 >= 1, every bit pattern valid),
            // borrowed mutably from `words` for this loop only.
            let bytes = unsafe {
                std::slice::from_raw_parts_mut(words[1..].as_mut_ptr() as *mut i8, (words.len() - 1) * 4)
            };
            for (b, x) in bytes.iter_mut().zip(v) {
                *b = round_half_away(x / scale).clamp(-127, 127) as i8;
            }
        } else if self.precision == Precision::F16 {
            words.fill(0);
            for (j, x) in v.iter().enumerate() {
                words[j / 2] |= (f32_to_f16(*x) as u32) << (16 * (j % 2));
            }
            if cfg!(target_endian = "big") {
                // vec_f16 views the words as native u16 pairs: keep element 2k in the lower address.
                words.iter_mut().for_each(|w| *w = w.rotate_left(16));
            }
        } else {
            for (d, x) in words.iter_mut().zip(v) {
                *d = x.to_bits();
            }
        }
    }

    /// Hints the CPU to load `node`'s vector and link count (read if the node is expanded later) while
    /// other distances are computed.
    #[inline]
    pub(super) fn prefetch(&self, node: u32) {
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
            let base = node as usize * self.stride0;
            let start = base + 1 + self.m0;
            if let Some(v) = self.data0.get(start..start + self.vwords) {
                let first = v.as_ptr() as usize & !63;
                let end = v.as_ptr() as usize + v.len() * 4;
                // SAFETY: prefetch never faults (any address is allowed) and SSE is part of the x86_64
                // baseline; the addresses lie within this node's words anyway.
                unsafe {
                    _mm_prefetch(self.data0.as_ptr().add(base) as *const i8, _MM_HINT_T0);
                    for line in (first..end).step_by(64) {
                        _mm_prefetch(line as *const i8, _MM_HINT_T0);
                    }
                }
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = node;
    }

    pub(super) fn dist(&self, q: &[f32], node: u32) -> f32 {
        match self.precision {
            Precision::F16 => 1.0 - dot_f16(q, self.vec_f16(node)),
            Precision::F32 => 1.0 - dot(q, self.vec_f32(node)),
            Precision::I8 => {
                let (scale, bytes) = self.vec_i8(node);
                1.0 - scale * dot_i8(q, bytes)
            }
        }
    }

    /// `dist`, or with a quantized query (`Precision::I8` only) its integer approximation.
    #[inline]
    pub(super) fn dist_to(&self, q: &[f32], q16: Option<&QueryI16>, node: u32) -> f32 {
        match q16 {
            Some(qi) => {
                let (scale, bytes) = self.vec_i8(node);
                1.0 - scale * qi.dot(bytes)
            }
            None => self.dist(q, node),
        }
    }

    pub(super) fn links(&self, node: u32, level: usize) -> &[u32] {
        if level == 0 {
            let base = node as usize * self.stride0;
            let n = self.data0[base] as usize;
            &self.data0[base + 1..base + 1 + n]
        } else {
            let base = self.upper_at[node as usize] as usize + (level - 1) * (self.m + 1);
            let n = self.upper[base] as usize;
            &self.upper[base + 1..base + 1 + n]
        }
    }

    pub(super) fn set_links(&mut self, node: u32, level: usize, ns: &[u32]) {
        if level == 0 {
            let base = node as usize * self.stride0;
            self.data0[base] = ns.len() as u32;
            self.data0[base + 1..base + 1 + ns.len()].copy_from_slice(ns);
        } else {
            let base = self.upper_at[node as usize] as usize + (level - 1) * (self.m + 1);
            self.upper[base] = ns.len() as u32;
            self.upper[base + 1..base + 1 + ns.len()].copy_from_slice(ns);
        }
    }
}

/// `y.round() as i32` (half away from zero) for |y| < 2^23 without `roundf`, which is a library call per
/// value on baseline x86_64 (no SSE4.1): the truncation and the fraction it leaves are both exact there.
/// Outside that range (and for NaN) the saturating cast's value, as `round` would give after the cast.
#[inline]
pub(super) fn round_half_away(y: f32) -> i32 {
    let t = y as i32;
    let frac = y - t as f32;
    if frac >= 0.5 {
        t + 1
    } else if frac <= -0.5 {
        t - 1
    } else {
        t
    }
}
