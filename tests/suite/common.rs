//! Fixtures shared by the suite.

use qwen_wgpu::loader::gguf::TensorInfo;
use qwen_wgpu::loader::gguf_writer::GgufWriter;
use qwen_wgpu::loader::presets::preset;
use qwen_wgpu::loader::synth::{synthetic_model, SynthOptions};
use qwen_wgpu::loader::ModelConfig;

/// The three tiny architecture presets.
pub const TINY_PRESETS: [&str; 3] = ["tiny-qwen35moe", "tiny-qwen35", "tiny-qwen3moe"];

pub fn tiny(name: &str) -> ModelConfig {
    preset(name).expect("tiny presets exist")
}

pub fn synth_writer(config: &ModelConfig) -> GgufWriter {
    synthetic_model(config, &SynthOptions::default()).expect("tiny presets synthesise")
}

/// `preset` with weights of `weight_type`, loaded on `gpu` for sessions shaped by `options`.
pub fn load_tiny(
    preset: &str,
    weight_type: qwen_wgpu::loader::quant::GgmlType,
    gpu: qwen_wgpu::runtime::GpuContext,
    options: &qwen_wgpu::runtime::SessionOptions,
) -> std::sync::Arc<qwen_wgpu::runtime::GpuModel> {
    let config = tiny(preset);
    let opts = SynthOptions {
        weight_type,
        ..SynthOptions::default()
    };
    let bytes = synthetic_model(&config, &opts).unwrap().to_bytes();
    let file = qwen_wgpu::loader::gguf::GgufFile::from_bytes(bytes).unwrap();
    qwen_wgpu::runtime::GpuModel::load(gpu, &file, &config, options, &mut |_, _| {}).unwrap()
}

/// File offset of the `n_dims` field of a tensor info record.
pub fn n_dims_offset(t: &TensorInfo) -> usize {
    t.info_offset as usize + 8 + t.name.len()
}

/// File offset of the type id field of a tensor info record.
pub fn type_offset(t: &TensorInfo) -> usize {
    n_dims_offset(t) + 4 + 8 * t.dims.len()
}

/// File offset of the data-offset field of a tensor info record.
pub fn data_offset_field(t: &TensorInfo) -> usize {
    type_offset(t) + 4
}

pub fn put_u32(bytes: &mut [u8], at: usize, v: u32) {
    bytes[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

pub fn put_u64(bytes: &mut [u8], at: usize, v: u64) {
    bytes[at..at + 8].copy_from_slice(&v.to_le_bytes());
}

/// How steps are recorded: as the adapter does (directly on Vulkan), or through wgpu's pass
/// everywhere (as on Metal and DX12).
#[derive(Clone, Copy, PartialEq, Debug)]
pub enum Recording {
    Adapter,
    Wgpu,
    /// The adapter's, with the kernel of this entry point refused for direct recording (as
    /// a driver might refuse it): the steps that run it go through wgpu's pass.
    Refusing(&'static str),
}

impl Recording {
    /// Sets `gpu` to record steps this way.
    pub fn apply(self, gpu: &mut qwen_wgpu::runtime::GpuContext) {
        match self {
            Recording::Adapter => {}
            Recording::Wgpu => gpu.direct = None,
            Recording::Refusing(entry) => {
                if let Some(direct) = &gpu.direct {
                    direct.refuse(entry);
                }
            }
        }
    }
}

/// The GPU context for GPU tests. Without any adapter the test is skipped with a logged
/// reason, except under `CI=true`, where lavapipe is installed and a missing adapter means a
/// broken setup that a skip would hide.
pub fn gpu_or_skip() -> Option<qwen_wgpu::runtime::GpuContext> {
    use qwen_wgpu::error::GpuError;
    use qwen_wgpu::runtime::{AdapterChoice, GpuContext};
    match GpuContext::new(&AdapterChoice::from_env()) {
        Ok(gpu) => Some(gpu),
        Err(GpuError::NoAdapter) if std::env::var("CI").as_deref() != Ok("true") => {
            eprintln!("skipping: no GPU adapter (install mesa-vulkan-drivers for lavapipe)");
            None
        }
        Err(e) => panic!("GPU context: {e}"),
    }
}

/// Records `dispatches` in one pass, submits, and waits.
pub fn run_dispatches(
    gpu: &qwen_wgpu::runtime::GpuContext,
    dispatches: &[&qwen_wgpu::runtime::ops::Dispatch],
) {
    let mut enc = gpu.device.create_command_encoder(&Default::default());
    {
        let mut pass = enc.begin_compute_pass(&Default::default());
        for d in dispatches {
            d.encode(&mut pass);
        }
    }
    gpu.queue.submit([enc.finish()]);
}

/// Elementwise `|gpu - ref| <= atol + rtol * |ref|`, printing the first mismatches.
pub fn assert_close(what: &str, gpu: &[f32], reference: &[f32], atol: f32, rtol: f32) {
    assert_eq!(gpu.len(), reference.len(), "{what}: lengths differ");
    let bad: Vec<(usize, f32, f32)> = gpu
        .iter()
        .zip(reference)
        .enumerate()
        .filter(|(_, (g, r))| (*g - *r).abs().is_nan() || (*g - *r).abs() > atol + rtol * r.abs())
        .map(|(i, (g, r))| (i, *g, *r))
        .take(5)
        .collect();
    assert!(
        bad.is_empty(),
        "{what}: first mismatches (index, gpu, ref): {bad:?}"
    );
}

/// Runs `check` with the subgroup kernels (where the adapter has subgroups), then with the
/// workgroup-memory kernels every adapter can run.
pub fn for_each_variant(
    gpu: &mut qwen_wgpu::runtime::GpuContext,
    mut check: impl FnMut(&qwen_wgpu::runtime::GpuContext),
) {
    let with_subgroups = gpu.features.subgroup;
    check(gpu);
    if with_subgroups {
        gpu.features.subgroup = false;
        check(gpu);
        gpu.features.subgroup = true;
    }
}

/// The bound of a matmul form against the f32 reference, relative to sum |w x| of a row: the
/// f32 tiles within the matvec's, f16 operands 1e-3, and inputs rounded to 8 bits per 16
/// elements 1e-2 (each input off by at most 1/254 of its half's largest, about 1/127 of the
/// mean magnitude of uniform inputs, at worst all in one direction).
pub fn matmul_bound(form: qwen_wgpu::runtime::ops::linear::matmul::MatmulForm) -> f32 {
    use qwen_wgpu::runtime::ops::linear::matmul::MatmulForm;
    match form {
        MatmulForm::Tiled => 2e-5,
        MatmulForm::TiledInt8 => 1e-2,
        _ => 1e-3,
    }
}

/// Runs `check` with each matmul form this adapter can run: its own (cooperative matrices
/// where it has them), the cooperative tile emulated in plain WGSL and the f16 tiles (where
/// it has f16), the 8-bit tiles (packed dot products run everywhere, natively or not) and
/// the f32 tiles; says so when the adapter has no cooperative matrices to test. `check`
/// gets the form's bound on |gpu - ref| per unit of the row's sum of |w x| ([`matmul_bound`]).
pub fn for_each_matmul_form(
    gpu: &mut qwen_wgpu::runtime::GpuContext,
    mut check: impl FnMut(&qwen_wgpu::runtime::GpuContext, f32),
) {
    use qwen_wgpu::runtime::ops::linear::matmul::MatmulForm;
    let own = gpu.features.matmul;
    if !matches!(own, MatmulForm::Coop { .. }) {
        eprintln!(
            "{}: no f16 cooperative matrices; the cooperative matmul runs emulated only",
            gpu.info.name
        );
    }
    let mut forms = vec![own];
    let others = [
        MatmulForm::CoopEmulated,
        MatmulForm::TiledHalf,
        MatmulForm::TiledInt8,
        MatmulForm::Tiled,
    ];
    for form in others {
        let f16 = !matches!(form, MatmulForm::Tiled | MatmulForm::TiledInt8);
        if form != own && (gpu.features.shader_f16 || !f16) {
            forms.push(form);
        }
    }
    for form in forms {
        gpu.features.matmul = form;
        check(gpu, matmul_bound(form));
    }
    gpu.features.matmul = own;
}

/// Runs `check` with the adapter's matvec grids, then with each minimum grid of `grids`
/// (the GPU form, whatever the adapter is: `Some(512)` is what a GPU gets).
pub fn for_each_matvec_grid(
    gpu: &mut qwen_wgpu::runtime::GpuContext,
    grids: &[u32],
    mut check: impl FnMut(&qwen_wgpu::runtime::GpuContext),
) {
    let own = gpu.features.matvec_min_grid;
    check(gpu);
    for &g in grids {
        gpu.features.matvec_min_grid = Some(g);
        check(gpu);
    }
    gpu.features.matvec_min_grid = own;
}

/// The logits tolerance `tol` of a test, widened to 1e-2 where the model's prefill matmuls
/// and attention scores take f16 operands (each output within 1e-3 of its sum of |w x|,
/// compounded over the layers).
pub fn operand_tol(model: &qwen_wgpu::runtime::GpuModel, tol: f32) -> f32 {
    use qwen_wgpu::runtime::ops::linear::matmul::MatmulForm;
    if model.ctx.features.matmul == MatmulForm::Tiled {
        tol
    } else {
        tol.max(1e-2)
    }
}

/// The environment that runs a process under the Khronos validation layer with
/// synchronization validation, the layer reporting on its own (not through wgpu's debug
/// SPIR-V and messenger), and the loader saying whether it found the layer.
pub const SYNC_VALIDATION_ENV: [(&str, &str); 5] = [
    ("WGPU_DEBUG", "0"),
    ("WGPU_VALIDATION", "0"),
    ("VK_INSTANCE_LAYERS", "VK_LAYER_KHRONOS_validation"),
    (
        "VK_LAYER_ENABLES",
        "VK_VALIDATION_FEATURE_ENABLE_SYNCHRONIZATION_VALIDATION_EXT",
    ),
    ("VK_LOADER_DEBUG", "layer"),
];

/// What the validation layer reported in a process's `output` (run with
/// [`SYNC_VALIDATION_ENV`]), at most five lines; `None` when the layer was not loaded, which
/// fails under `CI=true` (CI installs `vulkan-validationlayers`) and is skipped, with a note,
/// elsewhere.
pub fn validation_reports(output: &str) -> Option<Vec<String>> {
    if !output.contains("Insert instance layer \"VK_LAYER_KHRONOS_validation\"") {
        assert_ne!(
            std::env::var("CI").as_deref(),
            Ok("true"),
            "CI installs vulkan-validationlayers, but the layer was not loaded"
        );
        eprintln!("skipping: no Vulkan validation layer (install vulkan-validationlayers)");
        return None;
    }
    Some(
        output
            .lines()
            .filter(|l| {
                l.contains("VUID-") || l.contains("SYNC-HAZARD") || l.contains("Validation Error")
            })
            .take(5)
            .map(str::to_string)
            .collect(),
    )
}

/// The `qwen-wgpu` binary the tests run: `QWEN_WGPU_BIN` where set (a test binary carried to
/// another machine, with the binary beside it), else the one cargo built with the tests.
pub fn binary() -> std::path::PathBuf {
    std::env::var_os("QWEN_WGPU_BIN")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| env!("CARGO_BIN_EXE_qwen-wgpu").into())
}

/// Whether [`binary`] exists; a test of it is skipped, with a note, where it does not
/// (a test binary carried without it), except under `CI=true`, where it fails.
pub fn binary_or_skip() -> bool {
    let bin = binary();
    if bin.exists() {
        return true;
    }
    assert_ne!(
        std::env::var("CI").as_deref(),
        Ok("true"),
        "no qwen-wgpu binary at {}",
        bin.display()
    );
    eprintln!(
        "skipping: no qwen-wgpu binary at {} (set QWEN_WGPU_BIN)",
        bin.display()
    );
    false
}

/// Once the device is idle, every dropped binding of `model`'s direct recording has been
/// freed (none leaks waiting for work that is done).
pub fn assert_bindings_freed_once_idle(model: &qwen_wgpu::runtime::GpuModel) {
    if let Some(direct) = &model.ctx.direct {
        model
            .ctx
            .device
            .poll(wgpu::PollType::wait_indefinitely())
            .unwrap();
        assert_eq!(direct.bindings_awaiting_free(), 0);
    }
}
