//! GPU tests of directly recorded steps, run again under Vulkan's synchronization
//! validation. Lavapipe runs a step's commands in order whatever its barriers say, so these
//! tests' tokens cannot show a missing barrier; the layer can (a step recorded without its
//! barriers between dependent dispatches reports SYNC-HAZARD-READ-AFTER-WRITE). Each test
//! runs in a child process of this binary with the layer's environment, and any report
//! fails it. Without the layer (`vulkan-validationlayers`) they are skipped with a note,
//! except under CI, which installs it.

use std::process::Command;

use crate::common::{validation_reports, SYNC_VALIDATION_ENV};

/// Runs the test `name` of this binary in a child process under the layer.
fn under_validation(name: &str) {
    let out = Command::new(std::env::current_exe().expect("the test binary"))
        .args([name, "--exact", "--nocapture", "--test-threads", "1"])
        .envs(SYNC_VALIDATION_ENV)
        .output()
        .expect("the test binary runs");
    let all = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "{name} under validation failed: {all}"
    );
    assert!(all.contains("1 passed"), "{name} did not run: {all}");
    if let Some(reports) = validation_reports(&all) {
        assert!(reports.is_empty(), "{name}: {reports:#?}");
    }
}

/// A batched step's rows recorded stage by stage, with one barrier a stage, its feeds'
/// copies together, and the sessions' draws (greedy, top-k, penalised).
#[test]
fn batched_steps_pass_synchronization_validation() {
    under_validation("batched::a_batched_step_draws_what_each_session_draws_alone");
}

/// Decode steps of both kernel forms and both recorders, replayed and recorded again as
/// their attention grid grows; pipelined steps feeding the penalty's window.
#[test]
fn replayed_decode_steps_pass_synchronization_validation() {
    under_validation("executor::decode_steps_are_replayed_until_their_attention_grid_grows");
    under_validation("executor::penalised_pipelined_steps_are_replayed");
    under_validation(
        "pipelined::pipelined_decode_draws_the_unpipelined_tokens_and_leaves_the_same_state",
    );
}
