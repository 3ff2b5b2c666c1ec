// consent-ledger SDK: in the browser, bindSignupForm records signups with a publishable key; on
// a server, ConsentLedger records events and asks the send decision with a secret token; anywhere,
// verifyEvidence and verifyCheckpoint check the log's proofs with nothing but its verifier key.

export { bindSignupForm, SIGNUP_EVENTS } from "./signup.js";
export type { SignupFormOptions, SignupBinding, Signup, SignupRecorded } from "./signup.js";
export { ConsentLedger, ConsentLedgerError, idempotencyKey, verifyWebhookSignature, backoffMs } from "./client.js";
export type {
  ClientOptions, NewEvent, RecordedEvent, EventBatch, RecordedBatch, Decision, CheckResults,
  LinkRequest, LinkBatch, Problem, NewCollectionPoint, CollectionPoint, CollectionPointPage, PageOptions,
  SuppressionPage, SuppressionEntry, SuppressionChanges, ExportPage, EventRecord, Erasure, DisplayNotice,
  Tenant, TenantProfile, NewWebhook, Webhook, WebhookPage, WebhookEvent, Delivery, DeliveryPage,
  NewToken, ApiToken, IssuedToken, TokenPage, PublishableKey, PublishableKeyPage,
} from "./client.js";
export { verifyEvidence, verifyDecision, verifyCampaign, decisionsFromLeaves, strictMillis, DECISION_FORMAT, CAMPAIGN_PROOF_FORMAT } from "./verify.js";
export { normalizeAddress, headerForm, isLegacyDomain, LEGACY_DOMAINS } from "./address.js";
export { vrfVerify, verifyLabel, vrfInput } from "./label.js";
export { apply, effective, parseConsentLeaf, replay, ALL, NO_STATUS } from "./consent.js";
export type { ConsentLeaf, PurposeState, SubjectState, Status } from "./consent.js";
export type { Bundle, Report, Item, VerifyOptions, ProvenLeaf, PurposeDecision, ProvenDecision, CampaignProof } from "./verify.js";
export { verifyCheckpoint, cosignedAt, parsePolicy, checkQuorum } from "./note.js";
export type { Checkpoint, Policy } from "./note.js";
export { verifyInclusion, verifyConsistency } from "./merkle.js";
export type { components, paths } from "./openapi.js";
