"""A person using the web app through TestClient: their own cookies, forms sent with the page's
CSRF token, pages read as text."""

from __future__ import annotations

import re
from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests.factories import PASSWORD

CSRF = re.compile(r'name="csrf" value="([^"]+)"')


class Browser:
    def __init__(self, app: FastAPI, **headers: str) -> None:
        self.client = TestClient(app, follow_redirects=False, headers=headers)

    def csrf(self, path: str = "/app/login") -> str:
        page = self.client.get(path)
        found = CSRF.search(page.text)
        assert found, page.text
        return found.group(1)

    def sign_in(self, email: str, password: str = PASSWORD) -> Any:
        token = self.csrf("/app/login")
        return self.client.post(
            "/app/login", data={"csrf": token, "email": email, "password": password}
        )

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.client.get(path, **kwargs)

    def post(self, path: str, data: dict[str, Any] | None = None, **kwargs: Any) -> Any:
        """A form from a page of the app: with the token the app's pages carry."""
        fields = {"csrf": self.csrf("/app/notifications"), **(data or {})}
        return self.client.post(path, data=fields, **kwargs)


def signed_in(app: FastAPI, email: str, **headers: str) -> Browser:
    browser = Browser(app, **headers)
    answer = browser.sign_in(email)
    assert answer.status_code == 303, answer.text
    return browser


def text(page: Any) -> str:
    """The page's visible words, one space apart."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page.text)).strip()
