//! Every shader variant the crate can build is parsed and validated by naga and translated
//! to SPIR-V (Vulkan), MSL (Metal) and HLSL (DX12), so a shader that would break on another
//! backend fails here; and every kernel's WGSL matches its Rust declaration: the bindings
//! its entry point uses (names, order, access) and the field offsets of its `Params`.
//! Kernels on cooperative matrices go to SPIR-V and MSL only: naga has no HLSL for them,
//! and wgpu offers them on Vulkan and Metal alone.

use naga::back::{hlsl, msl, spv};
use naga::valid::{Capabilities, ShaderStages, SubgroupOperationSet, ValidationFlags, Validator};
use qwen_wgpu::runtime::kernel::{Access, Declaration};
use qwen_wgpu::runtime::pipeline::{assemble, Kernel, Variant, SHADER_FILES};

fn parse(kernel: Kernel, variant: Variant) -> (Declaration, String, naga::Module) {
    let decl = kernel.declaration().unwrap();
    let source = assemble(&decl, variant).unwrap();
    let module = naga::front::wgsl::parse_str(&source)
        .unwrap_or_else(|e| panic!("{kernel:?}: {}", e.emit_to_string(&source)));
    (decl, source, module)
}

/// The variants a kernel is built in: both reductions, or only the subgroup one for a
/// kernel that reads subgroup builtins anyway.
fn variants(decl: &Declaration) -> Vec<Variant> {
    let all = [true, false].map(|subgroups| Variant { subgroups });
    all.into_iter()
        .filter(|v| v.subgroups || !decl.needs_subgroups)
        .collect()
}

/// Whether the kernel runs on cooperative matrices.
fn cooperative(decl: &Declaration) -> bool {
    decl.enables.contains(&"wgpu_cooperative_matrix")
}

fn validate(
    name: &str,
    source: &str,
    module: &naga::Module,
    variant: Variant,
) -> naga::valid::ModuleInfo {
    // unpack2x16float is core WGSL; naga files it under SHADER_FLOAT16_IN_FLOAT32, which
    // every Vulkan, Metal and DX12 adapter has. The f16 and cooperative-matrix capabilities
    // are granted to every module: the kernels that use them say so with `enable`, which
    // naga checks, and are chosen only on adapters with the features.
    let mut caps = Capabilities::SHADER_FLOAT16_IN_FLOAT32
        | Capabilities::SHADER_FLOAT16
        | Capabilities::COOPERATIVE_MATRIX;
    if variant.subgroups {
        caps |= Capabilities::SUBGROUP;
    }
    Validator::new(ValidationFlags::all(), caps)
        .subgroup_stages(ShaderStages::COMPUTE)
        .subgroup_operations(SubgroupOperationSet::all())
        .validate(module)
        .unwrap_or_else(|e| panic!("{name}: {}", e.emit_to_string(source)))
}

fn translate(kernel: Kernel, variant: Variant) {
    let name = format!("{kernel:?} {variant:?}");
    let (decl, source, module) = parse(kernel, variant);
    let info = validate(&name, &source, &module, variant);
    let entry = decl.entry.to_string();

    let spv_options = spv::Options {
        lang_version: (1, 3),
        ..Default::default()
    };
    let spv_pipeline = spv::PipelineOptions {
        shader_stage: naga::ShaderStage::Compute,
        entry_point: entry.clone(),
    };
    let words = spv::write_vec(&module, &info, &spv_options, Some(&spv_pipeline))
        .unwrap_or_else(|e| panic!("{name}: SPIR-V: {e}"));
    assert!(!words.is_empty());

    let msl_options = msl::Options {
        lang_version: (2, 3),
        ..Default::default()
    };
    let msl_pipeline = msl::PipelineOptions {
        entry_point: Some((naga::ShaderStage::Compute, entry.clone())),
        ..Default::default()
    };
    msl::write_string(&module, &info, &msl_options, &msl_pipeline)
        .unwrap_or_else(|e| panic!("{name}: MSL: {e}"));

    if cooperative(&decl) {
        return;
    }
    let hlsl_options = hlsl::Options {
        shader_model: hlsl::ShaderModel::V6_2,
        ..Default::default()
    };
    let hlsl_pipeline = hlsl::PipelineOptions {
        entry_point: Some((naga::ShaderStage::Compute, entry)),
    };
    let mut out = String::new();
    hlsl::Writer::new(&mut out, &hlsl_options, &hlsl_pipeline)
        .write(&module, &info, None)
        .unwrap_or_else(|e| panic!("{name}: HLSL: {e}"));
}

#[test]
fn every_shader_translates_to_spirv_msl_and_hlsl() {
    for kernel in Kernel::all() {
        for variant in variants(&kernel.declaration().unwrap()) {
            translate(kernel, variant);
        }
    }
}

/// One resource the entry point uses: its binding, variable name and access.
#[derive(Debug, PartialEq)]
struct Used {
    binding: u32,
    name: String,
    access: Access,
}

/// The storage buffers the kernel's entry point statically uses, by binding.
fn used_bindings(
    decl: &Declaration,
    module: &naga::Module,
    info: &naga::valid::ModuleInfo,
) -> Vec<Used> {
    let index = module
        .entry_points
        .iter()
        .position(|e| e.name == decl.entry)
        .unwrap_or_else(|| panic!("{}: no entry point {}", decl.file, decl.entry));
    let entry_info = info.get_entry_point(index);
    let mut used: Vec<Used> = module
        .global_variables
        .iter()
        .filter(|(handle, _)| !entry_info[*handle].is_empty())
        .filter_map(|(_, var)| {
            let binding = var.binding.as_ref()?;
            assert_eq!(
                binding.group, 0,
                "{}: {:?} outside group 0",
                decl.entry, var.name
            );
            let naga::AddressSpace::Storage { access } = var.space else {
                panic!("{}: {:?} is not a storage buffer", decl.entry, var.name);
            };
            let access = if access.contains(naga::StorageAccess::STORE) {
                Access::ReadWrite
            } else {
                Access::Read
            };
            Some(Used {
                binding: binding.binding,
                name: var.name.clone().unwrap_or_default(),
                access,
            })
        })
        .collect();
    used.sort_by_key(|u| u.binding);
    used
}

/// The entry point binds `params` (read-only) at 0, then exactly the declaration's
/// bindings at 1.. in order, with the declared access; `Params` has the declared size and
/// every non-padding field at the declared offset.
#[test]
fn bindings_and_params_match_declarations() {
    for kernel in Kernel::all() {
        let variant = variants(&kernel.declaration().unwrap())[0];
        let (decl, source, module) = parse(kernel, variant);
        let info = validate(decl.entry, &source, &module, variant);
        let mut expect = vec![Used {
            binding: 0,
            name: "params".into(),
            access: Access::Read,
        }];
        expect.extend(decl.bindings.iter().enumerate().map(|(i, b)| Used {
            binding: i as u32 + 1,
            name: b.name.into(),
            access: b.access,
        }));
        assert_eq!(used_bindings(&decl, &module, &info), expect, "{kernel:?}");

        let mut layouter = naga::proc::Layouter::default();
        layouter.update(module.to_ctx()).unwrap();
        let (handle, ty) = module
            .types
            .iter()
            .find(|(_, t)| t.name.as_deref() == Some("Params"))
            .unwrap_or_else(|| panic!("{kernel:?}: no struct Params"));
        assert_eq!(
            layouter[handle].size as usize, decl.params_size,
            "{kernel:?} Params size"
        );
        let naga::TypeInner::Struct { members, .. } = &ty.inner else {
            panic!("{kernel:?}: Params is not a struct");
        };
        let wgsl: Vec<(String, usize)> = members
            .iter()
            .filter_map(|m| m.name.clone().map(|n| (n, m.offset as usize)))
            .filter(|(n, _)| !n.starts_with('_'))
            .collect();
        let rust: Vec<(String, usize)> = decl
            .params
            .iter()
            .filter(|f| !f.name.starts_with('_'))
            .map(|f| (f.name.to_string(), f.offset))
            .collect();
        assert_eq!(wgsl, rust, "{kernel:?} Params fields");
    }
}

/// Every file under `shaders/` is some kernel's own file or one of its includes (no dead
/// shader), and every kernel file has exactly the one entry point.
#[test]
fn every_shader_file_is_used() {
    let decls: Vec<Declaration> = Kernel::all()
        .into_iter()
        .map(|k| k.declaration().unwrap())
        .collect();
    let reductions = ["common/reduce_shared.wgsl", "common/reduce_subgroup.wgsl"];
    for (path, _) in SHADER_FILES {
        let used = reductions.contains(path)
            || decls.iter().any(|d| {
                d.file == *path
                    || d.includes.contains(path)
                    || d.namespaces.iter().any(|n| n.files.contains(path))
            });
        assert!(used, "shaders/{path} belongs to no kernel");
    }
    for decl in &decls {
        let (_, src) = SHADER_FILES.iter().find(|(p, _)| *p == decl.file).unwrap();
        assert_eq!(src.matches("@compute").count(), 1, "{}", decl.file);
    }
}

/// No kernel uses the WGSL 8-bit packing builtins, whose SPIR-V naga picks by the `Int8`
/// capability, which steps recorded directly on Vulkan do not list (`runtime::direct`'s
/// `spirv_capabilities`; it lists the packed dot products where the device has them, as
/// wgpu does, and a unit test there translates every kernel under that list).
#[test]
fn no_kernel_uses_builtins_whose_spirv_follows_optional_capabilities() {
    let builtins = ["pack4xI8", "pack4xU8", "unpack4xI8", "unpack4xU8"];
    for (path, source) in SHADER_FILES {
        for builtin in builtins {
            assert!(!source.contains(builtin), "shaders/{path} uses {builtin}");
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
        let variant = variants(&kernel.declaration().unwrap())[0];
        let (_, _, module) = parse(kernel, variant);
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
