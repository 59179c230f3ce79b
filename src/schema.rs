//! The JSON Schema of the plan format, generated from the model types.

use crate::model::PlanFile;

/// The schema as pretty JSON, as checked in at `schemas/plan-v1.schema.json`.
pub fn schema_json() -> String {
    let mut schema = schemars::schema_for!(PlanFile);
    schema.insert("$id".into(), "https://plan.invalid/schemas/plan-v1.schema.json".into());
    let mut s = serde_json::to_string_pretty(&schema).unwrap_or_default();
    s.push('\n');
    s
}
