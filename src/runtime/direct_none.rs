//! The stand-in for `runtime::direct` where wgpu has no Vulkan backend (Apple, the web):
//! [`Direct::open`] never opens, so every step goes through wgpu's pass. The types exist so
//! that the recorder compiles the same everywhere; none can be made.

use std::convert::Infallible;
use std::marker::PhantomData;

use crate::error::GpuError;
use crate::runtime::kernel::Declaration;
use crate::runtime::pipeline::{Kernel, Variant};

/// The environment variable choosing how steps are recorded (no effect here).
pub const RECORDING_ENV: &str = "QWEN_WGPU_RECORDING";

/// Packed 8-bit dot products are read as accelerated on Vulkan only.
pub fn packed_int8_dot_accelerated(_adapter: &wgpu::Adapter) -> bool {
    false
}

pub struct Direct {
    never: Infallible,
}

impl Direct {
    pub fn open(_device: &wgpu::Device, _queue: &wgpu::Queue) -> Option<Direct> {
        None
    }

    pub fn bind(
        &self,
        _kernel: Kernel,
        _variant: Variant,
        _decl: &Declaration,
        _buffers: &[&wgpu::Buffer],
    ) -> Result<DirectBinding, GpuError> {
        match self.never {}
    }

    pub fn bindings_awaiting_free(&self) -> usize {
        match self.never {}
    }

    pub fn refuse(&self, _entry: &'static str) {
        match self.never {}
    }

    pub fn fall_back(&self, _why: &GpuError) {
        match self.never {}
    }

    pub fn record(
        &self,
        _encoder: &mut wgpu::CommandEncoder,
        _replays: &Replays,
        _record: impl FnOnce(&mut DirectRecorder<'_>),
    ) -> Result<u32, GpuError> {
        match self.never {}
    }
}

pub struct DirectBinding {
    // Uninhabited, like the others: read by nothing, as nothing can hold one.
    #[allow(dead_code)]
    never: Infallible,
}

pub struct DirectRecorder<'a> {
    never: Infallible,
    _recording: PhantomData<&'a ()>,
}

impl DirectRecorder<'_> {
    pub fn dispatch(
        &mut self,
        _binding: Option<&DirectBinding>,
        _grid: [u32; 3],
        _entry: &'static str,
    ) {
        match self.never {}
    }

    pub fn dispatch_together(
        &mut self,
        _each: &[(Option<&DirectBinding>, [u32; 3], &'static str)],
    ) {
        match self.never {}
    }

    pub fn copies_together(
        &mut self,
        _copies: &[(&wgpu::Buffer, &wgpu::Buffer, u64)],
        _bytes: u64,
    ) {
        match self.never {}
    }
}

/// Nothing is ever recorded directly here, so nothing is replayed.
pub struct Replays;

impl Replays {
    pub fn new(_kept: usize) -> Replays {
        Replays
    }

    pub fn counts(&self) -> (u64, u64) {
        (0, 0)
    }
}
