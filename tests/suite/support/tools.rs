//! The programs the suite runs against, checked before a test needs one: `scripts/test` (the
//! README's test command) installs them once; the tests install nothing and say what is missing.

use std::process::Command;
use std::sync::OnceLock;

/// A program some tests run.
#[derive(Clone, Copy, Debug)]
pub enum Tool {
    /// `prometheus` and `promtool` (Debian's `prometheus` package).
    Prometheus,
    /// `kubectl` (renders the install).
    Kubectl,
    /// `python3 -m kubernetes_validate` (PyPI's kubernetes-validate).
    KubernetesValidate,
    /// `chromium`, headless (Debian's `chromium`): the console in a real browser.
    Chromium,
    /// DuckDB's Python package (PyPI `duckdb`): an independent reader of the Parquet and CSV
    /// exports.
    DuckDb,
    /// `moto_server` (PyPI `moto[server]`): an S3-compatible endpoint on loopback.
    Moto,
}

impl Tool {
    fn present(self) -> bool {
        let runs = |program: &str, args: &[&str]| {
            Command::new(program)
                .args(args)
                .output()
                .is_ok_and(|o| o.status.success())
        };
        match self {
            Tool::Prometheus => {
                runs("promtool", &["--version"]) && runs("prometheus", &["--version"])
            }
            Tool::Kubectl => runs("kubectl", &["version", "--client"]),
            Tool::KubernetesValidate => runs("python3", &["-c", "import kubernetes_validate"]),
            Tool::Chromium => runs("chromium", &["--version"]),
            Tool::DuckDb => runs("python3", &["-c", "import duckdb"]),
            Tool::Moto => runs("python3", &["-c", "import moto.server, boto3"]),
        }
    }

    fn how(self) -> &'static str {
        match self {
            Tool::Prometheus => {
                "prometheus and promtool (apt-get install --no-install-recommends prometheus)"
            }
            Tool::Kubectl => "kubectl (on this machine's image)",
            Tool::KubernetesValidate => {
                "kubernetes-validate (python3 -m pip install kubernetes-validate)"
            }
            Tool::Chromium => "chromium (apt-get install --no-install-recommends chromium)",
            Tool::DuckDb => "duckdb (python3 -m pip install duckdb)",
            Tool::Moto => "moto's S3 server (python3 -m pip install 'moto[server]')",
        }
    }
}

/// Panics, naming every one of `tools` that is missing and how to get it, before a test runs
/// against it. Each tool is looked for once per run.
pub fn require(tools: &[Tool]) {
    static FOUND: OnceLock<[bool; 6]> = OnceLock::new();
    let found = FOUND.get_or_init(|| {
        [
            Tool::Prometheus.present(),
            Tool::Kubectl.present(),
            Tool::KubernetesValidate.present(),
            Tool::Chromium.present(),
            Tool::DuckDb.present(),
            Tool::Moto.present(),
        ]
    });
    let missing: Vec<&str> = tools
        .iter()
        .filter(|&&tool| !found[tool as usize])
        .map(|tool| tool.how())
        .collect();
    assert!(
        missing.is_empty(),
        "missing: {}. Run the suite with scripts/test, which installs them.",
        missing.join("; ")
    );
}
