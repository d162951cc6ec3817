//! Every kernel variant (all dtypes, with and without shader-f16 and subgroups) is preprocessed
//! and validated by naga, the WGSL compiler wgpu uses, without a GPU.

use webformers::gpu::shaders::{Flavor, Kernel, PipelineKey, ShaderFeatures};

fn validate(key: &PipelineKey, source: &str) {
    let module = naga::front::wgsl::parse_str(source)
        .unwrap_or_else(|e| panic!("{key:?} does not parse:\n{}\n--- source ---\n{source}", e.emit_to_string(source)));
    let mut validator = naga::valid::Validator::new(naga::valid::ValidationFlags::all(), naga::valid::Capabilities::all());
    validator.validate(&module).unwrap_or_else(|e| panic!("{key:?} is invalid:\n{}\n--- source ---\n{source}", e.emit_to_string(source)));
}

#[test]
fn every_kernel_variant_validates() {
    let mut count = 0;
    for kernel in Kernel::all() {
        for f16 in [false, true] {
            for subgroups in [false, true] {
                let key = PipelineKey { kernel, features: ShaderFeatures { f16, subgroups, f16_math: f16 } };
                let native = key.source(Flavor::Native).unwrap();
                validate(&key, &native);
                // Browsers need `enable subgroups;`, which naga rejects; otherwise the text is the same.
                let browser = key.source(Flavor::Browser).unwrap();
                let stripped = browser.replace("enable subgroups;\n", "");
                assert_eq!(stripped, native, "{key:?}: browser and native flavors differ beyond the directive");
                assert_eq!(browser.contains("enable subgroups;"), subgroups, "{key:?}");
                count += 1;
            }
        }
    }
    assert!(count >= 100, "only {count} variants");
}

#[test]
fn kernels_fit_webgpu_default_limits() {
    // At most 256 invocations per workgroup and 16 KiB of workgroup memory on every variant.
    for kernel in Kernel::all() {
        for (f16, subgroups) in [(false, false), (true, true)] {
            let key = PipelineKey { kernel, features: ShaderFeatures { f16, subgroups, f16_math: f16 } };
            let source = key.source(Flavor::Native).unwrap();
            let module = naga::front::wgsl::parse_str(&source).unwrap();
            for ep in &module.entry_points {
                let [x, y, z] = ep.workgroup_size;
                assert!(x * y * z <= 256, "{key:?}: workgroup of {}", x * y * z);
            }
            let mut layouter = naga::proc::Layouter::default();
            layouter.update(module.to_ctx()).unwrap();
            let shared: u32 = module
                .global_variables
                .iter()
                .filter(|(_, g)| g.space == naga::AddressSpace::WorkGroup)
                .map(|(_, g)| layouter[g.ty].size)
                .sum();
            assert!(shared <= 16 * 1024, "{key:?}: {shared} bytes of workgroup memory");
        }
    }
}
