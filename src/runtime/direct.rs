//! Direct recording on Vulkan: a step's dispatches written straight into the command buffer,
//! below wgpu's validation and usage tracking.
//!
//! wgpu checks every dispatch, merges each bound buffer into a usage scope, derives barriers
//! from the buffers' tracked states and re-walks all of it at submit. At Qwen3.5-35B-A3B
//! depth that is most of a decode token's host time (264 dispatches, 1.4 ms on the 2-core
//! machine the project is built on), while a fast GPU runs the token in about 1 ms: the
//! pipelined loop can hide the recording only if it is well under that. The plan's
//! dispatches never change shape between tokens and were all checked by wgpu when they were
//! built (each [`Dispatch`] also holds its wgpu pipeline and bind group), so here they are
//! recorded as the driver calls they stand for:
//!
//! - pipelines and descriptor sets built once through wgpu-hal from the same WGSL, with the
//!   same runtime checks (`Kernel` pipelines are cached per device);
//! - a global memory barrier only where a dispatch touches a buffer that a dispatch since
//!   the last barrier wrote, or writes one it read (independent projections overlap);
//! - a barrier from everything before the step at its start and to everything after it at
//!   its end, so wgpu-recorded work on either side (uploads, expert moves, read-backs) needs
//!   no knowledge of what the step touched.
//!
//! wgpu zero-fills a buffer lazily, on its first use through wgpu: a buffer only ever
//! touched here would never be, and a later first use through wgpu would wipe what the
//! steps wrote. Buffers created without contents are therefore cleared through wgpu as
//! they are created ([`GpuContext::empty_buffer`](crate::runtime::gpu::GpuContext::empty_buffer)).
//!
//! Other backends (Metal, DX12, GL) keep the wgpu pass; `QWEN_WGPU_RECORDING=wgpu` keeps it
//! on Vulkan too, to compare.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use ash::vk;
use wgpu::hal::{self, api::Vulkan, CommandEncoder as _, Device as _};

use crate::error::GpuError;
use crate::runtime::kernel::{Access, Declaration};
use crate::runtime::pipeline::{assemble, Kernel, Variant};

/// A buffer as a direct step's copies name it.
pub type RawBuffer = vk::Buffer;

/// The environment variable choosing how steps are recorded (`wgpu` or `direct`).
pub const RECORDING_ENV: &str = "QWEN_WGPU_RECORDING";

type HalDevice = hal::vulkan::Device;

/// Direct recording for one Vulkan device: the raw device for barriers and copies, and the
/// pipelines built so far.
pub struct Direct {
    device: wgpu::Device,
    raw: ash::Device,
    pipelines: Mutex<HashMap<(Kernel, Variant), Arc<DirectPipeline>>>,
}

impl Direct {
    /// Direct recording on `device`, if it is a Vulkan device and `QWEN_WGPU_RECORDING`
    /// does not ask for the wgpu pass.
    pub fn open(device: &wgpu::Device) -> Option<Direct> {
        match std::env::var(RECORDING_ENV).as_deref() {
            Ok("wgpu") => return None,
            Ok("direct") | Err(_) => {}
            Ok(other) => log::warn!(
                "{RECORDING_ENV}={other:?} is neither `wgpu` nor `direct`; recording directly"
            ),
        }
        // SAFETY: the raw device is only used to record into command buffers wgpu opened
        // and to read its function table; nothing here destroys it.
        let raw = unsafe { device.as_hal::<Vulkan>() }.map(|d| d.raw_device().clone())?;
        Some(Direct {
            device: device.clone(),
            raw,
            pipelines: Mutex::default(),
        })
    }

    /// The pipeline of `kernel` in `variant`, built on first use.
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
        if let Some(p) = map.get(&(kernel, variant)) {
            return Ok(p.clone());
        }
        let p = Arc::new(DirectPipeline::new(&self.device, decl, variant)?);
        map.insert((kernel, variant), p.clone());
        Ok(p)
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
        let hal_device = hal_device(&self.device)?;
        // One buffer's hal guard at a time: wgpu-core forbids holding two (each takes the
        // device's snatch lock), so the handles are read out and wrapped without ownership.
        let handles = buffers
            .iter()
            .map(|b| self.handle(b))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| GpuError::Device(format!("{}: {e}", decl.entry)))?;
        let wrapped: Vec<hal::vulkan::Buffer> = handles
            .iter()
            // SAFETY: the wrappers never destroy the handle (the no-op drop callback), and
            // the binding keeps a clone of each wgpu buffer for as long as the set exists.
            .map(|&h| unsafe { hal::vulkan::Buffer::from_raw_externally_owned(h, Box::new(|| {})) })
            .collect();
        let bindings: Vec<hal::BufferBinding<'_, hal::vulkan::Buffer>> = wrapped
            .iter()
            .map(|b| hal::BufferBinding::new_unchecked(b, 0, None))
            .collect();
        let entries: Vec<hal::BindGroupEntry> = (0..bindings.len() as u32)
            .map(|i| hal::BindGroupEntry {
                binding: i,
                resource_index: i,
                count: 1,
            })
            .collect();
        let layout = pipeline
            .group_layout
            .as_ref()
            .ok_or_else(|| GpuError::Pipeline(format!("{}: no group layout", decl.entry)))?;
        // SAFETY: the layout and the buffers belong to this device; the entries match the
        // layout built from the same declaration.
        let group = unsafe {
            hal_device.create_bind_group(&hal::BindGroupDescriptor {
                label: Some(decl.entry),
                layout,
                buffers: &bindings,
                samplers: &[],
                textures: &[],
                entries: &entries,
                acceleration_structures: &[],
                external_textures: &[],
            })
        }
        .map_err(|e| GpuError::Device(format!("{}: descriptor set: {e}", decl.entry)))?;
        let mut reads = Vec::new();
        let mut writes = Vec::new();
        // Binding 0, the params, is only ever written between steps (covered by the step's
        // opening barrier), so it takes no part in the hazards within a step.
        for (&raw, binding) in handles.iter().skip(1).zip(decl.bindings) {
            match binding.access {
                Access::Read => reads.push(raw),
                Access::ReadWrite => writes.push(raw),
            }
        }
        Ok(DirectBinding {
            device: self.device.clone(),
            pipeline,
            group: Some(group),
            reads,
            writes,
            _buffers: buffers.iter().map(|&b| b.clone()).collect(),
        })
    }

    /// Records into `encoder`'s command buffer through `record`, between the step's opening
    /// and closing barriers; returns how many barriers it placed between them. Fails when a
    /// dispatch had no direct binding (nothing recorded is submitted then: the caller drops
    /// the encoder).
    pub fn record(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        record: impl FnOnce(&mut DirectRecorder<'_>),
    ) -> Result<u32, GpuError> {
        // SAFETY: the encoder is used only through the hal encoder inside the callback,
        // every command keeps to buffers and pipelines of this device that outlive the
        // submission (the plan holds them), and the barriers at both ends order the step
        // against all work wgpu records before and after it.
        unsafe {
            encoder.as_hal_mut::<Vulkan, _, _>(|hal_enc| {
                let hal_enc = hal_enc.ok_or_else(|| {
                    GpuError::Device("the command encoder is not a Vulkan one".into())
                })?;
                let cmd = hal_enc.raw_handle();
                hal_enc.begin_compute_pass(&hal::ComputePassDescriptor {
                    label: None,
                    timestamp_writes: None,
                });
                let mut rec = DirectRecorder {
                    encoder: hal_enc,
                    raw: &self.raw,
                    cmd,
                    hazards: Hazards::default(),
                    missing: None,
                    barriers: 0,
                    bound: std::ptr::null(),
                };
                rec.barrier(
                    vk::PipelineStageFlags::ALL_COMMANDS,
                    vk::AccessFlags::MEMORY_WRITE,
                    STEP_STAGES,
                    STEP_ACCESS,
                );
                record(&mut rec);
                rec.barrier(
                    STEP_STAGES,
                    vk::AccessFlags::SHADER_WRITE | vk::AccessFlags::TRANSFER_WRITE,
                    vk::PipelineStageFlags::ALL_COMMANDS,
                    vk::AccessFlags::MEMORY_READ | vk::AccessFlags::MEMORY_WRITE,
                );
                let (missing, barriers) = (rec.missing, rec.barriers);
                hal_enc.end_compute_pass();
                match missing {
                    None => Ok(barriers),
                    Some(entry) => Err(GpuError::Pipeline(format!(
                        "{entry}: no direct binding, so the step cannot be recorded directly"
                    ))),
                }
            })
        }
    }

    /// The raw handle of `buffer`, for copies within a direct step.
    pub fn handle(&self, buffer: &wgpu::Buffer) -> Result<RawBuffer, GpuError> {
        // SAFETY: only the handle is read; the caller keeps the buffer alive.
        unsafe { buffer.as_hal::<Vulkan>() }
            .map(|b| unsafe { b.raw_handle() })
            .ok_or_else(|| GpuError::Device("a buffer is not a Vulkan buffer".into()))
    }
}

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

fn hal_device(device: &wgpu::Device) -> Result<impl std::ops::Deref<Target = HalDevice>, GpuError> {
    // SAFETY: the hal device is used to create and destroy this runtime's own objects.
    unsafe { device.as_hal::<Vulkan>() }
        .ok_or_else(|| GpuError::Device("the device is not a Vulkan device".into()))
}

/// The hal device once it has finished everything submitted, for destroying objects that
/// submitted steps may use. wgpu defers destroying its own objects until their last
/// submission is done; these are invisible to it, and a driver that reads a descriptor set
/// or pipeline as it executes (lavapipe does) would read freed memory. Plans and sessions
/// are dropped rarely and mostly when idle, so waiting here costs next to nothing.
fn idle_hal_device(device: &wgpu::Device) -> Option<impl std::ops::Deref<Target = HalDevice> + '_> {
    let idle = device.poll(wgpu::PollType::Wait {
        submission_index: None,
        timeout: None,
    });
    if let Err(e) = idle {
        // A lost device runs nothing more, so destroying is safe; say why we waited in vain.
        log::warn!("direct recording: waiting for the device before freeing: {e}");
    }
    hal_device(device).ok()
}

/// One kernel's Vulkan pipeline, its layouts and its shader module.
struct DirectPipeline {
    device: wgpu::Device,
    group_layout: Option<hal::vulkan::BindGroupLayout>,
    layout: Option<hal::vulkan::PipelineLayout>,
    module: Option<hal::vulkan::ShaderModule>,
    pipeline: Option<hal::vulkan::ComputePipeline>,
}

impl DirectPipeline {
    fn new(device: &wgpu::Device, decl: &Declaration, variant: Variant) -> Result<Self, GpuError> {
        let fail = |what: &str, e: &dyn std::fmt::Display| {
            GpuError::Pipeline(format!("{} (direct): {what}: {e}", decl.entry))
        };
        let source = assemble(decl, variant)?;
        let module = naga::front::wgsl::parse_str(&source).map_err(|e| fail("WGSL", &e))?;
        // wgpu validated the same source when it built the kernel's own pipeline; the
        // adapter's features gate which kernels exist, not this second validation.
        let info = naga::valid::Validator::new(
            naga::valid::ValidationFlags::all(),
            naga::valid::Capabilities::all(),
        )
        .validate(&module)
        .map_err(|e| fail("validation", &e))?;
        let hal_device = hal_device(device)?;
        let mut out = DirectPipeline {
            device: device.clone(),
            group_layout: None,
            layout: None,
            module: None,
            pipeline: None,
        };
        let entries: Vec<wgpu::BindGroupLayoutEntry> = (0..=decl.bindings.len())
            .map(|i| {
                let read_only = i == 0 || decl.bindings[i - 1].access == Access::Read;
                wgpu::BindGroupLayoutEntry {
                    binding: i as u32,
                    visibility: wgpu::ShaderStages::COMPUTE,
                    ty: wgpu::BindingType::Buffer {
                        ty: wgpu::BufferBindingType::Storage { read_only },
                        has_dynamic_offset: false,
                        min_binding_size: None,
                    },
                    count: None,
                }
            })
            .collect();
        // SAFETY (this block): objects of this device, destroyed in Drop in reverse order.
        unsafe {
            let group_layout = hal_device
                .create_bind_group_layout(&hal::BindGroupLayoutDescriptor {
                    label: Some(decl.entry),
                    flags: hal::BindGroupLayoutFlags::empty(),
                    entries: &entries,
                })
                .map_err(|e| fail("group layout", &e))?;
            let group_layout = out.group_layout.insert(group_layout);
            let layout = hal_device
                .create_pipeline_layout(&hal::PipelineLayoutDescriptor {
                    label: Some(decl.entry),
                    flags: hal::PipelineLayoutFlags::empty(),
                    bind_group_layouts: &[Some(&*group_layout)],
                    immediate_size: 0,
                })
                .map_err(|e| fail("pipeline layout", &e))?;
            let layout = out.layout.insert(layout);
            // The same checks as the kernel's wgpu pipeline on Vulkan (see PipelineCache::get).
            let shader = hal_device
                .create_shader_module(
                    &hal::ShaderModuleDescriptor {
                        label: Some(decl.entry),
                        runtime_checks: wgpu::ShaderRuntimeChecks::unchecked(),
                    },
                    hal::ShaderInput::Naga(hal::NagaShader {
                        module: Cow::Owned(module),
                        info,
                        debug_source: None,
                    }),
                )
                .map_err(|e| fail("shader module", &e))?;
            let shader = out.module.insert(shader);
            let constants = Default::default();
            let pipeline = hal_device
                .create_compute_pipeline(&hal::ComputePipelineDescriptor {
                    label: Some(decl.entry),
                    layout: &*layout,
                    stage: hal::ProgrammableStage {
                        module: &*shader,
                        entry_point: decl.entry,
                        constants: &constants,
                        zero_initialize_workgroup_memory: true,
                    },
                    cache: None,
                })
                .map_err(|e| fail("pipeline", &e))?;
            out.pipeline = Some(pipeline);
        }
        Ok(out)
    }
}

impl Drop for DirectPipeline {
    fn drop(&mut self) {
        let Some(d) = idle_hal_device(&self.device) else {
            return;
        };
        // SAFETY: created on this device, and the device has finished every submission.
        unsafe {
            if let Some(p) = self.pipeline.take() {
                d.destroy_compute_pipeline(p);
            }
            if let Some(m) = self.module.take() {
                d.destroy_shader_module(m);
            }
            if let Some(l) = self.layout.take() {
                d.destroy_pipeline_layout(l);
            }
            if let Some(l) = self.group_layout.take() {
                d.destroy_bind_group_layout(l);
            }
        }
    }
}

/// A dispatch's descriptor set, its pipeline, and which buffers it reads and writes.
pub struct DirectBinding {
    device: wgpu::Device,
    pipeline: Arc<DirectPipeline>,
    group: Option<hal::vulkan::BindGroup>,
    reads: Vec<vk::Buffer>,
    writes: Vec<vk::Buffer>,
    /// The bound buffers, alive while the descriptor set points at them.
    _buffers: Vec<wgpu::Buffer>,
}

impl Drop for DirectBinding {
    fn drop(&mut self) {
        let Some(d) = idle_hal_device(&self.device) else {
            return;
        };
        if let Some(g) = self.group.take() {
            // SAFETY: created on this device, and the device has finished every submission.
            unsafe { d.destroy_bind_group(g) };
        }
    }
}

/// Records one direct step: see [`Direct::record`].
pub struct DirectRecorder<'a> {
    encoder: &'a mut hal::vulkan::CommandEncoder,
    raw: &'a ash::Device,
    cmd: vk::CommandBuffer,
    hazards: Hazards<vk::Buffer>,
    /// Barriers placed by the hazards (the step's two ends aside).
    barriers: u32,
    /// The entry point of a dispatch that had no direct binding.
    missing: Option<&'static str>,
    /// The pipeline bound last: runs of one kernel (an expert per dispatch) bind it once.
    bound: *const DirectPipeline,
}

impl DirectRecorder<'_> {
    fn barrier(
        &mut self,
        src_stage: vk::PipelineStageFlags,
        src_access: vk::AccessFlags,
        dst_stage: vk::PipelineStageFlags,
        dst_access: vk::AccessFlags,
    ) {
        let memory = [vk::MemoryBarrier::default()
            .src_access_mask(src_access)
            .dst_access_mask(dst_access)];
        // SAFETY: `cmd` is the open command buffer of the encoder being recorded.
        unsafe {
            self.raw.cmd_pipeline_barrier(
                self.cmd,
                src_stage,
                dst_stage,
                vk::DependencyFlags::empty(),
                &memory,
                &[],
                &[],
            )
        };
        self.hazards.clear();
    }

    /// A barrier first if the command reading `reads` and writing `writes` depends on one
    /// since the last barrier.
    fn order(&mut self, reads: &[vk::Buffer], writes: &[vk::Buffer]) {
        if self.hazards.conflicts(reads, writes) {
            self.barrier(STEP_STAGES, STEP_ACCESS, STEP_STAGES, STEP_ACCESS);
            self.barriers += 1;
        }
        self.hazards.admit(reads, writes);
    }

    /// Records dispatches that need no order among themselves (see `Record::record_together`):
    /// one barrier first if any of them depends on a command since the last barrier, none
    /// between them.
    pub fn dispatch_together(&mut self, each: &[(Option<&DirectBinding>, [u32; 3], &'static str)]) {
        let mut bound = Vec::with_capacity(each.len());
        for &(binding, grid, entry) in each {
            match binding {
                Some(b) => bound.push((b, grid, entry)),
                None => {
                    self.missing.get_or_insert(entry);
                    return;
                }
            }
        }
        if bound
            .iter()
            .any(|(b, ..)| self.hazards.conflicts(&b.reads, &b.writes))
        {
            self.barrier(STEP_STAGES, STEP_ACCESS, STEP_STAGES, STEP_ACCESS);
            self.barriers += 1;
        }
        for (b, grid, entry) in bound {
            self.hazards.admit(&b.reads, &b.writes);
            self.record_dispatch(b, grid, entry);
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
            self.missing.get_or_insert(entry);
            return;
        };
        self.order(&b.reads, &b.writes);
        self.record_dispatch(b, grid, entry);
    }

    /// The dispatch itself, ordered already.
    fn record_dispatch(&mut self, b: &DirectBinding, grid: [u32; 3], entry: &'static str) {
        let (Some(pipeline), Some(layout), Some(group)) =
            (&b.pipeline.pipeline, &b.pipeline.layout, &b.group)
        else {
            self.missing.get_or_insert(entry);
            return;
        };
        // SAFETY: objects of this device, alive for the submission (see `Direct::record`).
        unsafe {
            if !std::ptr::eq(self.bound, Arc::as_ptr(&b.pipeline)) {
                self.encoder.set_compute_pipeline(pipeline);
                self.bound = Arc::as_ptr(&b.pipeline);
            }
            self.encoder.set_bind_group(layout, 0, group, &[]);
            self.encoder.dispatch_workgroups(grid);
        }
    }

    /// Copies `bytes` from each `src` at 0 to its `dst` at `dst_offset`; the copies must
    /// need no order among themselves (disjoint destinations, none read by another), like a
    /// batched step's feeds: one barrier first if any depends on a command since the last.
    pub fn copies_together(&mut self, copies: &[(RawBuffer, RawBuffer, u64)], bytes: u64) {
        if copies
            .iter()
            .any(|&(src, dst, _)| self.hazards.conflicts(&[src], &[dst]))
        {
            self.barrier(STEP_STAGES, STEP_ACCESS, STEP_STAGES, STEP_ACCESS);
            self.barriers += 1;
        }
        for &(src, dst, dst_offset) in copies {
            self.hazards.admit(&[src], &[dst]);
            let region = [vk::BufferCopy {
                src_offset: 0,
                dst_offset,
                size: bytes,
            }];
            // SAFETY: `cmd` is open and both buffers are alive (the caller's).
            unsafe { self.raw.cmd_copy_buffer(self.cmd, src, dst, &region) };
        }
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
    use super::Hazards;

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
