"""Audit action tags, `source:subject:action` (after warehouse's event tags)."""

from __future__ import annotations

import enum


class Tag(enum.StrEnum):
    ACCOUNT_REGISTERED = "account:user:register"
    ACCOUNT_EMAIL_VERIFIED = "account:user:verify_email"
    ACCOUNT_LOGIN = "account:user:login"
    ACCOUNT_LOGIN_FAILED = "account:user:login_failed"
    ACCOUNT_LOGIN_THROTTLED = "account:user:login_throttled"
    ACCOUNT_LOGOUT = "account:user:logout"
    ACCOUNT_PASSWORD_RESET_REQUESTED = "account:user:password_reset_request"
    ACCOUNT_PASSWORD_RESET = "account:user:password_reset"
    ACCOUNT_API_TOKEN_CREATED = "account:api_token:create"
    ACCOUNT_API_TOKEN_REVOKED = "account:api_token:revoke"
    ACCOUNT_CLOSED = "account:user:close"
    DEVICE_ENROLLMENT_CODE_CREATED = "device:enrollment_code:create"
    DEVICE_ENROLLED = "device:device:enroll"
    DEVICE_MARKED_LOST = "device:device:lost"
    DEVICE_MARKED_FOUND = "device:device:found"
    COMMAND_ISSUED = "device:command:issue"
    COMMAND_CANCELLED = "device:command:cancel"
    COMMAND_DELIVERED = "device:command:deliver"
    COMMAND_STATE = "device:command:state"
    CONSENT_GRANTED = "privacy:consent:grant"
    CONSENT_WITHDRAWN = "privacy:consent:withdraw"
    POLICY_PUBLISHED = "privacy:policy:publish"
    POLICY_ACCEPTED = "privacy:policy:accept"
    POLICY_DECLINED = "privacy:policy:decline"
    KEY_DESTROYED = "privacy:key:destroy"
    KEYS_ROTATED = "privacy:key:rotate"
    RETENTION_RUN = "privacy:retention:run"
    HOLD_PLACED = "privacy:hold:place"
    HOLD_RELEASED = "privacy:hold:release"
