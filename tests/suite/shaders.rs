//! Every shader variant the crate can build is parsed and validated by naga, its `override`
//! constants resolved, and translated to SPIR-V (Vulkan), MSL (Metal) and HLSL (DX12), so a
//! shader that would break on another backend fails here; and every `Params` struct has the
//! size of its `#[repr(C)]` Rust mirror.

use naga::back::{hlsl, msl, spv};
use naga::valid::{Capabilities, ShaderStages, SubgroupOperationSet, ValidationFlags, Validator};
use qwen_wgpu::runtime::params::PARAMS_SIZES;
use qwen_wgpu::runtime::pipeline::{assemble, Kernel, Variant, SHADER_FILES};

fn constants(kernel: Kernel) -> naga::back::PipelineConstants {
    let mut c = naga::back::PipelineConstants::default();
    for &(name, value) in kernel.overrides() {
        c.insert(name.to_string(), value as f64);
    }
    c
}

fn translate(kernel: Kernel, variant: Variant) {
    let name = format!("{kernel:?} {variant:?}");
    let source = assemble(kernel, variant).unwrap();
    let module = naga::front::wgsl::parse_str(&source)
        .unwrap_or_else(|e| panic!("{name}: {}", e.emit_to_string(&source)));
    // unpack2x16float is core WGSL; naga files it under SHADER_FLOAT16_IN_FLOAT32, which
    // every Vulkan, Metal and DX12 adapter has.
    let base = Capabilities::SHADER_FLOAT16_IN_FLOAT32;
    let caps = if variant.subgroups {
        base | Capabilities::SUBGROUP
    } else {
        base
    };
    let info = Validator::new(ValidationFlags::all(), caps)
        .subgroup_stages(ShaderStages::COMPUTE)
        .subgroup_operations(SubgroupOperationSet::all())
        .validate(&module)
        .unwrap_or_else(|e| panic!("{name}: {}", e.emit_to_string(&source)));
    let entry = (naga::ShaderStage::Compute, kernel.entry_point());
    let (module, info) = naga::back::pipeline_constants::process_overrides(
        &module,
        &info,
        Some(entry),
        &constants(kernel),
    )
    .unwrap_or_else(|e| panic!("{name}: overrides: {e}"));

    let spv_options = spv::Options {
        lang_version: (1, 3),
        ..Default::default()
    };
    let spv_pipeline = spv::PipelineOptions {
        shader_stage: naga::ShaderStage::Compute,
        entry_point: kernel.entry_point().to_string(),
    };
    let words = spv::write_vec(&module, &info, &spv_options, Some(&spv_pipeline))
        .unwrap_or_else(|e| panic!("{name}: SPIR-V: {e}"));
    assert!(!words.is_empty());

    let msl_options = msl::Options {
        lang_version: (2, 3),
        ..Default::default()
    };
    let msl_pipeline = msl::PipelineOptions {
        entry_point: Some((naga::ShaderStage::Compute, kernel.entry_point().to_string())),
        ..Default::default()
    };
    msl::write_string(&module, &info, &msl_options, &msl_pipeline)
        .unwrap_or_else(|e| panic!("{name}: MSL: {e}"));

    let hlsl_options = hlsl::Options {
        shader_model: hlsl::ShaderModel::V6_2,
        ..Default::default()
    };
    let hlsl_pipeline = hlsl::PipelineOptions {
        entry_point: Some((naga::ShaderStage::Compute, kernel.entry_point().to_string())),
    };
    let mut out = String::new();
    hlsl::Writer::new(&mut out, &hlsl_options, &hlsl_pipeline)
        .write(&module, &info, None)
        .unwrap_or_else(|e| panic!("{name}: HLSL: {e}"));
}

#[test]
fn every_shader_translates_to_spirv_msl_and_hlsl() {
    for kernel in Kernel::all() {
        for subgroups in [true, false] {
            translate(kernel, Variant { subgroups });
        }
    }
}

/// The byte size of the WGSL struct `Params` in a kernel file, by naga's layouter.
fn wgsl_params_size(path: &str) -> u32 {
    let kernel = Kernel::all()
        .into_iter()
        .find(|k| {
            assemble(*k, Variant { subgroups: false })
                .unwrap()
                .contains(path)
        })
        .unwrap_or_else(|| panic!("no kernel assembles {path}"));
    let source = assemble(kernel, Variant { subgroups: false }).unwrap();
    let module = naga::front::wgsl::parse_str(&source).unwrap();
    let mut layouter = naga::proc::Layouter::default();
    layouter.update(module.to_ctx()).unwrap();
    let (handle, _) = module
        .types
        .iter()
        .find(|(_, t)| t.name.as_deref() == Some("Params"))
        .unwrap_or_else(|| panic!("{path} has no struct Params"));
    layouter[handle].size
}

#[test]
fn params_structs_match_their_rust_mirrors() {
    for &(path, rust_size) in PARAMS_SIZES {
        assert_eq!(wgsl_params_size(path) as usize, rust_size, "{path}");
    }
    // Every kernel file with a Params struct has a Rust mirror.
    for (path, src) in SHADER_FILES {
        if src.contains("struct Params") {
            assert!(
                PARAMS_SIZES.iter().any(|(p, _)| p == path),
                "{path} has no Rust mirror"
            );
        }
    }
}

/// Kernel params are read-only storage, never uniform buffers: lavapipe (Mesa 22) bakes
/// uniform values that steer loops into the shader and recompiles it at every dispatch
/// whose values changed, leaking the old code (measured: +3 MiB host memory and several
/// LLVM compiles per decode token). And no kernel binds more storage buffers than the
/// context demands of a device.
#[test]
fn kernels_bind_no_uniforms_and_few_enough_storage_buffers() {
    use qwen_wgpu::runtime::gpu::MIN_STORAGE_BUFFERS;
    for kernel in Kernel::all() {
        let source = assemble(kernel, Variant { subgroups: false }).unwrap();
        let module = naga::front::wgsl::parse_str(&source).unwrap();
        let mut storage = 0;
        for (_, var) in module.global_variables.iter() {
            assert!(
                var.space != naga::AddressSpace::Uniform,
                "{kernel:?}: {:?} is a uniform buffer",
                var.name
            );
            if matches!(var.space, naga::AddressSpace::Storage { .. }) {
                storage += 1;
            }
        }
        assert!(
            storage <= MIN_STORAGE_BUFFERS,
            "{kernel:?} binds {storage} storage buffers, more than the {MIN_STORAGE_BUFFERS} required of a device"
        );
    }
}
