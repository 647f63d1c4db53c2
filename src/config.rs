//! Tollgate's configuration: a TOML file (`--config`) layered under environment variables
//! `TOLLGATE__SECTION__KEY` (e.g. `TOLLGATE__COST_CENTER__KEY=team`).

use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// Everything configurable. Unknown keys are refused so that a typo is not silently ignored.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// Which cluster this is.
    pub cluster: ClusterSettings,
    /// Where prices come from.
    pub pricing: PricingSettings,
    /// How pods are assigned to cost centers.
    pub cost_center: CostCenterSettings,
    /// The HTTP server of `tollgate serve`.
    pub server: ServerSettings,
    /// How often the cluster is read into the ledger.
    pub sources: SourceSettings,
    /// Where the ledger is kept.
    pub store: StoreSettings,
    /// How the quota check behaves.
    pub quota: QuotaSettings,
    /// The HTTPS listener for the admission webhook.
    pub tls: TlsSettings,
    /// Where DCGM usage and history come from.
    pub prometheus: crate::prometheus::PrometheusSettings,
    /// The names the FOCUS export gives the platform.
    pub focus: crate::output::FocusSettings,
    /// Where `serve` exports each closed day.
    pub export: ExportSettings,
    /// Who may read chargebacks and ask quota checks.
    pub auth: AuthSettings,
    /// Which of several replicas writes the ledger and rollups.
    pub leader: crate::live::LeaderSettings,
    /// How token reports weigh input against output tokens.
    pub tokens: TokenSettings,
    /// Budgets (`[[budget]]`), validated by [`crate::budget::validate_budgets`].
    pub budget: Vec<crate::budget::RawBudget>,
}

/// `[tokens]`
#[derive(Clone, Debug, Deserialize, PartialEq, Eq, Default)]
#[serde(deny_unknown_fields, default)]
pub struct TokenSettings {
    /// What an input token costs beside an output token (e.g. `0.25`): token reports then split
    /// each line's cost into `cost_per_1m_input` and `cost_per_1m_output` with this ratio.
    /// A number or a decimal string; unset, no split.
    pub input_weight: Option<String>,
}

impl TokenSettings {
    /// `input_weight`, read: a decimal number from 0 up.
    pub fn input_weight(&self) -> Result<Option<rust_decimal::Decimal>, String> {
        let Some(text) = &self.input_weight else {
            return Ok(None);
        };
        match text.trim().parse::<rust_decimal::Decimal>() {
            Ok(weight) if !weight.is_sign_negative() => Ok(Some(weight)),
            _ => Err(format!(
                "tokens.input_weight: {text:?} is not a decimal number from 0 up (write e.g. 0.25)"
            )),
        }
    }
}

/// How requests are authenticated.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum AuthMode {
    /// Everything is open (the default).
    #[default]
    None,
    /// Bearer tokens from `tokens_file`.
    Token,
    /// Bearer tokens verified by a Kubernetes TokenReview.
    TokenReview,
}

/// `[auth]`
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct AuthSettings {
    /// `none` (default), `token` or `token_review`.
    pub mode: AuthMode,
    /// With `token`: the file of accepted tokens, one per line (`#` starts a comment).
    pub tokens_file: Option<PathBuf>,
    /// The audience a quota caller's projected token must carry (default
    /// `kyverno-svc.kyverno.io`, Kyverno's).
    pub quota_audience: String,
    /// With `token_review`: users who may read chargebacks (empty with `finance_groups` empty:
    /// any authenticated user).
    pub finance_users: Vec<String>,
    /// With `token_review`: groups whose members may read chargebacks.
    pub finance_groups: Vec<String>,
    /// Users whose projected tokens may ask quota checks (empty: any, with the audience).
    pub quota_users: Vec<String>,
    /// Seconds a TokenReview answer is reused (default 60; refusals 10 at most).
    pub review_cache_seconds: u64,
}

impl Default for AuthSettings {
    fn default() -> Self {
        AuthSettings {
            mode: AuthMode::None,
            tokens_file: None,
            quota_audience: "kyverno-svc.kyverno.io".into(),
            finance_users: Vec::new(),
            finance_groups: Vec::new(),
            quota_users: Vec::new(),
            review_cache_seconds: 60,
        }
    }
}

/// What the quota check does when its data is stale.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum FailMode {
    /// Allow, with a warning (the default: a stale Tollgate never blocks deployments).
    #[default]
    FailOpen,
    /// Deny until the data is current again.
    FailClosed,
}

/// `[quota]`
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct QuotaSettings {
    /// `fail_open` (default) or `fail_closed` when the data is older than `max_staleness_seconds`.
    pub fail_mode: FailMode,
    /// Data older than this (seconds since the last complete read) is stale. Default 120.
    pub max_staleness_seconds: u64,
    /// How long an admitted pod is held against its budget if it never shows up. Default 300.
    pub reservation_ttl_seconds: u64,
    /// A TOML file of more `[[budget]]` tables (a ConfigMap of its own), added to the
    /// config's.
    pub budgets_file: Option<PathBuf>,
    /// A Prometheus-compatible URL (Thanos, Mimir, VictoriaMetrics, a federating Prometheus)
    /// holding every cluster's `tollgate_*` series, labelled by `cluster`: what global budgets
    /// (`scope = "global"`) add of the other clusters. Its client settings are `[prometheus]`'s.
    pub global_prometheus: Option<String>,
    /// How often the other clusters' figures are read from `global_prometheus`. Default 15.
    pub global_refresh_seconds: u64,
}

impl Default for QuotaSettings {
    fn default() -> Self {
        QuotaSettings {
            fail_mode: FailMode::default(),
            max_staleness_seconds: 120,
            reservation_ttl_seconds: 300,
            budgets_file: None,
            global_prometheus: None,
            global_refresh_seconds: 15,
        }
    }
}

/// `[tls]`: HTTPS for the admission webhook (the API server calls webhooks over HTTPS only).
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct TlsSettings {
    /// Address of the HTTPS listener, e.g. `0.0.0.0:8443`. Unset: no HTTPS.
    pub listen: Option<String>,
    /// PEM certificate chain; re-read when it changes (rotation).
    pub cert_file: Option<std::path::PathBuf>,
    /// PEM private key; re-read when it changes.
    pub key_file: Option<std::path::PathBuf>,
    /// PEM CA bundle: when set, the HTTPS listener accepts only clients presenting a
    /// certificate it signed (the API server's, per its admission configuration).
    pub client_ca_file: Option<std::path::PathBuf>,
}

/// `[server]`
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct ServerSettings {
    /// Address to listen on. Default `0.0.0.0:8080`; `--listen` overrides it.
    pub listen: String,
    /// Chargeback and FOCUS reports computed at once (default 1); more wait their turn, on
    /// threads apart from the ones answering quota checks.
    pub reports_at_once: NonZeroUsize,
    /// Threads answering requests (default: the CPUs available, cgroup limits included, less
    /// one, at least one). Reconciles, reports and rollups run on other threads, at a lower
    /// priority; leaving them a CPU keeps quota checks from queueing behind them.
    pub workers: Option<usize>,
    /// The most lines a chargeback or token report of the API or the console is made with
    /// (default 2,000,000): one with more is answered 400 before its memory grows with them. A
    /// line takes ~500 bytes while it is priced and rounded, so the default fits the install's
    /// 2Gi beside the service; the FOCUS export, made and written a day at a time, is not bound.
    pub max_report_lines: NonZeroUsize,
}

/// `server.max_report_lines` unless set (checked when compiled: a constant).
const MAX_REPORT_LINES: NonZeroUsize = NonZeroUsize::new(2_000_000).unwrap();

impl Default for ServerSettings {
    fn default() -> Self {
        ServerSettings {
            listen: "0.0.0.0:8080".to_string(),
            reports_at_once: NonZeroUsize::MIN,
            workers: None,
            max_report_lines: MAX_REPORT_LINES,
        }
    }
}

impl ServerSettings {
    /// The number of request threads to run.
    pub fn worker_threads(&self) -> usize {
        self.workers
            .unwrap_or_else(|| {
                std::thread::available_parallelism().map_or(1, |n| n.get().saturating_sub(1))
            })
            .max(1)
    }
}

/// `[sources]`
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct SourceSettings {
    /// Seconds between two reconciles of the watched objects with the ledger (default 2): a
    /// bound on how late `/metrics` is and on how much a vanished pod can be mis-timed.
    pub reconcile_seconds: u64,
}

impl Default for SourceSettings {
    fn default() -> Self {
        SourceSettings {
            reconcile_seconds: 2,
        }
    }
}

/// `[export]`
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct ExportSettings {
    /// A directory or `s3://bucket/prefix`: `serve` exports each day there once it is rolled
    /// up, as `tollgate export --dest` does (unset: no export).
    pub dest: Option<String>,
}

/// `[cluster]`
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct ClusterSettings {
    /// The cluster's name (env `TOLLGATE__CLUSTER__NAME`). Stored rollups record it, and only
    /// a source of the same name reads them. Default: the watched cluster's (or snapshot's)
    /// `kube-system` namespace UID, `demo` for the demo, the Prometheus URL for `--history`;
    /// set it wherever `serve` and the CLI share a store.
    pub name: Option<String>,
}

/// `[store]`
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct StoreSettings {
    /// Data directory of the ledger and the rollups (default `tollgate-data`). Only a live
    /// cluster's ledger is recorded; the demo and snapshots are kept in memory.
    pub dir: std::path::PathBuf,
    /// Days of daily rollups kept (default 400).
    pub rollup_retention_days: u32,
}

impl Default for StoreSettings {
    fn default() -> Self {
        StoreSettings {
            dir: "tollgate-data".into(),
            rollup_retention_days: 400,
        }
    }
}

/// `[pricing]`
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct PricingSettings {
    /// The rate card file. Default: the built-in example card (`pricing/default.toml`);
    /// `--pricing` overrides it.
    pub file: Option<PathBuf>,
}

/// `[cost_center]`
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct CostCenterSettings {
    /// The annotation and label key read on pods and namespaces. Default `cost-center`.
    pub key: String,
}

impl Default for CostCenterSettings {
    fn default() -> Self {
        CostCenterSettings {
            key: "cost-center".to_string(),
        }
    }
}

/// A configuration that could not be loaded.
#[derive(Debug, thiserror::Error)]
#[error("configuration{}: {source}", file.as_ref().map(|f| format!(" {}", f.display())).unwrap_or_default())]
pub struct ConfigError {
    /// The file, if one was given.
    pub file: Option<PathBuf>,
    /// What the config crate found wrong.
    #[source]
    pub source: Box<config::ConfigError>,
}

impl Settings {
    /// Loads `file` (if given) then the `TOLLGATE__…` environment on top.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        let fail = |source| ConfigError {
            file: file.map(Path::to_path_buf),
            source: Box::new(source),
        };
        let mut builder = config::Config::builder();
        if let Some(path) = file {
            builder = builder.add_source(
                config::File::from(path)
                    .format(config::FileFormat::Toml)
                    .required(true),
            );
        }
        let mut settings: Settings = builder
            .add_source(environment())
            .build()
            .map_err(fail)?
            .try_deserialize()
            .map_err(fail)?;
        if let Some(path) = settings.quota.budgets_file.clone() {
            settings.budget.extend(budgets_file(&path)?);
        }
        Ok(settings)
    }
}

/// The `TOLLGATE__SECTION__KEY` variables; lists are comma-separated
/// (`TOLLGATE__AUTH__FINANCE_GROUPS=a,b`).
fn environment() -> config::Environment {
    let mut environment = config::Environment::with_prefix("TOLLGATE")
        .separator("__")
        .try_parsing(true)
        .list_separator(",");
    for key in [
        "auth.finance_users",
        "auth.finance_groups",
        "auth.quota_users",
    ] {
        environment = environment.with_list_parse_key(key);
    }
    environment
}

/// The `[[budget]]` tables of `quota.budgets_file`, read as the config file's are.
fn budgets_file(path: &Path) -> Result<Vec<crate::budget::RawBudget>, ConfigError> {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Budgets {
        #[serde(default)]
        budget: Vec<crate::budget::RawBudget>,
    }
    config::Config::builder()
        .add_source(
            config::File::from(path)
                .format(config::FileFormat::Toml)
                .required(true),
        )
        .build()
        .and_then(|c| c.try_deserialize::<Budgets>())
        .map(|b| b.budget)
        .map_err(|source| ConfigError {
            file: Some(path.to_path_buf()),
            source: Box::new(source),
        })
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn file_values_load_and_typos_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("good.toml");
        std::fs::write(
            &good,
            "[cost_center]\nkey = \"team\"\n[pricing]\nfile = \"rates.toml\"\n",
        )
        .unwrap();
        let settings = Settings::load(Some(&good)).unwrap();
        assert_eq!(settings.cost_center.key, "team");
        assert_eq!(settings.pricing.file, Some(PathBuf::from("rates.toml")));

        let bad = dir.path().join("bad.toml");
        std::fs::write(&bad, "[cost_centre]\nkey = \"team\"\n").unwrap();
        let err = Settings::load(Some(&bad)).unwrap_err().to_string();
        assert!(
            err.contains("bad.toml") && err.contains("cost_centre"),
            "{err}"
        );

        // No report could be made with 0 lines, and none would ever be made 0 at a time.
        for key in ["max_report_lines", "reports_at_once"] {
            let zero = dir.path().join(format!("{key}.toml"));
            std::fs::write(&zero, format!("[server]\n{key} = 0\n")).unwrap();
            let err = Settings::load(Some(&zero)).unwrap_err().to_string();
            assert!(
                err.contains(&format!("expected a nonzero usize for key `server.{key}`")),
                "{err}"
            );
        }

        let missing = Settings::load(Some(&dir.path().join("nope.toml")))
            .unwrap_err()
            .to_string();
        assert!(missing.contains("nope.toml"), "{missing}");
        assert_eq!(Settings::load(None).unwrap().cost_center.key, "cost-center");
    }

    #[test]
    fn environment_lists_are_comma_separated_and_scalars_typed() {
        let vars = [
            ("TOLLGATE__AUTH__MODE", "token_review"),
            (
                "TOLLGATE__AUTH__FINANCE_GROUPS",
                "system:serviceaccounts:finance,finops",
            ),
            (
                "TOLLGATE__AUTH__QUOTA_USERS",
                "system:serviceaccount:kyverno:kyverno",
            ),
            ("TOLLGATE__LEADER__ENABLED", "true"),
            ("TOLLGATE__LEADER__LEASE_SECONDS", "20"),
            ("TOLLGATE__COST_CENTER__KEY", "team"),
        ];
        let settings: Settings = config::Config::builder()
            .add_source(
                environment().source(Some(
                    vars.iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect(),
                )),
            )
            .build()
            .unwrap()
            .try_deserialize()
            .unwrap();
        assert_eq!(
            settings.auth.finance_groups,
            ["system:serviceaccounts:finance", "finops"]
        );
        assert_eq!(
            settings.auth.quota_users,
            ["system:serviceaccount:kyverno:kyverno"]
        );
        assert!(settings.leader.enabled);
        assert_eq!(settings.leader.lease_seconds, 20);
        assert_eq!(settings.cost_center.key, "team");
    }
}

#[cfg(test)]
mod budget_test {
    use super::*;

    #[test]
    fn budgets_and_quota_settings_load_from_toml() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("budgets.toml");
        std::fs::write(
            &file,
            "[quota]\nfail_mode = \"fail_closed\"\n\n[[budget]]\ncost_center = \"cc-100\"\nmonthly = \"25000.00\"\nmax_gpus = 16\nwarn_at = 0.8\n\n[[budget]]\nnamespace = \"team-a\"\nmonthly = 5000\nenforce = false\n",
        )
        .unwrap();
        let settings = Settings::load(Some(&file)).unwrap();
        assert_eq!(settings.quota.fail_mode, FailMode::FailClosed);
        let budgets = crate::budget::validate_budgets(&settings.budget).unwrap();
        assert_eq!(budgets.len(), 2);
        assert_eq!(budgets[0].max_units, Some(rust_decimal::Decimal::from(16)));
        assert_eq!(budgets[0].warn_at, Some("0.8".parse().unwrap()));
        assert_eq!(budgets[1].monthly, rust_decimal::Decimal::from(5000));
        assert!(!budgets[1].enforce);

        // Budgets in a file of their own are added to the config's.
        let more = dir.path().join("more.toml");
        std::fs::write(
            &more,
            "[[budget]]\ncost_center = \"cc-200\"\nmonthly = \"100\"\nmax_gpus = 16\nwarn_at = 0.8\n",
        )
        .unwrap();
        let with_file = dir.path().join("with-file.toml");
        std::fs::write(
            &with_file,
            format!("[quota]\nbudgets_file = {:?}\n\n[[budget]]\ncost_center = \"cc-100\"\nmonthly = 1\n", more),
        )
        .unwrap();
        let settings = Settings::load(Some(&with_file)).unwrap();
        let budgets = crate::budget::validate_budgets(&settings.budget).unwrap();
        assert_eq!(budgets.len(), 2);
        std::fs::write(&more, "[[budgets]]\ncost_center = \"cc-200\"\n").unwrap();
        let err = Settings::load(Some(&with_file)).unwrap_err().to_string();
        assert!(
            err.contains("more.toml") && err.contains("budgets"),
            "{err}"
        );
    }
}
