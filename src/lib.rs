//! `plan`: runs upgrade procedures written as declarative YAML plans.
//!
//! The stages, in the order data flows through them:
//! [`load`] (bytes to typed plan with spans) → [`resolve`] (plan path,
//! `extends`) → [`compile`] + [`graph`] (merge, check, DAG) → [`bind`]
//! (variables, facts, release window) → [`render`] → `show` / `run`.

pub mod bind;
pub(crate) mod builtin;
pub mod cli;
pub(crate) mod code;
pub(crate) mod compile;
pub mod diagnostic;
pub mod error;
pub mod export;
pub(crate) mod graph;
pub mod journal;
pub mod lint;
pub mod load;
pub mod logs;
pub(crate) mod model;
pub mod output;
pub mod prepare;
pub(crate) mod process;
pub mod render;
pub(crate) mod reporter;
pub mod resolve;
pub mod review;
pub mod run;
pub mod scheduler;
pub mod schema;
pub mod secrets;
pub mod show;
pub(crate) mod spawn;
pub mod status;
pub mod template;
