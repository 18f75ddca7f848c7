//! Cold start harness: a stand-in for the Lambda Runtime API that times a function binary from
//! exec to its first `GET /2018-06-01/runtime/invocation/next` — the moment the function has
//! read its configuration, built its clients and is ready for an event.
//!
//! ```text
//! coldstart [--runs N] [--name NAME] [--env KEY=VALUE]... PATH/TO/FUNCTION/BINARY
//! ```
//!
//! The function starts with an empty environment plus what Lambda itself provides and what
//! template.yaml sets (dummy credentials: nothing may reach AWS before the first event). One
//! untimed run first delivers an API Gateway event to the function and checks its answer (a
//! 401 or 404 for `GET /api/v1/leads` without an API key), so a binary that starts fast
//! because it is broken is caught, and the binary is in the page cache for the timed runs. Then each timed run spawns the binary, waits for its first
//! `next` and kills it. The result is printed as a Markdown table row (milliseconds) after a
//! human-readable summary; see `tests/coldstart.sh` and `lib/docs/cold-start.md`.

use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};

/// How long a function may take to reach its first `next` before the run fails.
const RUN_TIMEOUT: Duration = Duration::from_secs(20);

/// The Runtime API version prefix.
const API: &str = "/2018-06-01/runtime";

/// The event of the check run: an HTTP API (payload 2.0) request without an API key, which
/// an HTTP function answers with 401 (or 404 if it does not serve the leads routes) before
/// touching the store.
const CHECK_EVENT: &str = r#"{
  "version": "2.0",
  "routeKey": "GET /api/v1/leads",
  "rawPath": "/api/v1/leads",
  "rawQueryString": "",
  "headers": {"host": "coldstart.execute-api.us-east-1.amazonaws.com", "accept": "application/json"},
  "requestContext": {
    "accountId": "123456789012", "apiId": "coldstart",
    "domainName": "coldstart.execute-api.us-east-1.amazonaws.com", "domainPrefix": "coldstart",
    "http": {"method": "GET", "path": "/api/v1/leads", "protocol": "HTTP/1.1",
             "sourceIp": "192.0.2.1", "userAgent": "coldstart"},
    "requestId": "coldstart-check", "routeKey": "GET /api/v1/leads", "stage": "$default",
    "time": "01/Jan/2026:00:00:00 +0000", "timeEpoch": 1767225600000
  },
  "isBase64Encoded": false
}"#;

/// One request the function made to the Runtime API.
struct Call {
    at: Instant,
    method: String,
    path: String,
    body: Vec<u8>,
    /// The bytes to answer with; dropping it closes the connection unanswered.
    reply: mpsc::Sender<Vec<u8>>,
}

struct Args {
    binary: String,
    name: String,
    runs: usize,
    env: Vec<(String, String)>,
}

fn parse_args() -> Result<Args> {
    let mut args = std::env::args().skip(1);
    let mut runs = 30;
    let mut name = None;
    let mut env = Vec::new();
    let mut binary = None;
    while let Some(a) = args.next() {
        match a.as_str() {
            "--runs" => {
                runs = args
                    .next()
                    .context("--runs needs a number")?
                    .parse()
                    .context("--runs needs a number")?;
                if runs == 0 {
                    bail!("--runs must be at least 1");
                }
            }
            "--name" => name = Some(args.next().context("--name needs a value")?),
            "--env" => {
                let kv = args.next().context("--env needs KEY=VALUE")?;
                let (k, v) = kv.split_once('=').context("--env needs KEY=VALUE")?;
                env.push((k.to_string(), v.to_string()));
            }
            "-h" | "--help" => {
                println!("usage: coldstart [--runs N] [--name NAME] [--env KEY=VALUE]... BINARY");
                std::process::exit(0);
            }
            _ if binary.is_none() && !a.starts_with('-') => binary = Some(a),
            other => bail!("unexpected argument {other:?} (see --help)"),
        }
    }
    let binary = binary.context("the function binary to run is missing (see --help)")?;
    let name = match name {
        Some(n) => n,
        None => std::path::Path::new(&binary)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| binary.clone()),
    };
    Ok(Args {
        binary,
        name,
        runs,
        env,
    })
}

/// Reads one HTTP/1.1 request; `None` when the peer closed the connection.
fn read_request(r: &mut BufReader<TcpStream>) -> Result<Option<(String, String, Vec<u8>)>> {
    let mut line = String::new();
    if r.read_line(&mut line)? == 0 {
        return Ok(None);
    }
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_string();
    let path = parts.next().unwrap_or_default().to_string();
    let mut len = 0usize;
    loop {
        let mut h = String::new();
        if r.read_line(&mut h)? == 0 {
            return Ok(None);
        }
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':')
            && k.eq_ignore_ascii_case("content-length")
        {
            len = v.trim().parse().context("bad content-length")?;
        }
    }
    let mut body = vec![0; len];
    r.read_exact(&mut body)?;
    Ok(Some((method, path, body)))
}

/// Serves one connection: every request goes to the main thread, which decides the answer.
fn serve_connection(stream: TcpStream, calls: mpsc::Sender<Call>) {
    let Ok(write_half) = stream.try_clone() else {
        return;
    };
    let mut writer = write_half;
    let mut reader = BufReader::new(stream);
    while let Ok(Some((method, path, body))) = read_request(&mut reader) {
        let (reply, answer) = mpsc::channel();
        let call = Call {
            at: Instant::now(),
            method,
            path,
            body,
            reply,
        };
        if calls.send(call).is_err() {
            return;
        }
        match answer.recv() {
            Ok(bytes) => {
                if writer.write_all(&bytes).is_err() {
                    return;
                }
            }
            Err(_) => return,
        }
    }
}

fn response(status: &str, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut out = format!("HTTP/1.1 {status}\r\ncontent-length: {}\r\n", body.len());
    for (k, v) in headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    out.push_str("\r\n");
    let mut out = out.into_bytes();
    out.extend_from_slice(body);
    out
}

/// The environment of the function: what Lambda provides plus template.yaml's variables.
fn function_env(api: &str, name: &str, extra: &[(String, String)]) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = [
        ("AWS_LAMBDA_RUNTIME_API", api),
        ("AWS_LAMBDA_FUNCTION_NAME", name),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST"),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256"),
        ("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/coldstart"),
        (
            "AWS_LAMBDA_LOG_STREAM_NAME",
            "2026/01/01/[$LATEST]coldstart",
        ),
        ("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand"),
        ("AWS_REGION", "us-east-1"),
        ("AWS_DEFAULT_REGION", "us-east-1"),
        ("AWS_ACCESS_KEY_ID", "AKIDCOLDSTART"),
        ("AWS_SECRET_ACCESS_KEY", "coldstart-secret"),
        ("AWS_SESSION_TOKEN", "coldstart-token"),
        ("AWS_EXECUTION_ENV", "AWS_Lambda_provided.al2023"),
        ("LAMBDA_TASK_ROOT", "/var/task"),
        ("LAMBDA_RUNTIME_DIR", "/var/runtime"),
        ("_HANDLER", "bootstrap"),
        ("TZ", ":UTC"),
        ("LANG", "en_US.UTF-8"),
        ("KLOZEO_TABLE_PREFIX", "coldstart-"),
        (
            "KLOZEO_SIGNING_KEY",
            "coldstart-signing-key-0123456789abcdef",
        ),
        ("AWS_LAMBDA_HTTP_IGNORE_STAGE_IN_PATH", "true"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    for (k, v) in extra {
        env.retain(|(ek, _)| ek != k);
        env.push((k.clone(), v.clone()));
    }
    env
}

struct Harness {
    api: String,
    calls: mpsc::Receiver<Call>,
    args: Args,
}

impl Harness {
    /// Starts the function; its output goes to `log` (a file, so waiting for the child never
    /// waits for a pipe another process may hold) or nowhere.
    fn spawn(&self, log: Option<&std::fs::File>) -> Result<(Instant, Child)> {
        let mut cmd = Command::new(&self.args.binary);
        cmd.env_clear()
            .envs(function_env(&self.api, &self.args.name, &self.args.env))
            .stdin(Stdio::null());
        match log {
            Some(f) => {
                cmd.stdout(f.try_clone()?).stderr(f.try_clone()?);
            }
            None => {
                cmd.stdout(Stdio::null()).stderr(Stdio::null());
            }
        }
        let start = Instant::now();
        let child = cmd
            .spawn()
            .with_context(|| format!("cannot start {}", self.args.binary))?;
        Ok((start, child))
    }

    /// The next Runtime API call of `child`, spawned at `start`; fails if it exits or takes
    /// too long. A call read before `start` came from an earlier, killed child and is dropped
    /// (which closes its connection).
    fn next_call(&self, child: &mut Child, start: Instant, deadline: Instant) -> Result<Call> {
        loop {
            match self.calls.recv_timeout(Duration::from_millis(20)) {
                Ok(call) if call.at < start => {}
                Ok(call) => {
                    if call.method == "POST" && call.path == format!("{API}/init/error") {
                        bail!(
                            "the function reported an init error: {}",
                            String::from_utf8_lossy(&call.body)
                        );
                    }
                    return Ok(call);
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => bail!("the listener stopped"),
            }
            if let Some(status) = child.try_wait()? {
                bail!("the function exited ({status}) before asking for an event");
            }
            if Instant::now() > deadline {
                bail!("no Runtime API call within {RUN_TIMEOUT:?}");
            }
        }
    }

    /// Time from spawn to the first `next`.
    fn wait_ready(&self, child: &mut Child, start: Instant) -> Result<(Duration, Call)> {
        let deadline = start + RUN_TIMEOUT;
        loop {
            let call = self.next_call(child, start, deadline)?;
            if call.method == "GET" && call.path == format!("{API}/invocation/next") {
                return Ok((call.at.duration_since(start), call));
            }
            // Nothing else is expected before the first event; answer and keep waiting.
            let _ = call.reply.send(response("404 Not Found", &[], b""));
        }
    }

    /// The untimed run: deliver one event, check the function answers it; returns the time
    /// to the first `next` and the answer's HTTP status.
    fn check(&self) -> Result<(Duration, u64)> {
        let mut log = tempfile::tempfile().context("cannot create a log file")?;
        let (start, mut child) = self.spawn(Some(&log))?;
        let result = self.check_inner(&mut child, start);
        let _ = child.kill();
        let _ = child.wait();
        if result.is_err() {
            let mut out = String::new();
            if log.seek(SeekFrom::Start(0)).is_ok() && log.read_to_string(&mut out).is_ok() {
                eprintln!("--- function output ---\n{out}\n---");
            }
        }
        result
    }

    fn check_inner(&self, child: &mut Child, start: Instant) -> Result<(Duration, u64)> {
        let (ready, next) = self.wait_ready(child, start)?;
        let request_id = "coldstart-check";
        let _ = next.reply.send(response(
            "200 OK",
            &[
                ("content-type", "application/json"),
                ("lambda-runtime-aws-request-id", request_id),
                ("lambda-runtime-deadline-ms", "4102444800000"),
                (
                    "lambda-runtime-invoked-function-arn",
                    "arn:aws:lambda:us-east-1:123456789012:function:coldstart",
                ),
                (
                    "lambda-runtime-trace-id",
                    "Root=1-5bef4de7-ad49b0e87f6ef6c87fc2e700;Parent=9a9197af755a6419;Sampled=1",
                ),
            ],
            CHECK_EVENT.as_bytes(),
        ));
        let call = self.next_call(child, start, Instant::now() + RUN_TIMEOUT)?;
        let expected = format!("{API}/invocation/{request_id}/response");
        if call.method != "POST" || call.path != expected {
            bail!(
                "expected POST {expected}, got {} {}: {}",
                call.method,
                call.path,
                String::from_utf8_lossy(&call.body)
            );
        }
        let _ = call
            .reply
            .send(response("202 Accepted", &[], b"{\"status\":\"OK\"}"));
        let answer: serde_json::Value =
            serde_json::from_slice(&call.body).context("the function's answer is not JSON")?;
        // 401 from a function that serves the route, 404 from one that does not: either way
        // the function decoded the event, routed it and answered without touching the store.
        match answer["statusCode"].as_u64() {
            Some(status @ (401 | 404)) => Ok((ready, status)),
            _ => bail!("expected a 401 or 404 API Gateway answer, got {answer}"),
        }
    }

    fn timed_run(&self) -> Result<Duration> {
        let (start, mut child) = self.spawn(None)?;
        let result = self.wait_ready(&mut child, start);
        let _ = child.kill();
        let _ = child.wait();
        // Dropping the call closes the connection unanswered; the child is gone anyway.
        result.map(|(ready, _call)| ready)
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// The nearest-rank percentile `p` (0-100) of sorted samples.
fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn main() -> Result<()> {
    let args = parse_args()?;
    let listener = TcpListener::bind("127.0.0.1:0").context("cannot bind a loopback port")?;
    let api = listener.local_addr()?.to_string();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let _ = stream.set_nodelay(true);
            let tx = tx.clone();
            std::thread::spawn(move || serve_connection(stream, tx));
        }
    });
    let h = Harness {
        api,
        calls: rx,
        args,
    };

    let (check, status) = h
        .check()
        .with_context(|| format!("check run of {}", h.args.binary))?;
    eprintln!(
        "{}: check run answered an API Gateway event with HTTP {status} (ready after {:.2} ms, untimed)",
        h.args.name,
        ms(check)
    );

    let mut samples = Vec::with_capacity(h.args.runs);
    for i in 0..h.args.runs {
        let d = h
            .timed_run()
            .with_context(|| format!("run {} of {}", i + 1, h.args.binary))?;
        samples.push(d);
    }
    samples.sort();
    let min = samples[0];
    let median = percentile(&samples, 50.0);
    let p90 = percentile(&samples, 90.0);
    let max = samples[samples.len() - 1];
    eprintln!(
        "{}: {} runs, exec -> first invocation/next: min {:.2} ms, median {:.2} ms, p90 {:.2} ms, max {:.2} ms",
        h.args.name,
        samples.len(),
        ms(min),
        ms(median),
        ms(p90),
        ms(max)
    );
    println!(
        "| {} | {} | {:.2} | {:.2} | {:.2} | {:.2} |",
        h.args.name,
        samples.len(),
        ms(min),
        ms(median),
        ms(p90),
        ms(max)
    );
    Ok(())
}
