//! Direct recording on Vulkan: a step's dispatches recorded as raw driver commands, below
//! wgpu's validation and usage tracking, and replayed while the step stays the same.
//!
//! wgpu checks every dispatch, merges each bound buffer into a usage scope, derives barriers
//! from the buffers' tracked states and re-walks all of it at submit. At Qwen3.5-35B-A3B
//! depth that is most of a decode token's host time (264 dispatches, 1.4 ms on the 2-core
//! machine the project is built on), while a fast GPU runs the token in about 1 ms: the
//! pipelined loop can hide the recording only if it is well under that. The plan's
//! dispatches were all checked by wgpu when they were built (each [`Dispatch`] also holds
//! its wgpu pipeline and bind group), so here they are recorded as the driver calls they
//! stand for:
//!
//! - pipelines and descriptor sets built once, from the same WGSL translated with the same
//!   options as wgpu's Vulkan backend (`Kernel` pipelines are cached per device);
//! - a global memory barrier only where a dispatch touches a buffer that a dispatch since
//!   the last barrier wrote, or writes one it read (independent projections overlap);
//! - a barrier from everything before the step at its start and to everything after it at
//!   its end, so wgpu-recorded work on either side (uploads, expert moves, read-backs) needs
//!   no knowledge of what the step touched.
//!
//! A step is first written as a script of those commands, which costs no driver call. The
//! script is recorded once into a secondary command buffer, and each later step with the
//! same script executes that buffer from wgpu's command buffer ([`Replays`]): a decode token
//! changes only buffer contents (its position, the draw's parameters), so its commands are
//! recorded again only when the attention's grid grows, once every 64 positions.
//!
//! wgpu zero-fills a buffer lazily, on its first use through wgpu: a buffer only ever
//! touched here would never be, and a later first use through wgpu would wipe what the
//! steps wrote. Buffers created without contents are therefore cleared through wgpu as
//! they are created ([`GpuContext::empty_buffer`](crate::runtime::gpu::GpuContext::empty_buffer)).
//!
//! Other backends (Metal, DX12, GL) keep the wgpu pass; `QWEN_WGPU_RECORDING=wgpu` keeps it
//! on Vulkan too, to compare.
//!
//! [`Dispatch`]: crate::runtime::ops::Dispatch

use std::collections::HashMap;
use std::ffi::CString;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use ash::vk;
use naga::back::spv;
use wgpu::hal::api::Vulkan;

use crate::error::GpuError;
use crate::runtime::kernel::{Access, Declaration};
use crate::runtime::pipeline::{assemble, Kernel, Variant};

/// The environment variable choosing how steps are recorded (`wgpu` or `direct`).
pub const RECORDING_ENV: &str = "QWEN_WGPU_RECORDING";

/// The raw device, with the wgpu device and queue that own it (to learn when submitted work
/// is done before freeing).
struct Raw {
    wgpu: wgpu::Device,
    queue: wgpu::Queue,
    device: ash::Device,
    queue_family: u32,
    /// Descriptor sets of dropped bindings, until the work submitted before the drop is done.
    dropped: Mutex<Vec<Dropped>>,
}

/// A dropped binding's descriptor pool (and with it its set) and the buffers the set names.
/// wgpu defers destroying its own objects until their last submission is done; these are
/// invisible to it, and a driver that reads a descriptor set as it executes (lavapipe does)
/// would read freed memory, as would a step whose buffer wgpu freed, not knowing the step
/// used it. A prompt plan is dropped whenever the serving loop evicts one, while decode steps
/// are in flight: freeing waits for a flag rather than draining the GPU.
struct Dropped {
    pool: vk::DescriptorPool,
    _buffers: Vec<wgpu::Buffer>,
    done: WorkDone,
}

/// Set once the work submitted before it was made is done: what direct objects that
/// submitted steps may still use wait for before they are freed or reused. Attaching the
/// callback makes wgpu submit its pending buffer writes early; a step's opening barrier
/// orders them before it all the same.
struct WorkDone(Arc<AtomicBool>);

impl WorkDone {
    /// Set once everything submitted to `queue` so far is done.
    fn after_submitted(queue: &wgpu::Queue) -> WorkDone {
        let done = WorkDone(Arc::new(AtomicBool::new(false)));
        let flag = done.0.clone();
        queue.on_submitted_work_done(move || flag.store(true, Ordering::Release));
        done
    }

    /// Set already: for what no submission uses.
    fn already() -> WorkDone {
        WorkDone(Arc::new(AtomicBool::new(true)))
    }

    fn is_done(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }
}

impl Raw {
    /// Polls the device without blocking, where `waiting` holds flags none of which is set:
    /// their callbacks run only when the device is polled, and a step that only submits
    /// (prompt chunks) would otherwise leave them all waiting.
    fn poll_for<'a>(&self, waiting: impl Iterator<Item = &'a WorkDone>) {
        let mut waiting = waiting.peekable();
        if waiting.peek().is_some() && !waiting.any(WorkDone::is_done) {
            if let Err(e) = self.wgpu.poll(wgpu::PollType::Poll) {
                log::warn!("direct recording: polling the device: {e}");
            }
        }
    }

    /// Frees the dropped bindings whose submissions are done; returns how many wait still.
    fn free_dropped(&self) -> usize {
        let Ok(mut dropped) = self.dropped.lock() else {
            return 0;
        };
        self.poll_for(dropped.iter().map(|d| &d.done));
        dropped.retain(|d| {
            let done = d.done.is_done();
            if done {
                // SAFETY: a pool of this device whose set no submitted or later step uses
                // (scripts name bindings by serial, never reused); destroying it frees the set.
                unsafe { self.device.destroy_descriptor_pool(d.pool, None) };
            }
            !done
        });
        dropped.len()
    }

    /// The raw device once it has finished everything submitted, for destroying objects
    /// that submitted steps may use (see [`Dropped`]). Pipelines and replay pools are
    /// dropped with their session or device, mostly when idle, so waiting there costs next
    /// to nothing.
    fn idle(&self) -> &ash::Device {
        let idle = self.wgpu.poll(wgpu::PollType::Wait {
            submission_index: None,
            timeout: None,
        });
        if let Err(e) = idle {
            // A lost device runs nothing more, so destroying is safe; say why we waited in
            // vain.
            log::warn!("direct recording: waiting for the device before freeing: {e}");
        }
        &self.device
    }
}

/// Direct recording for one Vulkan device: the raw device, how WGSL becomes SPIR-V on it,
/// and the pipelines built so far.
pub struct Direct {
    raw: Arc<Raw>,
    spv: spv::Options<'static>,
    /// Pipelines may run at any subgroup size, as wgpu's do where the device has subgroups.
    varying_subgroups: bool,
    /// Pipelines built so far, and why any could not be (kept, so it is tried once).
    pipelines: Mutex<HashMap<(Kernel, Variant), Built>>,
    /// Kernels treated as refused by the driver ([`Direct::refuse`]).
    refused: Mutex<Vec<&'static str>>,
    /// A step has fallen back to wgpu's pass (said once).
    fell_back: AtomicBool,
}

impl Direct {
    /// Direct recording on `device`, if it is a Vulkan device and `QWEN_WGPU_RECORDING`
    /// does not ask for the wgpu pass.
    pub fn open(device: &wgpu::Device, queue: &wgpu::Queue) -> Option<Direct> {
        match std::env::var(RECORDING_ENV).as_deref() {
            Ok("wgpu") => return None,
            Ok("direct") | Err(_) => {}
            Ok(other) => log::warn!(
                "{RECORDING_ENV}={other:?} is neither `wgpu` nor `direct`; recording directly"
            ),
        }
        // SAFETY: the raw device records into command buffers and creates and destroys
        // this runtime's own objects; the instance is only queried.
        let hal = unsafe { device.as_hal::<Vulkan>() }?;
        let instance = hal.shared_instance();
        let phd = hal.raw_physical_device();
        let api = api_version(instance, phd);
        let mut v13 = vk::PhysicalDeviceVulkan13Features::default();
        if api >= vk::API_VERSION_1_3 {
            let mut features = vk::PhysicalDeviceFeatures2::default().push_next(&mut v13);
            // SAFETY: as above; the chain is one valid struct.
            unsafe {
                instance
                    .raw_instance()
                    .get_physical_device_features2(phd, &mut features)
            };
        }
        Some(Direct {
            raw: Arc::new(Raw {
                wgpu: device.clone(),
                queue: queue.clone(),
                dropped: Mutex::default(),
                device: hal.raw_device().clone(),
                queue_family: hal.queue_family_index(),
            }),
            spv: spirv_options(
                api,
                v13.shader_zero_initialize_workgroup_memory == vk::TRUE,
                spirv_capabilities(
                    device.features(),
                    v13.shader_integer_dot_product == vk::TRUE,
                ),
            ),
            varying_subgroups: device.features().contains(wgpu::Features::SUBGROUP),
            pipelines: Mutex::default(),
            refused: Mutex::default(),
            fell_back: AtomicBool::new(false),
        })
    }

    /// Frees the descriptor sets of dropped bindings whose submitted work is done, and
    /// says how many wait still.
    pub fn bindings_awaiting_free(&self) -> usize {
        self.raw.free_dropped()
    }

    /// The pipeline of `kernel` in `variant`, built on first use. One the driver refuses
    /// (or that fails to translate) is reported once and refused from then on: its
    /// dispatches get no direct binding, so the steps holding them go through wgpu's pass,
    /// which built the same kernel already.
    fn pipeline(
        &self,
        kernel: Kernel,
        variant: Variant,
        decl: &Declaration,
    ) -> Result<Arc<DirectPipeline>, GpuError> {
        let mut map = self
            .pipelines
            .lock()
            .map_err(|_| GpuError::Pipeline("direct pipeline cache poisoned".into()))?;
        let built = map.entry((kernel, variant)).or_insert_with(|| {
            let refused = self.refused.lock().is_ok_and(|r| r.contains(&decl.entry));
            let built = if refused {
                Err(GpuError::Pipeline(format!(
                    "{}: refused (Direct::refuse)",
                    decl.entry
                )))
            } else {
                DirectPipeline::new(self, decl, variant)
            };
            built.map(Arc::new).map_err(|e| {
                log::warn!(
                    "direct recording: {e}; the steps that run {} are recorded through wgpu's pass",
                    decl.entry
                );
                e.to_string()
            })
        });
        built.clone().map_err(GpuError::Pipeline)
    }

    /// Treats the pipelines of the kernel with entry point `entry` as ones the driver
    /// refused, for what is built after the call: its steps go through wgpu's pass. For
    /// tests of that fallback, which no conformant driver here provokes.
    pub fn refuse(&self, entry: &'static str) {
        if let Ok(mut refused) = self.refused.lock() {
            refused.push(entry);
        }
    }

    /// Says (once) that a step is recorded through wgpu's pass because it could not be
    /// recorded directly.
    pub fn fall_back(&self, why: &GpuError) {
        if !self.fell_back.swap(true, Ordering::Relaxed) {
            log::warn!("{why}; such steps are recorded through wgpu's pass");
        } else {
            log::debug!("{why}; recorded through wgpu's pass");
        }
    }

    /// The descriptor set binding `buffers` (binding 0 the params, then the kernel's
    /// bindings in order) to `kernel`'s pipeline.
    pub fn bind(
        &self,
        kernel: Kernel,
        variant: Variant,
        decl: &Declaration,
        buffers: &[&wgpu::Buffer],
    ) -> Result<DirectBinding, GpuError> {
        let pipeline = self.pipeline(kernel, variant, decl)?;
        // One buffer's hal guard at a time: wgpu-core forbids holding two (each takes the
        // device's snatch lock), so the handles are read out first.
        let handles = buffers
            .iter()
            .map(|b| self.handle(b))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| GpuError::Device(format!("{}: {e}", decl.entry)))?;
        let mut binding = DirectBinding {
            raw: self.raw.clone(),
            serial: NEXT_SERIAL.fetch_add(1, Ordering::Relaxed),
            pipeline,
            pool: vk::DescriptorPool::null(),
            set: vk::DescriptorSet::null(),
            reads: Vec::new(),
            writes: Vec::new(),
            _buffers: buffers.iter().map(|&b| b.clone()).collect(),
        };
        let fail = |what: &str, e: vk::Result| {
            GpuError::Device(format!("{}: descriptor {what}: {e}", decl.entry))
        };
        let d = &self.raw.device;
        let sizes = [vk::DescriptorPoolSize {
            ty: vk::DescriptorType::STORAGE_BUFFER,
            descriptor_count: handles.len() as u32,
        }];
        // SAFETY (this block): objects of this device; the pool is destroyed (with its set)
        // when the binding drops, after the device is idle. The set's buffers are kept
        // alive by the binding.
        unsafe {
            binding.pool = d
                .create_descriptor_pool(
                    &vk::DescriptorPoolCreateInfo::default()
                        .max_sets(1)
                        .pool_sizes(&sizes),
                    None,
                )
                .map_err(|e| fail("pool", e))?;
            let layouts = [binding.pipeline.set_layout];
            binding.set = d
                .allocate_descriptor_sets(
                    &vk::DescriptorSetAllocateInfo::default()
                        .descriptor_pool(binding.pool)
                        .set_layouts(&layouts),
                )
                .map_err(|e| fail("set", e))?[0];
            let infos: Vec<[vk::DescriptorBufferInfo; 1]> = handles
                .iter()
                .map(|&buffer| {
                    [vk::DescriptorBufferInfo {
                        buffer,
                        offset: 0,
                        range: vk::WHOLE_SIZE,
                    }]
                })
                .collect();
            let writes: Vec<vk::WriteDescriptorSet> = infos
                .iter()
                .enumerate()
                .map(|(i, info)| {
                    vk::WriteDescriptorSet::default()
                        .dst_set(binding.set)
                        .dst_binding(i as u32)
                        .descriptor_type(vk::DescriptorType::STORAGE_BUFFER)
                        .buffer_info(info)
                })
                .collect();
            d.update_descriptor_sets(&writes, &[]);
        }
        // Binding 0, the params, is only ever written between steps (covered by the step's
        // opening barrier), so it takes no part in the hazards within a step.
        for (&raw, binding_decl) in handles.iter().skip(1).zip(decl.bindings) {
            match binding_decl.access {
                Access::Read => binding.reads.push(raw),
                Access::ReadWrite => binding.writes.push(raw),
            }
        }
        Ok(binding)
    }

    /// Writes the step that `record` describes into `encoder`'s command buffer, between the
    /// step's opening and closing barriers: as the secondary command buffer `replays` holds
    /// for the same commands, recorded first if it holds none. Returns how many barriers the
    /// step has between its ends. Fails when a dispatch had no direct binding (nothing is
    /// written then: the caller drops the encoder).
    pub fn record(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        replays: &Replays,
        record: impl FnOnce(&mut DirectRecorder<'_>),
    ) -> Result<u32, GpuError> {
        self.raw.free_dropped();
        let mut rec = DirectRecorder {
            direct: self,
            script: vec![Command::Barrier(Barrier::Open)],
            keep: Vec::new(),
            hazards: Hazards::default(),
            error: None,
        };
        record(&mut rec);
        rec.script.push(Command::Barrier(Barrier::Close));
        if let Some(e) = rec.error {
            return Err(e);
        }
        let barriers = rec
            .script
            .iter()
            .filter(|c| **c == Command::Barrier(Barrier::Between))
            .count() as u32;
        let commands = replays.step(self, rec.script, rec.keep)?;
        // SAFETY: wgpu opened the command buffer for this encoder; the secondary's commands
        // keep to objects of this device that outlive the submission (the plan holds them,
        // the replays hold the secondary), and its barriers at both ends order the step
        // against all work wgpu records before and after it.
        unsafe {
            encoder.as_hal_mut::<Vulkan, _, _>(|hal_enc| {
                let hal_enc = hal_enc.ok_or_else(|| {
                    GpuError::Device("the command encoder is not a Vulkan one".into())
                })?;
                self.raw
                    .device
                    .cmd_execute_commands(hal_enc.raw_handle(), &[commands]);
                Ok(barriers)
            })
        }
    }

    /// The raw handle of `buffer`.
    fn handle(&self, buffer: &wgpu::Buffer) -> Result<vk::Buffer, GpuError> {
        // SAFETY: only the handle is read; the caller keeps the buffer alive.
        unsafe { buffer.as_hal::<Vulkan>() }
            .map(|b| unsafe { b.raw_handle() })
            .ok_or_else(|| GpuError::Device("a buffer is not a Vulkan buffer".into()))
    }
}

/// The SPIR-V of `decl` in `variant` under `options`.
fn spirv(
    decl: &Declaration,
    variant: Variant,
    options: &spv::Options<'_>,
) -> Result<Vec<u32>, GpuError> {
    let fail = |what: &str, e: &dyn std::fmt::Display| {
        GpuError::Pipeline(format!("{} (direct): {what}: {e}", decl.entry))
    };
    let source = assemble(decl, variant)?;
    let module = naga::front::wgsl::parse_str(&source).map_err(|e| fail("WGSL", &e))?;
    // wgpu validated the same source when it built the kernel's own pipeline; the adapter's
    // features gate which kernels exist, not this second validation.
    let info = naga::valid::Validator::new(
        naga::valid::ValidationFlags::all(),
        naga::valid::Capabilities::all(),
    )
    .validate(&module)
    .map_err(|e| fail("validation", &e))?;
    let stage = Some((naga::ShaderStage::Compute, decl.entry));
    let (module, info) = naga::back::pipeline_constants::process_overrides(
        &module,
        &info,
        stage,
        &Default::default(),
    )
    .map_err(|e| fail("constants", &e))?;
    spv::write_vec(
        &module,
        &info,
        options,
        Some(&spv::PipelineOptions {
            shader_stage: naga::ShaderStage::Compute,
            entry_point: decl.entry.to_string(),
        }),
    )
    .map_err(|e| fail("SPIR-V", &e))
}

/// A kernel's direct pipeline, or why it could not be built.
type Built = Result<Arc<DirectPipeline>, String>;

/// The SPIR-V capabilities wgpu's Vulkan backend lists for a device with `features` (of
/// those this runtime requests) and, where `integer_dot`, `shaderIntegerDotProduct`: naga
/// writes packed 8-bit dot products natively where their capability is listed and as a
/// polyfill otherwise, so the direct pipelines must list what wgpu's list.
pub fn spirv_capabilities(
    features: wgpu::Features,
    integer_dot: bool,
) -> naga::FastHashSet<spv::Capability> {
    use spv::Capability as C;
    // What every Vulkan device has.
    let mut caps = vec![
        C::Shader,
        C::Matrix,
        C::Sampled1D,
        C::Image1D,
        C::ImageQuery,
        C::DerivativeControl,
        C::StorageImageExtendedFormats,
    ];
    if features.contains(wgpu::Features::SUBGROUP) {
        caps.extend([
            C::GroupNonUniform,
            C::GroupNonUniformVote,
            C::GroupNonUniformArithmetic,
            C::GroupNonUniformBallot,
            C::GroupNonUniformShuffle,
            C::GroupNonUniformShuffleRelative,
            C::GroupNonUniformQuad,
        ]);
    }
    if features.contains(wgpu::Features::SHADER_F16) {
        caps.push(C::Float16);
    }
    if features.contains(wgpu::Features::EXPERIMENTAL_COOPERATIVE_MATRIX) {
        caps.extend([C::CooperativeMatrixKHR, C::VulkanMemoryModel]);
    }
    if integer_dot {
        caps.extend([
            C::DotProductInputAll,
            C::DotProductInput4x8Bit,
            C::DotProductInput4x8BitPacked,
            C::DotProduct,
        ]);
    }
    caps.into_iter().collect()
}

/// The Vulkan version `phd` of `instance` can be used at: the lower of the device's and the
/// instance's.
fn api_version(instance: &wgpu::hal::vulkan::InstanceShared, phd: vk::PhysicalDevice) -> u32 {
    // SAFETY: a physical device of this instance, only queried.
    unsafe { instance.raw_instance().get_physical_device_properties(phd) }
        .api_version
        .min(instance.instance_api_version())
}

/// Whether `adapter` runs packed 8-bit dot products natively: Vulkan 1.3's
/// `integerDotProduct4x8BitPackedSignedAccelerated`, which llama.cpp's Vulkan backend also
/// reads to pick its integer-dot matmul. False on other backends.
pub fn packed_int8_dot_accelerated(adapter: &wgpu::Adapter) -> bool {
    // SAFETY: the physical device is only queried.
    let Some(hal) = (unsafe { adapter.as_hal::<Vulkan>() }) else {
        return false;
    };
    let instance = hal.shared_instance();
    let phd = hal.raw_physical_device();
    if api_version(instance, phd) < vk::API_VERSION_1_3 {
        return false;
    }
    let mut v13 = vk::PhysicalDeviceVulkan13Properties::default();
    let mut properties = vk::PhysicalDeviceProperties2::default().push_next(&mut v13);
    // SAFETY: as above; the chain is one valid struct of a 1.3 device.
    unsafe {
        instance
            .raw_instance()
            .get_physical_device_properties2(phd, &mut properties)
    };
    v13.integer_dot_product4x8_bit_packed_signed_accelerated == vk::TRUE
}

/// The SPIR-V options of wgpu's Vulkan backend for a device of `api` version with
/// `capabilities` ([`spirv_capabilities`]), with the runtime checks off as for the kernels'
/// wgpu pipelines (`ShaderRuntimeChecks::unchecked`, see `PipelineCache::get`).
fn spirv_options(
    api: u32,
    native_zero_init: bool,
    capabilities: naga::FastHashSet<spv::Capability>,
) -> spv::Options<'static> {
    let unchecked = naga::proc::BoundsCheckPolicy::Unchecked;
    spv::Options {
        lang_version: match api {
            v if v >= vk::API_VERSION_1_3 => (1, 6),
            v if v >= vk::API_VERSION_1_2 => (1, 5),
            v if v >= vk::API_VERSION_1_1 => (1, 3),
            _ => (1, 0),
        },
        flags: spv::WriterFlags::empty(),
        fake_missing_bindings: true,
        capabilities: Some(capabilities),
        bounds_check_policies: naga::proc::BoundsCheckPolicies {
            index: unchecked,
            buffer: unchecked,
            image_load: unchecked,
            binding_array: unchecked,
        },
        // Zeroed workgroup memory, as wgpu gives every pipeline (a kernel's shared counters
        // start at zero): natively where the device has it, which wgpu then enables.
        zero_initialize_workgroup_memory: if native_zero_init {
            spv::ZeroInitializeWorkgroupMemoryMode::Native
        } else {
            spv::ZeroInitializeWorkgroupMemoryMode::Polyfill
        },
        force_loop_bounding: false,
        ray_query_initialization_tracking: false,
        trace_ray_argument_validation: false,
        use_storage_input_output_16: false,
        emit_int_div_checks: false,
        ..Default::default()
    }
}

/// Never reused, so a script naming a binding names that binding and no later one.
static NEXT_SERIAL: AtomicU64 = AtomicU64::new(0);

/// What a step's dispatches and copies do, for the barriers.
const STEP_STAGES: vk::PipelineStageFlags = vk::PipelineStageFlags::from_raw(
    vk::PipelineStageFlags::COMPUTE_SHADER.as_raw() | vk::PipelineStageFlags::TRANSFER.as_raw(),
);
const STEP_ACCESS: vk::AccessFlags = vk::AccessFlags::from_raw(
    vk::AccessFlags::SHADER_READ.as_raw()
        | vk::AccessFlags::SHADER_WRITE.as_raw()
        | vk::AccessFlags::TRANSFER_READ.as_raw()
        | vk::AccessFlags::TRANSFER_WRITE.as_raw(),
);

/// One kernel's Vulkan pipeline, its layouts and its shader module (null until made:
/// destroying a null handle does nothing, so a half-built pipeline drops cleanly).
struct DirectPipeline {
    raw: Arc<Raw>,
    set_layout: vk::DescriptorSetLayout,
    layout: vk::PipelineLayout,
    module: vk::ShaderModule,
    pipeline: vk::Pipeline,
}

impl DirectPipeline {
    fn new(direct: &Direct, decl: &Declaration, variant: Variant) -> Result<Self, GpuError> {
        let fail = |what: &str, e: &dyn std::fmt::Display| {
            GpuError::Pipeline(format!("{} (direct): {what}: {e}", decl.entry))
        };
        let words = spirv(decl, variant, &direct.spv)?;
        let entry = CString::new(decl.entry).map_err(|e| fail("entry point", &e))?;
        let mut out = DirectPipeline {
            raw: direct.raw.clone(),
            set_layout: vk::DescriptorSetLayout::null(),
            layout: vk::PipelineLayout::null(),
            module: vk::ShaderModule::null(),
            pipeline: vk::Pipeline::null(),
        };
        // Binding 0 the params, then the declared bindings, all storage buffers.
        let bindings: Vec<vk::DescriptorSetLayoutBinding> = (0..=decl.bindings.len() as u32)
            .map(|i| {
                vk::DescriptorSetLayoutBinding::default()
                    .binding(i)
                    .descriptor_type(vk::DescriptorType::STORAGE_BUFFER)
                    .descriptor_count(1)
                    .stage_flags(vk::ShaderStageFlags::COMPUTE)
            })
            .collect();
        let d = &direct.raw.device;
        let vk_fail = |what: &str, e: vk::Result| fail(what, &e);
        // SAFETY (this block): objects of this device, destroyed in Drop.
        unsafe {
            out.set_layout = d
                .create_descriptor_set_layout(
                    &vk::DescriptorSetLayoutCreateInfo::default().bindings(&bindings),
                    None,
                )
                .map_err(|e| vk_fail("set layout", e))?;
            let set_layouts = [out.set_layout];
            out.layout = d
                .create_pipeline_layout(
                    &vk::PipelineLayoutCreateInfo::default().set_layouts(&set_layouts),
                    None,
                )
                .map_err(|e| vk_fail("pipeline layout", e))?;
            out.module = d
                .create_shader_module(&vk::ShaderModuleCreateInfo::default().code(&words), None)
                .map_err(|e| vk_fail("shader module", e))?;
            let flags = if direct.varying_subgroups {
                vk::PipelineShaderStageCreateFlags::ALLOW_VARYING_SUBGROUP_SIZE
            } else {
                vk::PipelineShaderStageCreateFlags::empty()
            };
            let info = vk::ComputePipelineCreateInfo::default()
                .stage(
                    vk::PipelineShaderStageCreateInfo::default()
                        .flags(flags)
                        .stage(vk::ShaderStageFlags::COMPUTE)
                        .module(out.module)
                        .name(&entry),
                )
                .layout(out.layout);
            out.pipeline = d
                .create_compute_pipelines(vk::PipelineCache::null(), &[info], None)
                .map_err(|(_, e)| vk_fail("pipeline", e))?[0];
        }
        Ok(out)
    }
}

impl Drop for DirectPipeline {
    fn drop(&mut self) {
        let d = self.raw.idle();
        // SAFETY: created on this device (or null), and the device has finished every
        // submission.
        unsafe {
            d.destroy_pipeline(self.pipeline, None);
            d.destroy_shader_module(self.module, None);
            d.destroy_pipeline_layout(self.layout, None);
            d.destroy_descriptor_set_layout(self.set_layout, None);
        }
    }
}

/// A dispatch's descriptor set, its pipeline, and which buffers it reads and writes.
pub struct DirectBinding {
    raw: Arc<Raw>,
    /// Names this binding in scripts.
    serial: u64,
    pipeline: Arc<DirectPipeline>,
    pool: vk::DescriptorPool,
    set: vk::DescriptorSet,
    reads: Vec<vk::Buffer>,
    writes: Vec<vk::Buffer>,
    /// The bound buffers, alive while the descriptor set points at them.
    _buffers: Vec<wgpu::Buffer>,
}

impl Drop for DirectBinding {
    fn drop(&mut self) {
        // Every step that used the set was submitted before now: free it once the work
        // submitted so far is done (Raw::free_dropped, or Raw's drop).
        let dropped = Dropped {
            pool: self.pool,
            _buffers: std::mem::take(&mut self._buffers),
            done: WorkDone::after_submitted(&self.raw.queue),
        };
        match self.raw.dropped.lock() {
            Ok(mut list) => list.push(dropped),
            Err(_) => {
                let d = self.raw.idle();
                // SAFETY: the device has finished every submission.
                unsafe { d.destroy_descriptor_pool(dropped.pool, None) };
            }
        }
    }
}

impl Drop for Raw {
    fn drop(&mut self) {
        let dropped = std::mem::take(self.dropped.get_mut().unwrap_or_else(|e| e.into_inner()));
        if dropped.is_empty() {
            return;
        }
        let d = self.idle();
        for binding in dropped {
            // SAFETY: the device has finished every submission.
            unsafe { d.destroy_descriptor_pool(binding.pool, None) };
        }
    }
}

/// Which barrier of a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Barrier {
    /// From all earlier work to the step.
    Open,
    /// Within the step, between dependent commands.
    Between,
    /// From the step to all later work.
    Close,
}

/// One command of a step's script.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Command {
    Barrier(Barrier),
    Dispatch {
        /// The binding's serial: equal scripts name the same live bindings.
        binding: u64,
        pipeline: vk::Pipeline,
        layout: vk::PipelineLayout,
        set: vk::DescriptorSet,
        grid: [u32; 3],
    },
    Copy {
        src: vk::Buffer,
        dst: vk::Buffer,
        dst_offset: u64,
        size: u64,
    },
}

/// Writes a step's script: see [`Direct::record`].
pub struct DirectRecorder<'a> {
    direct: &'a Direct,
    script: Vec<Command>,
    /// The copies' buffers: a replay keeps them alive, so that their handles, which the
    /// script names, are not reused while it is kept.
    keep: Vec<wgpu::Buffer>,
    hazards: Hazards<vk::Buffer>,
    /// Why the step cannot be recorded directly (the first reason).
    error: Option<GpuError>,
}

impl DirectRecorder<'_> {
    /// A barrier first if the command reading `reads` and writing `writes` depends on one
    /// since the last barrier.
    fn order(&mut self, reads: &[vk::Buffer], writes: &[vk::Buffer]) {
        if self.hazards.conflicts(reads, writes) {
            self.barrier();
        }
        self.hazards.admit(reads, writes);
    }

    fn barrier(&mut self) {
        self.script.push(Command::Barrier(Barrier::Between));
        self.hazards.clear();
    }

    fn missing(&mut self, entry: &str) {
        self.error.get_or_insert_with(|| {
            GpuError::Pipeline(format!(
                "{entry}: no direct binding, so the step cannot be recorded directly"
            ))
        });
    }

    /// Records dispatches that need no order among themselves (see `Record::record_together`):
    /// one barrier first if any of them depends on a command since the last barrier, none
    /// between them.
    pub fn dispatch_together(&mut self, each: &[(Option<&DirectBinding>, [u32; 3], &'static str)]) {
        let mut bound = Vec::with_capacity(each.len());
        for &(binding, grid, entry) in each {
            match binding {
                Some(b) => bound.push((b, grid)),
                None => return self.missing(entry),
            }
        }
        if bound
            .iter()
            .any(|(b, _)| self.hazards.conflicts(&b.reads, &b.writes))
        {
            self.barrier();
        }
        for (b, grid) in bound {
            self.hazards.admit(&b.reads, &b.writes);
            self.push_dispatch(b, grid);
        }
    }

    /// Records a dispatch bound by `binding` over `grid`; `entry` names it if it has none.
    pub fn dispatch(
        &mut self,
        binding: Option<&DirectBinding>,
        grid: [u32; 3],
        entry: &'static str,
    ) {
        let Some(b) = binding else {
            return self.missing(entry);
        };
        self.order(&b.reads, &b.writes);
        self.push_dispatch(b, grid);
    }

    /// The dispatch itself, ordered already.
    fn push_dispatch(&mut self, b: &DirectBinding, grid: [u32; 3]) {
        self.script.push(Command::Dispatch {
            binding: b.serial,
            pipeline: b.pipeline.pipeline,
            layout: b.pipeline.layout,
            set: b.set,
            grid,
        });
    }

    /// Copies `bytes` from each `src` at 0 to its `dst` at `dst_offset`; the copies must
    /// need no order among themselves (disjoint destinations, none read by another), like a
    /// batched step's feeds: one barrier first if any depends on a command since the last.
    pub fn copies_together(&mut self, copies: &[(&wgpu::Buffer, &wgpu::Buffer, u64)], bytes: u64) {
        let mut raw = Vec::with_capacity(copies.len());
        for &(src, dst, dst_offset) in copies {
            match (self.direct.handle(src), self.direct.handle(dst)) {
                (Ok(s), Ok(d)) => raw.push((s, d, dst_offset)),
                (Err(e), _) | (_, Err(e)) => {
                    self.error.get_or_insert(e);
                    return;
                }
            }
            self.keep.extend([src.clone(), dst.clone()]);
        }
        if raw
            .iter()
            .any(|&(src, dst, _)| self.hazards.conflicts(&[src], &[dst]))
        {
            self.barrier();
        }
        for (src, dst, dst_offset) in raw {
            self.hazards.admit(&[src], &[dst]);
            self.script.push(Command::Copy {
                src,
                dst,
                dst_offset,
                size: bytes,
            });
        }
    }
}

/// Steps recorded once into secondary command buffers, each executed again while a step's
/// script is the same: the last few, most recently used first. Each owner of steps (a
/// session, a batch) keeps its own and submits each step it records before it records the
/// next: a step that leaves the cache was last used by a submitted one (see
/// [`Replays::step`]), so a `Replays` must never serve two recorders at once.
pub struct Replays {
    kept: usize,
    inner: Mutex<Option<ReplayPool>>,
}

/// A step recorded into a secondary command buffer.
struct Replay {
    script: Vec<Command>,
    commands: vk::CommandBuffer,
    _keep: Vec<wgpu::Buffer>,
}

/// A step that left the cache, until the submissions that may run it are done.
struct Retired {
    commands: vk::CommandBuffer,
    /// The copies' buffers, alive until then: wgpu does not know the step used them.
    _keep: Vec<wgpu::Buffer>,
    done: WorkDone,
}

impl Retired {
    fn done(&self) -> bool {
        self.done.is_done()
    }
}

/// Retired buffers kept, done, for reuse; more are freed.
const RETIRED_KEPT: usize = 4;

struct ReplayPool {
    raw: Arc<Raw>,
    pool: vk::CommandPool,
    steps: Vec<Replay>,
    /// Steps no longer kept, their buffers free for recording again once the work submitted
    /// before they left is done.
    retired: Vec<Retired>,
    recorded: u64,
    replayed: u64,
}

impl Replays {
    /// Keeps the last `kept` steps (at least one).
    pub fn new(kept: usize) -> Replays {
        Replays {
            kept: kept.max(1),
            inner: Mutex::new(None),
        }
    }

    /// Steps recorded and steps replayed so far.
    pub fn counts(&self) -> (u64, u64) {
        self.inner
            .lock()
            .ok()
            .and_then(|p| p.as_ref().map(|p| (p.recorded, p.replayed)))
            .unwrap_or((0, 0))
    }

    /// The secondary command buffer holding `script`, recorded now if none does.
    fn step(
        &self,
        direct: &Direct,
        script: Vec<Command>,
        keep: Vec<wgpu::Buffer>,
    ) -> Result<vk::CommandBuffer, GpuError> {
        let mut inner = self
            .inner
            .lock()
            .map_err(|_| GpuError::Device("step replays poisoned".into()))?;
        let pool = match &mut *inner {
            Some(pool) => pool,
            None => inner.insert(ReplayPool::new(&direct.raw)?),
        };
        if let Some(i) = pool.steps.iter().position(|s| s.script == script) {
            pool.steps[..=i].rotate_right(1);
            pool.replayed += 1;
            return Ok(pool.steps[0].commands);
        }
        let commands = pool.record(&script)?;
        pool.recorded += 1;
        pool.steps.insert(
            0,
            Replay {
                script,
                commands,
                _keep: keep,
            },
        );
        if pool.steps.len() > self.kept {
            if let Some(old) = pool.steps.pop() {
                // Submitted steps may still run it: free for reuse once all work submitted
                // so far is done (every step that used it was submitted before this one
                // was recorded).
                pool.retired.push(Retired {
                    commands: old.commands,
                    _keep: old._keep,
                    done: WorkDone::after_submitted(&direct.raw.queue),
                });
            }
        }
        Ok(commands)
    }
}

impl ReplayPool {
    fn new(raw: &Arc<Raw>) -> Result<ReplayPool, GpuError> {
        // SAFETY: a pool of this device, destroyed in Drop; only its owner's lock uses it.
        let pool = unsafe {
            raw.device.create_command_pool(
                &vk::CommandPoolCreateInfo::default()
                    .flags(vk::CommandPoolCreateFlags::RESET_COMMAND_BUFFER)
                    .queue_family_index(raw.queue_family),
                None,
            )
        }
        .map_err(|e| GpuError::Device(format!("step replays: command pool: {e}")))?;
        Ok(ReplayPool {
            raw: raw.clone(),
            pool,
            steps: Vec::new(),
            retired: Vec::new(),
            recorded: 0,
            replayed: 0,
        })
    }

    /// A secondary command buffer holding `script`: a retired one whose submissions are
    /// done, or a new one.
    fn record(&mut self, script: &[Command]) -> Result<vk::CommandBuffer, GpuError> {
        let fail =
            |what: &str, e: vk::Result| GpuError::Device(format!("step replay: {what}: {e}"));
        self.raw.poll_for(self.retired.iter().map(|r| &r.done));
        self.free_retired_beyond(RETIRED_KEPT);
        let cmd = match self.retired.iter().position(Retired::done) {
            Some(i) => self.retired.swap_remove(i).commands,
            // SAFETY: a buffer of this pool, which only its owner's lock uses.
            None => unsafe {
                self.raw.device.allocate_command_buffers(
                    &vk::CommandBufferAllocateInfo::default()
                        .command_pool(self.pool)
                        .level(vk::CommandBufferLevel::SECONDARY)
                        .command_buffer_count(1),
                )
            }
            .map_err(|e| fail("allocate", e))?[0],
        };
        // SAFETY: the buffer is this pool's and pending nowhere (a retired one only once its
        // submissions are done).
        let written = unsafe { self.write(cmd, script) };
        if let Err(e) = written {
            // Back with the retired, free to reset: a failed recording is pending nowhere.
            self.retired.push(Retired {
                commands: cmd,
                _keep: Vec::new(),
                done: WorkDone::already(),
            });
            return Err(fail("recording", e));
        }
        Ok(cmd)
    }

    /// Frees the done retired buffers beyond the first `kept`.
    fn free_retired_beyond(&mut self, kept: usize) {
        let mut spare = Vec::new();
        let mut done = 0;
        self.retired.retain(|r| {
            if !r.done() {
                return true;
            }
            done += 1;
            if done <= kept {
                return true;
            }
            spare.push(r.commands);
            false
        });
        if !spare.is_empty() {
            // SAFETY: this pool's buffers, pending nowhere (their submissions are done).
            unsafe { self.raw.device.free_command_buffers(self.pool, &spare) };
        }
    }

    /// Resets `cmd` and records `script` into it.
    ///
    /// # Safety
    /// `cmd` is a secondary buffer of this pool and pending nowhere.
    unsafe fn write(&self, cmd: vk::CommandBuffer, script: &[Command]) -> Result<(), vk::Result> {
        let d = &self.raw.device;
        // SAFETY (this block): see the function's contract; every handle the script names
        // belongs to a binding or buffer of this device alive for this step, and the replay
        // that keeps the buffer is only executed again while a step names the same live
        // bindings.
        unsafe {
            d.reset_command_buffer(cmd, vk::CommandBufferResetFlags::empty())?;
            let inheritance = vk::CommandBufferInheritanceInfo::default();
            d.begin_command_buffer(
                cmd,
                &vk::CommandBufferBeginInfo::default()
                    // Pipelined steps run the same commands while the last are in flight.
                    .flags(vk::CommandBufferUsageFlags::SIMULTANEOUS_USE)
                    .inheritance_info(&inheritance),
            )?;
            let mut bound = vk::Pipeline::null();
            for command in script {
                match *command {
                    Command::Barrier(barrier) => {
                        let (src_stage, src_access, dst_stage, dst_access) = match barrier {
                            Barrier::Open => (
                                vk::PipelineStageFlags::ALL_COMMANDS,
                                vk::AccessFlags::MEMORY_WRITE,
                                STEP_STAGES,
                                STEP_ACCESS,
                            ),
                            Barrier::Between => {
                                (STEP_STAGES, STEP_ACCESS, STEP_STAGES, STEP_ACCESS)
                            }
                            Barrier::Close => (
                                STEP_STAGES,
                                vk::AccessFlags::SHADER_WRITE | vk::AccessFlags::TRANSFER_WRITE,
                                vk::PipelineStageFlags::ALL_COMMANDS,
                                vk::AccessFlags::MEMORY_READ | vk::AccessFlags::MEMORY_WRITE,
                            ),
                        };
                        let memory = [vk::MemoryBarrier::default()
                            .src_access_mask(src_access)
                            .dst_access_mask(dst_access)];
                        d.cmd_pipeline_barrier(
                            cmd,
                            src_stage,
                            dst_stage,
                            vk::DependencyFlags::empty(),
                            &memory,
                            &[],
                            &[],
                        );
                    }
                    Command::Dispatch {
                        pipeline,
                        layout,
                        set,
                        grid,
                        ..
                    } => {
                        // Runs of one kernel (an expert per dispatch) bind it once.
                        if pipeline != bound {
                            d.cmd_bind_pipeline(cmd, vk::PipelineBindPoint::COMPUTE, pipeline);
                            bound = pipeline;
                        }
                        d.cmd_bind_descriptor_sets(
                            cmd,
                            vk::PipelineBindPoint::COMPUTE,
                            layout,
                            0,
                            &[set],
                            &[],
                        );
                        d.cmd_dispatch(cmd, grid[0], grid[1], grid[2]);
                    }
                    Command::Copy {
                        src,
                        dst,
                        dst_offset,
                        size,
                    } => {
                        let region = [vk::BufferCopy {
                            src_offset: 0,
                            dst_offset,
                            size,
                        }];
                        d.cmd_copy_buffer(cmd, src, dst, &region);
                    }
                }
            }
            d.end_command_buffer(cmd)
        }
    }
}

impl Drop for ReplayPool {
    fn drop(&mut self) {
        let d = self.raw.idle();
        // SAFETY: the device has finished every submission, so no buffer is pending;
        // destroying the pool frees its buffers.
        unsafe { d.destroy_command_pool(self.pool, None) };
    }
}

/// The buffers read and written since the last barrier. Lavapipe runs a step's commands one
/// after another whatever the barriers say, so a missing barrier would pass every GPU test
/// here and race on a real GPU: this rule is tested on its own below.
struct Hazards<B> {
    read: Vec<B>,
    written: Vec<B>,
}

impl<B> Default for Hazards<B> {
    fn default() -> Self {
        Hazards {
            read: Vec::new(),
            written: Vec::new(),
        }
    }
}

impl<B: PartialEq + Copy> Hazards<B> {
    /// Whether a command reading `reads` and writing `writes` (a read-write binding counts
    /// as a write) must wait for one since the last barrier: it reads or writes what one
    /// wrote, or writes what one read. Reads of the same buffer run side by side.
    fn conflicts(&self, reads: &[B], writes: &[B]) -> bool {
        reads.iter().chain(writes).any(|b| self.written.contains(b))
            || writes.iter().any(|b| self.read.contains(b))
    }

    fn admit(&mut self, reads: &[B], writes: &[B]) {
        self.read.extend_from_slice(reads);
        self.written.extend_from_slice(writes);
    }

    fn clear(&mut self) {
        self.read.clear();
        self.written.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::{spirv, spirv_capabilities, spirv_options, Hazards};
    use crate::runtime::pipeline::{Kernel, Variant};
    use ash::vk;

    /// Every kernel translates under the capabilities the direct pipelines list for a
    /// device with every feature this runtime requests (a capability naga needs and the
    /// list lacks fails the translation), and the 8-bit matmul also where packed dot
    /// products are missing (naga's polyfill).
    #[test]
    fn every_kernel_translates_under_the_listed_capabilities() {
        let all = wgpu::Features::SHADER_F16
            | wgpu::Features::SUBGROUP
            | wgpu::Features::EXPERIMENTAL_COOPERATIVE_MATRIX;
        let listed = spirv_options(vk::API_VERSION_1_3, true, spirv_capabilities(all, true));
        let no_dot = spirv_options(vk::API_VERSION_1_3, true, spirv_capabilities(all, false));
        let variant = Variant { subgroups: true };
        for kernel in Kernel::all() {
            let decl = kernel.declaration().unwrap();
            spirv(&decl, variant, &listed).unwrap_or_else(|e| panic!("{kernel:?}: {e}"));
            if matches!(kernel, Kernel::Matmul { .. }) {
                spirv(&decl, variant, &no_dot).unwrap_or_else(|e| panic!("{kernel:?}: {e}"));
            }
        }
    }

    /// Runs `commands` (reads, writes) through the rule; returns which were preceded by a
    /// barrier.
    fn barriers(commands: &[(&[u32], &[u32])]) -> Vec<bool> {
        let mut h = Hazards::default();
        commands
            .iter()
            .map(|&(reads, writes)| {
                let barrier = h.conflicts(reads, writes);
                if barrier {
                    h.clear();
                }
                h.admit(reads, writes);
                barrier
            })
            .collect()
    }

    #[test]
    fn every_dependency_gets_a_barrier() {
        // Read after write, write after read, write after write, read-write after write.
        assert_eq!(barriers(&[(&[], &[1]), (&[1], &[2])]), [false, true]);
        assert_eq!(barriers(&[(&[1], &[2]), (&[], &[1])]), [false, true]);
        assert_eq!(barriers(&[(&[], &[1]), (&[], &[1])]), [false, true]);
        assert_eq!(barriers(&[(&[3], &[1]), (&[], &[1])]), [false, true]);
    }

    #[test]
    fn independent_commands_share_a_barrier() {
        // Three projections of one normed row, then what reads all three.
        let got = barriers(&[
            (&[0], &[1]),
            (&[0], &[2]),
            (&[0], &[3]),
            (&[1, 2, 3], &[4]),
            (&[4], &[0]),
        ]);
        assert_eq!(got, [false, false, false, true, true]);
    }

    #[test]
    fn a_barrier_settles_what_came_before_it() {
        // The barrier before the third command settles the second's read of 1, so writing 1
        // again needs none; without that barrier in between, it does (write after read).
        let got = barriers(&[(&[], &[1]), (&[1], &[2]), (&[2], &[3]), (&[], &[1])]);
        assert_eq!(got, [false, true, true, false]);
        let got = barriers(&[(&[], &[1]), (&[1], &[2]), (&[], &[1])]);
        assert_eq!(got, [false, true, true]);
    }
}
