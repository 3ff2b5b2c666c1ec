//! The command line: `serve`, `migrate`, `log vkey`, `log checkpoint`, `tenant …`, `key …`,
//! `token …`, `openapi`, `witness new-key|vkey|serve`, the regulator's offline tools
//! `verify evidence` and `monitor`
//! (`verify.rs`), and a hidden `append-stress` used by the crash test. Every command takes the
//! same configuration flags; the offline tools need no database.

use anyhow::{bail, Context};
use std::io::Write;
use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::api::{self, AppState};
use crate::auth::Role;
use crate::config::{Config, ConfigArgs};
use crate::consent::{
    self,
    model::{NewTenant, PurposeDefinition},
};
use crate::log::{Leaf, Log};
use crate::store::Store;

mod verify;

/// consent-ledger: e-mail consent events in an append-only, verifiable Merkle log.
#[derive(Debug, Parser)]
#[command(name = "consent-ledger", version, about, long_about = None)]
pub struct Cli {
    /// How log lines are written: text (for a terminal) or json (one object a line, for a log
    /// collector).
    #[arg(
        long,
        value_enum,
        default_value = "text",
        env = "CONSENT_LEDGER_LOG_FORMAT",
        global = true
    )]
    log_format: LogFormat,
    /// The configuration, given before the command (`consent-ledger --database-url … serve`);
    /// each command that opens the database takes it after its name too.
    #[command(flatten)]
    config: ConfigArgs,
    #[command(subcommand)]
    command: Command,
}

/// The service's configuration where a command takes it (its own flags and environment
/// variables propagate to its subcommands, not to the offline tools').
#[derive(Debug, clap::Args)]
struct Configured<C: clap::Subcommand> {
    #[command(flatten)]
    config: ConfigArgs,
    #[command(subcommand)]
    command: C,
}

/// The format of log lines.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum LogFormat {
    /// Human-readable lines (colours only on a terminal).
    Text,
    /// One JSON object a line: time, level, target and the event's fields (an access line has
    /// method, path, status, duration_ms and the request_id its response carries).
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the HTTP service (applies migrations first).
    Serve(#[command(flatten)] ConfigArgs),
    /// Apply database migrations and exit.
    Migrate(#[command(flatten)] ConfigArgs),
    /// Inspect the log.
    Log(Configured<LogCommand>),
    /// Manage tenants (sender organisations).
    Tenant(Configured<TenantCommand>),
    /// Keys for browser signup forms.
    Key(Configured<KeyCommand>),
    /// Issue bearer tokens, list and revoke them, and manage the keys that sign them.
    Token(Configured<TokenCommand>),
    /// Print the OpenAPI document, or write it to a file.
    Openapi {
        /// Write here instead of standard output (e.g. openapi/openapi.json).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Verify evidence offline: no database, and no network unless --url is given.
    #[command(subcommand)]
    Verify(VerifyCommand),
    /// Follow a log: verify each new checkpoint's signature and its consistency with the last
    /// one seen, keep the history in --state, and alarm (a message and exit code 2) on a bad
    /// signature, a shrinking tree or two roots for one size.
    Monitor {
        /// The log's base URL, e.g. https://ledger.example.jp
        #[arg(long)]
        url: String,
        /// The log's verifier key (as `consent-ledger log vkey` prints it).
        #[arg(long)]
        vkey: String,
        /// Directory of the checkpoints seen (created if missing; keep it between runs).
        #[arg(long)]
        state: PathBuf,
        /// Time between checks: 30s, 5m, 1h.
        #[arg(long, default_value = "60s", value_parser = crate::auth::parse_ttl)]
        interval: std::time::Duration,
        /// Check once and exit (for cron).
        #[arg(long)]
        once: bool,
        /// A bearer token, if the operator restricted the log's read API.
        #[arg(long, env = "CONSENT_LEDGER_MONITOR_TOKEN")]
        token: Option<String>,
        /// Also read every leaf and rebuild the subject map: each checkpoint's map leaf must be
        /// the map of the leaves before it (what makes bundles' completeness proofs trustworthy),
        /// and the leaves must hash to the checkpoint's root.
        #[arg(long)]
        audit_map: bool,
    },
    /// Run a witness (C2SP tlog-witness) that cosigns a log's checkpoints only after checking
    /// they extend what it saw before: for a regulator or an industry body.
    #[command(subcommand)]
    Witness(WitnessCommand),
    /// Append synthetic leaves and print "<index> <hex leaf hash>" per acknowledgement (tests only).
    #[command(hide = true)]
    AppendStress {
        #[command(flatten)]
        config: ConfigArgs,
        /// Leaves to append in all.
        #[arg(long, default_value_t = 1_000_000)]
        count: u64,
        /// Appends in flight at once.
        #[arg(long, default_value_t = 64)]
        concurrency: usize,
        /// A tag for the leaves, so runs can be told apart.
        #[arg(long, default_value = "stress")]
        tag: String,
    },
}

#[derive(Debug, Subcommand)]
enum TenantCommand {
    /// Create a tenant and print it as JSON.
    Create(Box<CreateTenant>),
    /// Print a tenant as JSON.
    Show {
        /// The tenant id.
        id: String,
    },
}

/// `tenant create`'s options.
#[derive(Debug, clap::Args)]
struct CreateTenant {
    /// A short name.
    #[arg(long)]
    name: String,
    /// The legal name shown to recipients (default: --name).
    #[arg(long)]
    legal_name: Option<String>,
    /// Postal address (display duty).
    #[arg(long)]
    postal_address: Option<String>,
    /// Contact for complaints.
    #[arg(long)]
    complaint_contact: Option<String>,
    /// Opt-out contact: an https: URL, an e-mail address or a telephone number.
    #[arg(long)]
    optout_contact: Option<String>,
    /// 送信責任者: the party responsible for sending, if not the tenant itself.
    #[arg(long)]
    responsible_party: Option<String>,
    /// A telephone number for enquiries (consent receipts name it).
    #[arg(long)]
    phone: Option<String>,
    /// The https: URL of the privacy policy (consent receipts link it).
    #[arg(long)]
    privacy_policy_url: Option<String>,
    /// ja or en.
    #[arg(long, default_value = "ja")]
    language: String,
    /// A purpose this tenant mails for, as KEY or KEY=description (repeatable).
    #[arg(long = "purpose")]
    purposes: Vec<String>,
}

#[derive(Debug, Subcommand)]
enum KeyCommand {
    /// Create a publishable key (it can only record pending opt-ins) and print it as JSON.
    CreatePublishable {
        /// The tenant.
        #[arg(long)]
        tenant: String,
        /// A web origin allowed to use it, e.g. https://shop.example.jp (repeatable). Not
        /// `--origin`, which names the log.
        #[arg(long = "allow-origin", required = true)]
        origins: Vec<String>,
    },
    /// Revoke a publishable key: signups with it stop at once.
    RevokePublishable {
        /// The tenant.
        #[arg(long)]
        tenant: String,
        /// The key (pk_…).
        key: String,
    },
}

#[derive(Debug, Subcommand)]
enum TokenCommand {
    /// Issue a bearer token and print it alone (for scripts: TOKEN=$(consent-ledger token issue …)).
    Issue {
        /// What the holder may act as.
        #[arg(long, value_enum)]
        role: Role,
        /// The tenant a sender token is bound to.
        #[arg(long)]
        tenant: Option<String>,
        /// Lifetime: 90s, 15m, 12h, 30d; at most token_max_lifetime_days.
        #[arg(long, default_value = "30d", value_parser = crate::auth::parse_ttl)]
        ttl: std::time::Duration,
        /// Who the token is for, recorded in it (e.g. a person or system name).
        #[arg(long, default_value = "cli")]
        subject: String,
    },
    /// List issued tokens (never their secrets) as JSON, oldest first.
    List {
        /// Only this tenant's tokens.
        #[arg(long)]
        tenant: Option<String>,
    },
    /// Revoke a token by its id (tok_…): it is refused from the next request on.
    Revoke {
        /// The token's id, as `token list` shows it.
        id: String,
    },
    /// Add a new signing key; new tokens use it, tokens signed by older keys stay valid.
    RotateKey,
    /// Retire a signing key: tokens it signed stop working at once.
    RetireKey {
        /// The key id (see `token keys`).
        kid: String,
    },
    /// List the active signing keys, oldest first (the last one signs new tokens).
    Keys,
}

/// A document whose `proof` is an evidence bundle, and how to check it.
#[derive(Debug, clap::Args)]
struct ProofArgs {
    /// The document (JSON).
    file: PathBuf,
    /// The log's verifier key, as its operator publishes it.
    #[arg(long)]
    vkey: String,
    /// Check it against the log's latest checkpoint at this base URL (consistency).
    #[arg(long)]
    url: Option<String>,
    /// A bearer token for --url, if the operator restricted the log's read API.
    #[arg(long, env = "CONSENT_LEDGER_MONITOR_TOKEN")]
    token: Option<String>,
    /// A C2SP tlog-policy file: the proof must carry a checkpoint cosigned by its quorum.
    #[arg(long)]
    policy: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
enum VerifyCommand {
    /// Check an evidence bundle (from GET /v1/evidence): the checkpoint's signature, every
    /// leaf's hash and inclusion proof, the commitment against the opening, the per-address chain,
    /// the templates against their hashes, the decisions against the events, and, with
    /// --trusted-checkpoint, consistency with a checkpoint you already trust. Prints a verdict per
    /// item; exits 1 if any fails. Given several files or a directory (its `*.json`), checks
    /// each, prints a line per file with a progress line, and writes a summary (--csv, --html);
    /// exits 1 if any is invalid.
    Evidence {
        /// The bundle (JSON), or several, or directories of them.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// The log's verifier key, as its operator publishes it.
        #[arg(long)]
        vkey: String,
        /// A signed checkpoint you saved earlier (from this log).
        #[arg(long)]
        trusted_checkpoint: Option<PathBuf>,
        /// The consistency proof between the trusted checkpoint and the bundle's: the JSON of
        /// GET /v1/log/proof/consistency, or base64 hashes one a line.
        #[arg(long, conflicts_with = "url")]
        consistency_proof: Option<PathBuf>,
        /// Fetch that consistency proof from the log at this base URL instead.
        #[arg(long)]
        url: Option<String>,
        /// Also write a printable HTML report (timeline, screens, bases, verdict) here.
        #[arg(long)]
        report: Option<PathBuf>,
        /// The report's language: ja or en.
        #[arg(long, default_value = "ja", value_parser = ["ja", "en"])]
        lang: String,
        /// Accept a bundle older than the trusted checkpoint (looking at history; by default
        /// such a bundle fails: events since would be missing from it).
        #[arg(long)]
        allow_older: bool,
        /// A bearer token for --url, if the operator restricted the log's read API.
        #[arg(long, env = "CONSENT_LEDGER_MONITOR_TOKEN")]
        token: Option<String>,
        /// A C2SP tlog-policy file (log, witness, group, quorum lines): the bundle must carry a
        /// checkpoint cosigned by that quorum of witnesses, consistent with its own.
        #[arg(long)]
        policy: Option<PathBuf>,
        /// The address you asked about: the bundle must be of exactly it (once normalised), not
        /// of a look-alike with a history of its own.
        #[arg(long)]
        email: Option<String>,
        /// With several bundles: write the summary (one row per file) here as CSV.
        #[arg(long)]
        csv: Option<PathBuf>,
        /// With several bundles: write the summary here as an HTML page.
        #[arg(long)]
        html: Option<PathBuf>,
    },
    /// Check a whole-tenant export (from GET /v1/evidence:tenant, JSON lines): the header's
    /// checkpoint, map leaf and directory; each subject's chain, proofs and opening; and that
    /// the subjects are the tenant's every one (they give the root the directory states). Reads
    /// it line by line in bounded memory, with a progress line; exits 1 if any check fails.
    Tenant {
        /// The export (JSON lines).
        file: PathBuf,
        /// The log's verifier key, as its operator publishes it.
        #[arg(long)]
        vkey: String,
        /// A signed checkpoint you saved earlier (from this log).
        #[arg(long)]
        trusted_checkpoint: Option<PathBuf>,
        /// The consistency proof between the trusted checkpoint and the export's (base64
        /// hashes one a line, or the JSON of GET /v1/log/proof/consistency).
        #[arg(long, requires = "trusted_checkpoint")]
        consistency_proof: Option<PathBuf>,
        /// Write one row per subject here (CSV): address, key, valid, status per purpose.
        #[arg(long)]
        csv: Option<PathBuf>,
        /// A C2SP tlog-policy file: the export must carry a checkpoint cosigned by its quorum
        /// of witnesses, consistent with its own.
        #[arg(long)]
        policy: Option<PathBuf>,
        /// The tenant you asked for (its id): the export must be of exactly it.
        #[arg(long)]
        tenant: Option<String>,
    },
    /// Write the verifier page (HTML, one self-contained file that works offline from disk) to
    /// standard output: an inspector drops a bundle on it and sees the verdict, the timeline
    /// and the screens, checked by the TypeScript verifier in the browser.
    Page {
        /// The log's verifier key to fill in (as its operator publishes it).
        #[arg(long, default_value = "")]
        vkey: String,
    },
    /// Check a send decision with its proof (from GET /v1/consent?…&proof=true): its bundle, as
    /// `verify evidence` does, and that the decision is the one the bundle's events give. Exits 1
    /// if any check fails.
    Decision(ProofArgs),
    /// Check an address's entry in a recorded campaign check (from GET
    /// /v1/campaign-checks/{id}/proof?email=): its bundle, the campaign leaf, the entry in the
    /// leaf's root, and that the entry's decision is the one the address's events before the
    /// campaign leaf give. Exits 1 if any check fails.
    Campaign(ProofArgs),
}

/// A witness key's type (C2SP tlog-cosignature).
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum CosignatureAlgorithm {
    /// ML-DSA-44 (FIPS 204), signature type 0x06.
    #[value(name = "ml-dsa-44")]
    MlDsa44,
    /// Ed25519 `cosignature/v1`, signature type 0x04.
    Ed25519,
}

#[derive(Debug, Subcommand)]
enum WitnessCommand {
    /// Create a witness key: writes the private key to --out (never overwrites) and prints the
    /// verifier key to give to logs and to put in policies.
    NewKey {
        /// The witness's name, a schema-less URL, e.g. witness.example.jp/w1
        #[arg(long)]
        name: String,
        /// Where to write the private key.
        #[arg(long)]
        out: PathBuf,
        /// The cosignature type: ML-DSA-44 (post-quantum; C2SP tlog-cosignature says new
        /// deployments should use it) or Ed25519 (cosignature/v1, which older clients verify).
        #[arg(long, value_enum, default_value = "ml-dsa-44")]
        algorithm: CosignatureAlgorithm,
    },
    /// Print the verifier key of a witness key file.
    Vkey {
        /// The private key file.
        #[arg(long)]
        key: PathBuf,
    },
    /// Serve POST /add-checkpoint for the logs given.
    Serve {
        /// The private key file (from `witness new-key`).
        #[arg(long)]
        key: PathBuf,
        /// A log's verifier key to follow (repeat for several logs).
        #[arg(long = "log", required = true)]
        logs: Vec<String>,
        /// Directory of the latest checkpoint cosigned per log (created if missing; keep it).
        #[arg(long)]
        state: PathBuf,
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:8090")]
        listen: String,
        /// Audit the log at this URL before cosigning: read every leaf from its tiles, replay
        /// the subject map and the chain rule, and cosign only checkpoints that pass (with one
        /// --log).
        #[arg(long, value_name = "URL")]
        audit: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
enum LogCommand {
    /// Print the verifier key of the log's checkpoints (`<origin>+<key id>+<key>`).
    Vkey,
    /// Print the latest signed checkpoint.
    Checkpoint,
}

/// Runs the command line; returns the process exit code.
pub fn run() -> i32 {
    let cli = match command().try_get_matches() {
        Ok(matches) => match <Cli as clap::FromArgMatches>::from_arg_matches(&matches) {
            Ok(cli) => cli,
            Err(e) => e.exit(),
        },
        Err(e) => e.exit(),
    };
    init_tracing(cli.log_format);
    match execute(cli) {
        Ok(()) => 0,
        Err(error) => {
            let message = chain_text(&error);
            eprintln!("error: {message}");
            // A monitor's alarm is told apart from a failure to run.
            if message.starts_with("monitor alarm:") {
                2
            } else {
                1
            }
        }
    }
}

/// An error and its causes, outermost first ("cannot listen on …: Address already in use"),
/// each cause once: one an error already prints in its own message is not repeated.
fn chain_text(error: &anyhow::Error) -> String {
    let mut text = error.to_string();
    for cause in error.chain().skip(1) {
        let cause = cause.to_string();
        if !text.contains(&cause) {
            text.push_str(": ");
            text.push_str(&cause);
        }
    }
    text
}

fn init_tracing(format: LogFormat) {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(format == LogFormat::Text && std::io::stderr().is_terminal());
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .try_init(),
    };
}

/// The command line as parsed: the configuration flags are global to the commands that open
/// the database (each declares them), and before the command only there; so the offline
/// tools' `--help` lists their own options, not the server's.
pub fn command() -> clap::Command {
    use clap::CommandFactory;
    let config_ids: Vec<clap::Id> =
        <ConfigArgs as clap::Args>::augment_args(clap::Command::new("x"))
            .get_arguments()
            .map(|a| a.get_id().clone())
            .collect();
    Cli::command().mut_args(|arg| match config_ids.contains(arg.get_id()) {
        true => arg.global(false),
        false => arg,
    })
}

fn execute(cli: Cli) -> anyhow::Result<()> {
    let before = cli.config;
    let command = match cli.command {
        Command::Openapi { out } => return write_openapi(out.as_deref()),
        Command::Verify(command) => return verify_command(command),
        Command::Monitor {
            url,
            vkey,
            state,
            interval,
            once,
            token,
            audit_map,
        } => {
            return verify::monitor(
                &url,
                &vkey,
                &state,
                verify::MonitorOptions {
                    interval,
                    once,
                    token: token.as_deref(),
                    audit_map,
                },
            )
        }
        Command::Witness(command) => return witness(command),
        other => other,
    };
    let load = |after: &ConfigArgs| Config::load(&after.clone().or(before.clone()));
    match command {
        Command::Serve(after) => serve(load(&after)?),
        Command::Migrate(after) => {
            let config = load(&after)?;
            let store = Store::connect(&config.database_url, config.pool_size)?;
            let applied = store.migrate()?;
            println!(
                "{applied} migration(s) applied to the {} database",
                store.backend()
            );
            Ok(())
        }
        Command::Log(Configured { config, command }) => with_state(&load(&config)?, |state| {
            match command {
                LogCommand::Vkey => println!("{}", state.log.verifier_key()),
                LogCommand::Checkpoint => print!("{}", state.log.latest_checkpoint()?.note),
            }
            Ok(())
        }),
        Command::Tenant(Configured { config, command }) => {
            with_state(&load(&config)?, |state| tenant(state, command))
        }
        Command::Key(Configured { config, command }) => {
            with_state(&load(&config)?, |state| match command {
                KeyCommand::CreatePublishable { tenant, origins } => print_json(
                    &consent::create_publishable_key(&state.store, &tenant, &origins)?,
                ),
                KeyCommand::RevokePublishable { tenant, key } => {
                    consent::revoke_publishable_key(&state.store, &tenant, &key)?;
                    println!("revoked {key}");
                    Ok(())
                }
            })
        }
        Command::Token(Configured { config, command }) => {
            with_state(&load(&config)?, |state| token(state, command))
        }
        Command::AppendStress {
            config,
            count,
            concurrency,
            tag,
        } => append_stress(load(&config)?, count, concurrency, tag),
        Command::Openapi { .. }
        | Command::Verify(_)
        | Command::Monitor { .. }
        | Command::Witness(_) => {
            unreachable!("handled above")
        }
    }
}

/// `verify evidence|decision|campaign`: offline, no database.
fn verify_command(command: VerifyCommand) -> anyhow::Result<()> {
    match command {
        VerifyCommand::Tenant {
            file,
            vkey,
            trusted_checkpoint,
            consistency_proof,
            csv,
            policy,
            tenant,
        } => verify::tenant(
            &file,
            &vkey,
            verify::TenantOptions {
                trusted_checkpoint: trusted_checkpoint.as_deref(),
                consistency_proof: consistency_proof.as_deref(),
                csv: csv.as_deref(),
                policy: policy.as_deref(),
                tenant: tenant.as_deref(),
            },
        ),
        VerifyCommand::Page { vkey } => {
            print!("{}", crate::evidence::page::verify_page(&vkey));
            Ok(())
        }
        VerifyCommand::Evidence {
            files,
            vkey,
            trusted_checkpoint,
            consistency_proof,
            url,
            report,
            lang,
            allow_older,
            token,
            policy,
            email,
            csv,
            html,
        } => {
            let files = verify::bundle_files(&files)?;
            if files.len() > 1 || csv.is_some() || html.is_some() {
                if report.is_some() {
                    anyhow::bail!(
                        "--report is for one bundle; with several, write a summary (--csv, --html)"
                    );
                }
                let single = [
                    ("--trusted-checkpoint", trusted_checkpoint.is_some()),
                    ("--consistency-proof", consistency_proof.is_some()),
                    ("--url", url.is_some()),
                    ("--email", email.is_some()),
                    ("--allow-older", allow_older),
                ];
                if let Some((flag, _)) = single.iter().find(|(_, given)| *given) {
                    anyhow::bail!(
                        "{flag} is for one bundle: each bundle has its own checkpoint and \
                         address; verify that one alone"
                    );
                }
                return verify::batch(
                    &files,
                    &vkey,
                    verify::BatchOptions {
                        policy: policy.as_deref(),
                        csv: csv.as_deref(),
                        html: html.as_deref(),
                    },
                );
            }
            verify::evidence(
                &files[0],
                &vkey,
                verify::EvidenceOptions {
                    trusted_checkpoint: trusted_checkpoint.as_deref(),
                    consistency_proof: consistency_proof.as_deref(),
                    url: url.as_deref(),
                    token: token.as_deref(),
                    allow_older,
                    html: report.as_deref().map(|path| (path, lang.as_str())),
                    policy: policy.as_deref(),
                    email: email.as_deref(),
                },
            )
        }
        VerifyCommand::Decision(args) | VerifyCommand::Campaign(args) => verify::evidence(
            &args.file,
            &args.vkey,
            verify::EvidenceOptions {
                trusted_checkpoint: None,
                consistency_proof: None,
                url: args.url.as_deref(),
                token: args.token.as_deref(),
                allow_older: false,
                html: None,
                policy: args.policy.as_deref(),
                email: None,
            },
        ),
    }
}

/// `tenant create|show`.
fn tenant(state: &AppState, command: TenantCommand) -> anyhow::Result<()> {
    let tenant = match command {
        TenantCommand::Create(create) => {
            let create = *create;
            let purposes = create
                .purposes
                .iter()
                .map(|p| {
                    let (purpose, description) = p.split_once('=').unwrap_or((p, ""));
                    PurposeDefinition {
                        purpose: purpose.to_string(),
                        description: description.to_string(),
                        label_ja: None,
                        label_en: None,
                    }
                })
                .collect();
            let input = NewTenant {
                name: create.name,
                legal_name: create.legal_name,
                postal_address: create.postal_address,
                complaint_contact: create.complaint_contact,
                optout_contact: create.optout_contact,
                responsible_party: create.responsible_party,
                phone: create.phone,
                privacy_policy_url: create.privacy_policy_url,
                default_language: Some(create.language),
                purposes,
            };
            consent::create_tenant(&state.store, input)
        }
        TenantCommand::Show { id } => consent::tenant(&state.store, &id),
    };
    print_json(&tenant?)
}

/// `token issue|list|revoke|rotate-key|retire-key|keys`.
fn token(state: &AppState, command: TokenCommand) -> anyhow::Result<()> {
    let authority = &state.authority;
    // The command line acts as an admin: whoever runs it holds the database.
    let operator = crate::auth::Principal {
        subject: "operator".into(),
        role: Role::Admin,
        tenant: None,
        token_id: None,
    };
    let result = match command {
        TokenCommand::List { tenant } => {
            let mut all = Vec::new();
            let mut after = None;
            loop {
                let page = crate::auth::tokens::list(
                    authority,
                    &operator,
                    tenant.as_deref(),
                    after.as_deref(),
                    Some(1000),
                )?;
                all.extend(page.tokens);
                match page.next_after {
                    Some(next) => after = Some(next),
                    None => break,
                }
            }
            return print_json(&all);
        }
        TokenCommand::Revoke { id } => crate::auth::tokens::revoke(authority, &operator, &id)
            .map(|token| println!("revoked {}", token.id)),
        TokenCommand::Issue {
            role,
            tenant,
            ttl,
            subject,
        } => authority
            .issue(role, tenant.as_deref(), &subject, ttl)
            .map(|token| println!("{token}")),
        TokenCommand::RotateKey => authority.rotate().map(|kid| println!("{kid}")),
        TokenCommand::RetireKey { kid } => {
            authority.retire(&kid).map(|()| println!("retired {kid}"))
        }
        TokenCommand::Keys => {
            authority.key_ids().iter().for_each(|kid| println!("{kid}"));
            Ok(())
        }
    };
    Ok(result?)
}

/// Opens the service's state for a one-off command, runs `f`, and stops the log's sequencer
/// whatever `f` returned.
fn with_state<T>(
    config: &Config,
    f: impl FnOnce(&AppState) -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    let state = AppState::open(config)?;
    let result = f(&state);
    state.log.shutdown();
    result
}

fn print_json<T: serde::Serialize>(value: &T) -> anyhow::Result<()> {
    println!(
        "{}",
        serde_json::to_string_pretty(value).expect("serialises")
    );
    Ok(())
}

fn write_openapi(out: Option<&std::path::Path>) -> anyhow::Result<()> {
    let json = api::openapi_json();
    match out {
        None => print!("{json}"),
        Some(path) => {
            std::fs::write(path, json)
                .with_context(|| format!("cannot write {}", path.display()))?;
            eprintln!("wrote {}", path.display());
        }
    }
    Ok(())
}

fn serve(config: Config) -> anyhow::Result<()> {
    if !config.public_url.starts_with("https://") {
        tracing::warn!(
            public_url = %config.public_url,
            "public_url is not https: mail providers ignore RFC 8058 one-click on http links \
             (fine for development; set public_url for production)"
        );
    }
    let state = AppState::open(&config)?;
    let workers = crate::workers::Workers::start(&state)?;
    let log = state.log.clone();
    let backend = state.store.backend();
    let vkey = log.verifier_key();
    let origin = log.origin().to_string();
    actix_web::rt::System::new().block_on(async move {
        let (server, addrs) = api::server(state, &config.bind)
            .with_context(|| format!("cannot listen on {}", config.bind))?;
        for addr in &addrs {
            println!(
                "consent-ledger listening on http://{addr} (database: {backend}, origin: {origin})"
            );
        }
        println!("verifier key: {vkey}");
        Ok::<_, anyhow::Error>(server.await?)
    })?;
    // The server has drained its requests; now drain the sequencer, then stop the workers.
    log.shutdown();
    drop(workers);
    tracing::info!("stopped cleanly");
    Ok(())
}

fn witness(command: WitnessCommand) -> anyhow::Result<()> {
    use crate::log::cosign::Cosigner;
    let read_key = |path: &PathBuf| {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        Cosigner::from_skey(&text).with_context(|| format!("{}", path.display()))
    };
    match command {
        WitnessCommand::NewKey {
            name,
            out,
            algorithm,
        } => {
            let key = match algorithm {
                CosignatureAlgorithm::MlDsa44 => Cosigner::generate_ml_dsa_44(&name),
                CosignatureAlgorithm::Ed25519 => Cosigner::generate(&name),
            }?;
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&out)
                .with_context(|| format!("cannot create {}", out.display()))?;
            file.write_all(format!("{}\n", key.to_skey()).as_bytes())?;
            println!("{}", key.vkey());
            Ok(())
        }
        WitnessCommand::Vkey { key } => {
            println!("{}", read_key(&key)?.vkey());
            Ok(())
        }
        WitnessCommand::Serve {
            key,
            logs,
            state,
            listen,
            audit,
        } => {
            let mut witness = crate::log::witness::Witness::new(read_key(&key)?, &logs, &state)
                .map_err(anyhow::Error::msg)?;
            if let Some(url) = audit {
                let [log] = logs.as_slice() else {
                    bail!("--audit audits the one log of --log: give one --log");
                };
                witness = witness
                    .audit(log, verify::leaf_source(&url))
                    .map_err(anyhow::Error::msg)?;
                println!("auditing {url} before each cosignature");
            }
            let vkey = witness.vkey();
            actix_web::rt::System::new().block_on(async move {
                let (server, addrs) = api::witness::server(std::sync::Arc::new(witness), &listen)
                    .with_context(|| format!("cannot listen on {listen}"))?;
                for addr in &addrs {
                    println!("witness listening on http://{addr}");
                }
                println!("witness verifier key: {vkey}");
                Ok(server.await?)
            })
        }
    }
}

fn append_stress(
    config: Config,
    count: u64,
    concurrency: usize,
    tag: String,
) -> anyhow::Result<()> {
    let state = AppState::open(&config)?;
    let log: Log = state.log.clone();
    let runtime = tokio::runtime::Builder::new_current_thread().build()?;
    let (acks, mut acked) = tokio::sync::mpsc::unbounded_channel::<(u64, String)>();
    runtime.block_on(async move {
        let next = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let mut workers = tokio::task::JoinSet::new();
        for _ in 0..concurrency.max(1) {
            let (log, next, acks, tag) = (log.clone(), next.clone(), acks.clone(), tag.clone());
            workers.spawn(async move {
                loop {
                    let n = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if n >= count {
                        return Ok::<_, anyhow::Error>(());
                    }
                    let leaf = Leaf::from_json(
                        &serde_json::json!({"type": "stress", "tag": tag, "n": n}),
                    )?;
                    let hash: String = leaf.hash().iter().map(|b| format!("{b:02x}")).collect();
                    let range = log.append(vec![leaf]).await?;
                    let _ = acks.send((range.start, hash));
                }
            });
        }
        drop(acks);
        let mut stdout = std::io::stdout().lock();
        loop {
            tokio::select! {
                Some((index, hash)) = acked.recv() => {
                    // One line per acknowledged leaf, flushed at once: a crash test reads these.
                    writeln!(stdout, "{index} {hash}").and_then(|_| stdout.flush())?;
                }
                done = workers.join_next() => match done {
                    Some(result) => result??,
                    None => break,
                },
            }
        }
        while let Ok((index, hash)) = acked.try_recv() {
            writeln!(stdout, "{index} {hash}")?;
        }
        Ok::<_, anyhow::Error>(())
    })?;
    state.log.shutdown();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("cannot read x.toml: {source}")]
    struct Prints {
        source: std::io::Error,
    }

    fn not_found() -> std::io::Error {
        std::io::Error::new(std::io::ErrorKind::NotFound, "No such file")
    }

    #[test]
    fn an_error_chain_names_each_cause() {
        let wrapped = anyhow::Error::new(not_found()).context("cannot read x.toml");
        assert_eq!(chain_text(&wrapped), "cannot read x.toml: No such file");
    }

    #[test]
    fn a_cause_an_error_prints_itself_is_not_repeated() {
        let error = anyhow::Error::new(Prints {
            source: not_found(),
        });
        assert_eq!(chain_text(&error), "cannot read x.toml: No such file");
    }
}
