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

#[test]
fn uniform_params_match_their_rust_definition() {
    // Every kernel's `Params` as naga lays it out: the names, order and byte offsets that
    // `kernel_params!` writes, so a field cannot be misplaced on either side.
    for kernel in Kernel::all() {
        let key = PipelineKey { kernel, features: ShaderFeatures::default() };
        let source = key.source(Flavor::Native).unwrap();
        let module = naga::front::wgsl::parse_str(&source).unwrap();
        let uniform = module.global_variables.iter().find(|(_, g)| g.space == naga::AddressSpace::Uniform).map(|(_, g)| g.ty);
        let Some(ty) = uniform else { panic!("{kernel:?} has no uniform") };
        let naga::TypeInner::Struct { members, span } = &module.types[ty].inner else { panic!("{kernel:?}: the uniform is not a struct") };
        let def = kernel.params();
        let naga_fields: Vec<(String, u32)> = members.iter().map(|m| (m.name.clone().unwrap_or_default(), m.offset)).collect();
        let ours: Vec<(String, u32)> = def.fields.iter().zip(def.offsets()).map(|((n, _), o)| (n.to_string(), o as u32)).collect();
        assert_eq!(naga_fields, ours, "{kernel:?}: {}", def.name);
        let last = def.fields.last().map_or(0, |(_, t)| t.size()) + def.offsets().last().copied().unwrap_or(0);
        assert!(last as u32 <= *span, "{kernel:?}: {last} bytes of parameters, struct of {span}");
    }
}

#[test]
fn unary_codes_are_declaration_order() {
    for (i, op) in webformers::UnaryOp::ALL.into_iter().enumerate() {
        assert_eq!(op as usize, i, "{op:?}");
    }
}
