//! Dispatches of the vision kernels: im2col (dense convolutions then run on the matmul kernel),
//! the direct grouped convolution, concatenation, bicubic resampling and max pooling. Inputs are
//! any [N, C, H, W] view, passed as offset + four strides.

use super::{elem, grid_1d, strided8};
use crate::gpu::GpuStorage;
use crate::gpu::params::{kernel_params, vec4};
use crate::gpu::run::Run;
use crate::gpu::shaders::{Elem, Kernel};
use crate::ops::Window2d;
use crate::tensor::Tensor;
use crate::{DType, Result};

kernel_params! {
    /// im2col.wgsl: a band of `positions` = rows * Wo output positions from `row0`, K = C*KH*KW.
    pub struct Im2colParams {
        numel: usize,
        k: usize,
        kh: usize,
        kw: usize,
        positions: usize,
        wo: usize,
        row0: usize,
        h: usize,
        w: usize,
        stride_y: usize,
        stride_x: usize,
        pad_y: usize,
        pad_x: usize,
        dilation_y: usize,
        dilation_x: usize,
        x_off: usize,
        x_strides: [u32; 4],
    }

    /// grouped_conv.wgsl.
    pub struct GroupedConvParams {
        numel: usize,
        cout: usize,
        ho: usize,
        wo: usize,
        groups: usize,
        cin_g: usize,
        kh: usize,
        kw: usize,
        h: usize,
        w: usize,
        stride_y: usize,
        stride_x: usize,
        pad_y: usize,
        pad_x: usize,
        dilation_y: usize,
        dilation_x: usize,
        x_off: usize,
        x_strides: [u32; 4],
    }

    /// concat.wgsl: one part, `block` of every `out_block` output values from `at`.
    pub struct ConcatParams {
        numel: usize,
        block: usize,
        out_block: usize,
        at: usize,
        src_off: usize,
        dims0: [u32; 4],
        dims1: [u32; 4],
        strides0: [u32; 4],
        strides1: [u32; 4],
    }

    /// bicubic.wgsl.
    pub struct BicubicParams {
        numel: usize,
        c: usize,
        h: usize,
        w: usize,
        ho: usize,
        wo: usize,
        scale_y: f32,
        scale_x: f32,
        align_corners: bool,
        x_off: usize,
        x_strides: [u32; 4],
    }

    /// max_pool.wgsl.
    pub struct MaxPoolParams {
        numel: usize,
        c: usize,
        h: usize,
        w: usize,
        ho: usize,
        wo: usize,
        kh: usize,
        kw: usize,
        stride_y: usize,
        stride_x: usize,
        pad_y: usize,
        pad_x: usize,
        x_off: usize,
        x_strides: [u32; 4],
    }
}

fn groups(run: &Run, numel: usize, kernel: Kernel) -> [u32; 3] {
    grid_1d(numel.div_ceil(kernel.workgroup_size() as usize), run.gpu.limits.max_compute_workgroups_per_dimension)
}

pub(super) fn im2col(run: &mut Run, x: &Tensor, w: &Window2d, input: GpuStorage, output: &GpuStorage) -> Result<()> {
    let d = x.dims();
    let positions = w.rows * w.out[1];
    let k = d[1] * w.kernel[0] * w.kernel[1];
    let numel = d[0] * positions * k;
    let params = Im2colParams {
        numel,
        k,
        kh: w.kernel[0],
        kw: w.kernel[1],
        positions,
        wo: w.out[1],
        row0: w.row0,
        h: d[2],
        w: d[3],
        stride_y: w.stride[0],
        stride_x: w.stride[1],
        pad_y: w.padding[0],
        pad_x: w.padding[1],
        dilation_y: w.dilation[0],
        dilation_x: w.dilation[1],
        x_off: x.layout().offset(),
        x_strides: vec4(x.layout().strides()),
    };
    let kernel = Kernel::Im2col;
    run.push(kernel, &params, vec![input], output, groups(run, numel, kernel))
}

pub(super) fn grouped_conv(
    run: &mut Run,
    (x, weight, w, group_count): (&Tensor, &Tensor, &Window2d, usize),
    inputs: Vec<GpuStorage>,
    output: &GpuStorage,
) -> Result<()> {
    let d = x.dims();
    let (cout, cin_g) = (weight.dims()[0], weight.dims()[1]);
    if weight.dtype() == DType::F16 && weight.layout().offset() % 2 == 1 {
        return Err(crate::Error::Unsupported("an f16 convolution weight at an odd offset on the GPU".into()));
    }
    let numel = d[0] * cout * w.out[0] * w.out[1];
    let params = GroupedConvParams {
        numel,
        cout,
        ho: w.out[0],
        wo: w.out[1],
        groups: group_count,
        cin_g,
        kh: w.kernel[0],
        kw: w.kernel[1],
        h: d[2],
        w: d[3],
        stride_y: w.stride[0],
        stride_x: w.stride[1],
        pad_y: w.padding[0],
        pad_x: w.padding[1],
        dilation_y: w.dilation[0],
        dilation_x: w.dilation[1],
        x_off: x.layout().offset(),
        x_strides: vec4(x.layout().strides()),
    };
    let kernel = Kernel::GroupedConv { weight: if weight.dtype() == DType::F32 { Elem::F32 } else { Elem::F16 }, bias: inputs.len() == 3 };
    run.push(kernel, &params, inputs, output, groups(run, numel, kernel))
}

pub(super) fn concat(run: &mut Run, parts: &[Tensor], dim: usize, inputs: Vec<GpuStorage>, output: &GpuStorage) -> Result<()> {
    let inner: usize = parts[0].dims()[dim + 1..].iter().product();
    let total: usize = parts.iter().map(|t| t.dims()[dim]).sum();
    let mut at = 0;
    for (part, storage) in parts.iter().zip(inputs) {
        elem(part.dtype())?;
        let view = strided8(part.layout())?;
        let block = part.dims()[dim] * inner;
        let params = ConcatParams {
            numel: part.numel(),
            block,
            out_block: total * inner,
            at: at * inner,
            src_off: part.layout().offset(),
            dims0: view.dims[0],
            dims1: view.dims[1],
            strides0: view.strides[0],
            strides1: view.strides[1],
        };
        // An empty part dispatches nothing (`push` skips zero workgroups).
        run.push(Kernel::Concat, &params, vec![storage], output, groups(run, part.numel(), Kernel::Concat))?;
        at += part.dims()[dim];
    }
    Ok(())
}

pub(super) fn bicubic(
    run: &mut Run,
    x: &Tensor,
    size: [usize; 2],
    (align_corners, antialias): (bool, bool),
    input: GpuStorage,
    output: &GpuStorage,
) -> Result<()> {
    let d = x.dims();
    // As PyTorch's area_pixel_compute_scale, in f32 as its kernels compute for f32 input.
    let scale = |input: usize, out: usize| match (align_corners, out > 1) {
        (true, true) => (input as f32 - 1.0) / (out as f32 - 1.0),
        (true, false) => 0.0,
        (false, _) => input as f32 / out as f32,
    };
    let numel = d[0] * d[1] * size[0] * size[1];
    let params = BicubicParams {
        numel,
        c: d[1],
        h: d[2],
        w: d[3],
        ho: size[0],
        wo: size[1],
        scale_y: scale(d[2], size[0]),
        scale_x: scale(d[3], size[1]),
        align_corners,
        x_off: x.layout().offset(),
        x_strides: vec4(x.layout().strides()),
    };
    let kernel = Kernel::Bicubic { antialias };
    run.push(kernel, &params, vec![input], output, groups(run, numel, kernel))
}

pub(super) fn max_pool(run: &mut Run, x: &Tensor, w: &Window2d, input: GpuStorage, output: &GpuStorage) -> Result<()> {
    let d = x.dims();
    let numel = d[0] * d[1] * w.out[0] * w.out[1];
    let params = MaxPoolParams {
        numel,
        c: d[1],
        h: d[2],
        w: d[3],
        ho: w.out[0],
        wo: w.out[1],
        kh: w.kernel[0],
        kw: w.kernel[1],
        stride_y: w.stride[0],
        stride_x: w.stride[1],
        pad_y: w.padding[0],
        pad_x: w.padding[1],
        x_off: x.layout().offset(),
        x_strides: vec4(x.layout().strides()),
    };
    run.push(Kernel::MaxPool, &params, vec![input], output, groups(run, numel, Kernel::MaxPool))
}
