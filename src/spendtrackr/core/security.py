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


class Passwords:
    """Argon2id hashing, with a dummy hash so an unknown email costs as much as a wrong password.

    At most `password_hash_concurrency` hashes run at once: each one holds argon2_memory_kib of
    memory, so a burst of logins on a 40-thread pool would otherwise grow a worker by hundreds of
    megabytes for no gain in throughput (the hashes compete for the same cores).
    """

    def __init__(self, settings: Settings) -> None:
        self._hash = PasswordHash(
            (
                Argon2Hasher(
                    time_cost=settings.argon2_time_cost,
                    memory_cost=settings.argon2_memory_kib,
                    parallelism=settings.argon2_parallelism,
                ),
            )
        )
        self._slots = threading.BoundedSemaphore(settings.password_hash_concurrency)
        self._dummy = self._hash.hash(secrets.token_urlsafe(16))

    def hash(self, password: str) -> str:
        with self._slots:
            return self._hash.hash(password)

    def verify(self, password: str, password_hash: str | None) -> bool:
        with self._slots:
            if password_hash is None:
                self._hash.verify(password, self._dummy)
                return False
            return self._hash.verify(password, password_hash)


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
    life, and checking the signature and claims again costs more than the rest of the lookup
    (about 60 us a request). Only the expiry can change the answer, and it is checked every time.
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


def device_token(key: bytes, email: str) -> str:
    """A token that says "this device logged in to this email before": random, signed, bound
    to the email. It grants nothing but the right to try a password while the email is locked
    out."""
    nonce = secrets.token_urlsafe(12)
    mac = hmac.new(key, f"{nonce}:{email}".encode(), hashlib.sha256).hexdigest()
    return f"{nonce}.{mac}"


def device_token_valid(key: bytes, token: str | None, email: str) -> bool:
    if not token or token.count(".") != 1:
        return False
    nonce, mac = token.split(".")
    expected = hmac.new(key, f"{nonce}:{email}".encode(), hashlib.sha256).hexdigest()
    return hmac.compare_digest(mac, expected)
