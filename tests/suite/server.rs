//! `qwen-wgpu serve` through the real `openai` Python client (tests/server/openai_client.py)
//! on 127.0.0.1: the HTTP layer with a scripted engine (replies with reasoning, tool calls
//! and stop strings that a random model would never write), then the real server on a
//! synthetic model on the GPU. Every loop is bounded in count and time, and every server
//! started here is stopped.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use qwen_wgpu::loader::gguf::GgufFile;
use qwen_wgpu::loader::tokenizer::{ChatTemplate, GgufTokenizer};
use qwen_wgpu::loader::vocab::CHATML_TEMPLATE;
use qwen_wgpu::serve::engine::{Command as EngineCommand, EngineHandle};
use qwen_wgpu::serve::http::{AppState, Ready};
use qwen_wgpu::serve::job::{Job, Usage};
use qwen_wgpu::serve::metrics::Metrics;
use qwen_wgpu::serve::reply::{Next, ReplyStream};
use qwen_wgpu::serve::{api::Limits, serve};

use crate::common::{synth_writer, tiny};

const CLIENT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/server/openai_client.py");
const MODEL_ID: &str = "tiny-qwen35moe";

/// Whether the `openai` package is there; under `CI=true` it must be.
fn python_client() -> bool {
    let ok = Command::new("python3")
        .args(["-c", "import openai"])
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI must have the openai client (pip install openai)"
        );
        eprintln!("skipping: python3 with the openai package is not installed");
    }
    ok
}

/// Runs the client script in `mode`, killed past `limit`; returns its output.
fn client(mode: &str, url: &str, key: Option<&str>, limit: Duration) -> String {
    let mut args = vec![CLIENT, mode, url, MODEL_ID];
    args.extend(key);
    let mut child = Command::new("python3")
        .args(&args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 runs");
    let start = Instant::now();
    while child.try_wait().expect("client status").is_none() {
        if start.elapsed() > limit {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = child.wait_with_output().expect("client output");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    println!("--- client {mode} ---\n{text}");
    assert!(out.status.success(), "client {mode} failed:\n{text}");
    text
}

fn tiny_model(dir: &Path) -> PathBuf {
    std::fs::create_dir_all(dir).expect("test dir");
    let path = dir.join(format!("{MODEL_ID}.gguf"));
    synth_writer(&tiny(MODEL_ID))
        .write_to(&path)
        .expect("tiny model written");
    path
}

/// The reply a scripted model writes to `prompt`: what a trained model would, for the
/// checks the client makes.
fn script(prompt: &str) -> String {
    let thinking_off = prompt.ends_with("</think>\n\n");
    let last_user = prompt.rfind("<|im_start|>user").unwrap_or(0);
    let (reasoning, answer) = if prompt.ends_with("<function=get_weather>\n") {
        (
            "",
            "<parameter=city>\nOslo\n</parameter>\n</function>\n</tool_call>",
        )
    } else if prompt[last_user..].contains("<tool_response>") {
        ("Got it.", "It is sunny in Paris.")
    } else if prompt.contains("broken") {
        ("", "<tool_call>\n{\"nope\": 1}\n</tool_call>")
    } else if prompt[last_user..].contains("weather") {
        (
            "The user wants the weather.",
            "<tool_call>\n<function=get_weather>\n<parameter=city>\nParis\n</parameter>\n\
             <parameter=days>\n3\n</parameter>\n</function>\n</tool_call>",
        )
    } else {
        ("Thinking about it.", "Hello there! How can I help?")
    };
    if reasoning.is_empty() || thinking_off {
        answer.to_string()
    } else {
        format!("<think>\n{reasoning}\n</think>\n\n{answer}")
    }
}

/// Answers jobs from [`script`], three characters a "token", through the server's own
/// reply stream.
fn scripted_engine(
    tokenizer: Arc<GgufTokenizer>,
    mut inbox: tokio::sync::mpsc::UnboundedReceiver<EngineCommand>,
) {
    while let Some(EngineCommand::Run(job)) = inbox.blocking_recv() {
        let prompt = tokenizer.decode(&job.prompt).expect("prompt decodes");
        let text = script(&prompt);
        let mut reply = ReplyStream::new(&job);
        let chars: Vec<char> = text.chars().collect();
        let mut tokens = 0;
        let mut next = Next::Continue;
        for piece in chars.chunks(3) {
            tokens += 1;
            next = reply.push_text(&piece.iter().collect::<String>(), &job);
            if next != Next::Continue {
                break;
            }
        }
        if next != Next::Gone {
            let usage = Usage {
                prompt_tokens: job.prompt.len() as u32,
                cached_tokens: 0,
                completion_tokens: tokens,
            };
            reply.finish(false, usage, &job);
        }
        drop::<Job>(job);
    }
}

#[test]
fn the_openai_client_reads_reasoning_tool_calls_and_stops_from_the_http_layer() {
    if !python_client() {
        return;
    }
    let dir = std::env::temp_dir().join("qwen-wgpu-serve-scripted");
    let file = GgufFile::open(tiny_model(&dir)).expect("tiny model opens");
    let tokenizer = Arc::new(GgufTokenizer::from_gguf(&file).expect("tokenizer"));
    let (handle, inbox) = EngineHandle::channel(8);
    let state = Arc::new(AppState::new(
        handle,
        Arc::new(Metrics::default()),
        MODEL_ID.into(),
        1,
        None,
        1 << 20,
    ));
    let ready = Ready {
        tokenizer: Arc::clone(&tokenizer),
        template: ChatTemplate::new(CHATML_TEMPLATE).expect("template"),
        limits: Limits {
            context: 4096,
            model_id: MODEL_ID.into(),
        },
    };
    assert!(state.ready.set(ready).is_ok());
    std::thread::spawn(move || scripted_engine(tokenizer, inbox));
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("a free port");
    let url = format!("http://{}", listener.local_addr().expect("address"));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = runtime.spawn(serve(listener, state, async {
        let _ = stopped.await;
    }));
    client("scripted", &url, None, Duration::from_secs(120));
    let _ = stop.send(());
    runtime
        .block_on(async { tokio::time::timeout(Duration::from_secs(30), server).await })
        .expect("the server stops")
        .expect("the server task")
        .expect("the server ran");
}

/// A `qwen-wgpu serve` process, killed when dropped.
struct Server {
    child: Child,
    url: String,
    log: mpsc::Receiver<String>,
}

impl Server {
    fn start(model: &Path, args: &[&str]) -> Server {
        let mut child = Command::new(crate::common::binary())
            .args(["serve", "-m"])
            .arg(model)
            .args(["--port", "0", "--ctx", "1024"])
            .args(args)
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .expect("the server starts");
        let stderr = child.stderr.take().expect("stderr piped");
        let (tx, log) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                eprintln!("[server] {line}");
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut server = Server {
            child,
            url: String::new(),
            log,
        };
        let line = server.wait_for("listening on http://", Duration::from_secs(60));
        let at = line.find("http://").expect("an address");
        server.url = line[at..]
            .split_whitespace()
            .next()
            .expect("the address")
            .to_string();
        server.wait_ready(Duration::from_secs(300));
        server
    }

    /// The first log line containing `what`, within `limit`.
    fn wait_for(&self, what: &str, limit: Duration) -> String {
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.log.recv_timeout(left) {
                Ok(line) if line.contains(what) => return line,
                Ok(_) => {}
                Err(_) => panic!("the server did not say '{what}' within {limit:?}"),
            }
        }
    }

    fn wait_ready(&self, limit: Duration) {
        let start = Instant::now();
        while start.elapsed() < limit {
            if http_get(&self.url, "/health").starts_with("HTTP/1.1 200") {
                return;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        panic!("the server was not ready within {limit:?}");
    }

    fn host(&self) -> &str {
        self.url.trim_start_matches("http://")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn http_get(url: &str, path: &str) -> String {
    let host = url.trim_start_matches("http://");
    let Ok(mut s) = TcpStream::connect(host) else {
        return String::new();
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
    let request = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    if s.write_all(request.as_bytes()).is_err() {
        return String::new();
    }
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

/// The `REPLY` line a client mode printed.
fn reply_line(output: &str) -> &str {
    output
        .lines()
        .find_map(|l| l.strip_prefix("REPLY "))
        .expect("the client printed its reply")
}

#[test]
fn the_openai_client_runs_against_the_real_server() {
    if !python_client()
        || !crate::common::binary_or_skip()
        || crate::common::gpu_or_skip().is_none()
    {
        return;
    }
    let model = tiny_model(&std::env::temp_dir().join("qwen-wgpu-serve-real"));
    let limit = Duration::from_secs(600);

    // Chat, streaming, completions, stops, errors, and the prompt cache on a multi-turn chat.
    let warm = {
        let server = Server::start(
            &model,
            &[
                "--parallel",
                "2",
                "--api-key",
                "sesame",
                "--max-body-mib",
                "1",
            ],
        );
        client("real", &server.url, Some("sesame"), limit)
    };
    // 16 concurrent streams against each request alone, and the multi-turn chat cold.
    {
        let server = Server::start(&model, &["--parallel", "4", "--cache-mib", "0"]);
        let cold = client("cold", &server.url, None, limit);
        assert_eq!(
            reply_line(&warm),
            reply_line(&cold),
            "the cached multi-turn reply differs from the cold one"
        );
        client("concurrent", &server.url, None, limit);
    }
    // One slot and one queue place: a full queue, a killed stream, then SIGTERM mid-stream.
    let mut server = Server::start(&model, &["--parallel", "1", "--queue", "1"]);
    client("busy", &server.url, None, limit);
    shutdown_mid_stream(&mut server);
}

/// SIGTERM while a stream runs: the stream ends with an error event and the server exits.
fn shutdown_mid_stream(server: &mut Server) {
    let mut s = TcpStream::connect(server.host()).expect("connects");
    s.set_read_timeout(Some(Duration::from_secs(60)))
        .expect("timeout");
    let body = format!(
        r#"{{"model":"{MODEL_ID}","messages":[{{"role":"user","content":"Go on and on"}}],"max_tokens":500,"stream":true}}"#
    );
    let request = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        server.host(),
        body.len()
    );
    s.write_all(request.as_bytes()).expect("request sent");
    let mut reader = BufReader::new(s);
    let mut seen = String::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    while !seen.contains("\"content\"") && Instant::now() < deadline {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            break;
        }
        seen.push_str(&line);
    }
    assert!(seen.contains("data: "), "the stream started: {seen}");
    // SAFETY: kill(2) on our own child's pid.
    let sent = unsafe { libc::kill(server.child.id() as i32, libc::SIGTERM) };
    assert_eq!(sent, 0);
    let mut rest = String::new();
    let _ = reader.read_to_string(&mut rest);
    assert!(
        rest.contains("shutting down") && !rest.contains("[DONE]"),
        "the stream ends with an error event: {rest}"
    );
    let start = Instant::now();
    loop {
        if let Some(status) = server.child.try_wait().expect("status") {
            assert!(status.success(), "the server exits cleanly: {status}");
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the server exits after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}
