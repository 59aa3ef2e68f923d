//! Data movement on the device: the gather that takes a batch's rows out of a dataset kept
//! there, in the order of the epoch's shuffle.

use crate::error::{Error, Result};

/// Row index `i` of an order tensor: a u32 stored as the bits of an f32, so that every index
/// below 2³² is exact (an f32's value is exact only below 2²⁴).
pub fn order_index(bits: f32) -> usize {
    bits.to_bits() as usize
}

/// An order tensor's values for row indices: each index's u32 bits as an f32 (see
/// [`order_index`]). An error for an index of 2³² or more.
pub fn order_values(indices: &[usize]) -> Result<Vec<f32>> {
    // Sized once: collecting into a `Result` would grow it step by step.
    let mut values = Vec::with_capacity(indices.len());
    for &i in indices {
        let bits = u32::try_from(i).map_err(|_| Error::Invalid {
            op: "gather_rows",
            detail: format!("row index {i} does not fit the order's 32 bits"),
        })?;
        values.push(f32::from_bits(bits));
    }
    Ok(values)
}

/// `dst[i, :] = src[order[offset + i], :]` for each of `dst`'s rows; `src` is `[R, C]`,
/// `dst` `[rows, C]`, `order` holds row indices as [`order_index`] reads them. An error
/// naming the index for one that is not a row of `src`.
pub fn gather_rows(
    src: &[f32],
    cols: usize,
    order: &[f32],
    offset: usize,
    dst: &mut [f32],
) -> Result<()> {
    let src_rows = src.len() / cols;
    for (i, out) in dst.chunks_exact_mut(cols).enumerate() {
        let r = order_index(order[offset + i]);
        if r >= src_rows {
            return Err(Error::Invalid {
                op: "gather_rows",
                detail: format!(
                    "order[{}] = {r} is not a row of the {src_rows}-row source",
                    offset + i
                ),
            });
        }
        out.copy_from_slice(&src[r * cols..(r + 1) * cols]);
    }
    Ok(())
}
