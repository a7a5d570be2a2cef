"""Registering generators: one version per run, the alias on the newest result; a registry URI in each of
its documented forms leads back to the run behind it."""

import mlflow
import torch

from pipeline.core.model.vae import VAE
from pipeline.serving import log_generator
from pipeline.tracking.references import model_uri
from pipeline.tracking.registry import register_generator


def generator_run(default_sampler: str) -> str:
    torch.manual_seed(0)
    with mlflow.start_run() as run:
        log_generator(VAE(4, 16), default_sampler)
    return run.info.run_id


def test_same_run_twice_is_one_version_and_the_alias_moves_to_the_newest(tracking):
    client = tracking.client
    first, second = generator_run("normal:0,1"), generator_run("beta:2,2")
    v1 = register_generator(first, "vae-generator-unit", "best-beta", tags={"sampler": "normal:0,1"})
    assert register_generator(first, "vae-generator-unit", "best-beta").version == v1.version
    assert len(client.search_model_versions("name = 'vae-generator-unit'")) == 1
    assert client.get_model_version_by_alias("vae-generator-unit", "best-beta").run_id == first
    v2 = register_generator(second, "vae-generator-unit", "best-beta")
    assert int(v2.version) == int(v1.version) + 1
    assert client.get_model_version_by_alias("vae-generator-unit", "best-beta").run_id == second
    register_generator(first, "vae-generator-unit", "best-beta")  # an older result given again: no new version
    assert len(client.search_model_versions("name = 'vae-generator-unit'")) == 2
    assert client.get_model_version_by_alias("vae-generator-unit", "best-beta").version == v1.version
    assert client.get_model_version("vae-generator-unit", v1.version).tags == {"sampler": "normal:0,1"}
    served = mlflow.pyfunc.load_model("models:/vae-generator-unit@best-beta")
    assert served.model_config == {"default_sampler": "normal:0,1"}
    assert model_uri("models:/vae-generator-unit@best-beta") == ("models:/vae-generator-unit@best-beta", first)
    assert model_uri(f"models:/vae-generator-unit/{v2.version}")[1] == second
    assert model_uri("models:/vae-generator-unit/latest")[1] == second  # the newest version
    logged_model = client.get_model_version("vae-generator-unit", v1.version).source  # models:/m-...
    assert model_uri(logged_model)[1] == first  # MLflow 3's logged model, by its id
    assert model_uri("models:/vae-generator-unit@no-such-alias")[1] is None
    assert model_uri("models:/no-such-model/1")[1] is None
