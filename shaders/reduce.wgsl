// Workgroup-wide sum and max over WG invocations (WG is a prelude constant, a power of two).
// With subgroups, each subgroup reduces in registers and one value per subgroup goes through
// workgroup memory; without, a tree in workgroup memory. Call from uniform control flow.

var<workgroup> reduce_scratch: array<f32, WG>;

#if SUBGROUPS
fn workgroup_sum(v: f32, lid: u32, sg_size: u32, sg_lane: u32) -> f32 {
    let partial = subgroupAdd(v);
    if sg_lane == 0u {
        reduce_scratch[lid / sg_size] = partial;
    }
    workgroupBarrier();
    var total = 0.0;
    for (var i = 0u; i < WG / sg_size; i++) {
        total += reduce_scratch[i];
    }
    workgroupBarrier();
    return total;
}

fn workgroup_max(v: f32, lid: u32, sg_size: u32, sg_lane: u32) -> f32 {
    let partial = subgroupMax(v);
    if sg_lane == 0u {
        reduce_scratch[lid / sg_size] = partial;
    }
    workgroupBarrier();
    var best = reduce_scratch[0];
    for (var i = 1u; i < WG / sg_size; i++) {
        best = max(best, reduce_scratch[i]);
    }
    workgroupBarrier();
    return best;
}
#else
fn workgroup_sum(v: f32, lid: u32, sg_size: u32, sg_lane: u32) -> f32 {
    reduce_scratch[lid] = v;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s >>= 1u) {
        if lid < s {
            reduce_scratch[lid] += reduce_scratch[lid + s];
        }
        workgroupBarrier();
    }
    let total = reduce_scratch[0];
    workgroupBarrier();
    return total;
}

fn workgroup_max(v: f32, lid: u32, sg_size: u32, sg_lane: u32) -> f32 {
    reduce_scratch[lid] = v;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s >>= 1u) {
        if lid < s {
            reduce_scratch[lid] = max(reduce_scratch[lid], reduce_scratch[lid + s]);
        }
        workgroupBarrier();
    }
    let best = reduce_scratch[0];
    workgroupBarrier();
    return best;
}
#endif
