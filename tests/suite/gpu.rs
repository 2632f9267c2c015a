//! The GPU context on whatever adapter the machine has (lavapipe in CI).

use qwen_wgpu::runtime::gpu::list_adapters;

use crate::common::gpu_or_skip;

#[test]
fn the_context_opens_with_usable_limits() {
    let Some(gpu) = gpu_or_skip() else { return };
    assert!(!list_adapters().is_empty());
    assert!(gpu.limits.max_compute_invocations_per_workgroup >= 256);
    assert!(gpu.limits.max_storage_buffer_binding_size >= 16 << 20);
    eprintln!("GPU: {}", gpu.describe());
}

/// A compute dispatch and a read-back, end to end: proves the device really executes
/// shaders (a broken ICD can enumerate and still fail here).
#[test]
fn a_compute_dispatch_round_trips() {
    use wgpu::util::DeviceExt;
    let Some(gpu) = gpu_or_skip() else { return };
    let (device, queue) = (&gpu.device, &gpu.queue);
    let input: Vec<f32> = (0..1000).map(|i| i as f32 * 0.5 - 7.0).collect();
    let shader = device.create_shader_module(wgpu::ShaderModuleDescriptor {
        label: Some("smoke"),
        source: wgpu::ShaderSource::Wgsl(
            "@group(0) @binding(0) var<storage, read_write> x: array<f32>;
             @compute @workgroup_size(64)
             fn main(@builtin(global_invocation_id) id: vec3<u32>) {
                 if (id.x < arrayLength(&x)) { x[id.x] = 2.0 * x[id.x] + 1.0; }
             }"
            .into(),
        ),
    });
    let buffer = device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
        label: Some("x"),
        contents: bytemuck::cast_slice(&input),
        usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC,
    });
    let readback = device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("readback"),
        size: buffer.size(),
        usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
        label: Some("smoke"),
        layout: None,
        module: &shader,
        entry_point: Some("main"),
        compilation_options: Default::default(),
        cache: None,
    });
    let bind = device.create_bind_group(&wgpu::BindGroupDescriptor {
        label: None,
        layout: &pipeline.get_bind_group_layout(0),
        entries: &[wgpu::BindGroupEntry {
            binding: 0,
            resource: buffer.as_entire_binding(),
        }],
    });
    let mut enc = device.create_command_encoder(&Default::default());
    {
        let mut pass = enc.begin_compute_pass(&Default::default());
        pass.set_pipeline(&pipeline);
        pass.set_bind_group(0, &bind, &[]);
        pass.dispatch_workgroups(input.len().div_ceil(64) as u32, 1, 1);
    }
    enc.copy_buffer_to_buffer(&buffer, 0, &readback, 0, buffer.size());
    queue.submit([enc.finish()]);
    readback
        .slice(..)
        .map_async(wgpu::MapMode::Read, |r| r.expect("map"));
    device
        .poll(wgpu::PollType::wait_indefinitely())
        .expect("poll");
    let view = readback.slice(..).get_mapped_range().expect("mapped");
    let out: Vec<f32> = bytemuck::cast_slice(&view).to_vec();
    for (i, (x, y)) in input.iter().zip(&out).enumerate() {
        // Exact: 2x + 1 is exactly representable for these inputs.
        assert_eq!(*y, 2.0 * x + 1.0, "element {i}");
    }
}

/// The whole buffer's bytes, copied back.
fn buffer_bytes(gpu: &qwen_wgpu::runtime::GpuContext, buffer: &wgpu::Buffer) -> Vec<u8> {
    use qwen_wgpu::runtime::tensor::{map_read, read_back_buffer};
    let back = read_back_buffer(gpu, "back", buffer.size());
    let mut enc = gpu.device.create_command_encoder(&Default::default());
    enc.copy_buffer_to_buffer(buffer, 0, &back, 0, buffer.size());
    gpu.queue.submit([enc.finish()]);
    map_read(gpu, &back, buffer.size()).unwrap()
}

/// Weights go up mapped in place (CPU devices) or through bounded staging: both give the
/// file's bytes exactly, a ragged tail padded with zeros to a whole word.
#[test]
fn uploads_give_the_exact_bytes_mapped_and_staged() {
    use qwen_wgpu::runtime::tensor::upload_buffer;
    let Some(mut gpu) = gpu_or_skip() else { return };
    let modes: Vec<bool> = if gpu.features.mapped_upload {
        vec![true, false]
    } else {
        vec![false]
    };
    for mapped in modes {
        gpu.features.mapped_upload = mapped;
        for len in [0usize, 1, 3, 4, 5, 1023, 4099] {
            let bytes: Vec<u8> = (0..len).map(|i| (i * 7 + 3) as u8).collect();
            let buffer = upload_buffer(&gpu, "t", &bytes).unwrap();
            let got = buffer_bytes(&gpu, &buffer);
            assert_eq!(
                got.len(),
                len.div_ceil(4).max(1) * 4,
                "mapped {mapped}, {len} bytes"
            );
            assert_eq!(&got[..len], &bytes[..], "mapped {mapped}, {len} bytes");
            assert!(
                got[len..].iter().all(|&b| b == 0),
                "mapped {mapped}: padding"
            );
        }
    }
    // Staged writes in windows smaller than the data: several submits, same bytes.
    let bytes: Vec<u8> = (0..1001).map(|i| (i * 13 + 1) as u8).collect();
    let buffer = qwen_wgpu::runtime::tensor::f32_buffer(&gpu, "w", 260);
    gpu.write_buffer_windowed(&buffer, 8, &bytes, 64).unwrap();
    gpu.finish_writes().unwrap();
    let got = buffer_bytes(&gpu, &buffer);
    assert!(got[..8].iter().all(|&b| b == 0));
    assert_eq!(&got[8..8 + 1001], &bytes[..]);
    assert!(got[8 + 1001..].iter().all(|&b| b == 0));
}
