"""URLs as logs, /status, `ccb doctor`, the healthcheck and `ccb settings` show them: the userinfo's secret and the
query's values hidden."""

from __future__ import annotations

# stands where the password was, so an admin still sees that one is set
HIDDEN = "***"


def _hidden_query(query: str) -> str:
    """Each parameter's name kept and its value hidden: a key travels under any name (key, api-key, code, sig)."""
    items = (item.partition("=") for item in query.split("&"))
    return "&".join(f"{name}={HIDDEN}" if equals else HIDDEN for name, equals, _value in items)


def redacted_url(url: str) -> str:
    """`scheme://user:***@host/path?name=***` for `scheme://user:password@host/path?name=value`; a URL with neither
    userinfo nor query as written.

    A userinfo without a password (`https://TOKEN@host`) is hidden whole: services take API tokens that way too.
    """
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    # up to the last @: a password with an unencoded / or @ does not end the userinfo early
    userinfo, at, host_and_path = rest.rpartition("@")
    if "?" in userinfo:
        # an @ in the query or a ? in the password: which part is secret is not clear, so all of it is
        return f"{scheme}://{HIDDEN}"
    user, colon, _password = userinfo.partition(":")
    shown_userinfo = (f"{user}:{HIDDEN}@" if colon and user else f"{HIDDEN}@") if at else ""
    path, question, query = host_and_path.partition("?")
    return f"{scheme}://{shown_userinfo}{path}" + (f"?{_hidden_query(query)}" if question else "")
