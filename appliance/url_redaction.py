"""URLs as logs, /status, `ccb doctor`, the healthcheck and `ccb settings` show them: the userinfo's secret hidden."""

from __future__ import annotations

# stands where the password was, so an admin still sees that one is set
HIDDEN = "***"


def redacted_url(url: str) -> str:
    """`scheme://user:***@host/path` for `scheme://user:password@host/path`; a URL without userinfo as written.

    A userinfo without a password (`https://TOKEN@host`) is hidden whole: services take API tokens that way too.
    """
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    # up to the last @: a password with an unencoded / or @ does not end the userinfo early
    userinfo, at, host_and_path = rest.rpartition("@")
    if not at:
        return url
    user, colon, _password = userinfo.partition(":")
    shown_userinfo = f"{user}:{HIDDEN}" if colon and user else HIDDEN
    return f"{scheme}://{shown_userinfo}@{host_and_path}"
