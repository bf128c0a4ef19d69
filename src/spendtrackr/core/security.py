"""Password hashing (Argon2id via pwdlib), JWT issue/verify (PyJWT), opaque token helpers."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import jwt
from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher

from spendtrackr.core.config import Settings
from spendtrackr.core.lru import LruCache


def normalize_email(email: str) -> str:
    """The one form of an email that accounts, password salts and login limits are keyed by."""
    return email.strip().lower()


@dataclass(frozen=True, slots=True)
class Checked:
    """One account's answer to a password: `rehashed` is set when it matched a hash under an
    older salt or cost, and is the hash to store instead."""

    matches: bool
    rehashed: str | None = None


class Passwords:
    """Argon2id hashing.

    A password is hashed with a salt derived from its email (an HMAC under a server key), so
    every account of one person (one per company) carries the same salt: a login computes one
    hash and compares it with all of them. An unknown email, one account or several then cost
    the same single hash, and the time of a login says nothing of accounts in other companies.
    A hash under another salt (an email changed, the key rotated, an older release) is verified
    on its own and replaced at its next successful login.

    At most `password_hash_concurrency` hashes run at once: each one holds argon2_memory_kib of
    memory, so a burst of logins on a 40-thread pool would otherwise grow a worker by hundreds of
    megabytes for no gain in throughput (the hashes compete for the same cores).
    """

    def __init__(self, settings: Settings) -> None:
        self._hasher = Argon2Hasher(
            time_cost=settings.argon2_time_cost,
            memory_cost=settings.argon2_memory_kib,
            parallelism=settings.argon2_parallelism,
        )
        self._any = PasswordHash((self._hasher,))
        self._salt_key = settings.password_salt_key
        self._slots = threading.BoundedSemaphore(settings.password_hash_concurrency)

    def _salt(self, email: str) -> bytes:
        key = normalize_email(email).encode()
        return hmac.new(self._salt_key, key, hashlib.sha256).digest()[:16]

    def hash(self, password: str, *, email: str | None) -> str:
        """The hash to store for an account with this email (None: a random salt, for bulk
        loads that share one hash; such a hash is replaced at its first login)."""
        with self._slots:
            if email is None:
                return self._any.hash(password)
            return self._hasher.hash(password, salt=self._salt(email))

    def check(self, password: str, *, email: str, hashes: list[str | None]) -> list[Checked]:
        """The password against every account of this email, in one hash when all of them use
        the email's salt (and the same cost)."""
        with self._slots:
            fresh = self._hasher.hash(password, salt=self._salt(email))
            settings = fresh.rpartition("$")[0]  # algorithm, cost and salt
            answers = []
            for stored in hashes:
                if stored is None:
                    answers.append(Checked(False))
                elif stored.rpartition("$")[0] == settings:
                    answers.append(Checked(hmac.compare_digest(stored, fresh)))
                else:
                    matches = self._any.verify(password, stored)
                    answers.append(Checked(matches, fresh if matches else None))
            return answers

    def verify(self, password: str, password_hash: str | None, *, email: str) -> bool:
        return self.check(password, email=email, hashes=[password_hash])[0].matches


@dataclass(frozen=True, slots=True)
class AccessClaims:
    user_id: uuid.UUID
    company_id: uuid.UUID
    session_id: uuid.UUID
    role: str
    jti: str


class InvalidToken(Exception):
    pass


class Tokens:
    """Short-lived access JWTs. The algorithm is fixed by configuration, never read from a token.

    A token that verified once is remembered (the exact string, up to `VERIFIED_TOKENS` of them)
    with its claims and expiry: a client sends the same token with every request for its whole
    life, and checking the signature and claims again costs more than the rest of the lookup.
    Only the expiry can change the answer, and it is checked every time.
    """

    VERIFIED_TOKENS = 4096

    def __init__(self, settings: Settings) -> None:
        self._key = settings.jwt_secret.get_secret_value()
        self._algorithm = settings.jwt_algorithm
        self._issuer = settings.jwt_issuer
        self._audience = settings.jwt_audience
        self.access_ttl = timedelta(minutes=settings.access_token_minutes)
        self._verified: LruCache[str, tuple[AccessClaims, int]] = LruCache(self.VERIFIED_TOKENS)

    def issue_access(
        self,
        *,
        user_id: uuid.UUID,
        company_id: uuid.UUID,
        session_id: uuid.UUID,
        role: str,
        now: datetime,
    ) -> str:
        payload = {
            "sub": str(user_id),
            "company_id": str(company_id),
            "sid": str(session_id),
            "role": role,
            "iat": int(now.timestamp()),
            "exp": int((now + self.access_ttl).timestamp()),
            "jti": uuid.uuid4().hex,
            "iss": self._issuer,
            "aud": self._audience,
        }
        return jwt.encode(payload, self._key, algorithm=self._algorithm)

    def verify_access(self, token: str) -> AccessClaims:
        known = self._verified.get(token)
        if known is not None:
            remembered, expires = known
            if time.time() < expires:  # PyJWT's test, without leeway: expired from `exp` on
                return remembered
            raise InvalidToken("Signature has expired")
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                self._key,
                algorithms=[self._algorithm],
                audience=self._audience,
                issuer=self._issuer,
                options={"require": ["exp", "iat", "sub", "jti", "iss", "aud"]},
            )
            verified = AccessClaims(
                user_id=uuid.UUID(claims["sub"]),
                company_id=uuid.UUID(claims["company_id"]),
                session_id=uuid.UUID(claims["sid"]),
                role=str(claims["role"]),
                jti=str(claims["jti"]),
            )
            self._verified.put(token, (verified, int(claims["exp"])))
            return verified
        except (jwt.PyJWTError, KeyError, ValueError, TypeError) as exc:
            raise InvalidToken(str(exc)) from exc


def new_opaque_token(nbytes: int = 32) -> str:
    return secrets.token_urlsafe(nbytes)


def token_digest(token: str) -> str:
    """Tokens and secrets are stored as SHA-256 digests: high-entropy inputs need no slow hash."""
    return hashlib.sha256(token.encode()).hexdigest()


def digests_equal(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def _device_mac(key: bytes, nonce: str, email: str) -> str:
    return hmac.new(key, f"{nonce}:{email}".encode(), hashlib.sha256).hexdigest()


def device_token(key: bytes, email: str) -> str:
    """A token that says "this device logged in to this email before": random, signed, bound
    to the email. It grants nothing but the right to try a password while the email is locked
    out."""
    nonce = secrets.token_urlsafe(12)
    return f"{nonce}.{_device_mac(key, nonce, email)}"


def device_token_valid(key: bytes, token: str | None, email: str) -> bool:
    if not token or token.count(".") != 1:
        return False
    nonce, mac = token.split(".")
    return hmac.compare_digest(mac, _device_mac(key, nonce, email))
