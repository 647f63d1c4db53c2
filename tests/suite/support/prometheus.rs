//! A real Prometheus for tests: Debian's `prometheus` package (`scripts/test` installs it), data
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
    port: u16,
    dir: tempfile::TempDir,
}

impl TestPrometheus {
    /// Backfills `openmetrics` and starts the server.
    pub fn start(openmetrics: &str) -> Self {
        super::tools::require(&[super::tools::Tool::Prometheus]);
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
        Self::serve(dir, "global:\n  scrape_interval: 1h\n")
    }

    /// Starts a server that scrapes `/metrics` of each of `targets` (`HOST:PORT`) every second.
    pub fn scraping(targets: &[&str]) -> Self {
        super::tools::require(&[super::tools::Tool::Prometheus]);
        let dir = tempfile::tempdir().unwrap();
        let listed: Vec<String> = targets.iter().map(|t| format!("'{t}'")).collect();
        let config = format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: tollgate\n    static_configs:\n      - targets: [{}]\n",
            listed.join(", ")
        );
        Self::serve(dir, &config)
    }

    /// Runs Prometheus with `config` over the TSDB in `dir`, once ready.
    fn serve(dir: tempfile::TempDir, config: &str) -> Self {
        std::fs::write(dir.path().join("prometheus.yml"), config).unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let prometheus = TestPrometheus {
            child: Self::spawn(dir.path(), port),
            url: format!("http://127.0.0.1:{port}"),
            port,
            dir,
        };
        prometheus.wait_until_ready();
        prometheus
    }

    /// Stops the server (its data stays): queries fail until [`TestPrometheus::start_again`].
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts the server again, on the same port and data, once ready.
    pub fn start_again(&mut self) {
        self.stop();
        self.child = Self::spawn(self.dir.path(), self.port);
        self.wait_until_ready();
    }

    /// Prometheus over `dir`'s `tsdb`, configured by its `prometheus.yml`, on `port`.
    fn spawn(dir: &std::path::Path, port: u16) -> Child {
        Command::new("prometheus")
            .arg(format!(
                "--config.file={}",
                dir.join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("tsdb").display()
            ))
            .arg("--storage.tsdb.retention.time=10y")
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    }

    fn wait_until_ready(&self) {
        let port = self.port;
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
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("prometheus did not become ready");
    }
}

impl Drop for TestPrometheus {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Builds OpenMetrics text: gauge series one at a time, or whole scrapes of a `/metrics`
/// exposition; samples of a series in time order.
#[derive(Default)]
pub struct OpenMetrics {
    /// Family → (type, sample lines).
    families: std::collections::BTreeMap<String, (String, String)>,
}

impl OpenMetrics {
    /// Adds `samples` (unix seconds, value) of one gauge series.
    pub fn series(
        &mut self,
        metric: &str,
        labels: &[(&str, &str)],
        samples: impl IntoIterator<Item = (i64, f64)>,
    ) {
        let family = &mut self
            .families
            .entry(metric.to_string())
            .or_insert_with(|| ("gauge".into(), String::new()))
            .1;
        let labels = labels
            .iter()
            .map(|(k, v)| format!("{k}=\"{v}\""))
            .collect::<Vec<_>>()
            .join(",");
        for (t, v) in samples {
            let _ = writeln!(family, "{metric}{{{labels}}} {v} {t}");
        }
    }

    /// Adds every sample of an OpenMetrics `exposition` (what `/metrics` answered), scraped at
    /// `at` (unix seconds). Scrapes must be added in time order.
    pub fn scrape(&mut self, exposition: &str, at: i64) {
        let mut family = None;
        for line in exposition.lines() {
            if let Some(declared) = line.strip_prefix("# TYPE ") {
                let (name, kind) = declared.split_once(' ').unwrap();
                self.families
                    .entry(name.to_string())
                    .or_insert_with(|| (kind.to_string(), String::new()));
                family = Some(name.to_string());
            } else if !line.starts_with('#') && !line.trim().is_empty() {
                let name = family.as_ref().expect("a sample before its # TYPE");
                let _ = writeln!(self.families.get_mut(name).unwrap().1, "{line} {at}");
            }
        }
    }

    /// The text, `# EOF` last.
    pub fn text(&self) -> String {
        let mut out = String::new();
        for (metric, (kind, samples)) in &self.families {
            let _ = writeln!(out, "# TYPE {metric} {kind}");
            out.push_str(samples);
        }
        out.push_str("# EOF\n");
        out
    }
}
