//! The GPU context: which adapter runs the model, which optional features it brings, and
//! the limits the kernels are sized by.
//!
//! Choice: `--adapter` / `QWEN_WGPU_ADAPTER` (an index into [`list_adapters`] or a substring
//! of the adapter's name) when given, else the best kind present: discrete, integrated,
//! virtual, then CPU (Mesa's lavapipe, which keeps every test running on machines without a GPU).

use std::fmt;

use crate::error::GpuError;
use crate::runtime::direct::Direct;
use crate::runtime::ops::linear::matmul::MatmulForm;

/// Environment variable that picks an adapter by index or name, like `--adapter`.
pub const ADAPTER_ENV: &str = "QWEN_WGPU_ADAPTER";

/// Environment variable forcing the kernel forms of a GPU (`gpu`) or of a CPU device
/// (`cpu`) whatever the adapter is: to measure or test one form on the other's device.
pub const FORMS_ENV: &str = "QWEN_WGPU_KERNEL_FORMS";

/// The limits below which no kernel of ours can run; what desktop Vulkan, Metal and DX12
/// devices report clears them (the storage-buffer count is `moe_gate_up`'s 15 with room: its
/// params, four weights and two host copies of routed experts, the input, the norm, the
/// logits, h, the picks and their weights, the location table and the use counters; Metal
/// reports 29, desktop Vulkan and DX12 far more).
const MIN_WORKGROUP_SIZE: u32 = 256;
const MIN_WORKGROUP_STORAGE: u32 = 16 * 1024;
pub const MIN_STORAGE_BUFFERS: u32 = 16;
const MIN_STORAGE_BINDING: u64 = 16 << 20;

/// How to pick an adapter.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum AdapterChoice {
    /// The best kind present.
    #[default]
    Auto,
    /// Position in [`list_adapters`].
    Index(usize),
    /// Case-insensitive substring of the adapter's name.
    Name(String),
}

impl AdapterChoice {
    /// `"1"` is an index, anything else a name, empty means [`AdapterChoice::Auto`].
    pub fn parse(text: &str) -> AdapterChoice {
        let text = text.trim();
        if text.is_empty() {
            AdapterChoice::Auto
        } else if let Ok(i) = text.parse() {
            AdapterChoice::Index(i)
        } else {
            AdapterChoice::Name(text.to_string())
        }
    }

    /// From [`ADAPTER_ENV`], or `Auto` when unset.
    /// The `--adapter` flag when given, else `QWEN_WGPU_ADAPTER`.
    pub fn from_flag(flag: Option<&str>) -> AdapterChoice {
        flag.map_or_else(AdapterChoice::from_env, AdapterChoice::parse)
    }

    pub fn from_env() -> AdapterChoice {
        std::env::var(ADAPTER_ENV)
            .map(|v| AdapterChoice::parse(&v))
            .unwrap_or_default()
    }
}

/// Optional capabilities the kernels use when present, with fallbacks when not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct GpuFeatures {
    /// `enable f16;` in WGSL: f16 KV cache and f16 arithmetic.
    pub shader_f16: bool,
    /// Subgroup reductions (`subgroupAdd`).
    pub subgroup: bool,
    /// The driver runs packed 8-bit dot products natively (Vulkan's
    /// `integerDotProduct4x8BitPackedSignedAccelerated`): where the 8-bit matmul tiles pay.
    pub int8_dot: bool,
    /// Timestamp queries for per-kernel profiling.
    pub timestamp_query: bool,
    /// Prompt chunks run each expert's tokens as one matmul (slots grouped by expert) rather
    /// than a matvec per token and expert: what bandwidth-bound GPUs want; a CPU device,
    /// bound by arithmetic, is faster per slot.
    pub grouped_expert_prefill: bool,
    /// Prompt steps of any length multiply their projections as batched matvecs of 8 tokens
    /// (`matvec_batch`) and their routed experts grouped by expert, 8 slots at a time
    /// (`matvec_batch_experts`), as steps of up to 16 tokens do everywhere. A CPU device,
    /// where every x load costs a loop over the SIMD lanes and those kernels share each
    /// load among 8 rows, runs them faster than the tiles: a 2048 x 2048 q4_K projection
    /// 3.9 ms a token against the f32 tiles' 11.9 (`cargo bench --bench kernels -- "q4_K
    /// 2048 x 2048"`). GPUs take the tiled matmul and the expert tiles.
    pub batched_prompt_steps: bool,
    /// `Some(n)`: matvecs take the most rows per workgroup that still launch `n`
    /// workgroups (down to one row, all lanes along its length), so that a matrix of a few
    /// thousand rows fills a large GPU (`matvec::MIN_GRID` on GPUs). `None` on a CPU device,
    /// which pays per workgroup and keeps 16 rows each.
    pub matvec_min_grid: Option<u32>,
    /// Decode runs the fused plan (norms folded into the matvecs, projections of one input
    /// in one dispatch, MoE blocks as router + `moe_gate_up` + `moe_down`): what GPUs want,
    /// where each dispatch boundary drains the device. A CPU device keeps the staged plan:
    /// it pays for the folds' extra loads per weight and for the redundant top-k per
    /// workgroup, not for dispatches (decode of bench-qwen35moe on lavapipe 2.43 tok/s
    /// staged, 1.37 fused).
    pub fused_decode: bool,
    /// Prompt steps run the gated delta rule in 64-token chunks (`delta_chunk_wy` then
    /// `delta_chunk_state`: every chunk's factors in parallel, the state carried across 8
    /// chunks of a 512-token step rather than across 512 tokens, each a few barriers deep):
    /// what a GPU wants, where the sequential rule leaves a layer's prefill waiting on one
    /// dependent step per token. A CPU device keeps the sequential rule, whose state stays
    /// in registers: 32 heads of 128 x 128 over 512 tokens on lavapipe take 7.2 s
    /// sequential, 14.5 s chunked (`cargo bench --bench kernels -- delta`).
    pub chunked_delta_rule: bool,
    /// How prompt steps multiply their matmul tiles: on cooperative matrices (tensor
    /// cores) where the adapter has f16 ones ([`MatmulForm::for_adapter`]), else packed
    /// 8-bit dot products on a GPU whose driver runs them natively, else f32 FMAs over f16
    /// tiles on a GPU with f16 and 24 KiB of workgroup memory, else over f32 tiles
    /// ([`MatmulForm::choose`]; `QWEN_WGPU_MATMUL=f16`, `i8` or `f32` forces the tiles).
    pub matmul: MatmulForm,
    /// Weights are written straight into their mapped buffers rather than through staging:
    /// on a CPU device "VRAM" is host memory, and a staging copy would be a second one.
    pub mapped_upload: bool,
    /// Storage buffers can live in host memory (`MAPPABLE_PRIMARY_BUFFERS`): the routed
    /// experts beyond a VRAM budget (`runtime::experts`).
    pub host_storage: bool,
}

impl GpuFeatures {
    /// What a device with `features` enabled of an adapter of `device_type` uses: the GPU
    /// forms of the kernels everywhere but on a CPU device, unless [`FORMS_ENV`] says
    /// `gpu` or `cpu`.
    fn of(
        features: wgpu::Features,
        device_type: wgpu::DeviceType,
        limits: &wgpu::Limits,
        coop: Option<MatmulForm>,
        int8_dot: bool,
    ) -> GpuFeatures {
        let gpu = match std::env::var(FORMS_ENV).as_deref() {
            Ok("gpu") => true,
            Ok("cpu") => false,
            _ => device_type != wgpu::DeviceType::Cpu,
        };
        GpuFeatures {
            shader_f16: features.contains(wgpu::Features::SHADER_F16),
            subgroup: features.contains(wgpu::Features::SUBGROUP),
            int8_dot,
            timestamp_query: features.contains(wgpu::Features::TIMESTAMP_QUERY),
            grouped_expert_prefill: gpu,
            batched_prompt_steps: !gpu,
            matvec_min_grid: gpu.then_some(crate::runtime::ops::linear::matvec::MIN_GRID),
            fused_decode: gpu,
            chunked_delta_rule: gpu,
            matmul: MatmulForm::choose(coop, gpu, int8_dot, features, limits),
            mapped_upload: features.contains(wgpu::Features::MAPPABLE_PRIMARY_BUFFERS)
                && device_type == wgpu::DeviceType::Cpu,
            host_storage: features.contains(wgpu::Features::MAPPABLE_PRIMARY_BUFFERS),
        }
    }
}

/// An adapter as `list_adapters` reports it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct AdapterSummary {
    pub index: usize,
    pub name: String,
    pub backend: String,
    pub device_type: String,
    pub driver: String,
}

impl fmt::Display for AdapterSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "[{}] {} ({}, {}, {})",
            self.index, self.name, self.backend, self.device_type, self.driver
        )
    }
}

/// An open device and everything the runtime needs to know about it.
pub struct GpuContext {
    pub adapter: wgpu::Adapter,
    pub device: wgpu::Device,
    pub queue: wgpu::Queue,
    pub info: wgpu::AdapterInfo,
    pub features: GpuFeatures,
    pub limits: wgpu::Limits,
    /// GPU objects created through the runtime's helpers, so a test can show that the
    /// per-token path creates none.
    pub created: Creations,
    /// Bytes queued by [`GpuContext::write_buffer`] since the last submit.
    queued_writes: std::sync::atomic::AtomicU64,
    /// Direct recording of steps, on Vulkan (see `runtime::direct`).
    pub direct: Option<Direct>,
}

/// The most bytes of queued writes held in host memory at once while uploading.
const UPLOAD_WINDOW: u64 = 32 << 20;

/// Running counts of created buffers and bind groups.
#[derive(Debug, Default)]
pub struct Creations {
    buffers: std::sync::atomic::AtomicU64,
    bind_groups: std::sync::atomic::AtomicU64,
}

impl Creations {
    pub fn buffer(&self) {
        self.buffers
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    pub fn bind_group(&self) {
        self.bind_groups
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    /// (buffers, bind groups) created so far.
    pub fn snapshot(&self) -> (u64, u64) {
        use std::sync::atomic::Ordering::Relaxed;
        (self.buffers.load(Relaxed), self.bind_groups.load(Relaxed))
    }
}

/// Vulkan, Metal and DX12 (wgpu's `WGPU_BACKEND` narrows them further); the GL backend's
/// compute support is too thin for these kernels.
fn instance() -> wgpu::Instance {
    let mut desc = wgpu::InstanceDescriptor::new_without_display_handle_from_env();
    desc.backends &= wgpu::Backends::PRIMARY;
    wgpu::Instance::new(desc)
}

fn adapters(instance: &wgpu::Instance) -> Vec<wgpu::Adapter> {
    pollster::block_on(instance.enumerate_adapters(wgpu::Backends::PRIMARY))
}

fn summary(index: usize, info: &wgpu::AdapterInfo) -> AdapterSummary {
    AdapterSummary {
        index,
        name: info.name.clone(),
        backend: format!("{:?}", info.backend),
        device_type: format!("{:?}", info.device_type),
        driver: format!("{} {}", info.driver, info.driver_info)
            .trim()
            .to_string(),
    }
}

/// Every adapter wgpu can see on the primary backends (Vulkan, Metal, DX12).
pub fn list_adapters() -> Vec<AdapterSummary> {
    adapters(&instance())
        .iter()
        .enumerate()
        .map(|(i, a)| summary(i, &a.get_info()))
        .collect()
}

/// Lower is better.
fn preference(device_type: wgpu::DeviceType) -> u8 {
    match device_type {
        wgpu::DeviceType::DiscreteGpu => 0,
        wgpu::DeviceType::IntegratedGpu => 1,
        wgpu::DeviceType::VirtualGpu => 2,
        wgpu::DeviceType::Other => 3,
        wgpu::DeviceType::Cpu => 4,
    }
}

fn check_limits(l: &wgpu::Limits) -> Result<(), GpuError> {
    let checks: [(&'static str, u64, u64); 5] = [
        (
            "max_compute_invocations_per_workgroup",
            l.max_compute_invocations_per_workgroup.into(),
            MIN_WORKGROUP_SIZE.into(),
        ),
        (
            "max_compute_workgroup_size_x",
            l.max_compute_workgroup_size_x.into(),
            MIN_WORKGROUP_SIZE.into(),
        ),
        (
            "max_compute_workgroup_storage_size",
            l.max_compute_workgroup_storage_size.into(),
            MIN_WORKGROUP_STORAGE.into(),
        ),
        (
            "max_storage_buffers_per_shader_stage",
            l.max_storage_buffers_per_shader_stage.into(),
            MIN_STORAGE_BUFFERS.into(),
        ),
        (
            "max_storage_buffer_binding_size",
            l.max_storage_buffer_binding_size,
            MIN_STORAGE_BINDING,
        ),
    ];
    for (limit, have, need) in checks {
        if have < need {
            return Err(GpuError::LimitTooSmall { limit, have, need });
        }
    }
    Ok(())
}

impl GpuContext {
    /// Opens the chosen adapter with every optional feature we use that it has, and its own
    /// (maximum) limits.
    pub fn new(choice: &AdapterChoice) -> Result<GpuContext, GpuError> {
        let instance = instance();
        let mut found = adapters(&instance);
        let available: Vec<String> = found
            .iter()
            .enumerate()
            .map(|(i, a)| summary(i, &a.get_info()).to_string())
            .collect();
        if found.is_empty() {
            return Err(GpuError::NoAdapter);
        }
        let index = match choice {
            AdapterChoice::Auto => (0..found.len())
                .min_by_key(|&i| preference(found[i].get_info().device_type))
                .unwrap_or(0),
            AdapterChoice::Index(i) if *i < found.len() => *i,
            AdapterChoice::Name(name) => found
                .iter()
                .position(|a| {
                    a.get_info()
                        .name
                        .to_lowercase()
                        .contains(&name.to_lowercase())
                })
                .ok_or_else(|| GpuError::AdapterNotFound {
                    wanted: name.clone(),
                    available: available.join("; "),
                })?,
            AdapterChoice::Index(i) => {
                return Err(GpuError::AdapterNotFound {
                    wanted: format!("index {i}"),
                    available: available.join("; "),
                })
            }
        };
        let adapter = found.swap_remove(index);
        let info = adapter.get_info();
        let limits = adapter.limits();
        check_limits(&limits)?;
        let have = adapter.features();
        let mut wanted = wgpu::Features::SHADER_F16
            | wgpu::Features::SUBGROUP
            | wgpu::Features::TIMESTAMP_QUERY
            | wgpu::Features::TIMESTAMP_QUERY_INSIDE_ENCODERS;
        // Mappable storage buffers: weights written in place where device memory is host
        // memory (a CPU device), and routed experts kept in host memory under a VRAM budget
        // anywhere. Ordinary weights stay in device-local buffers on a GPU.
        wanted |= wgpu::Features::MAPPABLE_PRIMARY_BUFFERS;
        let forced_tiles = MatmulForm::forced_tiles();
        // Apple GPUs run simdgroups of 32, which wgpu's Metal backend reports as up to 64.
        let team_width = if info.backend == wgpu::Backend::Metal {
            32
        } else {
            info.subgroup_max_size
        };
        let coop = MatmulForm::for_adapter(
            have,
            &adapter.cooperative_matrix_properties(),
            team_width,
            &limits,
        )
        .filter(|_| !forced_tiles);
        if coop.is_some() {
            wanted |= wgpu::Features::EXPERIMENTAL_COOPERATIVE_MATRIX;
        }
        let required_features = have & wanted;
        // SAFETY: wgpu's experimental cooperative matrices are reached only through the
        // coop matmul kernels, whose WGSL naga validates when the pipeline is made; the
        // feature is requested only when the adapter lists f16 matrices it can run.
        let experimental_features = if coop.is_some() {
            unsafe { wgpu::ExperimentalFeatures::enabled() }
        } else {
            wgpu::ExperimentalFeatures::disabled()
        };
        let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
            label: Some("qwen-wgpu"),
            required_features,
            required_limits: limits.clone(),
            experimental_features,
            ..Default::default()
        }))
        .map_err(|e| GpuError::RequestDevice {
            adapter: info.name.clone(),
            reason: e.to_string(),
        })?;
        let int8_dot = crate::runtime::direct::packed_int8_dot_accelerated(&adapter);
        let features =
            GpuFeatures::of(required_features, info.device_type, &limits, coop, int8_dot);
        log::info!("GPU: {} features {features:?}", summary(index, &info));
        let direct = Direct::open(&device, &queue);
        if direct.is_some() {
            log::info!("steps are recorded directly into Vulkan command buffers");
        }
        Ok(GpuContext {
            adapter,
            device,
            queue,
            info,
            features,
            limits,
            created: Creations::default(),
            queued_writes: Default::default(),
            direct,
        })
    }

    /// A buffer created without contents (counted in [`Creations`]), zeroed now where steps
    /// are recorded directly. wgpu zero-fills lazily, at a buffer's first use through wgpu:
    /// a buffer that only direct steps touch never gets it, and a first use through wgpu
    /// after them would wipe what they wrote.
    pub fn empty_buffer(&self, desc: &wgpu::BufferDescriptor<'_>) -> wgpu::Buffer {
        self.created.buffer();
        let buffer = self.device.create_buffer(desc);
        if self.direct.is_some() {
            let mut enc = self.device.create_command_encoder(&Default::default());
            enc.clear_buffer(&buffer, 0, None);
            self.queue.submit([enc.finish()]);
        }
        buffer
    }

    /// Device memory the runtime may plan for, where it can be known: `QWEN_WGPU_MEMORY_GIB`
    /// when set; for a CPU device (lavapipe) the host's available memory. wgpu reports no
    /// VRAM size for discrete GPUs; there an allocation failure is caught instead.
    pub fn memory_budget(&self) -> Option<u64> {
        if let Some(gib) = std::env::var("QWEN_WGPU_MEMORY_GIB")
            .ok()
            .and_then(|v| v.trim().parse::<f64>().ok())
            .filter(|g| *g > 0.0)
        {
            return Some((gib * (1u64 << 30) as f64) as u64);
        }
        if self.info.device_type == wgpu::DeviceType::Cpu {
            return host_available_memory();
        }
        None
    }

    /// Blocks until the device has finished everything submitted.
    pub fn wait(&self) -> Result<(), GpuError> {
        self.wait_for(None)
    }

    /// Blocks until `submission` has run (every submission so far when `None`).
    pub fn wait_for(&self, submission: Option<wgpu::SubmissionIndex>) -> Result<(), GpuError> {
        self.device
            .poll(wgpu::PollType::Wait {
                submission_index: submission,
                timeout: None,
            })
            .map(|_| ())
            .map_err(|e| GpuError::Device(format!("waiting for the device: {e}")))
    }

    /// Writes `bytes` into `buffer` from byte `offset` (a multiple of 4), a short tail padded
    /// with zeros to a whole word. wgpu copies each queued write into a host staging buffer
    /// that lives until a submit retires it, and its allocator keeps that memory for reuse:
    /// writing a model's weights at once would leave a host copy of all of them behind. So
    /// the writes go in slices, with a submit and a wait whenever UPLOAD_WINDOW bytes are
    /// queued, and uploading leaves at most about one window of staging memory.
    pub fn write_buffer(
        &self,
        buffer: &wgpu::Buffer,
        offset: u64,
        bytes: &[u8],
    ) -> Result<(), GpuError> {
        self.write_buffer_windowed(buffer, offset, bytes, UPLOAD_WINDOW)
    }

    /// [`GpuContext::write_buffer`] with at most `window` bytes (at least 4) queued at once.
    pub fn write_buffer_windowed(
        &self,
        buffer: &wgpu::Buffer,
        offset: u64,
        bytes: &[u8],
        window: u64,
    ) -> Result<(), GpuError> {
        use std::sync::atomic::Ordering::Relaxed;
        let window = window.max(4);
        let whole = bytes.len() / 4 * 4;
        let mut done = 0;
        while done < bytes.len() {
            let room = window.saturating_sub(self.queued_writes.load(Relaxed));
            if room < 4 {
                self.finish_writes()?;
                continue;
            }
            let at = offset + done as u64;
            if done < whole {
                let n = (whole - done).min(room as usize / 4 * 4);
                self.queue.write_buffer(buffer, at, &bytes[done..done + n]);
                done += n;
                self.queued_writes.fetch_add(n as u64, Relaxed);
            } else {
                let mut tail = [0u8; 4];
                tail[..bytes.len() - whole].copy_from_slice(&bytes[whole..]);
                self.queue.write_buffer(buffer, at, &tail);
                done = bytes.len();
                self.queued_writes.fetch_add(4, Relaxed);
            }
        }
        Ok(())
    }

    /// Submits the queued writes and waits for them, releasing their staging memory.
    pub fn finish_writes(&self) -> Result<(), GpuError> {
        use std::sync::atomic::Ordering::Relaxed;
        if self.queued_writes.swap(0, Relaxed) > 0 {
            self.queue.submit([]);
            self.wait()?;
        }
        Ok(())
    }

    /// A one-line description for logs and reports.
    pub fn describe(&self) -> String {
        format!(
            "{} ({:?}, {:?}), f16 {}, subgroups {}, int8 dot {}, matmul {}, storage binding {} MiB",
            self.info.name,
            self.info.backend,
            self.info.device_type,
            self.features.shader_f16,
            self.features.subgroup,
            self.features.int8_dot,
            self.features.matmul.label(),
            self.limits.max_storage_buffer_binding_size >> 20
        )
    }
}

/// A `Key:   N kB` line of a /proc file (Linux), in bytes.
fn proc_kib(path: &str, key: &str) -> Option<u64> {
    let text = std::fs::read_to_string(path).ok()?;
    let line = text.lines().find(|l| {
        l.strip_prefix(key)
            .is_some_and(|rest| rest.starts_with(':'))
    })?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// `MemAvailable` of /proc/meminfo, in bytes (Linux).
pub fn host_available_memory() -> Option<u64> {
    proc_kib("/proc/meminfo", "MemAvailable")
}

/// This process's anonymous resident memory (`RssAnon`): host memory not backed by a file,
/// so a memory-mapped model does not count.
pub fn host_anonymous_memory() -> Option<u64> {
    proc_kib("/proc/self/status", "RssAnon")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adapter_choice_parses_indices_and_names() {
        assert_eq!(AdapterChoice::parse(""), AdapterChoice::Auto);
        assert_eq!(AdapterChoice::parse(" 2 "), AdapterChoice::Index(2));
        assert_eq!(
            AdapterChoice::parse("llvmpipe"),
            AdapterChoice::Name("llvmpipe".into())
        );
    }

    #[test]
    fn discrete_gpus_are_preferred_over_cpus() {
        assert!(preference(wgpu::DeviceType::DiscreteGpu) < preference(wgpu::DeviceType::Cpu));
        assert!(preference(wgpu::DeviceType::IntegratedGpu) < preference(wgpu::DeviceType::Cpu));
    }

    #[test]
    fn too_small_limits_are_named() {
        let l = wgpu::Limits {
            max_compute_workgroup_storage_size: 1024,
            ..Default::default()
        };
        let e = check_limits(&l).unwrap_err().to_string();
        assert!(
            e.contains("max_compute_workgroup_storage_size") && e.contains("1024"),
            "{e}"
        );
    }
}
