"""appinfo/info.xml (what AppAPI registers) stays consistent with the code: id, version, image, routes, variables,
Kubernetes service roles."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from dataclasses import fields
from pathlib import Path

import pytest

from appliance.app_role import ROLE_DUTIES, AppRole, Duty, app_role
from appliance.config import parse_config
from appliance.env_settings import ENV_SETTINGS
from appliance.storage import StorageLayout
from quart_app.app_factory import build_app
from quart_app.app_settings import AppSettings
from quart_app.routes.status_page import PAGE_PATHS

REPO = Path(__file__).resolve().parents[2]
INFO_XML = REPO / "appinfo" / "info.xml"
INFO = ET.parse(INFO_XML).getroot()
EXTERNAL_APP = INFO.find("external-app")

# the top-level order of the app store's info.xsd (a sequence), external-app last as in every ExApp's info.xml
APPSTORE_ORDER = (
    "id",
    "name",
    "summary",
    "description",
    "version",
    "licence",
    "author",
    "namespace",
    "types",
    "documentation",
    "category",
    "website",
    "discussion",
    "bugs",
    "repository",
    "screenshot",
    "dependencies",
    "external-app",
)
# AppAPI sets these itself on every deploy (DockerActions::buildDeployEnvs); declaring one would add a second value
SET_BY_APPAPI = frozenset(
    {
        "AA_VERSION",
        "APP_SECRET",
        "APP_ID",
        "APP_DISPLAY_NAME",
        "APP_VERSION",
        "APP_HOST",
        "APP_PORT",
        "APP_PERSISTENT_STORAGE",
        "NEXTCLOUD_URL",
        "COMPUTE_DEVICE",
    }
)
SUPPORTED_NEXTCLOUD = range(31, 36)
SEMVER = re.compile(r"(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(-[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?")


def _text(parent: ET.Element | None, path: str) -> str:
    assert parent is not None, f"info.xml: no parent element for <{path}>"
    node = parent.find(path)
    assert node is not None and node.text and node.text.strip(), f"info.xml: <{path}> is missing or empty"
    return node.text.strip()


def _routes() -> list[ET.Element]:
    assert EXTERNAL_APP is not None, "info.xml has no <external-app>"
    return EXTERNAL_APP.findall("routes/route")


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> dict[str, set[str]]:
    """The app's real url_map (built, not served: nothing opens before_serving): static path -> HTTP methods."""
    settings = AppSettings(
        config=parse_config({}, "test_appinfo", environ={}),
        storage=StorageLayout(tmp_path_factory.mktemp("appinfo")),
        db_url="postgresql:///never-opened",
        app_secret="never-used",
    )
    paths: dict[str, set[str]] = {}
    for rule in build_app(settings).url_map.iter_rules():
        if "<" not in rule.rule:  # static files and converters are not proxied routes
            paths.setdefault(rule.rule, set()).update(rule.methods or ())
    return paths


# How each AppAPI line matches a proxied path against a route <url> (lib/Controller/ExAppProxyController.php,
# passesExAppProxyRoutesChecks); `bare` is the path after /apps/app_api/proxy/<appid>/, without its leading slash.
def _matches_legacy(url: str, bare: str) -> bool:
    """AppAPI 31.x, 32.0.0-32.0.8, 33.0.0-33.0.2: preg_match('/' . url . '/i', bare); an unescaped / ends the regex."""
    if re.search(r"(?<!\\)/", url):
        return False  # PHP: "Unknown modifier", preg_match returns false
    return re.search(url, bare, re.IGNORECASE) is not None


def _matches_anchored(url: str, bare: str) -> bool:
    """AppAPI 32.0.9, 33.0.3: '~^(?:' . url . ')~i' against the bare path."""
    return re.match(f"(?:{url})", bare, re.IGNORECASE) is not None


def _matches_canonical(url: str, bare: str) -> bool:
    """AppAPI >= 32.0.10, 33.0.4, 34: the same regex against "/" + path, then the bare path as a fallback."""
    return any(re.match(f"(?:{url})", subject, re.IGNORECASE) for subject in ("/" + bare, bare))


def _matches_harp(url: str, bare: str) -> bool:
    """HaRP (haproxy_agent.py): re.match(route.url, target_path), target_path with its leading slash."""
    return re.match(url, "/" + bare) is not None


MATCHERS = {
    "legacy": _matches_legacy,
    "anchored": _matches_anchored,
    "canonical": _matches_canonical,
    "harp": _matches_harp,
}


def test_top_level_elements_follow_the_app_store_order() -> None:
    tags = [child.tag for child in INFO]
    assert set(tags) <= set(APPSTORE_ORDER), f"unknown top-level elements: {set(tags) - set(APPSTORE_ORDER)}"
    positions = [APPSTORE_ORDER.index(tag) for tag in tags]
    assert positions == sorted(positions), f"top-level elements out of the app store's order: {tags}"
    for required in ("id", "name", "summary", "description", "version", "licence", "author", "category", "bugs"):
        _text(INFO, required)
    assert _text(INFO, "licence") == "agpl"


def test_no_comments_inside_info() -> None:
    """PHP's SimpleXML turns a comment into a "comment" key of the app info AppAPI reads (next to "route", ...)."""
    parser = ET.XMLParser(target=ET.TreeBuilder(insert_comments=True))
    root = ET.parse(INFO_XML, parser).getroot()
    comments = [node.text for node in root.iter() if not isinstance(node.tag, str)]  # tag is ET.Comment
    assert not comments, f"comments inside <info>: {comments}"


def test_id_is_the_apps_default_app_id() -> None:
    app_id = _text(INFO, "id")
    declared = {setting.name: setting.default for setting in ENV_SETTINGS}
    assert app_id == declared["APP_ID"]
    dataclass_default = next(field.default for field in fields(AppSettings) if field.name == "app_id")
    assert app_id == dataclass_default


def test_version_is_semver_and_the_image_tag() -> None:
    version = _text(INFO, "version")
    assert SEMVER.fullmatch(version), f"<version> {version!r} is not what the app store accepts"
    assert _text(EXTERNAL_APP, "docker-install/image-tag") == version


def test_image_names_a_registry_and_the_dockerfile_builds_the_gpu_suffix() -> None:
    assert _text(EXTERNAL_APP, "docker-install/registry") == "ghcr.io"
    image = _text(EXTERNAL_APP, "docker-install/image")
    assert re.fullmatch(r"[a-z0-9]+([._-][a-z0-9]+)*/[a-z0-9]+([._-][a-z0-9]+)*", image), image
    # a CUDA deploy daemon pulls <image-tag>-cuda first (DockerActions::buildExtendedImageName), else the base tag
    stages = re.findall(r"^FROM \S+ AS (\S+)$", (REPO / "Dockerfile").read_text(), re.MULTILINE)
    assert {"cpu", "cuda"} <= set(stages)


def test_nextcloud_range_covers_31_to_35() -> None:
    node = INFO.find("dependencies/nextcloud")
    assert node is not None, "info.xml has no <dependencies><nextcloud>"
    low, high = int(node.attrib["min-version"]), int(node.attrib["max-version"])
    assert low <= SUPPORTED_NEXTCLOUD.start and high >= SUPPORTED_NEXTCLOUD.stop - 1, (low, high)


def test_environment_variables_are_declared_settings_an_admin_may_set() -> None:
    assert EXTERNAL_APP is not None, "info.xml has no <external-app>"
    names = [_text(variable, "name") for variable in EXTERNAL_APP.findall("environment-variables/variable")]
    assert names, "no <environment-variables>"
    assert len(names) == len(set(names)), f"duplicate variables: {names}"
    declared = {setting.name for setting in ENV_SETTINGS}
    assert set(names) <= declared, f"not in appliance/env_settings.py: {set(names) - declared}"
    assert not set(names) & SET_BY_APPAPI, f"AppAPI sets these itself: {set(names) & SET_BY_APPAPI}"
    for variable in EXTERNAL_APP.findall("environment-variables/variable"):
        _text(variable, "display-name")
        _text(variable, "description")


def test_routes_are_admin_only_get_and_parse_like_appapi() -> None:
    routes = _routes()
    assert routes, "no <routes>"
    for route in routes:
        url = _text(route, "url")
        assert _text(route, "verb") == "GET", url
        assert _text(route, "access_level") == "ADMIN", url
        assert _text(route, "headers_to_exclude") == "[]", url  # a JSON list in the element body
        re.compile(url)


@pytest.mark.parametrize("matcher", MATCHERS)
def test_each_route_reaches_exactly_one_served_path_on_every_appapi(matcher: str, served: dict[str, set[str]]) -> None:
    matches = MATCHERS[matcher]
    for route in _routes():
        url, verb = _text(route, "url"), _text(route, "verb")
        hits = [path for path in served if matches(url, path.lstrip("/"))]
        assert len(hits) == 1, f"{matcher}: route {url!r} matches {hits} of the served paths {sorted(served)}"
        assert verb in served[hits[0]], f"{hits[0]} does not serve {verb}"


def test_the_promised_routes_are_declared(served: dict[str, set[str]]) -> None:
    """/downloadLogs (the PHP app's admin page links to it), /status and the status page with every file it loads
    (ours) stay reachable through the proxy."""
    for path in ("/downloadLogs", *sorted(PAGE_PATHS)):
        assert "GET" in served.get(path, set()), f"the app no longer serves GET {path}"
        assert any(_matches_canonical(_text(route, "url"), path.lstrip("/")) for route in _routes()), path


def test_the_readmes_manual_install_registers_the_declared_routes() -> None:
    """The JSON an admin pastes for a manual install (README) declares what info.xml does: without the status page's
    routes, the page would not load through the proxy."""
    readme = (REPO / "README.md").read_text()
    match = re.search(r"--json-info \\\n  '(\{.*\})'\n", readme)
    assert match, "README: no `occ app_api:app:register … --json-info '{…}'` line"
    info = json.loads(match.group(1))
    assert info["version"] == _text(INFO, "version") and info["id"] == _text(INFO, "id")
    declared = [(_text(route, "url"), _text(route, "verb")) for route in _routes()]
    assert [(route["url"], route["verb"]) for route in info["routes"]] == declared
    assert {route["access_level"] for route in info["routes"]} == {2}  # admin


def test_the_readme_names_the_variables_info_xml_lets_an_admin_set() -> None:
    """Register with Nextcloud lists them and (a) counts them for the deploy options (it said four of seven)."""
    assert EXTERNAL_APP is not None, "info.xml has no <external-app>"
    names = [_text(variable, "name") for variable in EXTERNAL_APP.findall("environment-variables/variable")]
    count = ("no", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")[len(names)]
    readme = " ".join((REPO / "README.md").read_text().split())
    listed = re.search(rf"and {count} optional variables: ([^.]*)\. AppAPI sets everything else", readme)
    assert listed, f"README: no 'and {count} optional variables: …' naming info.xml's variables"
    assert re.findall(r"`([A-Z_]+)`", listed.group(1)) == names
    deploy_options = re.findall(r"\*Deploy options\* is where you set the (\w+) variables", readme)
    assert deploy_options == [count]


def _k8s_roles() -> list[ET.Element]:
    assert EXTERNAL_APP is not None, "info.xml has no <external-app>"
    return EXTERNAL_APP.findall("k8s-service-roles/role")


def test_k8s_service_roles_are_upstreams_and_each_env_line_selects_its_role() -> None:
    """AppAPI's KubernetesActions creates one Deployment per <role> (suffix = name) and appends its <env> line to the
    container's environment; upstream 5.4 declares these three, in this order, with the same names and env lines."""
    roles = _k8s_roles()
    assert [_text(role, "name") for role in roles] == ["requestproc", "updatesproc", "indexing"]
    for role in roles:
        name = _text(role, "name")
        _text(role, "display-name")
        env_name, _, value = _text(role, "env").partition("=")
        assert (env_name, value) == ("APP_ROLE", name)
        assert app_role({env_name: value}) is AppRole(name)
        assert _text(role, "expose") in ("true", "false"), name


def test_the_exposed_role_serves_appapi_and_the_declared_roles_do_the_whole_job() -> None:
    """Only an exposed role gets a Kubernetes Service (AppAPI then sends /heartbeat, /init, /enabled, /trigger and
    the proxied routes there); the deployed roles together must do everything the normal role does but run the
    embedded PostgreSQL (a Kubernetes deploy uses EXTERNAL_DB)."""
    roles = {AppRole(_text(role, "name")): _text(role, "expose") == "true" for role in _k8s_roles()}
    assert [role for role, exposed in roles.items() if exposed] == [AppRole.REQUESTPROC]
    assert {Duty.SETUP, Duty.TASKS, Duty.PUSH_ROUTES} <= ROLE_DUTIES[AppRole.REQUESTPROC]
    covered = frozenset().union(*(ROLE_DUTIES[role] for role in roles))
    assert ROLE_DUTIES[AppRole.NORMAL] - covered == {Duty.EMBEDDED_DATABASE}
