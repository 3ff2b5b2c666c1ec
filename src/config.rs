//! The one configuration struct. Sources, weakest first: built-in defaults, an optional TOML file
//! (`--config` / `CONSENT_LEDGER_CONFIG`), environment variables `CONSENT_LEDGER_*`, then flags.
//! Flags and environment variables are declared once, in [`ConfigArgs`] (clap reads both). Values
//! are parsed once, where they are read (IP ranges, witness endpoints, the mailbox), so a bad one
//! is refused at start with its setting's name and nothing parses them again.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use crate::consent::address::EmailAddress;
use crate::log::cosigning::WitnessEndpoint;
use crate::log::LogSettings;

/// Errors loading configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read the configuration file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid TOML for [`Config`].
    #[error("invalid configuration file {path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message.
        message: String,
    },
    /// A value is out of range.
    #[error("invalid setting {name}: {message}")]
    Invalid {
        /// The setting.
        name: &'static str,
        /// Why.
        message: String,
    },
}

/// Who may read the log's API (checkpoint, tiles, proofs, history).
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum ReadAccess {
    /// Anyone: what makes the log checkable by third parties (the default).
    #[default]
    Public,
    /// Only holders of a valid bearer token (any role), for operators who must hide volumes.
    Authenticated,
}

/// Everything the service can be configured with.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// `sqlite://PATH` (default `sqlite://consent-ledger.db`) or `postgres://…`.
    pub database_url: String,
    /// Address to listen on.
    pub bind: String,
    /// The log's checkpoint origin, e.g. `ledger.example.jp/consent/2026`. Fixed for a log's
    /// life: `None` keeps an existing log's, and names a new log after `public_url` (its host and
    /// path: C2SP tlog-checkpoint wants a unique identifier, tlog-tiles suggests the URL prefix).
    pub origin: Option<String>,
    /// Longest delay from an acknowledged append to a checkpoint covering it, in milliseconds.
    pub checkpoint_interval_ms: u64,
    /// Most leaves the sequencer commits in one transaction.
    pub max_batch: usize,
    /// Database connections in the pool.
    pub pool_size: u32,
    /// Who may read the log's API.
    pub log_read_access: ReadAccess,
    /// The address recipients reach the service at, for the links it hands out.
    pub public_url: String,
    /// Public unsubscribe requests per second from one IP address (bursts of ten times as many);
    /// 0 turns the limit off. Mail providers send one-clicks from few addresses: keep it high.
    pub unsubscribe_per_ip: u32,
    /// Let webhooks be `http://` to this machine (development and tests only; otherwise only
    /// https to public addresses).
    pub webhooks_to_loopback: bool,
    /// The mailbox of `List-Unsubscribe`'s mailto (its MTA pipes mail to
    /// `POST /v1/unsubscribe-mail`); default `unsubscribe@<public_url's host>`.
    pub unsubscribe_mailbox: Option<EmailAddress>,
    /// Witnesses asked to cosign each checkpoint (C2SP tlog-witness), each written
    /// `"<witness vkey> <submission URL>"`; none by default.
    pub witnesses: Vec<WitnessEndpoint>,
    /// Reverse proxies (IP addresses or CIDR ranges) whose `X-Forwarded-For` is believed: the
    /// client address recorded as evidence and used for rate limits is then the last address
    /// before them. None by default (the socket's peer is the client).
    pub trusted_proxies: Vec<IpRange>,
    /// Seconds added to the clock the log records times by (each leaf's `recorded_at`); 0 by
    /// default. For retention drills and tests only: a log whose clock is off is caught — an
    /// auditing witness refuses leaves dated after its own clock or before its last cosignature,
    /// verifiers with a policy bound every event's and erasure's time by the witnesses', and a
    /// leaf recorded before the one its chain names fails (`docs/threat-model.md`).
    pub clock_offset_secs: i64,
    /// Longest lifetime of a bearer token, in days (90 by default): `token issue` refuses a
    /// longer `--ttl`, and a token whose `exp` lies further than this past its `iat` is refused.
    pub token_max_lifetime_days: u32,
    /// Runs the log as versions before subject labels did, to make test fixtures of old logs
    /// (`LogSettings::pre_labels`); never read from a file or the environment.
    #[doc(hidden)]
    #[serde(skip)]
    pub pre_labels: bool,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            database_url: "sqlite://consent-ledger.db".into(),
            bind: "127.0.0.1:8080".into(),
            origin: None,
            checkpoint_interval_ms: 100,
            max_batch: 4096,
            pool_size: 8,
            log_read_access: ReadAccess::Public,
            public_url: "http://127.0.0.1:8080".into(),
            unsubscribe_per_ip: 100,
            webhooks_to_loopback: false,
            unsubscribe_mailbox: None,
            witnesses: Vec::new(),
            trusted_proxies: Vec::new(),
            clock_offset_secs: 0,
            token_max_lifetime_days: 90,
            pre_labels: false,
        }
    }
}

/// Configuration flags, each also read from its environment variable.
#[derive(Clone, Debug, Default, clap::Args)]
pub struct ConfigArgs {
    /// TOML configuration file (keys as in README; flags and environment override it).
    #[arg(long, env = "CONSENT_LEDGER_CONFIG", global = true)]
    pub config: Option<PathBuf>,
    /// Database URL: sqlite://PATH or postgres://USER@HOST/DB [default: sqlite://consent-ledger.db]
    #[arg(long, env = "CONSENT_LEDGER_DATABASE_URL", global = true)]
    pub database_url: Option<String>,
    /// Address to listen on [default: 127.0.0.1:8080]
    #[arg(long, env = "CONSENT_LEDGER_BIND", global = true)]
    pub bind: Option<String>,
    /// The log's checkpoint origin [default: an existing log's own; a new log's from public_url]
    #[arg(long, env = "CONSENT_LEDGER_ORIGIN", global = true)]
    pub origin: Option<String>,
    /// Milliseconds from an acknowledged append to a covering checkpoint, at most [default: 100]
    #[arg(long, env = "CONSENT_LEDGER_CHECKPOINT_INTERVAL_MS", global = true)]
    pub checkpoint_interval_ms: Option<u64>,
    /// Most leaves per commit [default: 4096]
    #[arg(long, env = "CONSENT_LEDGER_MAX_BATCH", global = true)]
    pub max_batch: Option<usize>,
    /// Database connections in the pool [default: 8]
    #[arg(long, env = "CONSENT_LEDGER_POOL_SIZE", global = true)]
    pub pool_size: Option<u32>,
    /// Who may read the log's API: public, or authenticated (any valid token) [default: public]
    #[arg(
        long,
        env = "CONSENT_LEDGER_LOG_READ_ACCESS",
        global = true,
        value_enum
    )]
    pub log_read_access: Option<ReadAccess>,
    /// Where recipients reach the service, for links in mails [default: http://127.0.0.1:8080]
    #[arg(long, env = "CONSENT_LEDGER_PUBLIC_URL", global = true)]
    pub public_url: Option<String>,
    /// Unsubscribe requests per second from one IP, 0 = no limit [default: 100]
    #[arg(long, env = "CONSENT_LEDGER_UNSUBSCRIBE_PER_IP", global = true)]
    pub unsubscribe_per_ip: Option<u32>,
    /// Allow http:// webhooks to this machine (development only): a plain flag, or
    /// `--webhooks-to-loopback=false` [default: false]
    #[arg(
        long,
        env = "CONSENT_LEDGER_WEBHOOKS_TO_LOOPBACK",
        global = true,
        num_args = 0..=1,
        default_missing_value = "true",
        require_equals = true
    )]
    pub webhooks_to_loopback: Option<bool>,
    /// Mailbox for mailto unsubscribes [default: unsubscribe@<public_url host>]
    #[arg(long, env = "CONSENT_LEDGER_UNSUBSCRIBE_MAILBOX", global = true)]
    pub unsubscribe_mailbox: Option<EmailAddress>,
    /// A witness to ask for cosignatures, "<vkey> <url>" (repeat the flag; the environment
    /// variable separates them with commas) [default: none]
    #[arg(
        long = "witness",
        env = "CONSENT_LEDGER_WITNESSES",
        global = true,
        value_delimiter = ','
    )]
    pub witnesses: Option<Vec<WitnessEndpoint>>,
    /// A reverse proxy whose X-Forwarded-For is believed, an IP or CIDR (repeat the flag; the
    /// environment variable separates them with commas) [default: none]
    #[arg(
        long = "trusted-proxy",
        env = "CONSENT_LEDGER_TRUSTED_PROXIES",
        global = true,
        value_delimiter = ','
    )]
    pub trusted_proxies: Option<Vec<IpRange>>,
    /// Seconds added to the log's clock, for retention drills and tests only [default: 0]
    #[arg(
        long,
        env = "CONSENT_LEDGER_CLOCK_OFFSET_SECS",
        global = true,
        allow_hyphen_values = true
    )]
    pub clock_offset_secs: Option<i64>,
    /// Longest bearer token lifetime in days, 1–3660 [default: 90]
    #[arg(long, env = "CONSENT_LEDGER_TOKEN_MAX_LIFETIME_DAYS", global = true)]
    pub token_max_lifetime_days: Option<u32>,
}

impl ConfigArgs {
    /// These flags, each falling back to `earlier`'s (the same flags given before the command).
    pub fn or(self, earlier: ConfigArgs) -> ConfigArgs {
        macro_rules! either {
            ($($field:ident),*) => { ConfigArgs { $( $field: self.$field.or(earlier.$field), )* } };
        }
        either!(
            config,
            database_url,
            bind,
            origin,
            checkpoint_interval_ms,
            max_batch,
            pool_size,
            log_read_access,
            public_url,
            unsubscribe_per_ip,
            webhooks_to_loopback,
            unsubscribe_mailbox,
            witnesses,
            trusted_proxies,
            clock_offset_secs,
            token_max_lifetime_days
        )
    }
}

impl Config {
    /// Defaults, then the file named in `args` (if any), then `args` (flags or environment).
    pub fn load(args: &ConfigArgs) -> Result<Self, ConfigError> {
        let mut config = match &args.config {
            None => Config::default(),
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.clone(),
                    source,
                })?;
                toml::from_str(&text).map_err(|e| ConfigError::Parse {
                    path: path.clone(),
                    message: e.to_string(),
                })?
            }
        };
        let ConfigArgs {
            config: _,
            database_url,
            bind,
            origin,
            checkpoint_interval_ms,
            max_batch,
            pool_size,
            log_read_access,
            public_url,
            unsubscribe_per_ip,
            webhooks_to_loopback,
            unsubscribe_mailbox,
            witnesses,
            trusted_proxies,
            clock_offset_secs,
            token_max_lifetime_days,
        } = args.clone();
        macro_rules! overlay {
            ($($field:ident),*) => { $( if let Some(v) = $field { config.$field = v; } )* };
        }
        overlay!(
            database_url,
            bind,
            checkpoint_interval_ms,
            max_batch,
            pool_size,
            log_read_access,
            public_url,
            unsubscribe_per_ip,
            webhooks_to_loopback,
            witnesses,
            trusted_proxies,
            clock_offset_secs,
            token_max_lifetime_days
        );
        if unsubscribe_mailbox.is_some() {
            config.unsubscribe_mailbox = unsubscribe_mailbox;
        }
        if origin.is_some() {
            config.origin = origin;
        }
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |name, message: &str| {
            Err(ConfigError::Invalid {
                name,
                message: message.into(),
            })
        };
        if !valid_origin(&self.default_origin()) {
            return invalid(
                "origin",
                "must be non-empty with no spaces or '+', e.g. ledger.example.jp/consent/2026",
            );
        }
        if !(self.public_url.starts_with("https://") || self.public_url.starts_with("http://")) {
            return invalid(
                "public_url",
                "must be an http(s) URL, e.g. https://ledger.example.jp",
            );
        }
        if !(1..=60_000).contains(&self.checkpoint_interval_ms) {
            return invalid("checkpoint_interval_ms", "must be 1–60000");
        }
        if !(1..=100_000).contains(&self.max_batch) {
            return invalid("max_batch", "must be 1–100000");
        }
        if !(2..=256).contains(&self.pool_size) {
            return invalid(
                "pool_size",
                "must be 2–256 (one connection writes while others read)",
            );
        }
        if !(1..=3660).contains(&self.token_max_lifetime_days) {
            return invalid("token_max_lifetime_days", "must be 1–3660");
        }
        Ok(())
    }

    /// The longest lifetime of a bearer token.
    pub fn token_max_lifetime(&self) -> Duration {
        Duration::from_secs(u64::from(self.token_max_lifetime_days) * 86_400)
    }

    /// The origin a new log gets: the configured one, or `public_url` without its scheme and
    /// trailing slash (`https://ledger.example.jp/consent/` → `ledger.example.jp/consent`).
    pub fn default_origin(&self) -> String {
        self.origin.clone().unwrap_or_else(|| {
            let url = self.public_url.trim_end_matches('/');
            url.split_once("://")
                .map_or(url, |(_, rest)| rest)
                .to_string()
        })
    }

    /// Whether the service listens beyond this machine (`bind` is not a loopback address): in
    /// production, as far as the log's name is concerned.
    fn listens_beyond_loopback(&self) -> bool {
        let host = self
            .bind
            .rsplit_once(':')
            .map_or(self.bind.as_str(), |(h, _)| h);
        let host = host.trim_start_matches('[').trim_end_matches(']');
        !(host == "localhost"
            || host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback()))
    }

    /// Whether `public_url` names this machine only (`localhost`, a loopback address).
    fn public_url_is_local(&self) -> bool {
        match url::Url::parse(&self.public_url)
            .ok()
            .and_then(|u| u.host().map(|h| h.to_owned()))
        {
            Some(url::Host::Domain(d)) => d == "localhost",
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            None => true,
        }
    }

    /// The origin a new log may be created with: `None` when no unique one can be derived — a
    /// service listening beyond this machine whose `public_url` names only this machine and no
    /// `origin` set (tlog-checkpoint: the origin "SHOULD be unique"; every such install would be
    /// `127.0.0.1:8080`).
    fn new_log_origin(&self) -> Option<String> {
        let unnamed = self.origin.is_none() && self.public_url_is_local();
        (!(unnamed && self.listens_beyond_loopback())).then(|| self.default_origin())
    }

    /// The log's settings.
    pub fn log_settings(&self) -> LogSettings {
        LogSettings {
            origin: self.origin.clone(),
            new_origin: self.new_log_origin(),
            checkpoint_interval: Duration::from_millis(self.checkpoint_interval_ms),
            max_batch: self.max_batch,
            witnesses: self.witnesses.clone(),
            clock_offset_ms: self.clock_offset_secs.saturating_mul(1000),
            pre_labels: self.pre_labels,
        }
    }
}

/// Whether `origin` can name a log: non-empty, no whitespace, no `+` (it is the key name too).
fn valid_origin(origin: &str) -> bool {
    !origin.is_empty() && !origin.chars().any(|c| c.is_whitespace() || c == '+')
}

/// An IP address or CIDR range (`trusted_proxies`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct IpRange {
    network: std::net::IpAddr,
    prefix: u8,
}

impl std::str::FromStr for IpRange {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        Self::parse(text)
            .ok_or_else(|| format!("{text:?} is not an IP address or CIDR range, e.g. 10.0.0.0/8"))
    }
}

impl TryFrom<String> for IpRange {
    type Error = String;

    fn try_from(text: String) -> Result<Self, String> {
        text.parse()
    }
}

impl IpRange {
    /// Parses `10.0.0.1`, `10.0.0.0/8`, `2001:db8::/32`.
    pub fn parse(text: &str) -> Option<Self> {
        let (ip, prefix) = match text.trim().split_once('/') {
            Some((ip, p)) => (ip, Some(p.parse::<u8>().ok()?)),
            None => (text.trim(), None),
        };
        let network: std::net::IpAddr = ip.parse().ok()?;
        let max = if network.is_ipv4() { 32 } else { 128 };
        let prefix = prefix.unwrap_or(max);
        (prefix <= max).then_some(Self { network, prefix })
    }

    /// Whether `ip` is in the range.
    pub fn contains(&self, ip: std::net::IpAddr) -> bool {
        use std::net::IpAddr::{V4, V6};
        let p = u32::from(self.prefix);
        match (self.network, ip) {
            (V4(net), V4(ip)) => {
                let mask = u32::MAX.checked_shl(32 - p).unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (V6(net), V6(ip)) => {
                let mask = u128::MAX.checked_shl(128 - p).unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// C2SP tlog-checkpoint: the origin "SHOULD be unique" — a service reachable from other
    /// machines gets a new log only under a name of its own: its public URL's, or the origin set.
    #[test]
    fn a_new_log_beyond_loopback_needs_a_name_of_its_own() {
        let local = Config::default();
        assert_eq!(local.new_log_origin().as_deref(), Some("127.0.0.1:8080"));
        let exposed = Config {
            bind: "0.0.0.0:8080".into(),
            ..Config::default()
        };
        assert_eq!(exposed.new_log_origin(), None);
        let v6 = Config {
            bind: "[::]:8080".into(),
            public_url: "http://[::1]:8080".into(),
            ..Config::default()
        };
        assert_eq!(v6.new_log_origin(), None);
        let named = Config {
            public_url: "https://ledger.example.jp/consent/".into(),
            ..exposed.clone()
        };
        assert_eq!(
            named.new_log_origin().as_deref(),
            Some("ledger.example.jp/consent")
        );
        let origin = Config {
            origin: Some("ledger.example.jp/2026".into()),
            ..exposed
        };
        assert_eq!(
            origin.new_log_origin().as_deref(),
            Some("ledger.example.jp/2026")
        );
    }

    #[test]
    fn file_then_flags_override_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, "origin = \"a.example/log\"\nbind = \"0.0.0.0:9\"\n").unwrap();
        let args = ConfigArgs {
            config: Some(path.clone()),
            bind: Some("127.0.0.1:1".into()),
            ..Default::default()
        };
        let c = Config::load(&args).unwrap();
        assert_eq!(c.origin.as_deref(), Some("a.example/log"));
        assert_eq!(c.bind, "127.0.0.1:1");
        assert_eq!(c.database_url, Config::default().database_url);
        std::fs::write(&path, "orign = \"typo\"\n").unwrap();
        assert!(matches!(
            Config::load(&args),
            Err(ConfigError::Parse { .. })
        ));
        // Values are parsed where they are read: a bad one names its setting.
        std::fs::write(&path, "trusted_proxies = [\"10.0.0.0/8\", \"bogus\"]\n").unwrap();
        match Config::load(&args) {
            Err(ConfigError::Parse { message, .. }) => {
                assert!(
                    message.contains("\"bogus\" is not an IP address"),
                    "{message}"
                )
            }
            other => panic!("{other:?}"),
        }
        let bad = ConfigArgs {
            origin: Some("has space".into()),
            ..Default::default()
        };
        assert!(matches!(
            Config::load(&bad),
            Err(ConfigError::Invalid { name: "origin", .. })
        ));
    }
}
