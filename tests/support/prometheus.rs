//! A real Prometheus for tests: Debian's `prometheus` package (installed if missing), data
//! backfilled with `promtool tsdb create-blocks-from openmetrics` (timestamps in seconds, `# EOF`
//! last), served on a free loopback port with a 10-year retention, killed when dropped.

use std::fmt::Write as _;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running Prometheus holding backfilled data.
pub struct TestPrometheus {
    child: Child,
    /// Its base URL.
    pub url: String,
    _dir: tempfile::TempDir,
}

fn installed() -> bool {
    Command::new("promtool")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Installs Debian's prometheus package when `promtool` is missing (CI's `.ci/run` does it too).
pub fn ensure_installed() {
    if installed() {
        return;
    }
    let status = Command::new("apt-get")
        .args(["install", "-y", "--no-install-recommends", "prometheus"])
        .env("DEBIAN_FRONTEND", "noninteractive")
        .status();
    assert!(
        status.is_ok_and(|s| s.success()) && installed(),
        "Prometheus is needed: apt-get install -y --no-install-recommends prometheus"
    );
}

impl TestPrometheus {
    /// Backfills `openmetrics` and starts the server.
    pub fn start(openmetrics: &str) -> Self {
        ensure_installed();
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data.om");
        std::fs::write(&data, openmetrics).unwrap();
        let tsdb = dir.path().join("tsdb");
        let backfill = Command::new("promtool")
            .args(["tsdb", "create-blocks-from", "openmetrics"])
            .arg(&data)
            .arg(&tsdb)
            .output()
            .unwrap();
        assert!(
            backfill.status.success(),
            "promtool: {}",
            String::from_utf8_lossy(&backfill.stderr)
        );
        let config = dir.path().join("prometheus.yml");
        std::fs::write(&config, "global:\n  scrape_interval: 1h\n").unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.tsdb.path={}", tsdb.display()))
            .arg("--storage.tsdb.retention.time=10y")
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let prometheus = TestPrometheus {
            child,
            url: format!("http://127.0.0.1:{port}"),
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            let ready = std::net::TcpStream::connect(("127.0.0.1", port)).is_ok_and(|mut s| {
                use std::io::{Read, Write};
                let _ = s.write_all(b"GET /-/ready HTTP/1.0\r\n\r\n");
                let mut response = String::new();
                let _ = s.read_to_string(&mut response);
                response.starts_with("HTTP/1.0 200") || response.starts_with("HTTP/1.1 200")
            });
            if ready {
                return prometheus;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("prometheus did not become ready");
    }
}

impl Drop for TestPrometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Builds OpenMetrics text: gauges, one series at a time, samples in time order.
#[derive(Default)]
pub struct OpenMetrics {
    families: std::collections::BTreeMap<String, String>,
}

impl OpenMetrics {
    /// Adds `samples` (unix seconds, value) of one series.
    pub fn series(
        &mut self,
        metric: &str,
        labels: &[(&str, &str)],
        samples: impl IntoIterator<Item = (i64, f64)>,
    ) {
        let family = self.families.entry(metric.to_string()).or_default();
        let labels = labels
            .iter()
            .map(|(k, v)| format!("{k}=\"{v}\""))
            .collect::<Vec<_>>()
            .join(",");
        for (t, v) in samples {
            let _ = writeln!(family, "{metric}{{{labels}}} {v} {t}");
        }
    }

    /// The text, `# EOF` last.
    pub fn text(&self) -> String {
        let mut out = String::new();
        for (metric, samples) in &self.families {
            let _ = writeln!(out, "# TYPE {metric} gauge");
            out.push_str(samples);
        }
        out.push_str("# EOF\n");
        out
    }
}
