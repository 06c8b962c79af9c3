"""The clause map: every clause of the privacy policy, what enforces it and what proves it.

One entry per clause of the revision of 15/06/2017 (1.1 to 9.1, sub-clauses included).
`controls` are dotted paths of the modules, classes and functions that keep the promise;
`tests` are pytest node ids that prove it; `evidence` names live facts from the database
(`smartprotect.privacy.evidence.EVIDENCE`) that `smartprotect compliance report` prints.
tests/privacy/test_clauses.py checks that every clause of both texts has exactly one entry,
that every control imports and that every named test exists.

A status says how far the service keeps the clause today:
ENFORCED      kept, by the controls listed, and proven by the tests listed;
PARTIAL       kept in part; the reason says what exists and what is missing;
PLANNED       not kept yet; the reason says what exists to build on and what is missing;
INFORMATIONAL promises nothing the software can keep (definitions, rights reserved, rules
              of interpretation); the reason says why.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from smartprotect.i18n import N_


class Status(enum.StrEnum):
    ENFORCED = "enforced"
    PARTIAL = "partial"
    PLANNED = "planned"
    INFORMATIONAL = "informational"


ENFORCED = Status.ENFORCED
PARTIAL = Status.PARTIAL
PLANNED = Status.PLANNED
INFORMATIONAL = Status.INFORMATIONAL

STATUS_LABELS: dict[Status, str] = {
    Status.ENFORCED: N_("enforced"),
    Status.PARTIAL: N_("partial"),
    Status.PLANNED: N_("planned"),
    Status.INFORMATIONAL: N_("informational"),
}


@dataclass(frozen=True)
class Clause:
    number: str
    # English gettext msgids, translated where they are shown.
    title: str
    status: Status
    controls: tuple[str, ...] = ()
    tests: tuple[str, ...] = ()
    reason: str | None = None
    evidence: tuple[str, ...] = ()


# Dotted paths, spelled once.
_SP = "smartprotect."
ACCOUNTS = _SP + "accounts.service."
DEVICES = _SP + "devices.service."
SCHEMAS = _SP + "accounts.schemas."
AUDIT = _SP + "audit.service."
CONSENT = _SP + "privacy.consent.service."
PURPOSES = _SP + "privacy.consent.purposes."
KEYS = _SP + "privacy.keys.service."
MASTER = _SP + "privacy.keys.master."
POLICY = _SP + "privacy.policy.service."
MAIL = _SP + "mail.service."
PRIVACY_VIEWS = _SP + "web.views.privacy."
APPEND_ONLY = _SP + "migrations.append_only.protect"
RETENTION = _SP + "privacy.retention."
PROFILE = _SP + "profile.service."
T_PROFILE = "tests/profile/test_service.py::"
T_WEB_PROFILE = "tests/web/test_profile.py::"

# Test files, spelled once.
T_ACCOUNTS = "tests/accounts/test_service.py::"
T_AGENT_E2E = "tests/agent/test_end_to_end.py::"
T_API_AGENT = "tests/api/test_agent.py::"
T_DEVICES = "tests/devices/test_service.py::"
T_API = "tests/api/test_v1.py::"
T_AUDIT = "tests/audit/test_service.py::"
T_CLI_AUDIT = "tests/cli/test_keys_and_audit.py::"
T_RETENTION = "tests/privacy/retention/test_job.py::"
T_CLI_RETENTION = "tests/cli/test_retention.py::"
T_CONFIG = "tests/test_config.py::"
T_CONSENT = "tests/privacy/consent/test_service.py::"
T_HARDENING = "tests/web/test_hardening.py::"
T_KEYS = "tests/privacy/keys/test_service.py::"
T_MAIL = "tests/mail/test_service.py::"
T_PAGES = "tests/web/test_pages.py::"
T_POLICY = "tests/privacy/policy/test_service.py::"
T_WEB = "tests/web/test_accounts.py::"
T_PRIVACY = "tests/web/test_privacy.py::"

_REGISTRATION_RECORDS = T_ACCOUNTS + (
    "test_registration_records_acceptance_and_consents_as_timestamped_events"
)
_REGISTRATION_REQUIRES = T_ACCOUNTS + (
    "test_registration_requires_acceptance_and_the_clause_3_1_consent"
)
_LEDGER_APPEND_ONLY = T_CONSENT + "test_the_database_refuses_to_rewrite_the_ledger"
_LEDGER_RECORDS = T_CONSENT + "test_events_record_everything_the_ledger_promises"
_STATE_DERIVED = T_CONSENT + "test_state_is_derived_from_the_latest_event"
_LAW_TERMS = T_CONSENT + "test_every_consent_states_what_the_law_asks"
_PURPOSES_EXIST = T_CONSENT + "test_the_purposes_the_issue_requires_exist"
_KEY_DESTROYED = T_KEYS + "test_destroying_the_key_makes_the_data_unreadable_for_good"
_CONSENTS_PAGE = T_PRIVACY + (
    "test_the_consents_page_shows_each_consent_and_changes_optional_ones_in_one_click"
)
_NEXT_VISIT = T_PRIVACY + "test_a_new_revision_is_put_to_the_user_on_their_next_visit"
_NOTHING_IN_THE_FILES = (
    "tests/privacy/rights/test_erasure.py::"
    "test_after_erasure_no_personal_string_is_in_the_database_files"
)
_REQUESTS = "tests/privacy/rights/test_requests.py::"
_DECLINING = T_PRIVACY + "test_declining_explains_clause_8_3_and_offers_to_close_the_account"

USERS = "users"
NOT_ACCEPTED = "users_not_accepted"
IN_FORCE = "policy_in_force"
PROCESSING = "consent.processing_and_storage"
CROSS_BORDER = "consent.cross_border_transfer"
MARKETING_EMAIL = "consent.marketing_email"
MARKETING_SMS = "consent.marketing_sms"
ANALYTICS = "consent.analytics_cookies"


CLAUSES: tuple[Clause, ...] = (
    # -- 1. Terms and definitions ----------------------------------------------------------
    Clause(
        number="1.1",
        title=N_("Terms and definitions"),
        status=INFORMATIONAL,
        controls=(PURPOSES + "OPERATOR",),
        tests=(_LAW_TERMS,),
        reason=N_(
            "Definitions of terms; they promise nothing by themselves. The operator they name "
            "is stated in every consent."
        ),
    ),
    Clause(
        number="1.2",
        title=N_("Other terms are read under the Contract and the law of Kazakhstan"),
        status=INFORMATIONAL,
        reason=N_("A rule of interpretation; there is nothing for the service to enforce."),
    ),
    Clause(
        number="1.3",
        title=N_("Headings have no legal meaning"),
        status=INFORMATIONAL,
        reason=N_("A rule of interpretation; there is nothing for the service to enforce."),
    ),
    Clause(
        number="1.4",
        title=N_("Use of the Application and the Site means consent to the Privacy Policy"),
        status=ENFORCED,
        controls=(
            ACCOUNTS + "registration_consent_errors",
            ACCOUNTS + "register",
            POLICY + "record_acceptance",
        ),
        tests=(
            _REGISTRATION_REQUIRES,
            _REGISTRATION_RECORDS,
            T_ACCOUNTS + "test_registration_against_a_superseded_revision_is_refused",
            T_API + "test_bad_input_is_a_problem_document_and_writes_nothing",
        ),
        reason=N_(
            "Stricter than the clause: consent is not inferred from use. Registration, on the "
            "Site and through the API, requires accepting the revision in force, and the "
            "acceptance is recorded with its revision, channel and time."
        ),
        evidence=(USERS, NOT_ACCEPTED),
    ),
    Clause(
        number="1.5",
        title=N_("Administrator rights on the mobile device for anti-theft wiping"),
        status=PARTIAL,
        controls=(
            DEVICES + "create_enrollment_code",
            DEVICES + "enroll",
            _SP + "cli.agent.enroll",
        ),
        tests=(
            T_DEVICES + "test_the_device_gets_only_what_both_owner_and_machine_allow",
            T_AGENT_E2E + "test_enroll_check_in_and_buffer_while_offline",
        ),
        reason=N_(
            "Exists: the owner chooses on the dashboard what a device may do (locate, ring, "
            "lock, wipe, report accounts); the machine's administrator must also allow a wipe "
            "(--allow-wipe); each choice is a consent event for that device. Missing: the "
            "commands themselves (ring, lock, wipe) and their delivery to the agent."
        ),
    ),
    # -- 2. Information received by Smart Protect ------------------------------------------
    Clause(
        number="2.1",
        title=N_("What Smart Protect collects, accesses and uses"),
        status=INFORMATIONAL,
        reason=N_(
            "Describes the collection as a whole. What is collected, on which consent and for "
            "which purposes is mapped under clauses 2.3, 3.1 and 4.1."
        ),
        evidence=(USERS,),
    ),
    Clause(
        number="2.2",
        title=N_("Technical information and cookies"),
        status=ENFORCED,
        controls=(
            _SP + "deps.session_cookie_name",
            _SP + "web.csrf.cookie_name",
            _SP + "web.views.pages.switch_language",
            PURPOSES + "TERMS",
        ),
        tests=(
            T_WEB + "test_register_verify_login_logout",
            T_PAGES + "test_language_from_prefix_then_cookie_then_accept_language",
            T_CONSENT + "test_a_change_to_the_same_state_writes_nothing",
        ),
        reason=N_(
            "The Site sets only the cookies it needs to work: the sign-in session, the form "
            "token and the chosen language, all HttpOnly. None records visited pages or time "
            "spent; a cookie that did would need the analytics cookies consent, which is off "
            "unless the User grants it."
        ),
        evidence=(ANALYTICS,),
    ),
    Clause(
        number="2.3",
        title=N_("Only Personal Data the User provided is processed"),
        status=ENFORCED,
        controls=(
            SCHEMAS + "UserCreate",
            ACCOUNTS + "register",
            CONSENT + "ip_hash",
            KEYS + "encrypt_field",
        ),
        tests=(
            _REGISTRATION_RECORDS,
            _LEDGER_RECORDS,
            T_ACCOUNTS + "test_throttle_keeps_no_address_in_clear",
            T_API + "test_bad_input_is_a_problem_document_and_writes_nothing",
        ),
        reason=N_(
            "Personal Data enters only through the registration form and API. What the service "
            "observes by itself (IP address, user agent) is kept only as a keyed hash or "
            "sealed with the subject's key."
        ),
        evidence=(USERS,),
    ),
    Clause(
        number="2.3.1",
        title=N_("Last name, first name, patronymic"),
        status=ENFORCED,
        controls=(SCHEMAS + "UserCreate", _SP + "accounts.models.User"),
        tests=(T_HARDENING + "test_control_characters_are_refused_cleanly",),
        reason=N_(
            "Optional at registration and given only by the User; checked for control "
            "characters and limited to 100 characters."
        ),
    ),
    Clause(
        number="2.3.2",
        title=N_("Passport data"),
        status=ENFORCED,
        controls=(PROFILE + "set_passport", PROFILE + "profile_of", KEYS + "encrypt_field"),
        tests=(
            T_PROFILE + "test_passport_data_is_sealed_masked_and_every_reveal_audited",
            T_PROFILE + "test_profile_items_past_a_year_go_with_the_retention_run",
            T_WEB_PROFILE + "test_passport_saved_masked_revealed_on_request_and_deleted",
        ),
        reason=N_(
            "Given by the User on the personal data page, as fields only (number, issuing "
            "authority, date of issue; never a scan, which Kazakhstan forbids collecting); "
            "sealed with the subject's key, shown masked unless the User reveals it, every "
            "reveal audited, destroyed 1 year after it was given."
        ),
    ),
    Clause(
        number="2.3.3",
        title=N_("Email address"),
        status=ENFORCED,
        controls=(
            SCHEMAS + "normalise_email",
            ACCOUNTS + "verify_email",
            ACCOUNTS + "get_by_email",
            _SP + "privacy.keys.sealed.Sealed",
        ),
        tests=(
            T_ACCOUNTS + "test_verification_link_works_once",
            T_ACCOUNTS + "test_unverified_accounts_cannot_sign_in",
            T_WEB + "test_registration_errors_are_shown_next_to_fields_and_nothing_is_written",
            _NOTHING_IN_THE_FILES,
        ),
        reason=N_(
            "Required at registration, validated, and confirmed by a one-time link before the "
            "account can sign in. Stored only sealed with the User's key (as are the phone "
            "number, names and the mail queued to them), and found by a keyed blind index, so "
            "no copy the database keeps of a row names the User."
        ),
    ),
    Clause(
        number="2.3.4",
        title=N_("User accounts on the mobile device"),
        status=ENFORCED,
        controls=(DEVICES + "check_in_many", DEVICES + "accounts_of"),
        tests=(
            T_DEVICES + "test_nothing_unpermitted_is_stored",
            T_DEVICES + "test_withdrawn_consent_stops_storage_at_once",
            "tests/privacy/retention/test_accounts.py::"
            "test_a_device_s_accounts_are_emptied_a_year_after_they_were_reported",
        ),
        reason=N_(
            "The agent reports a device's accounts only if the owner permitted it; they are "
            "stored sealed with the owner's key, and emptied a year after they were reported."
        ),
    ),
    Clause(
        number="2.3.5",
        title=N_("Telephone number"),
        status=ENFORCED,
        controls=(
            SCHEMAS + "normalise_phone",
            PROFILE + "request_phone_confirmation",
            PROFILE + "confirm_phone",
        ),
        tests=(
            T_WEB + "test_registration_errors_are_shown_next_to_fields_and_nothing_is_written",
            T_API + "test_bad_input_is_a_problem_document_and_writes_nothing",
            T_WEB_PROFILE + "test_a_phone_number_is_confirmed_by_a_texted_code",
            T_PROFILE + "test_a_phone_code_is_tried_five_times_then_a_new_one_is_needed",
        ),
        reason=N_(
            "Required at registration, validated and stored in international format, sealed "
            "with the User's key. A number is confirmed by a code texted to it (kept only as a "
            "keyed hash, five tries, ten minutes) and not used until then. SMS mailings to it "
            "need the User's consent."
        ),
    ),
    Clause(
        number="2.3.6",
        title=N_("Geolocation of the User's mobile device"),
        status=ENFORCED,
        controls=(
            DEVICES + "check_in_many",
            DEVICES + "locations",
            RETENTION + "job.run_retention",
            _SP + "fmd.service.add_item",
            _SP + "fmd.service.add_items_v2",
        ),
        tests=(
            T_DEVICES + "test_check_in_stores_sealed_locations_and_battery",
            T_API_AGENT + "test_bad_coordinates_are_refused",
            T_AGENT_E2E + "test_enroll_check_in_and_buffer_while_offline",
            T_RETENTION + "test_an_item_provided_366_days_ago_is_gone_and_one_under_a_hold_remains",
            "tests/api/test_fmd_v1.py::"
            "test_the_app_registers_logs_in_uploads_and_is_woken_for_a_command",
            "tests/api/test_fmd_v2.py::"
            "test_items_are_kept_as_sent_listed_in_order_and_deleted_by_id",
        ),
        reason=N_(
            "Devices report fixes (coordinates, accuracy, method, time), stored sealed with the "
            "owner's key and only while the owner permits locating that device; each fix is "
            "destroyed 1 year after it was received unless a legal hold keeps it. Phones with "
            "the FMD app upload their locations encrypted on the phone, which the company "
            "cannot read: kept at most a year too."
        ),
    ),
    Clause(
        number="2.3.7",
        title=N_("Other information the User provides"),
        status=PARTIAL,
        controls=(ACCOUNTS + "create_api_token",),
        tests=(T_ACCOUNTS + "test_api_tokens_are_hashed_and_revocable",),
        reason=N_(
            "Besides the registration fields, the User can give the Site a language and names "
            "of API tokens. Missing: information from the Application and mail received at the "
            "authorised email address are not handled by this service yet."
        ),
    ),
    Clause(
        number="2.4",
        title=N_("Personal Data is kept for 1 year from when it was provided"),
        status=PARTIAL,
        controls=(
            RETENTION + "rules.register",
            RETENTION + "job.run_retention",
            RETENTION + "scheduler.RetentionScheduler",
            RETENTION + "service.place_hold",
            KEYS + "destroy_key",
        ),
        tests=(
            T_RETENTION + "test_an_item_provided_366_days_ago_is_gone_and_one_under_a_hold_remains",
            T_RETENTION + "test_every_table_has_a_retention_rule_or_a_reason_not_to",
            T_RETENTION + "test_runs_started_together_destroy_everything_once",
            "tests/privacy/retention/test_scheduler.py::test_the_server_destroys_old_data_on_its_own",
            T_CLI_RETENTION + "test_a_hold_placed_listed_honoured_and_released",
            "tests/privacy/retention/test_accounts.py::"
            "test_an_account_is_reminded_then_erased_at_its_year",
            "tests/privacy/retention/test_accounts.py::"
            "test_names_and_phone_are_emptied_a_year_after_they_were_given",
            "tests/api/test_fmd_open_registration.py::"
            "test_an_account_of_nobody_is_kept_a_year_after_its_phone_last_logged_in",
            _KEY_DESTROYED,
        ),
        reason=N_(
            "Every table holding user information declares its category and when each item "
            "was provided; every hour the server destroys what is older than 1 year (failed "
            "sign-ins after 15 minutes), except what a legal hold keeps, and audits the count "
            "per category: locations, commands, passport data, other information, names, a "
            "device's reported accounts and the phone number (emptied), sessions, links, "
            "tokens, codes and mail. An account whose email address was last given a year ago "
            "(signing in gives it again) is erased whole, once a reminder mailed to it is a "
            "month old. Missing: a time limit for the pseudonymous audit log and consent "
            "ledger, kept as evidence."
        ),
        evidence=("oldest_personal_data", "accounts_past_retention"),
    ),
    # -- 3. Personal information -----------------------------------------------------------
    Clause(
        number="3.1",
        title=N_("Consent to processing, storage and transfer, also cross-border"),
        status=ENFORCED,
        controls=(
            ACCOUNTS + "registration_consent_errors",
            CONSENT + "record",
            CONSENT + "is_permitted",
            CONSENT + "change",
            PURPOSES + "TERMS",
            APPEND_ONLY,
        ),
        tests=(
            _REGISTRATION_REQUIRES,
            _REGISTRATION_RECORDS,
            T_CONSENT + "test_required_consents_cannot_be_toggled_off",
            _LAW_TERMS,
            _LEDGER_APPEND_ONLY,
        ),
        reason=N_(
            "Both consents are a condition of registration, recorded in the append-only "
            "ledger, and withdrawn only by closing the account. No transfer to third parties "
            "or abroad exists yet; one must ask is_permitted first."
        ),
        evidence=(PROCESSING, CROSS_BORDER),
    ),
    Clause(
        number="3.2",
        title=N_("Consent to information mailings and promotional materials"),
        status=ENFORCED,
        controls=(
            SCHEMAS + "RegistrationConsents",
            PURPOSES + "TERMS",
            CONSENT + "record",
            CONSENT + "is_permitted",
        ),
        tests=(
            T_ACCOUNTS + "test_marketing_consent_is_off_unless_given",
            T_WEB + "test_marketing_boxes_are_unchecked_by_default",
            _REGISTRATION_RECORDS,
            _PURPOSES_EXIST,
        ),
        reason=N_(
            "Asked, not assumed: email and SMS are separate consents, off unless ticked, and "
            "an unticked box is recorded as a refusal. No mailing is sent yet; a sender must "
            "ask is_permitted for each recipient."
        ),
        evidence=(MARKETING_EMAIL, MARKETING_SMS),
    ),
    # -- 4. Purposes -----------------------------------------------------------------------
    Clause(
        number="4.1",
        title=N_("Information is used only for the listed purposes"),
        status=PARTIAL,
        controls=(
            _SP + "privacy.consent.models.Purpose",
            CONSENT + "is_permitted",
            AUDIT + "record_event",
        ),
        tests=(
            _STATE_DERIVED,
            _PURPOSES_EXIST,
            T_WEB + "test_sign_ins_consents_and_acceptances_are_audited",
        ),
        reason=N_(
            "Consents are recorded per purpose, is_permitted answers for one purpose, and "
            "audit events can name theirs. Missing: nothing yet makes every use of data go "
            "through a purpose check."
        ),
    ),
    Clause(
        number="4.1.1",
        title=N_("Purpose: obligations under the Contract"),
        status=PARTIAL,
        controls=(CONSENT + "is_permitted",),
        tests=(T_ACCOUNTS + "test_marketing_consent_is_off_unless_given",),
        reason=N_(
            "Covered by the required consent to processing and storage. Missing: the "
            "protection service of the Application, which performs the Contract, is not part "
            "of this service yet."
        ),
        evidence=(PROCESSING,),
    ),
    Clause(
        number="4.1.2",
        title=N_("Purpose: communication with the User"),
        status=ENFORCED,
        controls=(MAIL + "enqueue", MAIL + "deliver_pending"),
        tests=(
            T_MAIL + "test_queued_mail_is_delivered_over_smtp",
            T_MAIL + "test_mail_of_a_rolled_back_transaction_is_never_sent",
            T_ACCOUNTS + "test_links_are_mailed_at_most_once_per_cool_down",
        ),
        reason=N_(
            "Only mail about the User's own account is sent (confirmation, password reset, "
            "notices), through an outbox written in the same transaction as the change."
        ),
        evidence=("outbox",),
    ),
    Clause(
        number="4.1.3",
        title=N_("Purpose: messages to the User's email address"),
        status=PARTIAL,
        controls=(MAIL + "enqueue", CONSENT + "is_permitted"),
        tests=(T_MAIL + "test_queued_mail_is_delivered_over_smtp",),
        reason=N_(
            "Messages about the account are sent. Missing: informational and promotional "
            "mailings are not sent yet; when they are, each needs the email marketing consent."
        ),
        evidence=("outbox", MARKETING_EMAIL),
    ),
    Clause(
        number="4.1.4",
        title=N_("Purpose: better service and upgrades of the Site"),
        status=PLANNED,
        controls=(PURPOSES + "TERMS",),
        tests=(_PURPOSES_EXIST,),
        reason=N_(
            "No information is used for this purpose yet: no analytics or quality measurements "
            "are collected. Missing: when they are, a check of the analytics cookies consent, "
            "which exists and is off unless the User grants it."
        ),
        evidence=(ANALYTICS,),
    ),
    Clause(
        number="4.1.5",
        title=N_("Purpose: registration and identification of the User"),
        status=ENFORCED,
        controls=(
            ACCOUNTS + "register",
            ACCOUNTS + "verify_email",
            ACCOUNTS + "authenticate",
            ACCOUNTS + "user_for_session",
            ACCOUNTS + "user_for_api_token",
        ),
        tests=(
            T_WEB + "test_register_verify_login_logout",
            T_ACCOUNTS + "test_unverified_accounts_cannot_sign_in",
            T_ACCOUNTS + "test_sessions_expire",
            T_API + "test_token_lifecycle",
        ),
        evidence=(USERS,),
    ),
    Clause(
        number="4.1.6",
        title=N_("Purpose: requirements of the law of Kazakhstan"),
        status=PARTIAL,
        controls=(PURPOSES + "TERMS", PURPOSES + "OPERATOR", AUDIT + "record_event", APPEND_ONLY),
        tests=(
            _LAW_TERMS,
            _LEDGER_APPEND_ONLY,
            T_AUDIT + "test_the_database_refuses_to_change_or_delete_audit_rows",
        ),
        reason=N_(
            "Each consent states what the law on personal data asks a consent to state, and "
            "the ledger and the audit log keep records that cannot be rewritten unnoticed. "
            "Missing: a procedure for requests of state bodies (clause 6.2)."
        ),
        evidence=("audit_chain",),
    ),
    # -- 5. Protection measures and guarantees ---------------------------------------------
    Clause(
        number="5.1",
        title=N_("Legal, organisational and technical protection measures"),
        status=PARTIAL,
        controls=(
            _SP + "security.hash_password",
            _SP + "security.hash_token",
            _SP + "security.keyed_hash",
            ACCOUNTS + "authenticate",
            _SP + "web.csrf.verify",
            _SP + "web.security_headers.SecurityHeadersMiddleware",
            _SP + "config.Settings.check_safe_to_serve",
            KEYS + "encrypt_field",
            KEYS + "check_master_key",
            MASTER + "LocalMasterKey",
            AUDIT + "record_event",
            AUDIT + "verify_chain",
            _SP + "audit.anchor.sign",
            APPEND_ONLY,
        ),
        tests=(
            T_ACCOUNTS + "test_password_is_stored_as_argon2id",
            T_ACCOUNTS + "test_only_the_hash_of_an_email_token_is_stored",
            T_ACCOUNTS + "test_sign_in_is_throttled_after_repeated_failures",
            T_ACCOUNTS + "test_a_user_cannot_revoke_another_users_token",
            T_HARDENING + "test_every_form_refuses_a_missing_or_forged_csrf_token",
            T_PAGES + "test_security_headers",
            T_CONFIG + "test_production_is_the_default_and_refuses_the_default_secret",
            T_KEYS + "test_a_field_round_trips_and_the_ciphertext_reveals_nothing",
            T_KEYS + "test_the_wrong_master_key_is_refused_loudly",
            T_AUDIT + "test_verify_names_the_first_tampered_row",
            T_CLI_AUDIT + "test_audit_verify_finds_a_single_edited_row",
            T_CLI_AUDIT + "test_audit_anchor_is_signed_and_pins_the_chain",
        ),
        reason=N_(
            "The technical measures are in place. Missing: staff access does not exist yet, "
            "so there are no staff roles or staff access log to restrict and record it; "
            "organisational measures and sanctions are outside the software."
        ),
        evidence=("audit_chain", "append_only", "subject_keys"),
    ),
    Clause(
        number="5.2",
        title=N_("Not combined with statistics, not provided to third parties, not disclosed"),
        status=PARTIAL,
        controls=(
            AUDIT + "pseudonym",
            ACCOUNTS + "register",
            ACCOUNTS + "request_password_reset",
            KEYS + "encrypt_field",
        ),
        tests=(
            T_ACCOUNTS
            + "test_duplicate_registration_mails_the_owner_instead_of_revealing_the_account",
            T_WEB + "test_reset_request_for_unknown_address_looks_the_same",
            T_HARDENING + "test_unexpected_errors_are_problem_documents_without_details",
            T_AUDIT + "test_personal_details_are_sealed_with_the_subjects_key",
        ),
        reason=N_(
            "The service does not reveal which addresses are registered, its errors carry no "
            "details, and the audit log names people only by pseudonym. Nothing is shared or "
            "combined with statistics because no such feature exists. Missing: a control "
            "that would stop a future feature from doing so."
        ),
    ),
    Clause(
        number="5.3",
        title=N_("Information about Users is not sold or transferred separately"),
        status=INFORMATIONAL,
        reason=N_(
            "A commitment of the business: the software has no feature that sells or transfers "
            "information about Users, and a transfer on reorganisation is decided outside it."
        ),
    ),
    Clause(
        number="5.4",
        title=N_("Access of the User to the information they provided"),
        status=ENFORCED,
        controls=(
            _SP + "privacy.rights.export.document",
            _SP + "privacy.rights.schema.EXPORT_SCHEMA",
            _SP + "privacy.rights.service.record_export",
            PROFILE + "profile_of",
            CONSENT + "history",
        ),
        tests=(
            "tests/privacy/rights/test_export.py::"
            "test_the_export_holds_every_category_and_validates_against_its_schema",
            "tests/privacy/rights/test_export.py::test_an_export_holds_nothing_of_another_user",
            "tests/web/test_rights.py::test_the_json_download_is_complete_valid_and_audited",
            T_WEB_PROFILE + "test_the_page_shows_each_item_with_when_it_was_given",
            _CONSENTS_PAGE,
        ),
        reason=N_(
            "The User sees each item of their personal data, with when it was given, on the "
            "personal data page, and downloads everything held about them from the Privacy "
            "page: as JSON, whose schema is published at /privacy/export-schema.json, or as a "
            "readable document in their language; streamed, and audited."
        ),
    ),
    # -- 6. Rights of Smart Protect --------------------------------------------------------
    Clause(
        number="6.1",
        title=N_("Research on impersonal information"),
        status=INFORMATIONAL,
        reason=N_(
            "A right Smart Protect reserves; no research or statistics feature exists. The "
            "pseudonyms of the audit log are not impersonal information and must not be used "
            "for it."
        ),
    ),
    Clause(
        number="6.2",
        title=N_("Information for law enforcement and other state bodies"),
        status=INFORMATIONAL,
        reason=N_(
            "A right Smart Protect reserves; no disclosure feature exists. When one is built, "
            "each disclosure must be recorded in the audit log."
        ),
    ),
    Clause(
        number="6.3",
        title=N_("Information for fighting fraud and fixing security problems"),
        status=INFORMATIONAL,
        reason=N_(
            "A right Smart Protect reserves; no disclosure feature exists. When one is built, "
            "each disclosure must be recorded in the audit log."
        ),
    ),
    Clause(
        number="6.4",
        title=N_("Access of third parties to perform obligations to the User"),
        status=INFORMATIONAL,
        reason=N_(
            "A right Smart Protect reserves, covered by the consent of clause 3.1; no third "
            "party receives information yet."
        ),
        evidence=(PROCESSING,),
    ),
    # -- 7. Rights of the User -------------------------------------------------------------
    Clause(
        number="7.1",
        title=N_("The User can delete or change their information"),
        status=ENFORCED,
        controls=(
            PROFILE + "change_names",
            PROFILE + "change_phone",
            PROFILE + "confirm_phone",
            PROFILE + "delete_item",
            ACCOUNTS + "request_email_change",
            _SP + "privacy.rights.erasure.close_account",
            PRIVACY_VIEWS + "close_account",
            KEYS + "destroy_key",
            _SP + "privacy.rights.requests.receive",
            _SP + "privacy.rights.requests.confirm",
        ),
        tests=(
            T_PROFILE + "test_each_item_records_when_it_was_given_and_can_be_deleted",
            T_WEB_PROFILE + "test_a_new_email_address_is_used_only_once_confirmed",
            "tests/privacy/rights/test_erasure.py::test_erasure_removes_every_row_and_the_key",
            _NOTHING_IN_THE_FILES,
            "tests/privacy/rights/test_erasure.py::"
            "test_a_legal_hold_keeps_only_its_categories_until_it_ends",
            _DECLINING,
            _KEY_DESTROYED,
            T_AUDIT + "test_personal_details_are_sealed_with_the_subjects_key",
            _REQUESTS + "test_an_erasure_asked_by_email_happens_only_when_the_owner_confirms",
            "tests/privacy/rights/test_erasure.py::"
            "test_a_backup_from_before_the_erasure_opens_no_more_once_its_master_key_is_retired",
            _REQUESTS + "test_an_unknown_address_or_a_stale_link_does_nothing",
        ),
        reason=N_(
            "On the personal data page the User changes their name, phone number (unused until "
            "confirmed by a texted code), email address (in use only once a link mailed to it "
            "is opened), passport data and other information, and deletes any of them but the "
            "email address and phone, which go with the account. Personal data is stored only "
            "sealed with the subject's key; deleting the account shreds that key and deletes "
            "every row about them, so no personal string is in the database files on either "
            "engine, and on SQLite not even the ciphertext stays (deleted content overwritten, "
            "the write-ahead log emptied). A backup taken before the erasure becomes unreadable "
            "once the master key it was taken under is rotated out and destroyed. Only the "
            "categories under a legal hold in force are "
            "kept, sealed with the hold's own key, and the User is told what, until when and "
            "why. Anything the site does not offer can be asked by writing to the privacy "
            "address shown on the Privacy and personal data pages: the operator records the "
            "request, the account's own address is mailed a link, and the request is carried "
            "out only when its owner confirms it there, so nobody can act in another's name."
        ),
        evidence=("subject_keys",),
    ),
    Clause(
        number="7.2",
        title=N_("Consent to mailings can be withdrawn at any time"),
        status=ENFORCED,
        controls=(
            CONSENT + "change",
            CONSENT + "is_permitted",
            PRIVACY_VIEWS + "change_consent",
            _SP + "mail.marketing.unsubscribe",
            _SP + "mail.marketing.still_wanted",
            _SP + "mail.marketing.withdraw",
        ),
        tests=(
            _CONSENTS_PAGE,
            _STATE_DERIVED,
            T_CONSENT + "test_a_change_to_the_same_state_writes_nothing",
            _LEDGER_RECORDS,
            "tests/mail/test_marketing.py::"
            "test_a_mailing_carries_one_click_unsubscribe_and_it_works_without_a_session",
            "tests/mail/test_marketing.py::test_withdrawal_stops_a_message_already_queued",
            _REQUESTS + "test_marketing_consent_withdrawn_by_email",
        ),
        reason=N_(
            "Withdrawal is one ledger event that takes effect at once: from the Privacy page, "
            "from the link in every marketing message, which also answers RFC 8058's "
            "one-click List-Unsubscribe-Post without a sign-in, or by writing to the privacy "
            "address, confirmed through a link mailed to the account. Consent is asked again "
            "when each message is delivered, so one already queued is not sent."
        ),
        evidence=(MARKETING_EMAIL, MARKETING_SMS),
    ),
    # -- 8. New revisions ------------------------------------------------------------------
    Clause(
        number="8.1",
        title=N_("The policy may change; the User reads it on every visit"),
        status=ENFORCED,
        controls=(
            POLICY + "publish_revision",
            POLICY + "in_force",
            PRIVACY_VIEWS + "privacy_policy",
            _SP + "api.v1.policy.policy_in_force",
            _SP + "web.gates.require_user",
            APPEND_ONLY,
        ),
        tests=(
            T_POLICY + "test_a_revision_links_both_texts_with_their_sha256",
            T_POLICY + "test_published_text_cannot_be_changed",
            T_POLICY + "test_a_new_revision_must_be_newer_than_the_one_in_force",
            T_PAGES + "test_privacy_page_shows_the_policy_in_force",
            T_PRIVACY + "test_privacy_page_shows_the_revision_in_force_and_the_earlier_ones",
            _NEXT_VISIT,
            T_API + "test_policy_endpoint",
        ),
        reason=N_(
            "Each revision is published in both languages at once and never changed; the "
            "Privacy page shows the one in force, and a signed-in User is shown a new one "
            "before anything else."
        ),
        evidence=(IN_FORCE,),
    ),
    Clause(
        number="8.2",
        title=N_("A new revision is in force once posted"),
        status=PARTIAL,
        controls=(
            POLICY + "in_force",
            POLICY + "status",
            POLICY + "not_accepted",
            POLICY + "notify_users",
            PRIVACY_VIEWS + "review_submit",
        ),
        tests=(
            T_POLICY + "test_answers_and_who_has_not_accepted",
            T_POLICY + "test_every_user_is_mailed_in_their_language",
            _NEXT_VISIT,
            T_ACCOUNTS + "test_registration_against_a_superseded_revision_is_refused",
        ),
        reason=N_(
            "A revision is in force from the moment it is posted; every User is mailed, and "
            "asked on their next visit to accept or decline it. Acceptance is recorded "
            "instead of inferred. Missing: continued use of the Application is not seen, as "
            "the Application is not part of this service yet."
        ),
        evidence=(IN_FORCE, NOT_ACCEPTED),
    ),
    Clause(
        number="8.3",
        title=N_("A User who disagrees must not use the Application"),
        status=PARTIAL,
        controls=(
            ACCOUNTS + "registration_consent_errors",
            POLICY + "record_decline",
            _SP + "web.gates.require_user",
            _SP + "privacy.rights.erasure.close_account",
        ),
        tests=(
            _REGISTRATION_REQUIRES,
            T_ACCOUNTS + "test_registration_is_refused_without_a_published_policy",
            T_POLICY + "test_answers_and_who_has_not_accepted",
            _DECLINING,
        ),
        reason=N_(
            "Nobody registers without accepting the revision in force, and a User who "
            "declines a new one is told they may not use the Application and offered to "
            "close the account. Missing: the Application, which would have to stop working "
            "for them, is not part of this service yet."
        ),
        evidence=(NOT_ACCEPTED,),
    ),
    # -- 9. Elimination of contradictions --------------------------------------------------
    Clause(
        number="9.1",
        title=N_("The Privacy Policy prevails over conflicting agreements"),
        status=INFORMATIONAL,
        reason=N_("A rule for conflicts between documents; there is nothing to enforce."),
    ),
)

BY_NUMBER: dict[str, Clause] = {clause.number: clause for clause in CLAUSES}
