//! The dispatcher: decides. It knows which steps are ready, done, blocked
//! or pending, picks the next step to start (rendering it with the captures
//! it may read), and applies a step's end to its dependents. It runs nothing
//! and writes nothing: the executor and the journal act on its decisions.

use std::borrow::Cow;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::time::Duration;

use serde_json::Value;

use super::{Options, Outcome};
use crate::compile::Compiled;
use crate::render::{RenderedStep, mask, render_step};
use crate::status::{RunStatus, Status};
use crate::template::Renderer;

/// What the dispatcher decided about a ready step.
pub(super) enum Decision {
    /// Start it, exactly as rendered.
    Start(usize, RenderedStep),
    /// It ends without running (`--skip`, `when` false, a template that does
    /// not render): journal and report it, then [`Dispatcher::finish`] it.
    Settle { step: usize, status: Status, message: String },
}

pub(super) struct Dispatcher<'a> {
    c: &'a Compiled,
    opts: &'a Options,
    /// Needs not yet done, per step.
    waiting_on: Vec<usize>,
    status: Vec<Option<Status>>,
    durations: Vec<Option<Duration>>,
    captures: HashMap<String, String>,
    ready: BinaryHeap<Reverse<usize>>,
    /// No new step starts (a failure without `--keep-going`, or a signal).
    stop_new: bool,
    interrupted: bool,
    failed: bool,
    /// The first signal that stopped the run.
    signal: Option<i32>,
}

impl<'a> Dispatcher<'a> {
    pub(super) fn new(c: &'a Compiled, opts: &'a Options) -> Self {
        let n = c.steps.len();
        let waiting_on: Vec<usize> = (0..n).map(|i| c.graph.needs(i).count()).collect();
        let ready = (0..n).filter(|&i| waiting_on[i] == 0).map(Reverse).collect();
        Dispatcher {
            c,
            opts,
            waiting_on,
            status: vec![None; n],
            durations: vec![None; n],
            captures: HashMap::new(),
            ready,
            stop_new: false,
            interrupted: false,
            failed: false,
            signal: None,
        }
    }

    /// The next decision while fewer than `--jobs` steps are `busy`; `None`
    /// when no step may start now.
    pub(super) fn next(
        &mut self,
        busy: usize,
        base_ctx: &Value,
        renderer: &Renderer,
        secrets: &[String],
    ) -> Option<Decision> {
        while !self.stop_new && busy < self.opts.jobs.max(1) {
            let Reverse(i) = self.ready.pop()?;
            if self.status[i].is_some() {
                continue;
            }
            let decl = &self.c.steps[i].decl;
            if let Some(e) = self.opts.earlier.get(&i) {
                if let (Some(cap), Some(v)) = (&decl.capture, &e.capture) {
                    self.captures.insert(cap.value.clone(), v.clone());
                }
                // A success releases its dependents and blocks nothing.
                let _ = self.finish(i, Status::Succeeded);
                continue;
            }
            if self.opts.only.as_ref().is_some_and(|o| !o.contains(&i)) {
                self.status[i] = Some(Status::Pending);
                continue;
            }
            if self.opts.skip.contains(&i) {
                return Some(Decision::Settle { step: i, status: Status::Skipped, message: "--skip".into() });
            }
            let rendered = match render_step(&self.c.steps[i], &self.context(base_ctx), renderer) {
                Ok(r) => r,
                // Never run a half-rendered command: the step fails before it starts.
                Err(e) => {
                    let message = mask(&format!("cannot render: {e}"), secrets);
                    return Some(Decision::Settle { step: i, status: Status::Failed, message });
                }
            };
            if rendered.when == Some(false) {
                return Some(Decision::Settle { step: i, status: Status::Skipped, message: "`when` is false".into() });
            }
            return Some(Decision::Start(i, rendered));
        }
        None
    }

    /// The template context for a step: the run's values and the captures so far.
    fn context<'v>(&self, base_ctx: &'v Value) -> Cow<'v, Value> {
        if self.captures.is_empty() {
            return Cow::Borrowed(base_ctx);
        }
        let mut v = base_ctx.clone();
        if let Value::Object(m) = &mut v {
            for (k, val) in &self.captures {
                m.insert(k.clone(), Value::String(val.clone()));
            }
        }
        Cow::Owned(v)
    }

    /// Records a step's end: its dependents become ready, or, after a
    /// failure, blocked. Returns the steps it blocked, for the journal.
    pub(super) fn finish(&mut self, i: usize, st: Status) -> Vec<usize> {
        self.status[i] = Some(st);
        let mut blocked = Vec::new();
        if st.releases_dependents() {
            for d in self.c.graph.dependents(i) {
                self.waiting_on[d] -= 1;
                if self.waiting_on[d] == 0 {
                    self.ready.push(Reverse(d));
                }
            }
        } else if st == Status::Failed {
            self.failed = true;
            if !self.opts.keep_going {
                self.stop_new = true;
            }
            let mut stack: Vec<usize> = self.c.graph.dependents(i).collect();
            while let Some(d) = stack.pop() {
                if self.status[d].is_none() {
                    self.status[d] = Some(Status::Blocked);
                    blocked.push(d);
                    stack.extend(self.c.graph.dependents(d));
                }
            }
        } else if st == Status::Interrupted {
            self.interrupted = true;
        }
        blocked
    }

    /// A step that ran: its duration and capture, then [`Self::finish`].
    pub(super) fn ran(&mut self, i: usize, st: Status, duration: Duration, capture: Option<&String>) -> Vec<usize> {
        self.durations[i] = Some(duration);
        if let (Some(cap), Some(v)) = (&self.c.steps[i].decl.capture, capture) {
            self.captures.insert(cap.value.clone(), v.clone());
        }
        self.finish(i, st)
    }

    /// The journal failed: no new step starts, and the run fails.
    pub(super) fn halt(&mut self) {
        self.stop_new = true;
        self.failed = true;
    }

    /// A signal: no new step starts, and the run ends interrupted.
    pub(super) fn interrupt(&mut self, signal: i32) {
        self.interrupted = true;
        self.stop_new = true;
        self.signal.get_or_insert(signal);
    }

    /// Every step's end state, in run order, and the run's.
    pub(super) fn outcome(&self) -> Outcome {
        let c = self.c;
        let steps: Vec<(String, Status, Option<Duration>)> = c
            .graph
            .order
            .iter()
            .map(|&i| (c.steps[i].decl.id.value.clone(), self.status[i].unwrap_or(Status::Pending), self.durations[i]))
            .collect();
        let pending = steps.iter().any(|s| s.1 == Status::Pending) && self.opts.only.is_none();
        let status = if self.interrupted {
            RunStatus::Interrupted
        } else if self.failed || pending {
            RunStatus::Failed
        } else {
            RunStatus::Succeeded
        };
        Outcome { status, steps, signal: self.signal }
    }
}
