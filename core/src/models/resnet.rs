//! ResNet as a backbone (DETR's), from either weight layout real checkpoints use: timm's
//! (`conv1`, `bn1`, `layer1.0.conv1`, `layer1.0.downsample.0`: facebook/detr-resnet-50) and
//! transformers' own (modeling_resnet.py: `embedder.embedder.convolution`,
//! `encoder.stages.0.layers.0.layer.0.convolution`, `shortcut`). Frozen batch norms are folded
//! into the convolutions at load. Depths and widths are read from the weights themselves (timm
//! checkpoints' configs only name the variant, `resnet50`), so any depth of basic or bottleneck
//! blocks loads.
//!
//! Activations stay [N, C, H, W] views of channels-last memory, as convolutions produce them;
//! residual sums and ReLUs run on the [N, H, W, C] view, which is contiguous, so nothing is
//! copied between layers.

use crate::nn::Conv2d;
use crate::ops::{Activation, Conv2dParams, UnaryOp};
use crate::weights::Weights;
use crate::{Error, Result, Tensor};

/// timm's and transformers' ResNets both use BatchNorm2d's default eps (DETR's frozen copy hard-codes it).
const BN_EPS: f32 = 1e-5;
const RELU: Activation = Activation::Unary(UnaryOp::Relu);

fn conv_params(kernel: usize, stride: usize) -> Conv2dParams {
    Conv2dParams { stride: [stride, stride], padding: [kernel / 2, kernel / 2], ..Default::default() }
}

/// The two layouts' names for the same parts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    /// timm: `conv1`/`bn1` stem, `layer{s+1}.{i}`, `conv{k}`/`bn{k}`, `downsample.0`/`.1`.
    Timm,
    /// transformers: `embedder.embedder`, `encoder.stages.{s}.layers.{i}.layer.{k}`, `shortcut`.
    Transformers,
}

/// One residual block: bottleneck (1x1, 3x3, 1x1; ResNet-50 and deeper) or basic (3x3, 3x3).
struct Block {
    convs: Vec<Conv2d>,
    /// 1x1 projection of the input when the block changes width or stride.
    shortcut: Option<Conv2d>,
}

pub struct ResNet {
    stem: Conv2d, // 7x7 / 2, then ReLU and a 3x3 / 2 max pool
    stages: Vec<Vec<Block>>,
    /// Output channels of the last stage.
    pub out_channels: usize,
}

/// Where the stride of a downsampling bottleneck goes: timm and transformers' default put it on
/// the 3x3; transformers' `downsample_in_bottleneck` on the first 1x1.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    pub downsample_in_first_stage: bool,
    pub downsample_in_bottleneck: bool,
}

impl ResNet {
    /// The layout `vb` (the backbone's prefix) holds, if either.
    pub fn detect(vb: &Weights) -> Option<Layout> {
        if vb.contains("conv1.weight") && vb.contains("layer1.0.conv1.weight") {
            Some(Layout::Timm)
        } else if vb.contains("embedder.embedder.convolution.weight") {
            Some(Layout::Transformers)
        } else {
            None
        }
    }

    pub fn load(vb: &Weights, layout: Layout, options: Options) -> Result<ResNet> {
        let (stem_conv, stem_bn) = match layout {
            Layout::Timm => (vb.pp("conv1"), vb.pp("bn1")),
            Layout::Transformers => (vb.pp("embedder.embedder.convolution"), vb.pp("embedder.embedder.normalization")),
        };
        if layout == Layout::Timm && vb.contains("conv1.0.weight") {
            return Err(Error::Unsupported("timm ResNets with a deep stem (resnet50d and the like)".into()));
        }
        let stem = Conv2d::load_with_batch_norm(&stem_conv, &stem_bn, conv_params(7, 2), BN_EPS)?;
        let mut channels = stem.weight.dims()[0];
        let mut stages = Vec::new();
        for s in 0.. {
            let block_vb = |i: usize| match layout {
                Layout::Timm => vb.pp(format!("layer{}.{i}", s + 1)),
                Layout::Transformers => vb.pp(format!("encoder.stages.{s}.layers.{i}")),
            };
            let mut blocks = Vec::new();
            for i in 0.. {
                let b = block_vb(i);
                let first = match layout {
                    Layout::Timm => "conv1.weight",
                    Layout::Transformers => "layer.0.convolution.weight",
                };
                if !b.contains(first) {
                    break;
                }
                let stride = if i == 0 && (s > 0 || (layout == Layout::Transformers && options.downsample_in_first_stage)) { 2 } else { 1 };
                let conv_bn = |k: usize| match layout {
                    Layout::Timm => (b.pp(format!("conv{}", k + 1)), b.pp(format!("bn{}", k + 1))),
                    Layout::Transformers => (b.pp(format!("layer.{k}.convolution")), b.pp(format!("layer.{k}.normalization"))),
                };
                let count = (0..).take_while(|&k| conv_bn(k).0.contains("weight")).count();
                let kernels: Vec<usize> = (0..count).map(|k| conv_bn(k).0.dims("weight").map_or(0, |d| d[2])).collect();
                // Bottleneck: 1x1, 3x3, 1x1; basic: 3x3, 3x3. The stride goes on the 3x3 unless
                // transformers' downsample_in_bottleneck puts it on the first 1x1.
                let strided = match kernels.as_slice() {
                    [1, 3, 1] if layout == Layout::Transformers && options.downsample_in_bottleneck => 0,
                    [1, 3, 1] => 1,
                    [3, 3] => 0,
                    other => {
                        return Err(Error::Unsupported(format!(
                            "ResNet block {} with kernels {other:?} (basic 3x3-3x3 and bottleneck 1x1-3x3-1x1 blocks load)",
                            b.full_name("")
                        )));
                    }
                };
                let convs = kernels
                    .iter()
                    .enumerate()
                    .map(|(k, &size)| {
                        let (c, n) = conv_bn(k);
                        Conv2d::load_with_batch_norm(&c, &n, conv_params(size, if k == strided { stride } else { 1 }), BN_EPS)
                    })
                    .collect::<Result<Vec<_>>>()?;
                let (sc, sn) = match layout {
                    Layout::Timm => (b.pp("downsample.0"), b.pp("downsample.1")),
                    Layout::Transformers => (b.pp("shortcut.convolution"), b.pp("shortcut.normalization")),
                };
                let shortcut = if sc.contains("weight") { Some(Conv2d::load_with_batch_norm(&sc, &sn, conv_params(1, stride), BN_EPS)?) } else { None };
                let (cin, cout) = (convs[0].weight.dims()[1], convs[convs.len() - 1].weight.dims()[0]);
                if cin != channels || (shortcut.is_none() && (cout != channels || stride != 1)) {
                    return Err(Error::Config(format!(
                        "ResNet block {}: {cin} input channels after {channels}, {cout} out, stride {stride}, {} shortcut",
                        b.full_name(""),
                        if shortcut.is_some() { "a" } else { "no" }
                    )));
                }
                channels = cout;
                blocks.push(Block { convs, shortcut });
            }
            if blocks.is_empty() {
                break;
            }
            stages.push(blocks);
        }
        if stages.is_empty() {
            return Err(Error::Config(format!("no ResNet stages under `{}`", vb.full_name(""))));
        }
        Ok(ResNet { stem, stages, out_channels: channels })
    }

    /// pixel_values [N, 3, H, W] to the last stage's features [N, C, H/32, W/32].
    pub fn forward(&self, pixel_values: &Tensor) -> Result<Tensor> {
        let x = self.stem.forward_act(pixel_values, RELU)?;
        let mut x = x.max_pool2d([3, 3], [2, 2], [1, 1])?;
        for block in self.stages.iter().flatten() {
            let mut h = x.clone();
            let last = block.convs.len() - 1;
            for conv in &block.convs[..last] {
                h = conv.forward_act(&h, RELU)?;
            }
            let h = block.convs[last].forward(&h)?;
            let shortcut = match &block.shortcut {
                Some(conv) => conv.forward(&x)?,
                None => x.clone(),
            };
            x = add_relu(&h, &shortcut)?;
        }
        Ok(x)
    }
}

/// relu(a + b) of two [N, C, H, W] tensors, on their [N, H, W, C] views (contiguous when the
/// inputs are convolution outputs), given back as the [N, C, H, W] view of that memory.
fn add_relu(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    let nhwc = [0, 2, 3, 1];
    a.permute(&nhwc)?.add(&b.permute(&nhwc)?)?.unary(UnaryOp::Relu)?.permute(&[0, 3, 1, 2])
}
