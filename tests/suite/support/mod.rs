//! Shared test support: the fake API server and helpers to talk to a running service.

pub mod apiserver;
pub mod cel;
pub mod prometheus;
pub mod tools;

use std::collections::BTreeMap;

/// `tollgate_gpu_allocated_units` (or any metric) as `{labels → value}` from the text format.
pub fn metric(text: &str, name: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter_map(|line| {
            let rest = line.strip_prefix(name)?.strip_prefix('{')?;
            let (labels, value) = rest.rsplit_once("} ")?;
            Some((labels.to_string(), value.trim().parse().ok()?))
        })
        .collect()
}

/// The value of one label in a label string `a="1",b="2"`.
pub fn label<'a>(labels: &'a str, key: &str) -> &'a str {
    labels
        .split(',')
        .find_map(|kv| kv.strip_prefix(&format!("{key}=\"")))
        .and_then(|v| v.strip_suffix('"'))
        .unwrap_or("")
}

/// Units held per `pod/kind`.
pub fn units_by_pod(text: &str) -> BTreeMap<String, f64> {
    metric(text, "tollgate_gpu_allocated_units")
        .into_iter()
        .map(|(labels, v)| {
            (
                format!("{}/{}", label(&labels, "pod"), label(&labels, "kind")),
                v,
            )
        })
        .collect()
}

/// Sends one HTTP/1.1 request over a real socket: (status, body). Connection failures are
/// `None`.
async fn exchange(address: &str, request: String) -> Option<(u16, String)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(address).await.ok()?;
    stream.write_all(request.as_bytes()).await.ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await.ok()?;
    let status = response.get(9..12)?.parse().ok()?;
    let (head, body) = response.split_once("\r\n\r\n")?;
    let chunked = head
        .to_ascii_lowercase()
        .contains("\r\ntransfer-encoding: chunked");
    Some((status, if chunked { dechunk(body)? } else { body.into() }))
}

/// A streamed (chunked) body without its framing (a chunk may end inside a character); `None`
/// if the framing is broken.
fn dechunk(body: &str) -> Option<String> {
    let (mut rest, mut whole) = (body.as_bytes(), Vec::new());
    loop {
        let line = rest.iter().position(|&b| b == b'\n')?;
        let size = std::str::from_utf8(&rest[..line]).ok()?.trim();
        let size = usize::from_str_radix(size, 16).ok()?;
        if size == 0 {
            return String::from_utf8(whole).ok();
        }
        let chunk = rest.get(line + 1..line + 1 + size)?;
        whole.extend_from_slice(chunk);
        rest = rest.get(line + 1 + size..)?.strip_prefix(b"\r\n")?;
    }
}

/// `GET path` over a real socket: (status, body). Connection failures are `None`.
pub async fn http_get(address: &str, path: &str) -> Option<(u16, String)> {
    http_get_as(address, path, None).await
}

/// `GET path` with a bearer `token`, if any.
pub async fn http_get_as(address: &str, path: &str, token: Option<&str>) -> Option<(u16, String)> {
    let authorization = bearer(token);
    exchange(
        address,
        format!(
            "GET {path} HTTP/1.1\r\nHost: {address}\r\n{authorization}Connection: close\r\n\r\n"
        ),
    )
    .await
}

/// An HTTPS request trusting only `trusted`; returns the certificate the server presented and
/// the response.
pub async fn https(
    address: &str,
    trusted: &[&rustls::pki_types::CertificateDer<'static>],
    request: &str,
) -> (rustls::pki_types::CertificateDer<'static>, String) {
    https_as(address, trusted, None, request).await
}

/// A client certificate and its key, for a server that verifies its clients.
pub type ClientIdentity = (
    Vec<rustls::pki_types::CertificateDer<'static>>,
    rustls::pki_types::PrivateKeyDer<'static>,
);

/// `https`, presenting `client` when given. A server that refuses the client answers nothing:
/// the response is empty.
pub async fn https_as(
    address: &str,
    trusted: &[&rustls::pki_types::CertificateDer<'static>],
    client: Option<ClientIdentity>,
    request: &str,
) -> (rustls::pki_types::CertificateDer<'static>, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut roots = rustls::RootCertStore::empty();
    for certificate in trusted {
        roots.add((*certificate).clone()).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots);
    let config = match client {
        Some((chain, key)) => config.with_client_auth_cert(chain, key).unwrap(),
        None => config.with_no_client_auth(),
    };
    let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(address).await.unwrap();
    let mut tls = connector
        .connect(
            rustls::pki_types::ServerName::try_from("localhost").unwrap(),
            tcp,
        )
        .await
        .unwrap();
    let presented = tls.get_ref().1.peer_certificates().unwrap()[0]
        .clone()
        .into_owned();
    let _ = tls.write_all(request.as_bytes()).await;
    let mut response = Vec::new();
    let _ = tls.read_to_end(&mut response).await;
    (presented, String::from_utf8_lossy(&response).into_owned())
}

/// The `tollgate` binary, run from the package root (where the fixture paths start).
pub fn tollgate_command() -> std::process::Command {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_tollgate"));
    command.current_dir(env!("CARGO_MANIFEST_DIR"));
    command
}

/// The JSON a successful command printed; a failure shows its stderr.
pub fn json_stdout(output: &std::process::Output) -> serde_json::Value {
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

/// What `command` printed; it must succeed (a failure shows its stderr).
pub fn stdout_of(command: &mut std::process::Command) -> String {
    let output = command.output().unwrap();
    assert!(
        output.status.success(),
        "{command:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// `tollgate report` with `args`: what it printed; a failure shows its stderr.
pub fn report_stdout(args: &[&str]) -> String {
    stdout_of(tollgate_command().arg("report").args(args))
}

/// The JSON a Python `script` using DuckDB (PyPI's, a reader independent of Tollgate) printed,
/// given `path` as its argument.
pub fn duckdb(script: &str, path: &std::path::Path) -> serde_json::Value {
    tools::require(&[tools::Tool::DuckDb]);
    let printed = stdout_of(
        std::process::Command::new("python3")
            .args(["-c", script])
            .arg(path),
    );
    serde_json::from_str(&printed).unwrap()
}

/// The flags of a report on the fixture snapshot and rates over 2026-11-01.
pub const FIXTURE: [&str; 8] = [
    "--snapshot",
    "tests/fixtures/snapshot",
    "--pricing",
    "tests/fixtures/rates.toml",
    "--from",
    "2026-11-01",
    "--to",
    "2026-11-02",
];

/// The flags of a report on the demo fleet from 2026-10-15 to 2026-11-15: a month across two
/// billing periods.
pub const DEMO_MONTH: [&str; 7] = [
    "--demo",
    "--from",
    "2026-10-15",
    "--to",
    "2026-11-15",
    "--as-of",
    "2026-11-15",
];

/// `tollgate report` on the fixture snapshot and rates over 2026-11-01, with `extra` flags.
pub fn fixture_report(extra: &[&str]) -> String {
    report_stdout(&[&FIXTURE[..], extra].concat())
}

/// The `cost` column of a chargeback CSV, summed.
pub fn chargeback_total(csv: &str) -> rust_decimal::Decimal {
    let mut reader = csv::Reader::from_reader(csv.as_bytes());
    let cost = reader
        .headers()
        .unwrap()
        .iter()
        .position(|h| h == "cost")
        .unwrap();
    reader
        .records()
        .map(|r| {
            r.unwrap()[cost]
                .parse::<rust_decimal::Decimal>()
                .unwrap_or_default()
        })
        .sum()
}

/// A quota gate without budgets.
pub fn no_budgets() -> tollgate::serve::QuotaGate {
    tollgate::serve::QuotaGate::new(
        Vec::new(),
        tollgate::config::QuotaSettings::default(),
        "cost-center".into(),
    )
}

/// `POST path` over a real socket, optionally without a Content-Type (as Kyverno sends).
pub async fn http_post(
    address: &str,
    path: &str,
    body: &str,
    content_type: Option<&str>,
) -> Option<(u16, String)> {
    let content_type = content_type
        .map(|c| format!("Content-Type: {c}\r\n"))
        .unwrap_or_default();
    post(address, path, body, content_type).await
}

/// `POST path` of JSON with a bearer `token`, if any.
pub async fn http_post_as(
    address: &str,
    path: &str,
    body: &str,
    token: Option<&str>,
) -> Option<(u16, String)> {
    let headers = format!("Content-Type: application/json\r\n{}", bearer(token));
    post(address, path, body, headers).await
}

fn bearer(token: Option<&str>) -> String {
    token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default()
}

async fn post(address: &str, path: &str, body: &str, headers: String) -> Option<(u16, String)> {
    exchange(
        address,
        format!(
            "POST {path} HTTP/1.1\r\nHost: {address}\r\n{headers}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        ),
    )
    .await
}

/// The fixture snapshot as a feed, as of 2026-11-02T00:00:00Z.
pub fn fixture_feed() -> tollgate::serve::Feed {
    tollgate::serve::Feed::Snapshot {
        objects: Box::new(
            tollgate::source::read_snapshot(std::path::Path::new("tests/fixtures/snapshot"))
                .unwrap(),
        ),
        as_of: Some(tollgate::time::parse_time("2026-11-02T00:00:00Z").unwrap()),
    }
}

/// The fixture rate card.
pub fn fixture_card() -> tollgate::pricing::RateCard {
    tollgate::pricing::RateCard::load(std::path::Path::new("tests/fixtures/rates.toml")).unwrap()
}

/// A running service on the fixture snapshot, on a free loopback port: its URLs, and a sender
/// that stops it (the handle resolves once it has).
pub async fn spawn_service(
    gate: tollgate::serve::QuotaGate,
    tls: Option<tollgate::serve::TlsOptions>,
) -> (
    Vec<String>,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<Result<(), tollgate::serve::ServeError>>,
) {
    spawn_service_with(fixture_feed(), gate, tls, std::sync::Arc::default()).await
}

/// [`spawn_service`] with any feed and archive.
pub async fn spawn_service_with(
    feed: tollgate::serve::Feed,
    gate: tollgate::serve::QuotaGate,
    tls: Option<tollgate::serve::TlsOptions>,
    archive: std::sync::Arc<tollgate::serve::Archive>,
) -> (
    Vec<String>,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<Result<(), tollgate::serve::ServeError>>,
) {
    let options = tollgate::serve::ServeOptions {
        listen: "127.0.0.1:0".into(),
        reconcile_every: std::time::Duration::from_secs(1),
        cost_center_key: "cost-center".into(),
        tls,
        archive,
        history: None,
        // The fixture snapshot's cluster name, as `report --snapshot` gives it.
        focus: tollgate::output::FocusSettings::default().for_cluster("snapshot"),
        auth: Default::default(),
        following: None,
        reports_at_once: 1,
        backfill: None,
        unread_history: None,
    };
    let (urls_tx, urls_rx) = tokio::sync::oneshot::channel::<Vec<String>>();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(tollgate::serve::serve(
        feed,
        tollgate::ledger::Ledger::in_memory(),
        fixture_card(),
        gate,
        options,
        move |urls| {
            let _ = urls_tx.send(urls.to_vec());
        },
        async move {
            let _ = stopped.await;
        },
    ));
    (urls_rx.await.unwrap(), stop, server)
}

/// The state of a service answering from `views` with `quota`: no auth, no archive, default
/// FOCUS settings for the fixture snapshot's cluster, one report at a time.
pub fn app_state(
    card: std::sync::Arc<tollgate::pricing::RateCard>,
    views: tokio::sync::watch::Receiver<std::sync::Arc<tollgate::serve::View>>,
    quota: std::sync::Arc<tollgate::serve::QuotaGate>,
) -> tollgate::serve::AppState {
    tollgate::serve::AppState {
        card,
        views,
        quota,
        archive: Default::default(),
        focus: std::sync::Arc::new(
            tollgate::output::FocusSettings::default().for_cluster("snapshot"),
        ),
        auth: Default::default(),
        reports: std::sync::Arc::new(tokio::sync::Semaphore::new(1)),
    }
}

/// `host:port` of an `http://host:port/…` URL.
pub fn address(url: &str) -> String {
    url.split("://")
        .nth(1)
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .to_string()
}

/// A rollup store under `dir` for the demo fleet's source, priced with `card`.
pub fn store_for(
    dir: &std::path::Path,
    card: &tollgate::pricing::RateCard,
) -> tollgate::store::RollupStore {
    let provenance = tollgate::store::Provenance {
        source: "demo".into(),
        rate_card: card.digest(),
    };
    tollgate::store::RollupStore::open(dir, provenance).unwrap()
}

/// A free loopback port.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A `tollgate serve` process on a free loopback port, its stderr in a log file; killed when
/// dropped.
pub struct ServeProcess {
    /// The process.
    pub child: std::process::Child,
    /// `127.0.0.1:PORT`.
    pub address: String,
    log: std::path::PathBuf,
}

impl ServeProcess {
    /// Starts `tollgate serve` with `args` (and `--listen`), `env` set, and waits until
    /// `/readyz` answers 200.
    pub async fn start(
        args: &[&str],
        env: &[(&str, &std::ffi::OsStr)],
        log: &std::path::Path,
    ) -> Self {
        let address = format!("127.0.0.1:{}", free_port());
        let mut command = tollgate_command();
        command
            .args(["serve", "--listen", &address])
            .args(args)
            .envs(env.iter().copied());
        Self::run(command, address, log).await
    }

    /// Runs `command`, a `tollgate serve` listening on `address`, and waits until `/readyz`
    /// answers 200.
    pub async fn run(
        mut command: std::process::Command,
        address: String,
        log: &std::path::Path,
    ) -> Self {
        let child = command
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(log).unwrap())
            .spawn()
            .unwrap();
        let service = ServeProcess {
            child,
            address,
            log: log.to_path_buf(),
        };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(90);
        while std::time::Instant::now() < deadline {
            if let Some((200, _)) = http_get(&service.address, "/readyz").await {
                return service;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        panic!("tollgate serve did not become ready: {}", service.log());
    }

    /// The body of a GET that must answer 200.
    pub async fn get(&self, path: &str) -> String {
        let (status, body) = http_get(&self.address, path).await.unwrap();
        assert_eq!(status, 200, "{path}: {body}");
        body
    }

    /// What it logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap()
    }
}

impl Drop for ServeProcess {
    /// Stops it as a user would (SIGTERM; SIGCONT too, should a test have stopped it), so that
    /// a demo removes its temporary directory; killed if it has not stopped within 10 s.
    fn drop(&mut self) {
        use rustix::process::{Pid, Signal, kill_process};
        if let Some(pid) = Pid::from_raw(self.child.id() as i32) {
            let _ = kill_process(pid, Signal::TERM);
            let _ = kill_process(pid, Signal::CONT);
        }
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while std::time::Instant::now() < deadline {
            if !matches!(self.child.try_wait(), Ok(None)) {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
