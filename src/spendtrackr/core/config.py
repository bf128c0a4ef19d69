"""Settings: one object, read from the environment (and .env), cached."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PLACEHOLDER_JWT_SECRET = "change-me-in-production-this-is-not-a-secret"  # noqa: S105


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=".env", extra="ignore", case_sensitive=False, populate_by_name=True
    )

    environment: Literal["development", "test", "production"] = "development"
    app_name: str = "SpendTrackr"
    log_level: str = "INFO"
    # JSON lines; unset: JSON unless stderr is a terminal (then key=value lines).
    log_json: bool | None = None

    # DB_URL: the name the original deployment guide used, still read (with a warning in the log).
    database_url: str = Field(
        default="sqlite:///./spendtrackr.db",
        validation_alias=AliasChoices("DATABASE_URL", "DB_URL"),
    )
    # Threads that run sync routes, and request slots: at most this many requests of a process
    # use the database at once (the others wait for a slot, in order), and the DB pool has as
    # many connections, so no thread ever waits for a connection (core/db.py, get_session).
    # A process runs Python on one core at a time: a few more requests than it takes to cover
    # their waits on a nearby database keep that core busy; more only take turns at the GIL,
    # and a request holding a row lock (its company's audit chain head, which every write takes
    # before it commits) waits for the GIL between its statements while the others queue on
    # the lock (3 against 8: a sixth to a third more writes a second; docs/DESIGN.md).
    threadpool_size: int = Field(default=3, ge=1, le=1000)
    # How long a request waits for a slot before it is answered 503 `overloaded`.
    request_queue_timeout_seconds: float = Field(default=10.0, gt=0)
    db_pool_overflow: int = Field(default=10, ge=0)
    db_pool_timeout_seconds: float = Field(default=5.0, gt=0)
    db_echo: bool = False

    # A MySQL/MariaDB replica of DATABASE_URL for lists, reports, exports and the event feed
    # (core/replica.py): used while it lags at most DATABASE_READ_MAX_LAG_SECONDS; a user who
    # wrote reads the primary for a few seconds after. Unset: everything reads the primary.
    database_read_url: str | None = None
    database_read_max_lag_seconds: float = Field(default=2.0, ge=0, le=300)

    redis_url: str | None = None
    redis_timeout_seconds: float = Field(default=0.5, gt=0)

    jwt_secret: SecretStr = SecretStr(PLACEHOLDER_JWT_SECRET)
    jwt_algorithm: Literal["HS256", "HS384", "HS512"] = "HS256"
    jwt_issuer: str = "spendtrackr"
    jwt_audience: str = "spendtrackr-api"
    access_token_minutes: int = Field(default=15, ge=1, le=24 * 60)
    refresh_token_days: int = Field(default=30, ge=1, le=365)
    invite_token_days: int = Field(default=7, ge=1, le=90)
    # A directory event sent without an `id` is known again by its content for this long.
    directory_replay_window_hours: int = Field(default=24, ge=1, le=24 * 30)

    # Argon2id cost. Defaults follow OWASP's recommendation (19 MiB, t=2, p=1); tests lower them.
    argon2_memory_kib: int = Field(default=19_456, ge=8)
    argon2_time_cost: int = Field(default=2, ge=1)
    argon2_parallelism: int = Field(default=1, ge=1)
    # Hashes computed at once per process. Each holds argon2_memory_kib; more at once than there
    # are cores only adds memory (and latency for everyone), not throughput.
    password_hash_concurrency: int = Field(default=2, ge=1, le=64)

    # Rate limits in the `limits` notation ("10/minute", "5 per 10 seconds"); empty disables one.
    rate_limit_enabled: bool = True
    rate_limit_login_ip: str = "20/minute"
    # Failed logins for one email from one address: beyond, that address waits.
    rate_limit_login_email_ip: str = "10/minute"
    # Failed logins for one email from all addresses: beyond, only a device that logged in to
    # it before (its `spendtrackr_device` cookie) may try, so nobody can lock a known email out.
    rate_limit_login_email: str = "100/hour"
    rate_limit_signup_ip: str = "10/hour"
    rate_limit_api_user: str = "1200/minute"
    rate_limit_api_key: str = "1200/minute"

    # /metrics: on the API's port only behind `Authorization: Bearer <METRICS_TOKEN>`, or on a
    # port of its own (METRICS_PORT, bound to METRICS_HOST) and not on the API's at all. With
    # neither, it is not served.
    metrics_token: SecretStr | None = None
    metrics_port: int | None = Field(default=None, ge=1, le=65535)
    metrics_host: str = "127.0.0.1"

    cors_origins: list[str] = Field(default_factory=list)
    max_body_bytes: int = Field(default=1_048_576, ge=1024)
    idempotency_ttl_hours: int = Field(default=24, ge=1)

    # The ledger accounts a company has not set its own of (`PUT /accounting/settings`); a
    # category's gl_code overrides the expense one.
    ledger_default_expense_account: str = "6000"
    ledger_card_liability_account: str = "2100"
    ledger_employee_payable_account: str = "2000"
    ledger_cash_account: str = "1000"
    ledger_tax_account: str = "2200"

    # Key of the HMAC kept of card numbers (derived from JWT_SECRET when unset).
    card_number_key: SecretStr | None = None
    # How long an approval holds its amount on the card without a capture, and how much more
    # than the hold a capture may take (tips, fuel), in percent of the hold.
    card_hold_days: int = Field(default=7, ge=1, le=90)
    # A card purchase still without a receipt this long after it reminds its holder (once).
    receipt_reminder_days: int = Field(default=3, ge=1, le=90)
    card_capture_tolerance_percent: Decimal = Field(default=Decimal(20), ge=0, le=100)

    # Email through SMTP; with no SMTP_HOST, notifications stay in the app.
    smtp_host: str | None = None
    smtp_port: int = Field(default=587, ge=1, le=65535)
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_tls: Literal["starttls", "ssl", "none"] = "starttls"
    smtp_timeout_seconds: float = Field(default=10.0, gt=0, le=120)
    # A CA bundle to trust for the SMTP server's certificate besides the system's (a relay
    # with a private CA).
    smtp_ca_file: Path | None = None
    email_from: str = "SpendTrackr <no-reply@spendtrackr.invalid>"
    # Amounts and dates in emails (and the web app, after the browser's), until a person sets
    # their own.
    email_locale: str = "en_US"
    # Where links in emails point (the web app, or this API for a client of its own), and where
    # an identity provider sends people back after SSO (`<PUBLIC_URL>/auth/sso/callback`).
    public_url: str = "http://127.0.0.1:8000"
    email_batch: int = Field(default=50, ge=1, le=1000)

    # A day without a reference rate (a weekend, a holiday) takes the latest earlier one within
    # this many days; beyond, a conversion is refused (422 `no_rate`).
    rate_lookback_days: int = Field(default=7, ge=0, le=31)

    # Outbound webhooks. Endpoint secrets are kept encrypted with this key (derived from
    # JWT_SECRET when unset): changing it makes them unreadable until each endpoint's is rotated.
    webhook_secret_key: SecretStr | None = None
    # Employees' bank details are encrypted with a key derived from this (default: JWT_SECRET;
    # changing it makes the stored details unreadable: employees enter them again).
    bank_data_key: SecretStr | None = None
    # Loopback, private and link-local destinations are refused (SSRF) unless this is set.
    webhook_allow_private: bool = False
    webhook_timeout_seconds: float = Field(default=10.0, gt=0, le=60)
    # Deliveries a worker claims at a time, and how long a claimed one is that worker's alone
    # (a worker killed mid-send leaves it to the next after this).
    webhook_batch: int = Field(default=50, ge=1, le=1000)
    webhook_lease_seconds: float = Field(default=60.0, gt=0)
    # How long the event feed (`GET /events`) reaches back.
    event_retention_days: int = Field(default=30, ge=1, le=3650)
    # Paging by cursor leaves out rows changed this recently (their transactions may still be
    # committing behind the cursor); longer than any write transaction lasts.
    sync_settle_seconds: float = Field(default=5.0, ge=0, le=300)

    storage_path: Path = Path("./var/receipts")
    max_upload_bytes: int = Field(default=10 * 1024 * 1024, ge=1024)

    # Receipt OCR: Gemini when a key is set, the local extractor (pypdf, Tesseract) otherwise.
    gemini_api_key: SecretStr | None = None
    gemini_model: str = "gemini-2.5-flash"
    gemini_base_url: str | None = None
    gemini_timeout_seconds: float = Field(default=30.0, gt=0)
    ocr_in_process: bool = True  # the web process runs OCR after an upload (besides workers)
    # Receipts a web process reads at once after their uploads, in threads of their own (not
    # the routes'); the others wait their turn, and a worker may take them first.
    ocr_in_process_threads: int = Field(default=4, ge=1, le=100)
    # Bounds of reading one receipt locally (PDF text layer, image OCR), which runs in a child
    # process of its own: its memory, its time (CPU and wall clock), and what it may decode. A
    # file past one fails for good (`ocr_status: failed`, with the reason).
    ocr_max_memory_mb: int = Field(default=1024, ge=128)
    ocr_max_seconds: int = Field(default=60, ge=1)
    ocr_max_pixels: int = Field(default=60_000_000, ge=1)
    ocr_max_pdf_pages: int = Field(default=50, ge=1)
    ocr_max_decoded_bytes: int = Field(default=32 * 1024 * 1024, ge=1024)
    ocr_max_attempts: int = Field(default=3, ge=1)
    ocr_retry_base_seconds: float = Field(default=5.0, ge=0)
    ocr_stale_seconds: float = Field(default=300.0, gt=0)
    storage_orphan_grace_seconds: float = Field(default=3600.0, gt=0)

    @model_validator(mode="after")
    def _refuse_placeholders_in_production(self) -> Settings:
        if self.environment == "production":
            secret = self.jwt_secret.get_secret_value()
            if secret == PLACEHOLDER_JWT_SECRET or len(secret) < 32:
                raise ValueError(
                    "JWT_SECRET must be set to a random value of at least 32 characters "
                    "when ENVIRONMENT=production"
                )
        return self

    @model_validator(mode="after")
    def _replica_of_mysql(self) -> Settings:
        if self.database_read_url and (
            self.is_sqlite or not self.database_read_url.startswith(("mysql", "mariadb"))
        ):
            raise ValueError(
                "DATABASE_READ_URL must be a MySQL/MariaDB replica of a MySQL/MariaDB "
                "DATABASE_URL (SQLite has no replicas)"
            )
        return self

    def deprecations(self) -> list[str]:
        """Lines for the log about settings read under names that are going away."""
        if os.environ.get("DB_URL") and not os.environ.get("DATABASE_URL"):
            return ["DB_URL is deprecated: set DATABASE_URL instead (read from DB_URL for now)"]
        return []

    @property
    def card_key(self) -> bytes:
        if self.card_number_key is not None:
            return self.card_number_key.get_secret_value().encode()
        secret = self.jwt_secret.get_secret_value().encode()
        return hmac.new(secret, b"spendtrackr card number hash", hashlib.sha256).digest()

    @property
    def email_enabled(self) -> bool:
        return bool(self.smtp_host)

    @property
    def webhook_key(self) -> bytes:
        """A Fernet key (urlsafe base64 of 32 bytes) for the endpoint secrets at rest."""
        if self.webhook_secret_key is not None:
            raw = self.webhook_secret_key.get_secret_value().encode()
        else:
            raw = self.jwt_secret.get_secret_value().encode()
        key = hmac.new(raw, b"spendtrackr webhook endpoint secrets", hashlib.sha256).digest()
        return base64.urlsafe_b64encode(key)

    @property
    def sso_key(self) -> bytes:
        """A Fernet key for the companies' OpenID client secrets at rest."""
        key = hmac.new(
            self.jwt_secret.get_secret_value().encode(), b"spendtrackr sso secrets", hashlib.sha256
        ).digest()
        return base64.urlsafe_b64encode(key)

    @property
    def bank_key(self) -> bytes:
        """A Fernet key for bank account numbers at rest."""
        source = self.bank_data_key or self.jwt_secret
        key = hmac.new(
            source.get_secret_value().encode(), b"spendtrackr bank accounts", hashlib.sha256
        ).digest()
        return base64.urlsafe_b64encode(key)

    @property
    def password_salt_key(self) -> bytes:
        """Keys the salt of a password hash to its email (core/security.py). Changing it (with
        JWT_SECRET) costs each person one extra hash at their next login, nothing else."""
        secret = self.jwt_secret.get_secret_value().encode()
        return hmac.new(secret, b"spendtrackr password salt", hashlib.sha256).digest()

    @property
    def unsubscribe_key(self) -> bytes:
        """Signs the unsubscribe links of emails (one person, one kind of email)."""
        secret = self.jwt_secret.get_secret_value().encode()
        return hmac.new(secret, b"spendtrackr unsubscribe", hashlib.sha256).digest()

    @property
    def device_key(self) -> bytes:
        """Signs the known-device cookies that let a user past a lockout of their email."""
        secret = self.jwt_secret.get_secret_value().encode()
        return hmac.new(secret, b"spendtrackr known device", hashlib.sha256).digest()

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


@lru_cache
def get_settings() -> Settings:
    return Settings()
