//! The graph: one function turns the merged steps into a petgraph DAG.
//! Every command (lint, show, graph, run) uses it.
//!
//! Nothing here recurses: a 10,000-step chain must not overflow the stack.

use crate::code::Code;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};

use petgraph::Direction;
use petgraph::graph::{DiGraph, NodeIndex};
use petgraph::visit::EdgeRef;

use crate::diagnostic::Diagnostic;
use crate::model::{Name, Pos, StepDecl};

/// A step's id, its `needs` with positions, and its file, for building the graph.
pub struct Node<'a> {
    pub decl: &'a StepDecl,
    pub file: &'a crate::diagnostic::SourceFile,
}

/// Edges run from a need to the step that needs it. Node weights are indices into the step list.
#[derive(Debug, Clone, Default)]
pub struct Graph {
    pub dag: DiGraph<usize, ()>,
    /// Step index by id (the first declaration wins).
    pub index: HashMap<String, usize>,
    /// A topological order (declaration order among ready steps); empty if there is a cycle.
    pub order: Vec<usize>,
    pub has_cycle: bool,
}

impl Graph {
    /// Indices of the steps a step directly needs.
    pub fn needs(&self, step: usize) -> impl Iterator<Item = usize> + '_ {
        self.dag.neighbors_directed(NodeIndex::new(step), Direction::Incoming).map(|n| n.index())
    }

    /// Indices of the steps that directly need a step.
    pub fn dependents(&self, step: usize) -> impl Iterator<Item = usize> + '_ {
        self.dag.neighbors_directed(NodeIndex::new(step), Direction::Outgoing).map(|n| n.index())
    }

    /// Whether `ancestor` is reached from `step` by following needs.
    pub fn depends_on(&self, step: usize, ancestor: usize) -> bool {
        let mut seen = vec![false; self.dag.node_count()];
        let mut stack: Vec<usize> = self.needs(step).collect();
        while let Some(s) = stack.pop() {
            if s == ancestor {
                return true;
            }
            if !std::mem::replace(&mut seen[s], true) {
                stack.extend(self.needs(s));
            }
        }
        false
    }
}

/// A `needs` or `before` entry that names no step of the graph.
pub struct Unresolved<'a> {
    pub step: usize,
    pub entry: &'a Name,
    pub is_need: bool,
}

/// Builds the DAG, reporting `duplicate-step` and `dependency-cycle`; entries
/// naming no step are returned for the caller to report (it knows which plans
/// are out of scope).
pub fn build<'a>(nodes: &[Node<'a>], diags: &mut Vec<Diagnostic>) -> (Graph, Vec<Unresolved<'a>>) {
    let mut g = Graph::default();
    let mut unresolved = Vec::new();
    for (i, n) in nodes.iter().enumerate() {
        g.dag.add_node(i);
        let id = &n.decl.id;
        if let Some(&first) = g.index.get(&id.value) {
            let f = &nodes[first];
            diags.push(
                Diagnostic::error(Code::DuplicateStep, n.file, id.pos, format!("duplicate step id `{}`", id.value))
                    .with_help(format!(
                        "`{}` is already defined at {}:{}:{}; rename one of them",
                        id.value, f.file.name, f.decl.id.pos.line, f.decl.id.pos.column
                    )),
            );
        } else {
            g.index.insert(id.value.clone(), i);
        }
    }
    // The position of the entry that made each edge, to point a cycle at the one that closes it.
    let mut edge_pos: HashMap<(usize, usize), Pos> = HashMap::new();
    for (i, n) in nodes.iter().enumerate() {
        // `needs: [j]` is the edge j -> i; `before: [j]` is i -> j.
        let entries = n.decl.needs.iter().map(|e| (e, true)).chain(n.decl.before.iter().map(|e| (e, false)));
        for (entry, is_need) in entries {
            match g.index.get(&entry.value) {
                Some(&j) => {
                    let (from, to) = if is_need { (j, i) } else { (i, j) };
                    if edge_pos.insert((from, to), entry.pos).is_none() {
                        g.dag.add_edge(NodeIndex::new(from), NodeIndex::new(to), ());
                    }
                }
                None => unresolved.push(Unresolved { step: i, entry, is_need }),
            }
        }
    }
    report_cycles(&mut g, nodes, &edge_pos, diags);
    if !g.has_cycle {
        g.order = topo_order(&g.dag);
    }
    (g, unresolved)
}

fn report_cycles(g: &mut Graph, nodes: &[Node], edge_pos: &HashMap<(usize, usize), Pos>, diags: &mut Vec<Diagnostic>) {
    let mut in_scc = vec![usize::MAX; g.dag.node_count()];
    let sccs = petgraph::algo::kosaraju_scc(&g.dag);
    let mut cycles = Vec::new();
    for (k, scc) in sccs.iter().enumerate() {
        let self_loop = scc.len() == 1 && g.dag.contains_edge(scc[0], scc[0]);
        if scc.len() > 1 || self_loop {
            for n in scc {
                in_scc[n.index()] = k;
            }
            cycles.push(k);
        }
    }
    for k in cycles {
        g.has_cycle = true;
        let start = sccs[k].iter().map(|n| n.index()).min().unwrap_or(0);
        // Shortest way round through `start`, walking needs (incoming edges), inside the SCC.
        let mut prev = vec![usize::MAX; g.dag.node_count()];
        let mut queue = VecDeque::from([start]);
        let mut closing = None;
        'bfs: while let Some(s) = queue.pop_front() {
            for e in g.dag.edges_directed(NodeIndex::new(s), Direction::Incoming) {
                let t = e.source().index();
                if in_scc[t] != k {
                    continue;
                }
                if t == start {
                    closing = Some(s);
                    break 'bfs;
                }
                if prev[t] == usize::MAX {
                    prev[t] = s;
                    queue.push_back(t);
                }
            }
        }
        let Some(last) = closing else { continue };
        let mut path = vec![last];
        let mut cur = last;
        while cur != start {
            cur = prev[cur];
            path.push(cur);
        }
        path.reverse(); // start, ..., last; each needs the next; last needs start
        let mut names: Vec<&str> = path.iter().map(|&i| nodes[i].decl.id.value.as_str()).collect();
        names.push(nodes[start].decl.id.value.as_str());
        let first_need = if path.len() > 1 { path[1] } else { start };
        let pos = edge_pos.get(&(first_need, start)).copied().unwrap_or(nodes[start].decl.id.pos);
        diags.push(
            Diagnostic::error(
                Code::DependencyCycle,
                nodes[start].file,
                pos,
                format!("dependency cycle: {}", names.join(" -> ")),
            )
            .with_help("remove one of these `needs` entries to break the cycle"),
        );
    }
}

/// Kahn's algorithm; among ready steps the one declared first goes first, so order is stable.
fn topo_order(dag: &DiGraph<usize, ()>) -> Vec<usize> {
    let mut indeg: Vec<usize> =
        dag.node_indices().map(|n| dag.neighbors_directed(n, Direction::Incoming).count()).collect();
    let mut ready: BinaryHeap<Reverse<usize>> =
        indeg.iter().enumerate().filter(|(_, d)| **d == 0).map(|(i, _)| Reverse(i)).collect();
    let mut order = Vec::with_capacity(indeg.len());
    while let Some(Reverse(i)) = ready.pop() {
        order.push(i);
        for n in dag.neighbors_directed(NodeIndex::new(i), Direction::Outgoing) {
            indeg[n.index()] -= 1;
            if indeg[n.index()] == 0 {
                ready.push(Reverse(n.index()));
            }
        }
    }
    order
}
