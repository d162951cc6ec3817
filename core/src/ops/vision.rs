//! The ops of vision models: convolution (dense ones as im2col + the matmul, grouped ones
//! directly), concatenation, bicubic resampling, max pooling and a spatial mean.

use super::{Activation, Op, WEIGHT_TYPES, expect_dtype, expect_rank, same_device};
use crate::dtype::DType;
use crate::tensor::Tensor;
use crate::{Error, Result};

/// The geometry of PyTorch's `nn.Conv2d`; `Default` is stride 1, padding 0, dilation 1, groups 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Conv2dParams {
    pub stride: [usize; 2],
    pub padding: [usize; 2],
    pub dilation: [usize; 2],
    pub groups: usize,
}

impl Default for Conv2dParams {
    fn default() -> Self {
        Conv2dParams { stride: [1, 1], padding: [0, 0], dilation: [1, 1], groups: 1 }
    }
}

/// A sliding window over [H, W]: output position (oy, ox) reads input rows
/// oy * stride - padding + ky * dilation (and likewise for columns). `row0` and `rows` pick the
/// output rows an op computes (im2col works on bands of rows to bound its buffer).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Window2d {
    pub kernel: [usize; 2],
    pub stride: [usize; 2],
    pub padding: [usize; 2],
    pub dilation: [usize; 2],
    /// The whole output's [Ho, Wo].
    pub out: [usize; 2],
    pub row0: usize,
    pub rows: usize,
}

impl Window2d {
    fn new(
        op: &'static str,
        input: [usize; 2],
        kernel: [usize; 2],
        stride: [usize; 2],
        padding: [usize; 2],
        dilation: [usize; 2],
    ) -> Result<Window2d> {
        let mut out = [0; 2];
        for i in 0..2 {
            if kernel[i] == 0 || stride[i] == 0 || dilation[i] == 0 {
                return Err(Error::shape(op, format!("kernel {kernel:?}, stride {stride:?} and dilation {dilation:?} must be positive")));
            }
            let span = dilation[i] * (kernel[i] - 1) + 1;
            let padded = input[i] + 2 * padding[i];
            if padded < span {
                return Err(Error::shape(
                    op,
                    format!("a window of {kernel:?} (dilation {dilation:?}) does not fit input {input:?} padded by {padding:?}"),
                ));
            }
            out[i] = (padded - span) / stride[i] + 1;
        }
        Ok(Window2d { kernel, stride, padding, dilation, out, row0: 0, rows: out[0] })
    }

    fn band(self, row0: usize, rows: usize) -> Window2d {
        Window2d { row0, rows, ..self }
    }
}

/// Bytes of one im2col band at most: a quarter of WebGPU's default storage binding size.
const COLUMNS_BYTES: usize = 32 << 20;

fn spatial_input(op: &'static str, x: &Tensor) -> Result<[usize; 4]> {
    expect_rank(op, "input", x, 4)?;
    expect_dtype(op, "input", x, &[DType::F32])?;
    let d = x.dims();
    if d.contains(&0) {
        return Err(Error::shape(op, format!("input {d:?} has an empty dim")));
    }
    Ok([d[0], d[1], d[2], d[3]])
}

impl Tensor {
    /// PyTorch's `nn.Conv2d` of `self` [N, Cin, H, W] (any view) with `weight`
    /// [Cout, Cin/groups, KH, KW] (f32 or f16) and `bias` [Cout]: [N, Cout, Ho, Wo].
    ///
    /// A dense convolution (groups 1) is im2col + the matmul, computed as [N, Ho*Wo, Cout]: the
    /// result is that memory viewed as [N, Cout, Ho, Wo] (channels-last strides), so a ViT's
    /// `flatten(2).transpose(1, 2)` costs nothing and the next convolution reads it as it is; ops
    /// that need row-major input copy it. Grouped convolutions (depthwise) are one direct kernel
    /// with a row-major result.
    pub fn conv2d(&self, weight: &Tensor, bias: Option<&Tensor>, p: Conv2dParams) -> Result<Tensor> {
        self.conv2d_act(weight, bias, p, Activation::None)
    }

    /// `conv2d` followed by `act`, fused into the matmul's epilogue for dense convolutions.
    pub fn conv2d_act(&self, weight: &Tensor, bias: Option<&Tensor>, p: Conv2dParams, act: Activation) -> Result<Tensor> {
        const OP: &str = "conv2d";
        let mut all = vec![self, weight];
        all.extend(bias);
        same_device(OP, &all)?;
        let [n, cin, h, w] = spatial_input(OP, self)?;
        expect_rank(OP, "weight", weight, 4)?;
        expect_dtype(OP, "weight", weight, WEIGHT_TYPES)?;
        let [cout, cin_g, kh, kw] = [weight.dims()[0], weight.dims()[1], weight.dims()[2], weight.dims()[3]];
        let g = p.groups;
        if g == 0 || cin % g != 0 || cout % g != 0 || cin_g != cin / g || cout == 0 {
            return Err(Error::shape(OP, format!("weight {:?} for input {:?} in {g} groups", weight.dims(), self.dims())));
        }
        if let Some(b) = bias {
            expect_dtype(OP, "bias", b, &[DType::F32])?;
            if b.dims() != [cout] {
                return Err(Error::shape(OP, format!("bias {:?} for {cout} output channels", b.dims())));
            }
        }
        let window = Window2d::new(OP, [h, w], [kh, kw], p.stride, p.padding, p.dilation)?;
        let [ho, wo] = window.out;
        if g > 1 {
            let op = Op::GroupedConv2d {
                x: self.clone(),
                weight: weight.dense()?,
                bias: bias.map(Tensor::dense).transpose()?,
                window,
                groups: g,
            };
            let out = Tensor::record(op, DType::F32, &[n, cout, ho, wo], self);
            return match act {
                Activation::None => Ok(out),
                Activation::Unary(u) => out.unary(u),
            };
        }
        let k = cin * kh * kw;
        let w2 = weight.contiguous()?.reshape(&[cout, k])?;
        let pointwise = [kh, kw] == [1, 1] && p.stride == [1, 1] && p.padding == [0, 0];
        // A 1x1 convolution reads its input as the columns, when the view allows it.
        let direct = if pointwise { self.reshape(&[n, cin, h * w]).ok() } else { None };
        let out = match direct {
            Some(x) => x.transpose(1, 2)?.linear(&w2, bias, act)?,
            None => {
                let band = (COLUMNS_BYTES / (n * k * wo * 4).max(1)).clamp(1, ho);
                let mut bands = Vec::new();
                for row0 in (0..ho).step_by(band) {
                    let rows = band.min(ho - row0);
                    let op = Op::Im2col { x: self.clone(), window: window.band(row0, rows) };
                    let cols = Tensor::record(op, DType::F32, &[n, rows * wo, k], self);
                    bands.push(cols.linear(&w2, bias, act)?);
                }
                match bands.len() {
                    1 => bands.pop().ok_or_else(|| Error::shape(OP, "no output rows"))?,
                    _ => Tensor::concat(&bands.iter().collect::<Vec<_>>(), 1)?,
                }
            }
        };
        // [N, Ho*Wo, Cout] viewed as [N, Cout, Ho, Wo].
        out.reshape(&[n, ho, wo, cout])?.permute(&[0, 3, 1, 2])
    }

    /// `tensors` joined along `dim` (torch.cat): same rank and dims but `dim`, one dtype of
    /// f32, u32 or i32; any views. The result is row-major.
    pub fn concat(tensors: &[&Tensor], dim: usize) -> Result<Tensor> {
        const OP: &str = "concat";
        let first = *tensors.first().ok_or_else(|| Error::shape(OP, "nothing to concatenate"))?;
        same_device(OP, tensors)?;
        let rank = first.rank();
        if dim >= rank {
            return Err(Error::shape(OP, format!("dim {dim} of {:?}", first.dims())));
        }
        let mut dims = first.dims().to_vec();
        dims[dim] = 0;
        for t in tensors {
            expect_dtype(OP, "input", t, &[DType::F32, DType::U32, DType::I32])?;
            let fits = t.dtype() == first.dtype() && t.rank() == rank && (0..rank).all(|i| i == dim || t.dims()[i] == first.dims()[i]);
            if !fits {
                return Err(Error::shape(
                    OP,
                    format!("{:?} ({}) does not join {:?} ({}) along dim {dim}", t.dims(), t.dtype(), first.dims(), first.dtype()),
                ));
            }
            dims[dim] += t.dims()[dim];
        }
        if tensors.len() == 1 {
            return first.contiguous();
        }
        let parts = tensors.iter().map(|t| (*t).clone()).collect();
        Ok(Tensor::record(Op::Concat { parts, dim }, first.dtype(), &dims, first))
    }

    /// torch.nn.functional.interpolate(self, size, mode="bicubic", align_corners, antialias) of
    /// `self` [N, C, H, W] (any view): [N, C, size[0], size[1]].
    pub fn interpolate_bicubic(&self, size: [usize; 2], align_corners: bool, antialias: bool) -> Result<Tensor> {
        const OP: &str = "interpolate_bicubic";
        let [n, c, _, _] = spatial_input(OP, self)?;
        if size.contains(&0) {
            return Err(Error::shape(OP, format!("output size {size:?} is empty")));
        }
        let op = Op::Bicubic { x: self.clone(), size, align_corners, antialias };
        Ok(Tensor::record(op, DType::F32, &[n, c, size[0], size[1]], self))
    }

    /// PyTorch's `max_pool2d` (dilation 1, floor sizes) of `self` [N, C, H, W] (any view); the
    /// padding never wins, as if it held -inf. Padding may be at most half the kernel, as in PyTorch.
    pub fn max_pool2d(&self, kernel: [usize; 2], stride: [usize; 2], padding: [usize; 2]) -> Result<Tensor> {
        const OP: &str = "max_pool2d";
        let [n, c, h, w] = spatial_input(OP, self)?;
        if (0..2).any(|i| padding[i] > kernel[i] / 2) {
            return Err(Error::shape(OP, format!("padding {padding:?} is more than half the kernel {kernel:?}")));
        }
        let window = Window2d::new(OP, [h, w], kernel, stride, padding, [1, 1])?;
        let op = Op::MaxPool2d { x: self.clone(), window };
        Ok(Tensor::record(op, DType::F32, &[n, c, window.out[0], window.out[1]], self))
    }

    /// The mean over H and W of `self` [N, C, H, W] (any view): [N, C] (global average pooling).
    pub fn mean_spatial(&self) -> Result<Tensor> {
        let [n, c, h, w] = spatial_input("mean_spatial", self)?;
        let ones = Tensor::from_f32(&vec![1.0 / (h * w) as f32; h * w], &[h * w, 1], self.device())?;
        let x = match self.reshape(&[n, c, h * w]) {
            Ok(x) => x,
            Err(_) => self.contiguous()?.reshape(&[n, c, h * w])?,
        };
        x.matmul(&ones)?.reshape(&[n, c])
    }
}
