//! Routed experts under a VRAM budget (`--gpu-memory`, [`ExpertSplit`]).
//!
//! Each expert tensor has a resident pool in VRAM, `resident` slabs per layer, and, when not
//! every expert fits, a host copy of every expert in host memory that the GPU reads over the
//! bus. One location table per MoE layer, on the GPU, says which pool slot holds each expert
//! (or none); the expert kernels read it and take each routed expert from its slot or from
//! the host copy, so no step waits on the CPU. The same kernels read the same bytes either
//! way, so the logits do not depend on the budget.
//!
//! The routers count each expert's uses, and the uses that missed the pool, on the GPU
//! (`moe_route`, `moe_gate_up`). [`ExpertCache::tend`], called after each submit, copies the
//! counts out every [`REPLAN_TOKENS`] tokens and maps them asynchronously; once mapped it
//! re-plans each layer's resident set by decayed use and queues the slab copies and table
//! writes between steps, at most [`MOVE_BYTES`] a re-plan so that no step stalls long.
//!
//! The host copies are storage buffers with `MAP_READ` usage (`MAPPABLE_PRIMARY_BUFFERS`):
//! wgpu-hal 30 places them in host-cached system memory on Vulkan (gpu-allocator's
//! `GpuToCpu`), a CPU-visible L0 custom heap on DX12 and shared storage on Metal, where
//! `MAP_WRITE` would prefer the device-local BAR window on Vulkan. They are written through
//! the bounded staging of [`GpuContext::write_buffer`] from the file's map, which stays the
//! page cache's: one host copy. wgpu has no import of host memory, so the map itself cannot
//! be the copy.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};

use crate::error::GpuError;
use crate::loader::config::ExpertGateUp;
use crate::model::placement::ExpertSplit;
use crate::runtime::gpu::GpuContext;
use crate::runtime::tensor::{read_back_buffer, MatrixPiece, MatrixShape, QuantMatrix};
use crate::runtime::weights::{LayerWeights, MoeWeights};

/// The location table's entry for an expert with no pool slot.
pub const NOT_RESIDENT: u32 = u32::MAX;
/// Tokens between reads of the use counters.
pub const REPLAN_TOKENS: u64 = 256;
/// Most slab bytes one re-plan copies into VRAM (a few ms of a PCIe 4.0 link).
pub const MOVE_BYTES: u64 = 64 << 20;
/// Weight of the older counts in an expert's score at each re-plan.
const DECAY: f64 = 0.5;
/// How much more use an expert needs than the resident one it would evict.
const HYSTERESIS: f64 = 1.25;

/// One MoE layer's expert-location table and use counters; its expert tensors share them.
#[derive(Debug, Clone)]
pub struct ExpertTable {
    /// `[n_expert]` u32: each expert's pool slot, or [`NOT_RESIDENT`].
    pub location: wgpu::Buffer,
    /// `[n_expert + 1]` u32: routed uses of each expert, then how many of them missed the pool.
    pub counts: wgpu::Buffer,
    pub n_expert: u32,
}

impl ExpertTable {
    /// A table whose pool slot `s` holds expert `s` for the first `resident` experts.
    pub fn new(ctx: &GpuContext, n_expert: u32, resident: u32) -> Result<ExpertTable, GpuError> {
        let slots: Vec<u32> = (0..resident.min(n_expert)).collect();
        ExpertTable::with_slots(ctx, n_expert, &slots)
    }

    /// A table whose pool slot `s` holds expert `slots[s]`.
    pub fn with_slots(
        ctx: &GpuContext,
        n_expert: u32,
        slots: &[u32],
    ) -> Result<ExpertTable, GpuError> {
        let usage = wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST;
        let location = buffer(ctx, "expert location", 4 * n_expert as u64, usage);
        ctx.write_buffer(
            &location,
            0,
            bytemuck::cast_slice(&locations(n_expert, slots)),
        )?;
        let counts = buffer(
            ctx,
            "expert counts",
            4 * (n_expert as u64 + 1),
            usage | wgpu::BufferUsages::COPY_SRC,
        );
        Ok(ExpertTable {
            location,
            counts,
            n_expert,
        })
    }
}

/// The location table of pools whose slot `s` holds expert `slots[s]`.
fn locations(n_expert: u32, slots: &[u32]) -> Vec<u32> {
    let mut words = vec![NOT_RESIDENT; n_expert as usize];
    for (slot, &e) in slots.iter().enumerate() {
        if let Some(w) = words.get_mut(e as usize) {
            *w = slot as u32;
        }
    }
    words
}

fn buffer(ctx: &GpuContext, label: &str, size: u64, usage: wgpu::BufferUsages) -> wgpu::Buffer {
    ctx.empty_buffer(&wgpu::BufferDescriptor {
        label: Some(label),
        size: size.max(4),
        usage,
        mapped_at_creation: false,
    })
}

/// A routed-expert tensor ({cols, rows_per_expert, n_expert}): a pool of resident slabs in
/// VRAM and, unless every expert is resident, every expert's slab in host memory.
pub struct ExpertTensor {
    /// One expert's rows.
    pub shape: MatrixShape,
    pub row_bytes: u32,
    /// Slab `s` holds the expert whose location is `s`.
    pub pool: Option<QuantMatrix>,
    /// Slab `e` is expert `e`.
    pub host: Option<QuantMatrix>,
    pub table: ExpertTable,
}

/// One buffer an expert kernel dispatch binds: slabs `first_slab..first_slab + slabs` of the
/// pool (indexed by location) or of the host copy (indexed by expert, read only for the
/// experts the table places nowhere).
#[derive(Clone, Copy)]
pub struct ExpertPiece<'a> {
    pub buffer: &'a wgpu::Buffer,
    pub from_pool: bool,
    pub first_slab: u32,
    pub slabs: u32,
}

impl ExpertTensor {
    /// Every expert resident, in expert order: `w`'s rows are `n_expert` slabs of
    /// `rows_per_expert` (a whole upload, and kernel tests).
    pub fn resident(
        ctx: &GpuContext,
        w: QuantMatrix,
        rows_per_expert: u32,
    ) -> Result<ExpertTensor, GpuError> {
        let n_expert = w.rows / rows_per_expert.max(1);
        let table = ExpertTable::new(ctx, n_expert, n_expert)?;
        Ok(ExpertTensor::with_table(w, rows_per_expert, table))
    }

    /// `w` as the resident pool of every expert under `table` (identity locations).
    pub fn with_table(w: QuantMatrix, rows_per_expert: u32, table: ExpertTable) -> ExpertTensor {
        ExpertTensor {
            shape: MatrixShape {
                ty: w.ty,
                cols: w.cols,
                rows: rows_per_expert,
            },
            row_bytes: w.row_bytes,
            pool: Some(w),
            host: None,
            table,
        }
    }

    pub fn ty(&self) -> crate::loader::quant::GgmlType {
        self.shape.ty
    }

    pub fn cols(&self) -> u32 {
        self.shape.cols
    }

    /// Experts in the tensor: the entries of its location table.
    pub fn n_expert(&self) -> u32 {
        self.table.n_expert
    }

    pub fn rows_per_expert(&self) -> u32 {
        self.shape.rows
    }

    pub fn slab_bytes(&self) -> u64 {
        self.shape.rows as u64 * self.row_bytes as u64
    }

    /// Pool slots (experts resident at once).
    pub fn slots(&self) -> u32 {
        self.pool.as_ref().map_or(0, |p| p.rows / self.shape.rows)
    }

    /// Every buffer a kernel over this tensor binds, one dispatch each: the pool's pieces,
    /// then the host copy's.
    pub fn pieces(&self) -> impl Iterator<Item = ExpertPiece<'_>> {
        let rows = self.shape.rows;
        let pool = self.pool.iter().flat_map(|m| &m.pieces);
        let host = self.host.iter().flat_map(|m| &m.pieces);
        let pool = pool.map(move |p| expert_piece(p, rows, true));
        pool.chain(host.map(move |p| expert_piece(p, rows, false)))
    }

    /// The pool and the host copy as single bindings, as the fused decode kernels read them
    /// (either standing in for a missing other, never read then); `None` when one is split.
    pub fn whole(&self) -> Option<(&wgpu::Buffer, &wgpu::Buffer)> {
        match (single(&self.pool)?, single(&self.host)?) {
            (Some(p), Some(h)) => Some((p, h)),
            (Some(p), None) => Some((p, p)),
            (None, Some(h)) => Some((h, h)),
            (None, None) => None,
        }
    }

    /// `bytes` (a GGUF expert tensor of `n_expert` slabs of `shape`) with every expert in
    /// host memory and pool slot `s` holding expert `slots[s]`, copied there on the GPU;
    /// `table` must place them so ([`ExpertTable::with_slots`]).
    pub fn split(
        ctx: &GpuContext,
        name: &str,
        (shape, n_expert): (MatrixShape, u32),
        bytes: &[u8],
        max_piece: u64,
        (table, slots): (ExpertTable, &[u32]),
    ) -> Result<ExpertTensor, GpuError> {
        let host =
            QuantMatrix::upload_experts_to_host(ctx, name, shape, n_expert, bytes, max_piece)?;
        let slab_bytes = shape.rows as u64 * host.row_bytes as u64;
        if slab_bytes % wgpu::COPY_BUFFER_ALIGNMENT != 0 {
            return Err(GpuError::Shape(format!(
                "{name}: expert slabs of {slab_bytes} bytes are not whole 4-byte words, so they cannot be copied into VRAM"
            )));
        }
        let pool = match slots.len() {
            0 => None,
            n => Some(QuantMatrix::expert_pool(
                ctx, name, shape, n as u32, max_piece,
            )?),
        };
        let tensor = ExpertTensor {
            shape,
            row_bytes: host.row_bytes,
            pool,
            host: Some(host),
            table,
        };
        let mut enc = ctx.device.create_command_encoder(&Default::default());
        for (slot, &e) in slots.iter().enumerate() {
            tensor.record_move(&mut enc, e, slot as u32)?;
        }
        ctx.queue.submit([enc.finish()]);
        Ok(tensor)
    }

    /// Records the copy of expert `e`'s host slab into pool slot `slot`.
    fn record_move(
        &self,
        enc: &mut wgpu::CommandEncoder,
        e: u32,
        slot: u32,
    ) -> Result<(), GpuError> {
        let (Some(host), Some(pool)) = (&self.host, &self.pool) else {
            return Err(GpuError::Shape(
                "moving an expert without a host copy and a pool".into(),
            ));
        };
        let (rows, slab_bytes) = (self.shape.rows, self.slab_bytes());
        let found = (
            slab_at(host, rows, slab_bytes, e),
            slab_at(pool, rows, slab_bytes, slot),
        );
        let (Some((src, from)), Some((dst, to))) = found else {
            return Err(GpuError::Shape(format!(
                "expert {e} or pool slot {slot} out of range"
            )));
        };
        enc.copy_buffer_to_buffer(src, from, dst, to, self.slab_bytes());
        Ok(())
    }
}

/// A matrix's only buffer (`Some(None)` without the matrix), `None` when it is split.
fn single(m: &Option<QuantMatrix>) -> Option<Option<&wgpu::Buffer>> {
    match m.as_ref().map(|m| m.pieces.as_slice()) {
        None => Some(None),
        Some([p]) => Some(Some(&p.buffer)),
        Some(_) => None,
    }
}

/// The buffer holding slab `slab` (of `rows` rows, `slab_bytes` bytes) of `m`, and its
/// byte offset there.
fn slab_at(m: &QuantMatrix, rows: u32, slab_bytes: u64, slab: u32) -> Option<(&wgpu::Buffer, u64)> {
    m.pieces
        .iter()
        .find(|p| p.first_row / rows <= slab && slab < (p.first_row + p.rows) / rows)
        .map(|p| (&p.buffer, (slab - p.first_row / rows) as u64 * slab_bytes))
}

fn expert_piece(p: &MatrixPiece, rows: u32, from_pool: bool) -> ExpertPiece<'_> {
    ExpertPiece {
        buffer: &p.buffer,
        from_pool,
        first_slab: p.first_row / rows,
        slabs: p.rows / rows,
    }
}

/// The expert tensors of one MoE layer.
fn layer_tensors(m: &MoeWeights) -> Vec<&ExpertTensor> {
    match &m.gate_up {
        ExpertGateUp::Fused(gu) => vec![gu, &m.down],
        ExpertGateUp::Separate { gate, up } => vec![gate, up, &m.down],
    }
}

/// The MoE weights of a layer, if it has routed experts.
pub fn moe_of(layer: &LayerWeights) -> Option<&MoeWeights> {
    match &layer.ffn {
        crate::loader::config::FfnTensors::Moe(m) => Some(m),
        crate::loader::config::FfnTensors::Dense { .. } => None,
    }
}

/// Routed reads so far: every use, and those served from host memory.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct ExpertTraffic {
    pub uses: u64,
    pub misses: u64,
    /// Host bytes the misses read.
    pub host_bytes: f64,
    pub replans: u64,
    /// Experts copied into VRAM by re-plans.
    pub moved: u64,
}

impl ExpertTraffic {
    pub fn hit_rate(&self) -> Option<f64> {
        (self.uses > 0).then(|| 1.0 - self.misses as f64 / self.uses as f64)
    }

    /// What happened between `earlier` and `self`.
    pub fn since(&self, earlier: &ExpertTraffic) -> ExpertTraffic {
        ExpertTraffic {
            uses: self.uses - earlier.uses,
            misses: self.misses - earlier.misses,
            host_bytes: self.host_bytes - earlier.host_bytes,
            replans: self.replans - earlier.replans,
            moved: self.moved - earlier.moved,
        }
    }
}

/// One MoE layer's resident set as the host plans it.
struct LayerPlan {
    layer: usize,
    /// Pool slot -> expert.
    slots: Vec<u32>,
    score: Vec<f64>,
    /// Bytes of one expert over the layer's tensors.
    expert_bytes: u64,
}

struct CacheState {
    layers: Vec<LayerPlan>,
    tokens_since_read: u64,
    /// A counts read-back in flight: 0 waiting, 1 mapped, 2 failed.
    pending: Option<Arc<AtomicU8>>,
    traffic: ExpertTraffic,
}

/// The placement of a model's routed experts and the re-planning of its resident sets.
pub struct ExpertCache {
    pub split: ExpertSplit,
    state: Mutex<CacheState>,
    readback: wgpu::Buffer,
    n_expert: u32,
}

impl ExpertCache {
    /// The cache over `layers`' expert tensors as [`upload`](crate::runtime::weights::upload)
    /// placed them: pool slot `s` holds expert `s`.
    pub fn new(ctx: &GpuContext, split: ExpertSplit, layers: &[LayerWeights]) -> ExpertCache {
        let n_expert = split.layers.iter().map(|l| l.n_expert).max().unwrap_or(0);
        let plans: Vec<LayerPlan> = layers
            .iter()
            .enumerate()
            .filter_map(|(i, l)| moe_of(l).map(|m| (i, m)))
            .map(|(layer, m)| {
                let tensors = layer_tensors(m);
                let slots = tensors[0].slots();
                LayerPlan {
                    layer,
                    slots: (0..slots).collect(),
                    score: vec![0.0; m.down.n_expert() as usize],
                    expert_bytes: tensors.iter().map(|t| t.slab_bytes()).sum(),
                }
            })
            .collect();
        let bytes = plans.len() as u64 * 4 * (n_expert as u64 + 1);
        ExpertCache {
            split,
            state: Mutex::new(CacheState {
                layers: plans,
                tokens_since_read: 0,
                pending: None,
                traffic: ExpertTraffic::default(),
            }),
            readback: read_back_buffer(ctx, "expert counts read-back", bytes),
            n_expert,
        }
    }

    /// Whether the resident sets can change: some experts resident, some not.
    fn replans(&self) -> bool {
        self.split.resident > 0 && !self.split.all_resident()
    }

    /// After a submit of `tokens` tokens: starts a counts read-back every
    /// [`REPLAN_TOKENS`] tokens and, once one has mapped, re-plans. Never waits on the GPU.
    pub fn tend(
        &self,
        ctx: &GpuContext,
        layers: &[LayerWeights],
        tokens: u64,
    ) -> Result<(), GpuError> {
        if !self.replans() {
            return Ok(());
        }
        let mut st = self.lock()?;
        st.tokens_since_read += tokens;
        match st.pending.as_ref().map(|p| p.load(Ordering::Acquire)) {
            Some(0) => Ok(()),
            Some(_) => {
                self.absorb_mapped(&mut st)?;
                self.replan(ctx, layers, &mut st)
            }
            None if st.tokens_since_read >= REPLAN_TOKENS => {
                st.tokens_since_read = 0;
                self.start_read(ctx, layers, &mut st);
                Ok(())
            }
            None => Ok(()),
        }
    }

    /// Every routed read so far, waiting for the GPU to finish what was submitted.
    pub fn traffic(
        &self,
        ctx: &GpuContext,
        layers: &[LayerWeights],
    ) -> Result<ExpertTraffic, GpuError> {
        let mut st = self.lock()?;
        // A read-back in flight holds the counts up to its submit; a fresh one takes the rest.
        if st.pending.is_some() {
            self.finish_read(ctx, &mut st)?;
        }
        self.start_read(ctx, layers, &mut st);
        self.finish_read(ctx, &mut st)?;
        Ok(st.traffic)
    }

    /// Waits for the read-back in flight and adds its counts.
    fn finish_read(&self, ctx: &GpuContext, st: &mut CacheState) -> Result<(), GpuError> {
        ctx.wait()?;
        self.absorb_mapped(st)
    }

    /// Adds the counts of the read-back in flight, which has mapped (or failed).
    fn absorb_mapped(&self, st: &mut CacheState) -> Result<(), GpuError> {
        if let Some(p) = st.pending.take() {
            if p.load(Ordering::Acquire) != 1 {
                return Err(GpuError::Device("mapping the expert counts failed".into()));
            }
            let counts = self.take_counts();
            self.absorb(st, &counts);
        }
        Ok(())
    }

    /// Re-plans now from the counts so far, waiting for them (tests, and `bench` after its
    /// warm-up, so that the timed tokens run on a resident set that follows use).
    pub fn replan_now(&self, ctx: &GpuContext, layers: &[LayerWeights]) -> Result<(), GpuError> {
        self.traffic(ctx, layers)?;
        if !self.replans() {
            return Ok(());
        }
        let mut st = self.lock()?;
        self.replan(ctx, layers, &mut st)
    }

    /// Pool slot -> expert of each MoE layer (tests).
    pub fn resident_sets(&self) -> Result<Vec<Vec<u32>>, GpuError> {
        Ok(self
            .lock()?
            .layers
            .iter()
            .map(|l| l.slots.clone())
            .collect())
    }

    /// Puts `experts` (one list per MoE layer, at most the pool's slots) in the pools, in
    /// slot order (tests: a re-plan that moves every slot).
    pub fn place(
        &self,
        ctx: &GpuContext,
        layers: &[LayerWeights],
        experts: &[Vec<u32>],
    ) -> Result<(), GpuError> {
        let mut st = self.lock()?;
        let mut enc = ctx.device.create_command_encoder(&Default::default());
        for (plan, want) in st.layers.iter_mut().zip(experts) {
            if want.len() != plan.slots.len() || want.iter().any(|&e| e >= self.n_expert) {
                return Err(GpuError::Shape(format!(
                    "layer {}: {} experts for {} pool slots",
                    plan.layer,
                    want.len(),
                    plan.slots.len()
                )));
            }
            let m = moe_of(&layers[plan.layer]).ok_or_else(|| not_moe(plan.layer))?;
            for (slot, &e) in want.iter().enumerate() {
                for t in layer_tensors(m) {
                    t.record_move(&mut enc, e, slot as u32)?;
                }
            }
            plan.slots.clone_from(want);
            write_locations(ctx, m, &plan.slots)?;
        }
        ctx.queue.submit([enc.finish()]);
        Ok(())
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, CacheState>, GpuError> {
        self.state
            .lock()
            .map_err(|_| GpuError::Device("the expert cache's lock is poisoned".into()))
    }

    /// Copies every layer's counts to the read-back buffer, clears them and maps it.
    fn start_read(&self, ctx: &GpuContext, layers: &[LayerWeights], st: &mut CacheState) {
        let stride = 4 * (self.n_expert as u64 + 1);
        let mut enc = ctx.device.create_command_encoder(&Default::default());
        for (i, plan) in st.layers.iter().enumerate() {
            if let Some(m) = moe_of(&layers[plan.layer]) {
                let t = &m.down.table;
                let size = 4 * (t.n_expert as u64 + 1);
                enc.copy_buffer_to_buffer(&t.counts, 0, &self.readback, i as u64 * stride, size);
                enc.clear_buffer(&t.counts, 0, None);
            }
        }
        ctx.queue.submit([enc.finish()]);
        let flag = Arc::new(AtomicU8::new(0));
        let done = flag.clone();
        self.readback
            .slice(..)
            .map_async(wgpu::MapMode::Read, move |r| {
                done.store(if r.is_ok() { 1 } else { 2 }, Ordering::Release);
            });
        st.pending = Some(flag);
    }

    /// The mapped counts, per layer `[n_expert + 1]`; unmaps.
    fn take_counts(&self) -> Vec<u32> {
        let counts = self
            .readback
            .slice(..)
            .get_mapped_range()
            .map(|v| bytemuck::pod_collect_to_vec(&v))
            .unwrap_or_default();
        self.readback.unmap();
        counts
    }

    fn absorb(&self, st: &mut CacheState, counts: &[u32]) {
        let stride = self.n_expert as usize + 1;
        for (i, plan) in st.layers.iter_mut().enumerate() {
            let Some(c) = counts.get(i * stride..(i + 1) * stride) else {
                continue;
            };
            let n = plan.score.len();
            for (s, &u) in plan.score.iter_mut().zip(&c[..n]) {
                *s = *s * DECAY + u as f64;
            }
            let uses: u64 = c[..n].iter().map(|&u| u as u64).sum();
            let misses = c[n] as u64;
            st.traffic.uses += uses;
            st.traffic.misses += misses;
            st.traffic.host_bytes += misses as f64 * plan.expert_bytes as f64;
        }
    }

    /// Swaps the most-used host experts into the slots of the least-used resident ones,
    /// within [`MOVE_BYTES`], and writes the changed tables.
    fn replan(
        &self,
        ctx: &GpuContext,
        layers: &[LayerWeights],
        st: &mut CacheState,
    ) -> Result<(), GpuError> {
        let mut budget = MOVE_BYTES;
        let mut enc = ctx.device.create_command_encoder(&Default::default());
        let mut moved = 0;
        // Every copy is recorded before any table write is queued or the host's map changes:
        // a move that cannot be recorded leaves the GPU's tables and the host's map as they
        // were, both still right.
        let mut changed: Vec<(usize, Vec<u32>)> = Vec::new();
        for (i, plan) in st.layers.iter().enumerate() {
            let m = moe_of(&layers[plan.layer]).ok_or_else(|| not_moe(plan.layer))?;
            let mut slots = plan.slots.clone();
            for (slot, e) in plan_moves(&plan.slots, &plan.score) {
                if budget < plan.expert_bytes {
                    break;
                }
                budget -= plan.expert_bytes;
                for t in layer_tensors(m) {
                    t.record_move(&mut enc, e, slot)?;
                }
                slots[slot as usize] = e;
                moved += 1;
            }
            if slots != plan.slots {
                changed.push((i, slots));
            }
        }
        for (i, slots) in changed {
            let plan = &mut st.layers[i];
            let m = moe_of(&layers[plan.layer]).ok_or_else(|| not_moe(plan.layer))?;
            write_locations(ctx, m, &slots)?;
            plan.slots = slots;
        }
        ctx.queue.submit([enc.finish()]);
        st.traffic.replans += 1;
        st.traffic.moved += moved;
        Ok(())
    }
}

fn not_moe(layer: usize) -> GpuError {
    GpuError::Shape(format!("layer {layer} has no routed experts"))
}

/// The (slot, expert) swaps that bring the highest-scoring host experts into the slots of
/// the lowest-scoring resident ones, each by a margin, best first.
fn plan_moves(slots: &[u32], score: &[f64]) -> Vec<(u32, u32)> {
    let resident: std::collections::HashSet<u32> = slots.iter().copied().collect();
    let mut incoming: Vec<u32> = (0..score.len() as u32)
        .filter(|e| !resident.contains(e) && score[*e as usize] > 0.0)
        .collect();
    incoming.sort_by(|a, b| score[*b as usize].total_cmp(&score[*a as usize]));
    let mut outgoing: Vec<u32> = (0..slots.len() as u32).collect();
    outgoing.sort_by(|a, b| {
        score[slots[*a as usize] as usize].total_cmp(&score[slots[*b as usize] as usize])
    });
    incoming
        .into_iter()
        .zip(outgoing)
        .take_while(|&(e, slot)| {
            score[e as usize] > HYSTERESIS * score[slots[slot as usize] as usize]
        })
        .map(|(e, slot)| (slot, e))
        .collect()
}

/// Writes a layer's location table from its slot -> expert map (queued before the next
/// submit, so the step after the copies reads them).
fn write_locations(ctx: &GpuContext, m: &MoeWeights, slots: &[u32]) -> Result<(), GpuError> {
    let t = &m.down.table;
    ctx.write_buffer(
        &t.location,
        0,
        bytemuck::cast_slice(&locations(t.n_expert, slots)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moves_bring_the_most_used_experts_into_the_least_used_slots() {
        // Slots hold experts 0 and 1; expert 3 is used most, expert 0 least.
        let score = [1.0, 8.0, 0.0, 20.0, 5.0];
        assert_eq!(plan_moves(&[0, 1], &score), vec![(0, 3)]);
        // Within the margin nothing moves.
        let score = [4.0, 8.0, 0.0, 4.5];
        assert!(plan_moves(&[0, 1], &score).is_empty());
    }
}
