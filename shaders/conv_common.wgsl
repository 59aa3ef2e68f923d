// Shared by conv.wgsl and conv_gemm.wgsl: the convolutional layers' uniform and their window
// arithmetic, on channels-last images: image n's element (y, x, c) is at
// n·H·W·C + (y·W + x)·C + c, and an output's (oy, ox, f) the same way.

struct Params {
    // images in the batch
    rows: u32,
    in_h: u32,
    in_w: u32,
    in_c: u32,
    k_h: u32,
    k_w: u32,
    s_h: u32,
    s_w: u32,
    // padding above and to the left
    pad_t: u32,
    pad_l: u32,
    out_h: u32,
    out_w: u32,
    // output channels: the convolution's filters, pooling's in_c
    filters: u32,
    // 1 where the convolution adds a bias
    has_bias: u32,
    // implicit GEMM's split-K (conv_gemm.wgsl): the slice of the product's K, a whole number
    // of images' positions (0: all of K), and how many slices
    k_slice: u32,
    slices: u32,
    // the activation's parameters, for the forward's fused epilogue (act_math.wgsl)
    q: vec4<f32>,
}

@group(0) @binding(0) var<uniform> p: Params;

fn in_len() -> u32 {
    return p.in_h * p.in_w * p.in_c;
}

fn out_len() -> u32 {
    return p.out_h * p.out_w * p.filters;
}

// The input row of tap (i, j) of output row oy (or column: pass the column's numbers), or -1
// in the padding.
fn tap(o: u32, t: u32, s: u32, pad: u32, size: u32) -> i32 {
    let v = i32(o * s + t) - i32(pad);
    return select(-1, v, v >= 0 && v < i32(size));
}

// For input row y and kernel row i: the output row whose tap i reads it, or -1 if none does.
fn reader(y: u32, i: u32, s: u32, pad: u32, out: u32) -> i32 {
    let v = i32(y + pad) - i32(i);
    if (v < 0 || v % i32(s) != 0) {
        return -1;
    }
    let o = v / i32(s);
    return select(-1, o, o < i32(out));
}

