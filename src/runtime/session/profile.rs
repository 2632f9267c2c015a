//! Per-node timing of a session's plans (`bench --profile`): timestamp queries where the
//! adapter has them, else one submit per node timed on the CPU.

use std::sync::Arc;

use crate::error::Error;
use crate::runtime::gpu::GpuContext;
use crate::runtime::graph::{Graph, LogitRows};
use crate::runtime::session::Session;
use crate::runtime::tensor::{map_read, read_back_buffer};

/// The time one node of a plan took.
#[derive(Debug, Clone, serde::Serialize)]
pub struct NodeTime {
    pub label: &'static str,
    pub layer: Option<usize>,
    pub dispatches: usize,
    pub seconds: f64,
}

impl Session {
    /// Runs one decode step of `token` node by node and times each node: with timestamp
    /// queries where the adapter has them, else on the CPU around one submit per node (each
    /// node then also pays a submit's latency). Sampling is included, timed on the CPU; the
    /// step advances the sequence like [`Session::decode`].
    pub fn profile_decode(&mut self, token: u32) -> Result<(Vec<NodeTime>, u32), Error> {
        self.check_tokens(&[token])?;
        self.prepare_chunk(&[token], LogitRows::Last)?;
        let mut times = time_nodes(&self.model.ctx, &self.decode)?;
        self.history.push(token);
        let start = std::time::Instant::now();
        let next = self.submit_step(super::StepInput::Logits)?;
        times.push(NodeTime {
            label: "sample",
            layer: None,
            dispatches: 2,
            seconds: start.elapsed().as_secs_f64(),
        });
        self.state.pos += 1;
        self.last_row = Some(0);
        Ok((times, next))
    }

    /// Runs one prefill chunk (at most the batch size) node by node, timed like
    /// [`Session::profile_decode`].
    pub fn profile_prefill(&mut self, chunk: &[u32]) -> Result<Vec<NodeTime>, Error> {
        self.check_tokens(chunk)?;
        if chunk.is_empty() || chunk.len() > self.options.ubatch as usize {
            return Err(Error::InvalidArgument(format!(
                "a profiled chunk holds 1 to {} tokens",
                self.options.ubatch
            )));
        }
        let model = Arc::clone(&self.model);
        let times = time_nodes(&model.ctx, self.prepare_chunk(chunk, LogitRows::Last)?)?;
        self.state.pos += chunk.len() as u32;
        self.history.extend_from_slice(chunk);
        self.last_row = Some(0);
        Ok(times)
    }
}

/// Times each node of `graph`: with timestamp queries (one compute pass per node, all in
/// one submit) where the adapter has them, else one submit per node timed on the CPU from
/// submit to completion.
fn time_nodes(ctx: &GpuContext, graph: &Graph) -> Result<Vec<NodeTime>, Error> {
    ctx.wait()?;
    if ctx.features.timestamp_query {
        return time_nodes_on_device(ctx, graph);
    }
    graph
        .nodes
        .iter()
        .map(|node| {
            let start = std::time::Instant::now();
            let mut enc = ctx.device.create_command_encoder(&Default::default());
            {
                let mut pass = enc.begin_compute_pass(&Default::default());
                node.encode(&mut pass);
            }
            ctx.queue.submit([enc.finish()]);
            ctx.wait()?;
            Ok(NodeTime {
                label: node.label,
                layer: node.layer,
                dispatches: node.dispatch_count(),
                seconds: start.elapsed().as_secs_f64(),
            })
        })
        .collect()
}

fn time_nodes_on_device(ctx: &GpuContext, graph: &Graph) -> Result<Vec<NodeTime>, Error> {
    let n = graph.nodes.len() as u32;
    let queries = ctx.device.create_query_set(&wgpu::QuerySetDescriptor {
        label: Some("profile"),
        ty: wgpu::QueryType::Timestamp,
        count: 2 * n,
    });
    let bytes = 16 * n as u64;
    let resolved = ctx.device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("profile-resolve"),
        size: bytes,
        usage: wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
        mapped_at_creation: false,
    });
    let staging = read_back_buffer(ctx, "profile-read", bytes);
    let mut enc = ctx.device.create_command_encoder(&Default::default());
    for (i, node) in graph.nodes.iter().enumerate() {
        let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
            label: Some(node.label),
            timestamp_writes: Some(wgpu::ComputePassTimestampWrites {
                query_set: &queries,
                beginning_of_pass_write_index: Some(2 * i as u32),
                end_of_pass_write_index: Some(2 * i as u32 + 1),
            }),
        });
        node.encode(&mut pass);
    }
    enc.resolve_query_set(&queries, 0..2 * n, &resolved, 0);
    enc.copy_buffer_to_buffer(&resolved, 0, &staging, 0, bytes);
    ctx.queue.submit([enc.finish()]);
    let ticks: Vec<u64> = bytemuck::pod_collect_to_vec(&map_read(ctx, &staging, bytes)?);
    let period_ns = ctx.queue.get_timestamp_period() as f64;
    Ok(graph
        .nodes
        .iter()
        .zip(ticks.chunks_exact(2))
        .map(|(node, t)| NodeTime {
            label: node.label,
            layer: node.layer,
            dispatches: node.dispatch_count(),
            seconds: t[1].saturating_sub(t[0]) as f64 * period_ns * 1e-9,
        })
        .collect())
}
