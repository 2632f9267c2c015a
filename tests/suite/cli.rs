//! The `qwen-wgpu` binary as a user runs it.

use std::process::Command;

use crate::common::{binary, binary_or_skip, validation_reports, SYNC_VALIDATION_ENV};

fn qwen_wgpu(args: &[&str]) -> (bool, String, String) {
    qwen_wgpu_with(args, &[])
}

/// `qwen_wgpu` with extra environment variables.
fn qwen_wgpu_with(args: &[&str], env: &[(&str, &str)]) -> (bool, String, String) {
    let out = Command::new(binary())
        .args(args)
        .env(
            "XDG_CACHE_HOME",
            std::env::temp_dir().join("qwen-wgpu-cli-test"),
        )
        .envs(env.iter().copied())
        .output()
        .expect("the binary runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn inspect_preset_235b_shows_its_parameter_counts() {
    if !binary_or_skip() {
        return;
    }
    let (ok, out, err) = qwen_wgpu(&["inspect", "--preset", "qwen3-235b-a22b"]);
    assert!(ok, "{err}");
    assert!(out.contains("235.09 B total, 22.19 B active"), "{out}");
    assert!(out.contains("A x 94"), "{out}");
}

#[test]
fn inspect_json_carries_the_algebra() {
    if !binary_or_skip() {
        return;
    }
    let (ok, out, err) = qwen_wgpu(&[
        "inspect",
        "--preset",
        "qwen3.5-35b-a3b",
        "--context",
        "8192",
        "--bandwidth",
        "1000GB/s",
        "--json",
    ]);
    assert!(ok, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        v["schedule"],
        "LLLA LLLA LLLA LLLA LLLA LLLA LLLA LLLA LLLA LLLA"
    );
    // 10 attention layers x 2 KV heads x 256 x 2 (K, V) x 2 bytes.
    assert_eq!(v["kv_bytes_per_token"], 20480);
    assert_eq!(v["kv_bytes_at_context"], 20480 * 8192);
    let total = v["params_total"].as_f64().unwrap();
    assert!((34e9..36e9).contains(&total), "{total}");
    let tps = v["roofline"]["decode_tokens_per_s"].as_f64().unwrap();
    let bytes = v["decode_bytes_per_token"].as_f64().unwrap();
    assert!((tps - 1e12 / bytes).abs() < 1e-6 * tps);
}

#[test]
fn inspect_a_synthetic_file_and_the_demo() {
    if !binary_or_skip() {
        return;
    }
    let dir = std::env::temp_dir().join(format!("qwen-wgpu-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("tiny.gguf");
    let p = path.to_str().unwrap();
    let (ok, _, err) = qwen_wgpu(&[
        "synth",
        "--preset",
        "tiny-qwen3moe",
        "-o",
        p,
        "--type",
        "bf16",
    ]);
    assert!(ok, "{err}");
    let (ok, out, err) = qwen_wgpu(&["inspect", p]);
    assert!(ok, "{err}");
    assert!(
        out.contains("tiny-qwen3moe (qwen3moe)") && out.contains("bf16"),
        "{out}"
    );
    let (ok, out, err) = qwen_wgpu(&["inspect", "--demo"]);
    assert!(ok, "{err}");
    assert!(out.contains("LLLA"), "{out}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bad_input_gets_a_clear_error_not_a_panic() {
    if !binary_or_skip() {
        return;
    }
    let dir = std::env::temp_dir().join(format!("qwen-wgpu-cli-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("not-a-model.gguf");
    std::fs::write(&path, b"GGUF\x03\x00\x00\x00").unwrap();
    let (ok, _, err) = qwen_wgpu(&["inspect", path.to_str().unwrap()]);
    assert!(!ok);
    assert!(
        err.starts_with("error: file truncated: tensor count at byte 8"),
        "{err}"
    );
    assert!(!err.contains("panicked"));

    let (ok, _, err) = qwen_wgpu(&["inspect", dir.join("missing.gguf").to_str().unwrap()]);
    assert!(
        !ok && err.contains("cannot open") && err.contains("missing.gguf"),
        "{err}"
    );

    let (ok, _, err) = qwen_wgpu(&["inspect", "--preset", "qwen9"]);
    assert!(!ok && err.contains("unknown preset 'qwen9'"), "{err}");

    let (ok, _, err) = qwen_wgpu(&[
        "inspect",
        "--preset",
        "qwen3-30b-a3b",
        "--bandwidth",
        "fast",
    ]);
    assert!(!ok && err.contains("'fast'"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn logits_and_perplexity_run_on_the_reference() {
    if !binary_or_skip() {
        return;
    }
    let dir = std::env::temp_dir().join(format!("qwen-wgpu-cli-lp-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let model = dir.join("m.gguf");
    let m = model.to_str().unwrap();
    let (ok, _, err) = qwen_wgpu(&["synth", "--preset", "tiny-qwen35", "-o", m]);
    assert!(ok, "{err}");
    let npy = dir.join("l.npy");
    let (ok, _, err) = qwen_wgpu(&[
        "logits",
        "-m",
        m,
        "--tokens",
        "1,2,3",
        "-o",
        npy.to_str().unwrap(),
    ]);
    assert!(ok, "{err}");
    let bytes = std::fs::read(&npy).unwrap();
    assert_eq!(&bytes[..6], b"\x93NUMPY");
    let header_len = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
    assert!(String::from_utf8_lossy(&bytes[10..10 + header_len]).contains("(3, 263)"));
    assert_eq!(bytes.len(), 10 + header_len + 3 * 263 * 4);

    let (ok, _, err) = qwen_wgpu(&[
        "logits",
        "-m",
        m,
        "--tokens",
        "1,999",
        "-o",
        npy.to_str().unwrap(),
    ]);
    assert!(!ok && err.contains("token id 999"), "{err}");

    let text = dir.join("t.txt");
    std::fs::write(
        &text,
        "the quick brown fox jumps over the lazy dog. ".repeat(20),
    )
    .unwrap();
    let (ok, out, err) = qwen_wgpu(&[
        "perplexity",
        "-m",
        m,
        "-f",
        text.to_str().unwrap(),
        "--ctx",
        "64",
    ]);
    assert!(ok, "{err}");
    assert!(
        out.starts_with("[1]") && out.contains("Final estimate: PPL = "),
        "{out}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Every token's logits of a 256-token step at the real 248k vocabulary are 254 MB, past
/// lavapipe's 128 MiB binding: perplexity takes shorter steps (128 tokens there) rather
/// than failing, whatever `--ubatch` asks.
#[test]
fn perplexity_at_the_real_vocabulary_fits_its_steps_to_the_binding() {
    if !binary_or_skip() {
        return;
    }
    let dir = std::env::temp_dir().join(format!("qwen-wgpu-cli-pv-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let text = dir.join("t.txt");
    std::fs::write(
        &text,
        "the quick brown fox jumps over the lazy dog. ".repeat(30),
    )
    .unwrap();
    let (ok, out, err) = qwen_wgpu(&[
        "perplexity",
        "--demo",
        "-f",
        text.to_str().unwrap(),
        "--ctx",
        "256",
        "--ubatch",
        "512",
    ]);
    assert!(ok, "{err}");
    assert!(out.contains("Final estimate: PPL = "), "{out}");
    std::fs::remove_dir_all(&dir).unwrap();
}

fn qwen_wgpu_stdin(args: &[&str], stdin: &str) -> (bool, String, String) {
    use std::io::Write;
    let mut child = Command::new(binary())
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("the binary runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn npy_values(path: &std::path::Path) -> Vec<f32> {
    let bytes = std::fs::read(path).unwrap();
    let header_len = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
    bytemuck::pod_collect_to_vec(&bytes[10 + header_len..])
}

/// A tiny synthetic qwen35moe in q8_0, written by `synth` into a fresh temporary folder
/// named after `tag`: the folder and the file.
fn tiny_model(tag: &str) -> (std::path::PathBuf, std::path::PathBuf) {
    let dir = std::env::temp_dir().join(format!("qwen-wgpu-cli-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let model = dir.join("m.gguf");
    let m = model.to_str().unwrap();
    let synth = [
        "synth",
        "--preset",
        "tiny-qwen35moe",
        "--type",
        "q8_0",
        "-o",
        m,
    ];
    let (ok, _, err) = qwen_wgpu(&synth);
    assert!(ok, "{err}");
    (dir, model)
}

/// run, chat, bench and the GPU/CPU logits on a tiny synthetic model, as a user calls them.
#[test]
fn run_chat_bench_and_gpu_logits() {
    if !binary_or_skip() {
        return;
    }
    let (dir, model) = tiny_model("run");
    let m = model.to_str().unwrap();

    // Greedy generation is deterministic; a seeded draw repeats with its seed.
    let greedy = ["run", "-m", m, "-p", "hello", "-n", "12", "--temp", "0"];
    let (ok, out1, err) = qwen_wgpu(&greedy);
    assert!(ok, "{err}");
    assert!(err.contains("tok/s") && err.contains("generated"), "{err}");
    let (_, out2, _) = qwen_wgpu(&greedy);
    assert_eq!(out1, out2);
    let seeded = [
        "run",
        "-m",
        m,
        "-p",
        "hello",
        "-n",
        "12",
        "--seed",
        "9",
        "--repeat-penalty",
        "1.2",
    ];
    let (ok, s1, err) = qwen_wgpu(&seeded);
    assert!(ok, "{err}");
    assert_eq!(s1, qwen_wgpu(&seeded).1);

    // A chat keeps its state across turns; /stats and /reset answer.
    let (ok, _, err) = qwen_wgpu_stdin(
        &["chat", "-m", m, "-n", "6", "--temp", "0"],
        "hello\nand again\n/stats\n/reset\nhello\n/exit\n",
    );
    assert!(ok, "{err}");
    assert!(
        err.contains("context ") && err.contains("dispatches per token"),
        "{err}"
    );
    assert!(err.contains("(conversation reset)"), "{err}");

    // bench --json carries the speeds, the roofline and the memory.
    let (ok, out, err) = qwen_wgpu(&[
        "bench",
        "-m",
        m,
        "-p",
        "16",
        "-n",
        "16",
        "-r",
        "2",
        "--json",
        "--profile",
    ]);
    assert!(ok, "{err}");
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(
        report["prefill_tok_s"]["mean"].as_f64().unwrap() > 0.0,
        "{out}"
    );
    assert!(
        report["decode_tok_s"]["mean"].as_f64().unwrap() > 0.0,
        "{out}"
    );
    assert!(report["roofline_tok_s"].as_f64().unwrap() > 0.0, "{out}");
    assert!(
        report["dispatches_per_token"].as_u64().unwrap() > 10,
        "{out}"
    );
    assert!(
        report["decode_profile"].as_array().unwrap().len() > 10,
        "{out}"
    );
    // The host's share of a decode token and the smallest matvec grid: on a CPU device
    // (the staged plan) the tiny model's one-row shared-expert gate launches a single
    // workgroup; a GPU's forms launch more.
    assert!(report["host_us_per_token"].as_f64().unwrap() > 0.0, "{out}");
    let cpu_forms = report["adapter"]
        .as_str()
        .is_some_and(|a| a.contains("Cpu"))
        && std::env::var(qwen_wgpu::runtime::gpu::FORMS_ENV).is_err();
    let fewest = report["min_workgroups"]["workgroups"].as_u64();
    if cpu_forms {
        assert_eq!(fewest, Some(1), "{out}");
    } else {
        assert!(fewest.is_some_and(|w| w >= 1), "{out}");
    }
    assert!(
        report["min_workgroups"]["label"]
            .as_str()
            .is_some_and(|l| !l.is_empty()),
        "{out}"
    );
    // Decoding does not grow host memory. With uniform params in the norm, router, combine
    // and conv kernels, lavapipe recompiled them per dispatch and this model grew 2.1 MiB a
    // token; allow 64 KiB of allocator noise.
    if let Some(growth) = report["memory"]["host_growth_per_decode_token"].as_f64() {
        assert!(growth < 64.0 * 1024.0, "{growth} bytes per token: {out}");
    }

    // The GPU's logits (the default) match the CPU reference's within 1e-4 of the largest,
    // with the f32 matmul tiles (a GPU's f16 operands move them by about 1e-3).
    let (gpu_npy, cpu_npy) = (dir.join("g.npy"), dir.join("c.npy"));
    for (device, path) in [("gpu", &gpu_npy), ("cpu", &cpu_npy)] {
        let f32_tiles = [(qwen_wgpu::runtime::ops::linear::matmul::MATMUL_ENV, "f32")];
        let (ok, _, err) = qwen_wgpu_with(
            &[
                "logits",
                "-m",
                m,
                "--tokens",
                "5,6,7,8,9",
                "-o",
                path.to_str().unwrap(),
                "--device",
                device,
            ],
            &f32_tiles,
        );
        assert!(ok, "{device}: {err}");
    }
    let (g, c) = (npy_values(&gpu_npy), npy_values(&cpu_npy));
    assert_eq!(g.len(), 5 * 263);
    let scale = c.iter().fold(0f32, |a, v| a.max(v.abs()));
    let diff = g
        .iter()
        .zip(&c)
        .fold(0f32, |a, (x, y)| a.max((x - y).abs()));
    assert!(diff <= 1e-4 * scale, "{diff} vs {scale}");

    // Bad input: a context too short for the prompt is refused with the sizes.
    let (ok, _, err) = qwen_wgpu(&[
        "run",
        "-m",
        m,
        "-p",
        "a long prompt of many tokens",
        "--ctx",
        "4",
    ]);
    assert!(
        !ok && err.contains("context full") && !err.contains("panicked"),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Steps recorded straight into Vulkan command buffers (and replayed) are valid Vulkan with
/// every barrier they need. `bench` (a prompt in 16-token chunks, then decode past two
/// split-KV chunks, so the replayed steps are recorded again) with each adapter's kernel
/// forms, and a sampled, penalised `run`, all under the Khronos validation layer with
/// synchronization validation, report nothing. Lavapipe runs a step's commands in order
/// whatever its barriers say, so the token tests cannot see a missing barrier; this can (a
/// step recorded without its barriers between dependent dispatches reports
/// SYNC-HAZARD-READ-AFTER-WRITE). Without the layer (`vulkan-validationlayers`) the test is
/// skipped with a note, except under CI, which installs it.
#[test]
fn direct_steps_pass_vulkan_synchronization_validation() {
    if !binary_or_skip() {
        return;
    }
    let (dir, model) = tiny_model("sync");
    let m = model.to_str().unwrap();
    let bench = [
        "bench", "-m", m, "-p", "40", "-n", "100", "-r", "1", "--ubatch", "16",
    ];
    let run = [
        "run",
        "-m",
        m,
        "-p",
        "hello",
        "-n",
        "40",
        "--seed",
        "3",
        "--repeat-penalty",
        "1.2",
        "--ubatch",
        "16",
    ];
    for (args, forms) in [(&bench[..], "gpu"), (&bench[..], "cpu"), (&run[..], "")] {
        let mut env = SYNC_VALIDATION_ENV.to_vec();
        if !forms.is_empty() {
            env.push((qwen_wgpu::runtime::gpu::FORMS_ENV, forms));
        }
        let (ok, out, err) = qwen_wgpu_with(args, &env);
        let what = format!("{} with kernel forms {forms:?}", args[0]);
        assert!(ok, "{what}: {err}");
        let Some(reports) = validation_reports(&format!("{out}\n{err}")) else {
            return;
        };
        assert!(reports.is_empty(), "{what}: {reports:#?}");
    }
    std::fs::remove_dir_all(&dir).ok();
}
