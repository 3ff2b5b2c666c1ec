//! A small, blocking, typed client of the consent-ledger HTTP API (feature `client`): record
//! events with idempotency keys, ask the send decision, fetch evidence and checkpoints. Errors
//! carry the service's RFC 9457 problem. The request and answer types here are the subset of the
//! API a sender's back end needs; the OpenAPI document (`openapi/openapi.json`) has the rest.

use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::evidence::{Bundle, CampaignProof, ProvenDecision};

/// What went wrong with a call.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The service answered with an error: its status and RFC 9457 problem document.
    #[error("{status}: {}", problem["detail"].as_str().unwrap_or("error"))]
    Problem {
        /// HTTP status.
        status: u16,
        /// The problem document (`type`, `title`, `status`, `detail`, …).
        problem: serde_json::Value,
    },
    /// The service could not be reached, or its answer could not be read.
    #[error("transport: {0}")]
    Transport(String),
}

impl ClientError {
    /// Whether trying again later may succeed (transport failure, 429, 5xx).
    pub fn retryable(&self) -> bool {
        match self {
            ClientError::Transport(_) => true,
            ClientError::Problem { status, .. } => *status == 429 || *status >= 500,
        }
    }
}

/// Who received a consent or opt-out.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Receiver {
    /// `sender` or `commissioning_party`.
    pub role: String,
    /// The organisation's name.
    pub name: String,
}

/// A consent event to record (`POST /v1/events`).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct NewEvent {
    /// `opt_in`, `opt_out` or `confirm`.
    pub event: String,
    /// The address.
    pub email: String,
    /// Purpose keys, or the string `"all"` (opt-out, confirm).
    pub purposes: serde_json::Value,
    /// `web_form`, `email`, `paper`, `phone`, `in_person`, `import`, `one_click`.
    pub method: String,
    /// Who received it.
    pub received_by: Receiver,
    /// The legal basis of an opt-in (`consent` by default on the service).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub basis: Option<String>,
    /// The collection point version the person saw.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub collection_point: Option<String>,
    /// When it happened (RFC 3339), if not now.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub occurred_at: Option<String>,
    /// A double opt-in's first step.
    #[serde(skip_serializing_if = "std::ops::Not::not", default)]
    pub confirmation_required: bool,
}

/// A recorded event: durable when returned.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub struct RecordedEvent {
    /// Event id.
    pub event_id: String,
    /// Its leaf index in the log.
    pub leaf_index: u64,
    /// Its RFC 9162 leaf hash, base64.
    pub leaf_hash: String,
    /// When the service sequenced it.
    pub recorded_at: String,
}

/// The send decision for one address and purpose.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub struct Decision {
    /// May the sender mail it now?
    pub may_send: bool,
    /// `granted`, `pending`, `withdrawn` or `none`.
    pub status: String,
    /// The deciding event.
    pub event_id: Option<String>,
}

/// One address's answer in a batch check.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub struct CheckResult {
    /// The address as given.
    pub email: String,
    /// Whether it may be mailed (false for an invalid address).
    pub may_send: bool,
    /// `granted`, `pending`, `withdrawn`, `none` or `invalid`.
    pub status: String,
    /// Why the address is invalid.
    pub error: Option<String>,
}

/// The mail headers of an unsubscribe link (RFC 2369, RFC 8058).
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub struct MailHeaders {
    /// `List-Unsubscribe`: the https link and the mailto.
    #[serde(rename = "List-Unsubscribe")]
    pub list_unsubscribe: String,
    /// `List-Unsubscribe-Post: List-Unsubscribe=One-Click`.
    #[serde(rename = "List-Unsubscribe-Post")]
    pub list_unsubscribe_post: String,
}

/// A recipient's unsubscribe link.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub struct UnsubscribeLink {
    /// The address.
    pub email: String,
    /// The https link (a page, and RFC 8058 one-click).
    pub url: String,
    /// The mailto alternative.
    pub mailto: String,
    /// Ready headers for the mail.
    pub headers: MailHeaders,
}

/// The client.
pub struct Client {
    base: String,
    token: String,
    agent: ureq::Agent,
}

impl Client {
    /// A client of the service at `base_url` with a bearer `token`.
    pub fn new(base_url: &str, token: &str) -> Self {
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(30)))
            .http_status_as_error(false)
            .build()
            .new_agent();
        Self {
            base: base_url.trim_end_matches('/').to_string(),
            token: token.to_string(),
            agent,
        }
    }

    fn answer(
        response: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    ) -> Result<String, ClientError> {
        let mut response = response.map_err(|e| ClientError::Transport(e.to_string()))?;
        let status = response.status().as_u16();
        let text = response
            .body_mut()
            .with_config()
            .limit(256 << 20)
            .read_to_string()
            .map_err(|e| ClientError::Transport(e.to_string()))?;
        if (200..300).contains(&status) {
            Ok(text)
        } else {
            Err(ClientError::Problem {
                status,
                problem: serde_json::from_str(&text)
                    .unwrap_or_else(|_| serde_json::json!({"detail": text})),
            })
        }
    }

    /// A GET answer as text (the token goes along, also to the log's reads: an operator may
    /// restrict them).
    fn text(&self, path: &str) -> Result<String, ClientError> {
        Self::answer(
            self.agent
                .get(&format!("{}{path}", self.base))
                .header("Authorization", &format!("Bearer {}", self.token))
                .call(),
        )
    }

    fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        decode(&self.text(path)?)
    }

    fn post<T: DeserializeOwned>(
        &self,
        path: &str,
        body: &impl Serialize,
        idempotency_key: Option<&str>,
    ) -> Result<T, ClientError> {
        let mut request = self
            .agent
            .post(&format!("{}{path}", self.base))
            .header("Authorization", &format!("Bearer {}", self.token));
        if let Some(key) = idempotency_key {
            request = request.header("Idempotency-Key", key);
        }
        decode(&Self::answer(request.send_json(body))?)
    }

    /// Records an event; a retry with the same `idempotency_key` records it once.
    pub fn record_event(
        &self,
        event: &NewEvent,
        idempotency_key: &str,
    ) -> Result<RecordedEvent, ClientError> {
        self.post("/v1/events", event, Some(idempotency_key))
    }

    /// May `email` be mailed for `purpose` now?
    pub fn decision(&self, email: &str, purpose: &str) -> Result<Decision, ClientError> {
        self.get(&format!(
            "/v1/consent?email={}&purpose={}",
            escape(email),
            escape(purpose)
        ))
    }

    /// Records a campaign's pre-flight check in the log (`"record": true`): the results, and
    /// the recorded check's id to ask [`Client::campaign_proof`] with.
    pub fn check_recorded(
        &self,
        emails: &[&str],
        purpose: &str,
    ) -> Result<(Vec<CheckResult>, String), ClientError> {
        #[derive(Deserialize)]
        struct Recorded {
            id: String,
        }
        #[derive(Deserialize)]
        struct Results {
            results: Vec<CheckResult>,
            campaign_check: Recorded,
        }
        let body = serde_json::json!({ "emails": emails, "purpose": purpose, "record": true });
        let answer = self.post::<Results>("/v1/consent:check", &body, None)?;
        Ok((answer.results, answer.campaign_check.id))
    }

    /// The proof that `email` was in recorded campaign check `id` with its decision;
    /// [`crate::evidence::verify::verify_campaign`] checks it offline.
    pub fn campaign_proof(&self, id: &str, email: &str) -> Result<CampaignProof, ClientError> {
        self.get(&format!(
            "/v1/campaign-checks/{}/proof?email={}",
            escape(id),
            escape(email)
        ))
    }

    /// The decision for `email` and `purpose` with its proof, to keep as evidence that the
    /// sender asked before sending; [`crate::evidence::verify::verify_decision`] checks it offline.
    pub fn proven_decision(
        &self,
        email: &str,
        purpose: &str,
    ) -> Result<ProvenDecision, ClientError> {
        self.get(&format!(
            "/v1/consent?email={}&purpose={}&proof=true",
            escape(email),
            escape(purpose)
        ))
    }

    /// The decision for many addresses at once (1–10,000), before a campaign.
    pub fn check(&self, emails: &[&str], purpose: &str) -> Result<Vec<CheckResult>, ClientError> {
        #[derive(Deserialize)]
        struct Results {
            results: Vec<CheckResult>,
        }
        let body = serde_json::json!({ "emails": emails, "purpose": purpose });
        Ok(self
            .post::<Results>("/v1/consent:check", &body, None)?
            .results)
    }

    /// Signed unsubscribe links with their mail headers, one per address (1–10,000); for one
    /// `purpose` (the page also offers to stop all mail), or all mail when `None`.
    pub fn unsubscribe_links(
        &self,
        emails: &[&str],
        purpose: Option<&str>,
    ) -> Result<Vec<UnsubscribeLink>, ClientError> {
        #[derive(Deserialize)]
        struct Links {
            links: Vec<UnsubscribeLink>,
        }
        let body = serde_json::json!({ "emails": emails, "purpose": purpose });
        Ok(self
            .post::<Links>("/v1/unsubscribe-links", &body, None)?
            .links)
    }

    /// The evidence bundle of an address (check it with [`crate::evidence::verify::verify`]).
    pub fn evidence(&self, email: &str) -> Result<Bundle, ClientError> {
        self.get(&format!("/v1/evidence?email={}", escape(email)))
    }

    /// The latest signed checkpoint (with witnesses' cosignatures, if any).
    pub fn checkpoint(&self) -> Result<String, ClientError> {
        self.text("/checkpoint")
    }

    /// The log's verifier key as the service states it (compare with the published one).
    pub fn verifier_key(&self) -> Result<String, ClientError> {
        Ok(self.text("/v1/log/verifier-key")?.trim().to_string())
    }
}

/// Decodes a JSON answer.
fn decode<T: DeserializeOwned>(text: &str) -> Result<T, ClientError> {
    serde_json::from_str(text)
        .map_err(|e| ClientError::Transport(format!("unexpected answer: {e}")))
}

/// Percent-encodes a query value (RFC 3986 unreserved characters pass).
fn escape(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
