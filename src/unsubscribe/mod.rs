//! Recipients unsubscribe. Here: unsubscribe links (https and mailto) with their ready mail
//! headers (RFC 2369, RFC 8058), what a link's page shows, the opt-out a link records (by
//! one-click, the page's button, or a mail), and the Art. 4 display notice. `mail.rs` reads an
//! inbound unsubscribe mail; `webhooks.rs` announces opt-outs to the tenant's systems,
//! connecting only where `egress.rs` allows. No HTTP here (that is `api/unsubscribe.rs`) and no
//! SQL (that is `store/`).
//!
//! A link names the tenant and the *subject* (never the address) and is signed (HMAC-SHA256,
//! `consent::links`): unforgeable, and without expiry unless asked for. An opt-out through it is
//! an ordinary consent event in the log; a second one for what is already stopped records
//! nothing and answers with the first.

pub mod egress;
pub mod mail;
pub mod webhooks;

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::consent::address::EmailAddress;
use crate::consent::links::{Links, UnsubscribeToken};
use crate::consent::model::{
    AllPurposes, EventKind, Evidence, Method, NewEvent, PurposeDefinition, Purposes, Receiver,
    ReceiverRole, Tenant,
};
use crate::consent::state::{effective, state_of};
use crate::consent::{self, known_purposes, new_subject, restore, ConsentEventEntry};
use crate::error::DomainError;
use crate::log::hash::Hash;
use crate::log::Labeler;
use crate::rfc3339;
use crate::store::{Repo, Store};
use consent_ledger_sdk::consent::Status;

/// Most addresses in one request for links (a campaign's send).
pub const MAX_LINKS: usize = 10_000;
/// Shortest validity a link may be given, in days (links work at least this long).
pub const MIN_VALID_DAYS: u32 = 60;
/// The `List-Unsubscribe-Post` header value (RFC 8058).
pub const ONE_CLICK: &str = "List-Unsubscribe=One-Click";
/// Rows per `IN (…)` query.
const CHUNK: usize = 500;

/// A request for unsubscribe links.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"emails": ["taro@example.jp"], "purpose": "newsletter"}))]
pub struct LinkRequest {
    /// The recipients (1–10,000). One address for a single link.
    #[schema(example = json!(["hanako@example.jp"]))]
    pub emails: Vec<String>,
    /// The purpose the mail is sent for: the page offers to stop just it, or all mail. Without
    /// it, the link stops all mail of the tenant.
    pub purpose: Option<String>,
    /// Days the links work (at least 60). Without it, they never expire.
    pub valid_days: Option<u32>,
}

/// The headers a mail carries for one-click unsubscribe (RFC 2369, RFC 8058).
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct MailHeaders {
    /// `<https://…>, <mailto:…>`.
    #[serde(rename = "List-Unsubscribe")]
    pub list_unsubscribe: String,
    /// Always `List-Unsubscribe=One-Click`.
    #[serde(rename = "List-Unsubscribe-Post")]
    pub list_unsubscribe_post: String,
}

/// One recipient's unsubscribe link.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct UnsubscribeLink {
    /// The address, normalised.
    pub email: String,
    /// Opens the unsubscribe page (GET) and takes RFC 8058 one-click (POST).
    pub url: String,
    /// The mailto alternative: a mail to it unsubscribes.
    pub mailto: String,
    /// The mail headers to add.
    pub headers: MailHeaders,
}

/// Links for a campaign, in the order of the request.
#[derive(Clone, Debug, Serialize, ToSchema)]
#[schema(example = json!({"links": [{"email": "taro@example.jp", "url": "https://ledger.example.jp/u/eyJ0IjoiMDE5M…", "mailto": "mailto:unsubscribe@ledger.example.jp?subject=eyJ0IjoiMDE5M…", "headers": {"List-Unsubscribe": "<https://ledger.example.jp/u/eyJ0IjoiMDE5M…>, <mailto:unsubscribe@ledger.example.jp?subject=eyJ0IjoiMDE5M…>", "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"}}]}))]
pub struct LinkBatch {
    /// One per address.
    pub links: Vec<UnsubscribeLink>,
    /// When they stop working (RFC 3339); absent: never.
    pub expires_at: Option<String>,
}

/// Makes unsubscribe links for `request.emails`. A recipient the ledger has not seen yet gets a
/// subject (an erasable row, no log leaf): the link names subjects, never addresses. All or
/// nothing: invalid addresses are listed, and no link is made.
pub fn create_links(
    store: &Store,
    links: &Links,
    labeler: &Labeler,
    tenant_id: &str,
    request: LinkRequest,
) -> Result<LinkBatch, DomainError> {
    let (addresses, expires) = parse_link_request(&request)?;
    let purpose = request.purpose;
    // Known subjects first, with no lock; then the missing ones, under the writer lock.
    let mut subjects = store.read(|r| {
        if let Some(p) = &purpose {
            if !known_purposes(r, tenant_id)?.contains(p) {
                return Err(DomainError::Invalid(format!(
                    "unknown purpose {p:?}: add it to the tenant's purposes first (PATCH /v1/tenants/{tenant_id})"
                )));
            }
        } else {
            known_purposes(r, tenant_id)?;
        }
        subject_ids(r, tenant_id, addresses.iter().map(EmailAddress::as_str))
    })?;
    let missing: Vec<&EmailAddress> = addresses
        .iter()
        .filter(|a| !subjects.contains_key(a.as_str()))
        .collect();
    // Labelled here, outside the writer lock, from the address (never from a row): the link
    // carries the label its opt-out is recorded under.
    let labels: HashMap<&str, Hash> = addresses
        .iter()
        .map(|a| (a.as_str(), labeler.label(tenant_id, a.as_str())))
        .collect();
    if !missing.is_empty() {
        subjects.extend(store.write(|r| add_subjects(r, tenant_id, &missing, &labels))?);
    }
    let links = addresses
        .iter()
        .map(|address| {
            let (url, mailto) = links.unsubscribe(
                &UnsubscribeToken {
                    tenant_id: tenant_id.to_string(),
                    subject_id: subjects[address.as_str()].clone(),
                    purpose: purpose.clone(),
                    label: Some(labels[address.as_str()]),
                },
                expires,
            );
            UnsubscribeLink {
                email: address.as_str().to_string(),
                headers: MailHeaders {
                    list_unsubscribe: format!("<{url}>, <{mailto}>"),
                    list_unsubscribe_post: ONE_CLICK.into(),
                },
                url,
                mailto,
            }
        })
        .collect();
    Ok(LinkBatch {
        links,
        expires_at: expires.map(|secs| rfc3339(secs * 1000)),
    })
}

/// A link request's addresses, normalised, and its links' expiry (Unix seconds), or why not:
/// all or nothing.
fn parse_link_request(
    request: &LinkRequest,
) -> Result<(Vec<EmailAddress>, Option<i64>), DomainError> {
    if request.emails.is_empty() || request.emails.len() > MAX_LINKS {
        return Err(DomainError::Invalid(format!(
            "give 1–{MAX_LINKS} addresses"
        )));
    }
    let expires = match request.valid_days {
        None => None,
        Some(days) if (MIN_VALID_DAYS..=3650).contains(&days) => {
            Some(crate::now_millis() / 1000 + i64::from(days) * 86_400)
        }
        Some(_) => {
            return Err(DomainError::Invalid(format!(
                "valid_days is {MIN_VALID_DAYS}–3650 (or leave it out: links that never expire)"
            )))
        }
    };
    let mut addresses = Vec::with_capacity(request.emails.len());
    let mut errors = Vec::new();
    for (i, email) in request.emails.iter().enumerate() {
        match EmailAddress::parse(email) {
            Ok(a) => addresses.push(a),
            Err(e) => errors.push((i, e.to_string())),
        }
    }
    if !errors.is_empty() {
        return Err(DomainError::InvalidItems(errors));
    }
    Ok((addresses, expires))
}

/// Under the writer lock: subjects for the `missing` addresses (an erased subject gets its
/// address back; another gets a new row), unless another request made them meanwhile; their
/// ids by address.
fn add_subjects(
    r: &mut Repo<'_>,
    tenant_id: &str,
    missing: &[&EmailAddress],
    labels: &HashMap<&str, Hash>,
) -> Result<HashMap<String, String>, DomainError> {
    let mut found = subject_ids(r, tenant_id, missing.iter().map(|a| a.as_str()))?;
    for address in missing {
        if found.contains_key(address.as_str()) {
            continue;
        }
        let label = labels[address.as_str()];
        let id = match r.subject_by_label(&label)? {
            Some(mut erased) => {
                restore(r, &mut erased, address)?;
                erased.id
            }
            None => {
                let subject = new_subject(tenant_id, address, label);
                r.insert_subjects(std::slice::from_ref(&subject))?;
                subject.id
            }
        };
        found.insert(address.as_str().to_string(), id);
    }
    Ok(found)
}

/// Subject ids by address, for those of `addresses` that have a subject.
fn subject_ids<'a>(
    r: &mut Repo<'_>,
    tenant_id: &str,
    addresses: impl Iterator<Item = &'a str>,
) -> Result<HashMap<String, String>, DomainError> {
    let addresses: Vec<String> = addresses.map(str::to_string).collect();
    let mut found = HashMap::new();
    for chunk in addresses.chunks(CHUNK) {
        for s in r.subjects_by_addresses(tenant_id, chunk)? {
            if let Some(address) = s.address {
                found.insert(address, s.id);
            }
        }
    }
    Ok(found)
}

/// What the unsubscribe page shows.
#[derive(Clone, Debug)]
pub struct PageContent {
    /// The sender's name as shown to recipients.
    pub sender: String,
    /// The tenant's default language (`ja`, `en`).
    pub default_language: String,
    /// The link's purpose.
    pub purpose: Option<PurposeDefinition>,
    /// When the link's purpose (all mail, for a link without one) was stopped, if it was.
    pub stopped_since: Option<String>,
    /// When all mail of the tenant was stopped, if it was.
    pub all_stopped_since: Option<String>,
}

/// How much an unsubscribe stops.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// The link's purpose only (all mail when the link names none).
    Purpose,
    /// All mail of the tenant.
    All,
}

/// What a link's token names, checked once (signature, expiry); `NotFound` if it is not valid.
pub fn token(links: &Links, token: &str) -> Result<UnsubscribeToken, DomainError> {
    links
        .unsubscribe_token(token, crate::now_millis() / 1000)
        .map_err(|e| DomainError::NotFound(format!("{e}: ask the sender for a new one")))
}

/// The page's content for a link's (checked) token; `NotFound` for an unknown tenant or subject.
pub fn page(store: &Store, target: &UnsubscribeToken) -> Result<PageContent, DomainError> {
    store.read(|r| {
        let tenant = r
            .tenant(&target.tenant_id)?
            .ok_or_else(|| DomainError::NotFound("this link is not valid".into()))?;
        let purpose = match &target.purpose {
            None => None,
            Some(p) => Some(
                r.purposes(&tenant.id)?
                    .into_iter()
                    .map(consent::definition)
                    .find(|d| &d.purpose == p)
                    .unwrap_or_else(|| PurposeDefinition {
                        purpose: p.clone(),
                        description: String::new(),
                        label_ja: None,
                        label_en: None,
                    }),
            ),
        };
        Ok(PageContent {
            sender: tenant.legal_name,
            default_language: tenant.default_language,
            purpose,
            stopped_since: stopped_since(r, target, Scope::Purpose)?,
            all_stopped_since: stopped_since(r, target, Scope::All)?,
        })
    })
}

/// When what `scope` covers was stopped, if it is stopped: the subject's erased, or the state
/// is withdrawn for the purpose (or, for all, withdrawn for all and granted for nothing).
fn stopped_since(
    r: &mut Repo<'_>,
    target: &UnsubscribeToken,
    scope: Scope,
) -> Result<Option<String>, DomainError> {
    let Some(subject) = r.subject(&target.subject_id)? else {
        return Err(DomainError::NotFound("this link is not valid".into()));
    };
    if subject.tenant_id != target.tenant_id {
        return Err(DomainError::NotFound("this link is not valid".into()));
    }
    if subject.address.is_none() {
        // Erased: nothing is kept, so nothing can be sent.
        return Ok(Some(rfc3339(
            subject.erased_at.unwrap_or(subject.created_at),
        )));
    }
    let state = state_of(&r.all_state_entries(&subject.id)?);
    let withdrawn = |purpose: &str| {
        effective(&state, purpose)
            .filter(|e| e.status == Status::Withdrawn)
            .map(|e| rfc3339(e.recorded_at))
    };
    Ok(match (scope, &target.purpose) {
        (Scope::Purpose, Some(p)) => withdrawn(p),
        _ => withdrawn(consent::ALL).filter(|_| state.keys().all(|p| withdrawn(p).is_some())),
    })
}

/// What an unsubscribe comes to.
pub enum Prepared {
    /// An opt-out to append to the log.
    Record(Box<ConsentEventEntry>),
    /// Already stopped, since then (RFC 3339): nothing is recorded.
    AlreadyStopped(String),
}

/// Prepares the opt-out a link asks for: `scope` of it, by `method` (one-click, the page's
/// button, a mail), with `evidence`. Reads only.
pub fn prepare(
    store: &Store,
    target: UnsubscribeToken,
    scope: Scope,
    method: Method,
    evidence: Evidence,
) -> Result<Prepared, DomainError> {
    // What the recipient's client sent is evidence, never a reason to refuse an opt-out.
    let evidence = consent::clean_evidence(evidence);
    let found = store.read(|r| {
        let tenant = r
            .tenant(&target.tenant_id)?
            .ok_or_else(|| DomainError::NotFound("this link is not valid".into()))?;
        if let Some(since) = stopped_since(r, &target, scope)? {
            return Ok(Err(since));
        }
        let address = r
            .subject(&target.subject_id)?
            .and_then(|s| s.address)
            .unwrap_or_default();
        Ok::<_, DomainError>(Ok((tenant, address)))
    })?;
    let (tenant, address) = match found {
        Ok(found) => found,
        Err(since) => return Ok(Prepared::AlreadyStopped(since)),
    };
    let purposes = match (scope, target.purpose) {
        (Scope::Purpose, Some(p)) => Purposes::List(vec![p]),
        _ => Purposes::All(AllPurposes::All),
    };
    let mut entry = consent::prepare_event(
        store,
        &tenant.id,
        NewEvent {
            event: EventKind::OptOut,
            email: address,
            purposes,
            basis: None,
            method,
            collection_point: None,
            received_by: Receiver {
                role: ReceiverRole::Sender,
                name: tenant.legal_name,
            },
            occurred_at: None,
            confirmation_required: false,
            evidence: Some(evidence),
        },
    )?;
    entry.subject_id = Some(target.subject_id);
    entry.label = target.label;
    Ok(Prepared::Record(Box::new(entry)))
}

/// The footer a tenant's mail must carry (Art. 4, ordinance Art. 8–9), as text and HTML.
#[derive(Clone, Debug, Serialize, ToSchema)]
#[schema(example = json!({"lang": "ja", "text": "送信者: Sakura Shop K.K.\n配信停止: https://shop.example.jp/unsubscribe", "html": "<p>送信者: Sakura Shop K.K.</p>"}))]
pub struct DisplayNotice {
    /// `ja` or `en`.
    pub lang: String,
    /// Plain-text footer.
    pub text: String,
    /// HTML footer (a `<div>`; values escaped).
    pub html: String,
}

/// Renders the display notice from the tenant's profile, in `lang` (default: the tenant's).
/// With `email`, the opt-out item is that recipient's unsubscribe link; without, the tenant's
/// opt-out contact. Refused while the profile lacks a required item.
pub fn display_notice(
    store: &Store,
    links: &Links,
    labeler: &Labeler,
    tenant_id: &str,
    lang: Option<&str>,
    email: Option<&str>,
    purpose: Option<String>,
) -> Result<DisplayNotice, DomainError> {
    let tenant = consent::tenant(store, tenant_id)?;
    let lang = match lang.unwrap_or(&tenant.default_language) {
        l @ ("ja" | "en") => l.to_string(),
        other => {
            return Err(DomainError::Invalid(format!(
                "lang is ja or en, not {other:?}"
            )))
        }
    };
    check_profile(&tenant, email.is_some(), purpose.is_some())?;
    let purpose_label = purpose.as_ref().map(|key| {
        tenant
            .purposes
            .iter()
            .find(|p| &p.purpose == key)
            .map_or(key.clone(), |p| p.label(&lang).to_string())
    });
    let optout = match email {
        Some(email) => Some(
            create_links(
                store,
                links,
                labeler,
                tenant_id,
                LinkRequest {
                    emails: vec![email.to_string()],
                    purpose,
                    valid_days: None,
                },
            )?
            .links
            .remove(0)
            .url,
        ),
        None => tenant.optout_contact.clone(),
    };
    let context = minijinja::context! {
        lang => &lang,
        legal_name => tenant.legal_name,
        responsible => tenant.responsible_party,
        purpose => purpose_label,
        optout => contact(&optout.unwrap_or_default()),
        postal => tenant.postal_address.unwrap_or_default(),
        complaint => contact(&tenant.complaint_contact.unwrap_or_default()),
    };
    let text = crate::templates::render("display_notice.txt", context.clone());
    let html = crate::templates::render("display_notice.html", context);
    Ok(DisplayNotice { lang, text, html })
}

/// What a display notice needs that the tenant profile lacks, and a purpose without a
/// recipient: refused before anything is written (a refused request changes nothing).
fn check_profile(tenant: &Tenant, email: bool, purpose: bool) -> Result<(), DomainError> {
    let mut missing = Vec::new();
    if !email && tenant.optout_contact.is_none() {
        missing.push("optout_contact (or give email= for a recipient's unsubscribe link)");
    }
    if tenant.postal_address.is_none() {
        missing.push("postal_address");
    }
    if tenant.complaint_contact.is_none() {
        missing.push("complaint_contact");
    }
    if !missing.is_empty() {
        return Err(DomainError::Invalid(format!(
            "the tenant profile lacks what every mail must show: {}; a sender of the tenant or an admin sets it with PATCH /v1/tenants/{}",
            missing.join(", "),
            tenant.id
        )));
    }
    if purpose && !email {
        return Err(DomainError::Invalid(
            "purpose= goes with email= (it narrows that recipient's unsubscribe link)".into(),
        ));
    }
    Ok(())
}

/// A contact for the notice's template: `{text, kind}`, where `kind` is `url`, `mailto` or
/// `tel` when it is a link (`consent::contact_kind`, the rule the profile is checked by), else
/// `text`.
fn contact(contact: &str) -> minijinja::Value {
    let kind = consent::contact_kind(contact).unwrap_or("text");
    let href = match kind {
        "mailto" if !contact.to_ascii_lowercase().starts_with("mailto:") => {
            format!("mailto:{contact}")
        }
        "tel" => {
            let number = contact
                .get(4..)
                .filter(|_| contact.to_ascii_lowercase().starts_with("tel:"));
            format!(
                "tel:{}",
                number.unwrap_or(contact).replace([' ', '(', ')'], "")
            )
        }
        _ => contact.to_string(),
    };
    minijinja::context! { text => contact, kind, href }
}
