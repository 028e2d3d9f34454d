"""The cluster configs, validated as far as this machine allows (no cloud, no Kubernetes)."""

import subprocess
from pathlib import Path

import yaml
from ray.autoscaler._private.util import prepare_config, validate_config

ROOT = Path(__file__).resolve().parents[2]


def test_cluster_launcher_yaml_passes_rays_schema():
    config = prepare_config(yaml.safe_load((ROOT / "cluster/ray-cluster.yaml").read_text()))
    validate_config(config)
    workers = config["available_node_types"]["gpu_worker"]
    assert workers["resources"]["GPU"] >= 1


def test_rayjob_manifest_is_a_runnable_rayjob():
    job = yaml.safe_load((ROOT / "cluster/rayjob.yaml").read_text())
    assert job["apiVersion"] == "ray.io/v1" and job["kind"] == "RayJob"
    entry = job["spec"]["entrypoint"].split()
    assert entry[0] == "python" and (ROOT / entry[1].removeprefix("/app/")).is_file()
    spec = job["spec"]["rayClusterSpec"]
    import ray

    assert spec["rayVersion"] == ray.__version__
    gpus = [g["template"]["spec"]["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] for g in spec["workerGroupSpecs"]]
    assert all(int(g) >= 1 for g in gpus)


def test_single_box_script_parses_and_points_at_real_jobs():
    script = ROOT / "cluster/single_box.sh"
    subprocess.run(["bash", "-n", str(script)], check=True)
    text = script.read_text()
    assert "ray start --head" in text
    for job in ("jobs/llama8b_grpo.py", "jobs/tiny_grpo.py"):
        assert job in text and (ROOT / job).is_file()
