//! Realizing recorded ops: the one execution model both backends share.
//!
//! The pending nodes behind the requested tensors are put in topological order and handed to
//! their device's backend one by one. After each op runs, an input whose node nobody holds any
//! more (no pending op, no user handle) drops its storage at once, so a GPU buffer returns to the
//! pool in time to be reused by a later dispatch of the same submission.

use std::sync::Arc;

use rustc_hash::FxHashSet;

use crate::device::{Device, Storage};
use crate::ops::Op;
use crate::tensor::{HostData, Node, NodeState, Tensor};
use crate::{Error, Result, cpu};

/// Pending nodes reachable from `outputs`, inputs before the ops that use them.
fn topological_order(outputs: &[&Tensor]) -> Vec<Arc<Node>> {
    let mut order = Vec::new();
    let mut seen = FxHashSet::default();
    // Iterative DFS: graphs of deep models would overflow the stack of a wasm instance if recursive.
    let mut stack: Vec<(Arc<Node>, bool)> = outputs.iter().rev().map(|t| (t.node.clone(), false)).collect();
    while let Some((node, children_done)) = stack.pop() {
        if children_done {
            order.push(node);
            continue;
        }
        if !seen.insert(node.id) {
            continue;
        }
        let inputs: Vec<Arc<Node>> = match &*node.state() {
            NodeState::Pending(op) => op.inputs().iter().map(|t| t.node.clone()).collect(),
            _ => continue,
        };
        stack.push((node, true));
        for input in inputs.into_iter().rev() {
            if !seen.contains(&input.id) {
                stack.push((input, false));
            }
        }
    }
    order
}

/// One op ready to run: its node, the op taken out of it, and its inputs' storages.
pub(crate) struct Step<'a> {
    pub node: &'a Node,
    pub op: &'a Op,
    pub inputs: Vec<Storage>,
}

/// Runs `order` with `exec` (the backend), keeping storage only where something still needs it.
fn drive(order: &[Arc<Node>], mut exec: impl FnMut(Step<'_>) -> Result<Storage>) -> Result<()> {
    let pending: FxHashSet<u64> = order.iter().map(|n| n.id).collect();
    for node in order {
        let op = match std::mem::replace(&mut *node.state(), NodeState::Running) {
            NodeState::Pending(op) => op,
            other => {
                *node.state() = other;
                continue;
            }
        };
        let mut inputs = Vec::new();
        for t in op.inputs() {
            match t.node.storage() {
                Some(s) => inputs.push(s),
                None => {
                    let name = op.name();
                    *node.state() = NodeState::Pending(op);
                    return Err(Error::Input(format!("{name}: an input was released before use (engine bug)")));
                }
            }
        }
        let result = exec(Step { node, op: &op, inputs });
        let storage = match result {
            Ok(s) => s,
            Err(e) => {
                *node.state() = NodeState::Pending(op);
                return Err(e);
            }
        };
        *node.state() = NodeState::Ready(storage);
        let input_nodes: Vec<Arc<Node>> = op.inputs().iter().map(|t| t.node.clone()).collect();
        drop(op);
        for input in input_nodes {
            // Held by: `order`, this local `input_nodes` entry, and nothing else means dead.
            if pending.contains(&input.id) && Arc::strong_count(&input) <= 2 {
                *input.state() = NodeState::Released;
            }
        }
    }
    Ok(())
}

fn single_device(tensors: &[&Tensor]) -> Result<Option<Device>> {
    let Some(first) = tensors.first() else { return Ok(None) };
    if tensors.iter().any(|t| !t.device().same(first.device())) {
        return Err(Error::DeviceMismatch("realize"));
    }
    Ok(Some(first.device().clone()))
}

pub(crate) async fn realize(tensors: &[&Tensor]) -> Result<()> {
    let Some(device) = single_device(tensors)? else { return Ok(()) };
    let order = topological_order(tensors);
    match device {
        Device::Cpu => cpu::parallel::on_pool(|| drive(&order, cpu::execute)),
        Device::Gpu(gpu) => {
            let mut run = gpu.begin_run();
            drive(&order, |step| run.record(step))?;
            run.submit(&[]).await.map(|_| ())
        }
    }
}

/// Realizes and reads back: plain f32/u32 values in row-major order of each tensor's view.
pub(crate) async fn read(tensors: &[&Tensor]) -> Result<Vec<HostData>> {
    let Some(device) = single_device(tensors)? else { return Ok(Vec::new()) };
    // Reads need dense views of readable types; anything else gets a copy recorded first.
    let dense: Vec<Tensor> = tensors
        .iter()
        .map(|t| match t.dtype() {
            crate::DType::F32 | crate::DType::U32 => t.contiguous(),
            _ => t.to_dtype(crate::DType::F32),
        })
        .collect::<Result<_>>()?;
    let refs: Vec<&Tensor> = dense.iter().collect();
    let order = topological_order(&refs);
    match device {
        Device::Cpu => {
            cpu::parallel::on_pool(|| drive(&order, cpu::execute))?;
            dense.iter().map(cpu::read).collect()
        }
        Device::Gpu(gpu) => {
            let mut run = gpu.begin_run();
            drive(&order, |step| run.record(step))?;
            run.submit(&refs).await
        }
    }
}
