"""A small client of Airflow 3's REST API (``/api/v2``) with the simple auth manager's JWT.

Owns authentication: ``POST /auth/token`` with a user's name and password returns an access
token, sent as ``Authorization: Bearer``; on a 401 (expired) it fetches a new one once.
"""

from __future__ import annotations

from typing import Any

import httpx


class ApiError(RuntimeError):
    def __init__(self, response: httpx.Response):
        self.status_code = response.status_code
        super().__init__(f"{response.request.method} {response.request.url} -> {response.status_code}: {response.text[:2000]}")


class RestClient:
    def __init__(self, base_url: str, username: str, password: str, timeout: float = 60):
        self.base_url = base_url.rstrip("/")
        self._credentials = {"username": username, "password": password}
        self._http = httpx.Client(base_url=self.base_url, timeout=timeout)
        self._token: str | None = None

    def token(self, refresh: bool = False) -> str:
        if self._token is None or refresh:
            response = self._http.post("/auth/token", json=self._credentials)
            if response.status_code != 201:
                raise ApiError(response)
            self._token = response.json()["access_token"]
        return self._token

    def request(self, method: str, path: str, *, auth: bool = True, **kwargs) -> httpx.Response:
        """``path`` is under ``/api/v2`` unless it starts with ``/``."""
        url = path if path.startswith("/") else f"/api/v2/{path}"
        extra = kwargs.pop("headers", {})
        for attempt in (0, 1):
            headers = {**extra, "Authorization": f"Bearer {self.token(refresh=attempt > 0)}"} if auth else extra
            response = self._http.request(method, url, headers=headers, **kwargs)
            if response.status_code != 401 or not auth:
                break
        if response.status_code >= 400:
            raise ApiError(response)
        return response

    def get(self, path: str, **params) -> Any:
        return self.request("GET", path, params=params).json()

    def post(self, path: str, body: dict) -> Any:
        return self.request("POST", path, json=body).json()

    def patch(self, path: str, body: dict, **params) -> Any:
        return self.request("PATCH", path, json=body, params=params).json()

    def paged(self, path: str, key: str, **params) -> list[dict]:
        """Every item of a collection endpoint (offset pagination, 100 a page)."""
        items: list[dict] = []
        while True:
            page = self.get(path, limit=100, offset=len(items), **params)
            items.extend(page[key])
            if not page[key] or page.get("total_entries") is None or len(items) >= page["total_entries"]:
                return items

    def close(self) -> None:
        self._http.close()
