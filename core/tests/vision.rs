//! The vision ops (convolution, concatenation, bicubic resampling, max pooling, sigmoid and
//! quick-GELU) on every backend against `webformers::reference`, and the reference's bicubic
//! against values PyTorch printed.

#[macro_use]
mod support;

use half::f16;
use support::{F32, Rng, Tolerance, assert_close, devices, f32_sum};
use webformers::{Activation, Conv2dParams, Tensor, UnaryOp, reference};

async fn read(t: &Tensor) -> Vec<f32> {
    t.to_vec_f32().await.unwrap()
}

const EXACT: Tolerance = Tolerance { abs: 0.0, rel: 0.0 };

/// x [N, C, H, W] made as a permuted view of [N, H, W, C] storage, so kernels meet real strides.
fn channels_last(values: &[f32], dims: [usize; 4], dev: &webformers::Device) -> Tensor {
    let [n, c, h, w] = dims;
    let nhwc: Vec<f32> = (0..n * h * w * c)
        .map(|i| {
            let (b, y, x, ch) = (i / (h * w * c), i / (w * c) % h, i / c % w, i % c);
            values[((b * c + ch) * h + y) * w + x]
        })
        .collect();
    Tensor::from_f32(&nhwc, &[n, h, w, c], dev).unwrap().permute(&[0, 3, 1, 2]).unwrap()
}

async_test! { async fn conv2d_matches_reference() {
    let mut rng = Rng::new(20);
    // (input dims, cout, kernel, stride, padding, dilation, groups): 1x1, patchify (stride =
    // kernel, a ViT's), ResNet's 7x7/2 stem and 3x3s, a 1x1/2 downsample, dilation, depthwise 7x7
    // (ConvNeXt's), a grouped one, and a non-square everything.
    let cases: &[([usize; 4], usize, [usize; 2], [usize; 2], [usize; 2], [usize; 2], usize)] = &[
        ([2, 5, 6, 7], 3, [1, 1], [1, 1], [0, 0], [1, 1], 1),
        ([1, 3, 32, 48], 17, [16, 16], [16, 16], [0, 0], [1, 1], 1),
        ([1, 3, 23, 19], 8, [7, 7], [2, 2], [3, 3], [1, 1], 1),
        ([2, 9, 11, 10], 12, [3, 3], [1, 1], [1, 1], [1, 1], 1),
        ([1, 16, 9, 9], 5, [1, 1], [2, 2], [0, 0], [1, 1], 1),
        ([1, 4, 13, 12], 6, [3, 3], [1, 1], [2, 2], [2, 2], 1),
        ([2, 8, 14, 15], 8, [7, 7], [1, 1], [3, 3], [1, 1], 8),
        ([1, 6, 9, 8], 9, [3, 3], [2, 2], [1, 1], [1, 1], 3),
        ([1, 4, 10, 17], 7, [2, 5], [1, 3], [1, 2], [2, 1], 1),
    ];
    for (name, dev) in devices().await {
        for (case, &(dims, cout, kernel, stride, padding, dilation, groups)) in cases.iter().enumerate() {
            let p = Conv2dParams { stride, padding, dilation, groups };
            let cin_g = dims[1] / groups;
            let x = rng.vec(dims.iter().product(), 1.0);
            let w_dims = [cout, cin_g, kernel[0], kernel[1]];
            let w = rng.vec(w_dims.iter().product(), 0.5);
            let bias = rng.vec(cout, 0.5);
            let with_bias = case % 3 != 1;
            let (want, out_dims) = reference::conv2d(&x, dims, &w, w_dims, with_bias.then_some(&bias[..]), p);
            let tx = if case % 2 == 0 { Tensor::from_f32(&x, &dims, &dev).unwrap() } else { channels_last(&x, dims, &dev) };
            let tw = Tensor::from_f32(&w, &w_dims, &dev).unwrap();
            let tb = Tensor::from_f32(&bias, &[cout], &dev).unwrap();
            let got = tx.conv2d(&tw, with_bias.then_some(&tb), p).unwrap();
            assert_eq!(got.dims(), &out_dims[..], "{name} conv2d case {case} dims");
            let label = format!("{name} conv2d case {case} {dims:?} -> {out_dims:?} {p:?}");
            let tol = f32_sum(cin_g * kernel[0] * kernel[1]);
            assert_close(&label, &read(&got).await, &want, tol);

            // f16 weights, and a fused ReLU: the reference sees the same rounded weights.
            let w16: Vec<f16> = w.iter().map(|&v| f16::from_f32(v)).collect();
            let rounded: Vec<f32> = w16.iter().map(|v| v.to_f32()).collect();
            let (want16, _) = reference::conv2d(&x, dims, &rounded, w_dims, with_bias.then_some(&bias[..]), p);
            let relu: Vec<f32> = want16.iter().map(|v| v.max(0.0)).collect();
            let tw16 = Tensor::from_f16(&w16, &w_dims, &dev).unwrap();
            let got = tx.conv2d_act(&tw16, with_bias.then_some(&tb), p, Activation::Unary(UnaryOp::Relu)).unwrap();
            assert_close(&format!("{label} f16 + relu"), &read(&got).await, &relu, tol);
        }

        // A band split: the im2col buffer of this one is over the 32 MiB band limit.
        let (dims, p) = ([1usize, 64, 70, 300], Conv2dParams { padding: [1, 1], ..Default::default() });
        let x = rng.vec(dims.iter().product(), 1.0);
        let w = rng.vec(4 * 64 * 9, 0.1);
        let (want, _) = reference::conv2d(&x, dims, &w, [4, 64, 3, 3], None, p);
        let got = Tensor::from_f32(&x, &dims, &dev).unwrap().conv2d(&Tensor::from_f32(&w, &[4, 64, 3, 3], &dev).unwrap(), None, p).unwrap();
        assert_close(&format!("{name} conv2d in bands"), &read(&got).await, &want, f32_sum(64 * 9));

        // Bad input is an error, not a panic.
        let x = Tensor::from_f32(&[0.0; 2 * 4 * 5 * 5], &[2, 4, 5, 5], &dev).unwrap();
        let w = |d: &[usize]| Tensor::from_f32(&vec![0.0; d.iter().product()], d, &dev).unwrap();
        let d = Conv2dParams::default();
        assert!(x.conv2d(&w(&[3, 4, 6, 1]), None, d).is_err(), "kernel larger than the input");
        assert!(x.conv2d(&w(&[3, 3, 1, 1]), None, d).is_err(), "channel mismatch");
        assert!(x.conv2d(&w(&[3, 2, 1, 1]), None, Conv2dParams { groups: 2, ..d }).is_err(), "3 outputs in 2 groups");
        assert!(x.conv2d(&w(&[4, 4, 1, 1]), None, Conv2dParams { groups: 0, ..d }).is_err(), "zero groups");
        assert!(x.conv2d(&w(&[4, 4, 1, 1]), None, Conv2dParams { stride: [0, 1], ..d }).is_err(), "zero stride");
        assert!(x.conv2d(&w(&[4, 4, 1, 1]), Some(&w(&[3])), d).is_err(), "bias size");
        assert!(w(&[4, 5, 5]).conv2d(&w(&[4, 4, 1, 1]), None, d).is_err(), "rank 3 input");
        assert!(w(&[0, 4, 5, 5]).conv2d(&w(&[4, 4, 1, 1]), None, d).is_err(), "empty batch");
    }
}}

async_test! { async fn concat_joins_views_along_any_dim() {
    let mut rng = Rng::new(21);
    for (name, dev) in devices().await {
        for dim in 0..3 {
            let sizes = [2usize, 1, 3];
            let mut parts = Vec::new();
            let mut values = Vec::new();
            for (i, &s) in sizes.iter().enumerate() {
                let mut dims = vec![3usize, 4, 5];
                dims[dim] = s;
                let v = rng.vec(dims.iter().product(), 1.0);
                // The middle part is a transposed view, read in place.
                let t = if i == 1 {
                    let mut rev = dims.clone();
                    rev.reverse();
                    let v_rev: Vec<f32> = (0..v.len()).map(|j| {
                        let (a, b, c) = (j / (rev[1] * rev[2]), j / rev[2] % rev[1], j % rev[2]);
                        v[(c * dims[1] + b) * dims[2] + a]
                    }).collect();
                    Tensor::from_f32(&v_rev, &rev, &dev).unwrap().permute(&[2, 1, 0]).unwrap()
                } else {
                    Tensor::from_f32(&v, &dims, &dev).unwrap()
                };
                parts.push(t);
                values.push((v, dims));
            }
            let refs: Vec<&Tensor> = parts.iter().collect();
            let got = Tensor::concat(&refs, dim).unwrap();
            let mut out_dims = vec![3usize, 4, 5];
            out_dims[dim] = 6;
            assert_eq!(got.dims(), &out_dims[..]);
            let outer: usize = out_dims[..dim].iter().product();
            let mut want = Vec::new();
            for o in 0..outer {
                for (v, dims) in &values {
                    let block: usize = dims[dim..].iter().product();
                    want.extend_from_slice(&v[o * block..][..block]);
                }
            }
            assert_close(&format!("{name} concat dim {dim}"), &read(&got).await, &want, EXACT);
        }
        // u32 values are copied bit for bit.
        let a = Tensor::from_u32(&[1, 2, 3], &[3], &dev).unwrap();
        let b = Tensor::from_u32(&[u32::MAX], &[1], &dev).unwrap();
        assert_eq!(Tensor::concat(&[&a, &b], 0).unwrap().to_vec_u32().await.unwrap(), vec![1, 2, 3, u32::MAX]);
        // Mismatched shapes, dtypes, dims and an empty list are errors.
        let f = Tensor::from_f32(&[0.0; 6], &[2, 3], &dev).unwrap();
        let g = Tensor::from_f32(&[0.0; 6], &[3, 2], &dev).unwrap();
        assert!(Tensor::concat(&[&f, &g], 0).is_err());
        assert!(Tensor::concat(&[&f, &a], 0).is_err());
        assert!(Tensor::concat(&[&f], 2).is_err());
        assert!(Tensor::concat(&[], 0).is_err());
    }
}}

include!("fixtures/bicubic_torch.rs");

async_test! { async fn bicubic_matches_torch_and_reference() {
    // The reference against PyTorch's own numbers (tests/reference/bicubic.py printed them).
    let (h, w) = (5usize, 7usize);
    let x: Vec<f32> = (0..h * w).map(|i| ((i * 37) % 23) as f32 / 8.0 - 1.5).collect();
    for &(size, align_corners, antialias, want) in BICUBIC_TORCH {
        let got = reference::interpolate_bicubic(&x, [1, 1, h, w], size, align_corners, antialias);
        assert_close(&format!("reference bicubic {size:?} align_corners={align_corners} antialias={antialias}"), &got, want, Tolerance { abs: 2e-6, rel: 1e-5 });
    }

    let mut rng = Rng::new(22);
    for (name, dev) in devices().await {
        // Up and down by odd factors, to 1x1, from 1xN, and DINOv2's 37x37 grid to 16x16 and 71x50.
        let cases: &[([usize; 4], [usize; 2])] = &[
            ([2, 3, 5, 7], [3, 4]), ([1, 2, 5, 7], [12, 17]), ([1, 1, 9, 6], [1, 1]), ([1, 2, 1, 8], [3, 5]),
            ([1, 4, 37, 37], [16, 16]), ([1, 3, 37, 37], [71, 50]), ([1, 1, 40, 3], [7, 3]),
        ];
        for &(dims, size) in cases {
            let x = rng.vec(dims.iter().product(), 1.0);
            for (i, (align_corners, antialias)) in [(false, false), (false, true), (true, false), (true, true)].into_iter().enumerate() {
                let tx = if i % 2 == 0 { Tensor::from_f32(&x, &dims, &dev).unwrap() } else { channels_last(&x, dims, &dev) };
                let got = tx.interpolate_bicubic(size, align_corners, antialias).unwrap();
                assert_eq!(got.dims(), &[dims[0], dims[1], size[0], size[1]]);
                let want = reference::interpolate_bicubic(&x, dims, size, align_corners, antialias);
                let label = format!("{name} bicubic {dims:?} -> {size:?} align_corners={align_corners} antialias={antialias}");
                assert_close(&label, &read(&got).await, &want, Tolerance { abs: 1e-5, rel: 1e-4 });
            }
        }
        let x = Tensor::from_f32(&[0.0; 4], &[1, 1, 2, 2], &dev).unwrap();
        assert!(x.interpolate_bicubic([0, 3], false, false).is_err());
        assert!(x.reshape(&[1, 2, 2]).unwrap().interpolate_bicubic([3, 3], false, false).is_err());
    }
}}

async_test! { async fn max_pool2d_matches_reference() {
    let mut rng = Rng::new(23);
    for (name, dev) in devices().await {
        // ResNet's 3x3/2 pad 1, a 2x2/2, overlapping odd windows, and a non-square one.
        let cases: &[([usize; 4], [usize; 2], [usize; 2], [usize; 2])] = &[
            ([2, 3, 17, 20], [3, 3], [2, 2], [1, 1]),
            ([1, 4, 8, 8], [2, 2], [2, 2], [0, 0]),
            ([1, 2, 9, 7], [3, 3], [1, 1], [1, 1]),
            ([1, 1, 6, 11], [2, 5], [3, 2], [1, 2]),
        ];
        for (case, &(dims, kernel, stride, padding)) in cases.iter().enumerate() {
            let x = rng.vec(dims.iter().product(), 1.0);
            let tx = if case % 2 == 0 { Tensor::from_f32(&x, &dims, &dev).unwrap() } else { channels_last(&x, dims, &dev) };
            let got = tx.max_pool2d(kernel, stride, padding).unwrap();
            let (want, out_dims) = reference::max_pool2d(&x, dims, kernel, stride, padding);
            assert_eq!(got.dims(), &out_dims[..]);
            assert_close(&format!("{name} max_pool2d case {case}"), &read(&got).await, &want, EXACT);
        }
        // All-negative input: padding must not win as a 0 would.
        let neg = Tensor::from_f32(&[-3.0, -2.0, -5.0, -4.0], &[1, 1, 2, 2], &dev).unwrap();
        assert_eq!(read(&neg.max_pool2d([3, 3], [2, 2], [1, 1]).unwrap()).await, vec![-2.0]);
        assert!(neg.max_pool2d([2, 2], [1, 1], [2, 2]).is_err(), "padding over half the kernel");
        assert!(neg.max_pool2d([3, 3], [1, 1], [0, 0]).is_err(), "window larger than the input");
    }
}}

async_test! { async fn sigmoid_quick_gelu_and_spatial_mean() {
    let mut rng = Rng::new(24);
    for (name, dev) in devices().await {
        let mut x = rng.vec(1000, 8.0);
        x.extend([-200.0, 200.0, 0.0]);
        let tx = Tensor::from_f32(&x, &[x.len()], &dev).unwrap();
        let want: Vec<f32> = x.iter().map(|&v| reference::sigmoid(v)).collect();
        assert_close(&format!("{name} sigmoid"), &read(&tx.sigmoid().unwrap()).await, &want, F32);
        let want: Vec<f32> = x.iter().map(|&v| reference::quick_gelu(v)).collect();
        assert_close(&format!("{name} quick_gelu"), &read(&tx.quick_gelu().unwrap()).await, &want, Tolerance { abs: 2e-5, rel: 1e-5 });

        // Both in a linear layer's epilogue.
        let (rows, k, n) = (5, 33, 17);
        let (a, w) = (rng.vec(rows * k, 1.0), rng.vec(n * k, 0.5));
        let ta = Tensor::from_f32(&a, &[rows, k], &dev).unwrap();
        let tw = Tensor::from_f32(&w, &[n, k], &dev).unwrap();
        let lin = reference::linear(&a, &w, None, k, n);
        for (op, f) in [(UnaryOp::Sigmoid, reference::sigmoid as fn(f32) -> f32), (UnaryOp::QuickGelu, reference::quick_gelu)] {
            let got = read(&ta.linear(&tw, None, Activation::Unary(op)).unwrap()).await;
            let want: Vec<f32> = lin.iter().map(|&v| f(v)).collect();
            assert_close(&format!("{name} linear + {op:?}"), &got, &want, f32_sum(k));
        }

        // The mean over H and W, of a row-major and of a channels-last view.
        let dims = [2usize, 3, 7, 5];
        let x = rng.vec(dims.iter().product(), 1.0);
        let want: Vec<f32> = x.chunks(35).map(|p| (p.iter().map(|&v| v as f64).sum::<f64>() / 35.0) as f32).collect();
        for tx in [Tensor::from_f32(&x, &dims, &dev).unwrap(), channels_last(&x, dims, &dev)] {
            let got = tx.mean_spatial().unwrap();
            assert_eq!(got.dims(), &[2, 3]);
            assert_close(&format!("{name} mean_spatial"), &read(&got).await, &want, f32_sum(35));
        }
    }
}}

async_test! { async fn batch_norm_folds_into_the_convolution() {
    use webformers::nn::{BatchNorm2d, Conv2d};
    let mut rng = Rng::new(25);
    for (name, dev) in devices().await {
        let (dims, cout, eps) = ([2usize, 3, 9, 8], 5usize, 1e-5f32);
        let p = Conv2dParams { stride: [2, 2], padding: [1, 1], ..Default::default() };
        let x = rng.vec(dims.iter().product(), 1.0);
        let w = rng.vec(cout * 3 * 9, 0.5);
        let (gamma, beta, mean) = (rng.vec(cout, 1.0), rng.vec(cout, 1.0), rng.vec(cout, 1.0));
        let var: Vec<f32> = (0..cout).map(|_| rng.uniform(0.1, 2.0)).collect();
        let (conv, out_dims) = reference::conv2d(&x, dims, &w, [cout, 3, 3, 3], None, p);
        let plane = out_dims[2] * out_dims[3];
        let want: Vec<f32> = conv.iter().enumerate().map(|(i, &v)| {
            let c = i / plane % cout;
            ((v as f64 - mean[c] as f64) / (var[c] as f64 + eps as f64).sqrt() * gamma[c] as f64 + beta[c] as f64) as f32
        }).collect();
        let t = |v: &[f32], d: &[usize]| Tensor::from_f32(v, d, &dev).unwrap();
        let bn = BatchNorm2d { weight: t(&gamma, &[cout]), bias: t(&beta, &[cout]), running_mean: t(&mean, &[cout]), running_var: t(&var, &[cout]), eps };
        let tx = t(&x, &dims);
        let unfused = Conv2d { weight: t(&w, &[cout, 3, 3, 3]), bias: None, params: p };
        let separate = bn.forward(&unfused.forward(&tx).unwrap()).unwrap();
        assert_close(&format!("{name} conv then batch norm"), &read(&separate).await, &want, f32_sum(27));
        let folded = unfused.fold_batch_norm(&bn).unwrap();
        assert_close(&format!("{name} batch norm folded"), &read(&folded.forward(&tx).unwrap()).await, &want, f32_sum(27));
        // A second pass reuses the folded weights made by the first.
        assert_close(&format!("{name} batch norm folded, again"), &read(&folded.forward(&tx).unwrap()).await, &want, f32_sum(27));
    }
}}
