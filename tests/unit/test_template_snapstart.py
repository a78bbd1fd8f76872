"""SnapStart in template.yaml: one parameter turns it on for every function, which the API and the queue
invoke through a published alias; checked on the template and on SAM's own transform of it."""

from __future__ import annotations

import copy
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
from cfnlint.decode import decode

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    parsed, errors = decode(str(ROOT / "template.yaml"))
    assert not errors, errors
    return parsed


def serverless_functions(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {name: r for name, r in template["Resources"].items() if r["Type"] == "AWS::Serverless::Function"}


SAM_PYTHON = ROOT / ".venv" / "deploy-tools" / "sam" / "bin" / "python"  # the SAM CLI's venv (make deploy-check)
TRANSFORM = """
import json, sys
from samtranslator.translator.transform import transform

class NoManagedPolicies:  # the template names no AWS managed policy: nothing to look up
    def load(self):
        return {}

template, parameters = json.load(sys.stdin)
print(json.dumps(transform(template, parameters, NoManagedPolicies())))
"""


def transformed(template: dict[str, Any], parameters: dict[str, str], layer_key: str = "layer.zip") -> dict[str, Any]:
    """What SAM's own transform makes of the template, as after `sam package` (code in S3)."""
    if not SAM_PYTHON.exists():
        pytest.skip("the SAM CLI's venv is not installed (make deploy-check installs it)")
    packaged = copy.deepcopy(template)
    for name, resource in packaged["Resources"].items():
        if resource["Type"] == "AWS::Serverless::Function":
            resource["Properties"]["CodeUri"] = f"s3://artifacts/{name}.zip"
        elif resource["Type"] == "AWS::Serverless::LayerVersion":
            resource["Properties"]["ContentUri"] = f"s3://artifacts/{layer_key}"
    done = subprocess.run(
        [str(SAM_PYTHON), "-c", TRANSFORM],
        input=json.dumps([packaged, parameters], default=str),
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "AWS_DEFAULT_REGION": "eu-central-1"},  # the transform resolves AWS::Region
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def test_snapstart_is_one_parameter_off_by_default(template):
    parameter = template["Parameters"]["SnapStart"]
    assert (parameter["Default"], sorted(parameter["AllowedValues"])) == ("None", ["None", "PublishedVersions"])
    function_globals = template["Globals"]["Function"]
    assert function_globals["SnapStart"] == {"ApplyOn": {"Ref": "SnapStart"}}
    assert function_globals["Runtime"] in {"python3.12", "python3.13", "python3.14"}  # SnapStart for Python: 3.12+
    groups = template["Metadata"]["AWS::CloudFormation::Interface"]["ParameterGroups"]
    assert any("SnapStart" in group["Parameters"] for group in groups)


def test_every_function_publishes_a_version_on_any_change_of_its_own_or_of_the_layer(template):
    assert template["Globals"]["Function"]["AutoPublishAlias"] == "live"
    for name, function in serverless_functions(template).items():
        assert function["Properties"].get("AutoPublishAliasAllProperties") is True, name
        unsupported = {"ProvisionedConcurrencyConfig", "FileSystemConfigs", "EphemeralStorage"}  # with SnapStart
        assert not unsupported & set(function["Properties"]), name
    (layer,) = (r for r in template["Resources"].values() if r["Type"] == "AWS::Serverless::LayerVersion")
    assert layer["Properties"]["PublishLambdaVersion"] is True


@pytest.mark.parametrize("snapstart", ["PublishedVersions", "None"])
def test_the_api_and_the_queue_invoke_the_published_alias(template, snapstart):
    resources = transformed(template, {"SnapStart": snapstart})["Resources"]
    functions = [name for name, r in resources.items() if r["Type"] == "AWS::Lambda::Function"]
    assert sorted(functions) == sorted(serverless_functions(template))
    for name in functions:
        assert resources[name]["Properties"]["SnapStart"] == {"ApplyOn": {"Ref": "SnapStart"}}
        alias = resources[f"{name}Aliaslive"]
        assert alias["Type"] == "AWS::Lambda::Alias"
        version = alias["Properties"]["FunctionVersion"]["Fn::GetAtt"][0]
        assert resources[version]["Type"] == "AWS::Lambda::Version"
    (mapping,) = (r for r in resources.values() if r["Type"] == "AWS::Lambda::EventSourceMapping")
    assert mapping["Properties"]["FunctionName"] == {"Ref": "IngestFunctionAliaslive"}
    permissions = [r for r in resources.values() if r["Type"] == "AWS::Lambda::Permission"]
    assert permissions and {str(p["Properties"]["FunctionName"]["Ref"]) for p in permissions} <= {
        f"{name}Aliaslive" for name in functions
    }


def test_a_new_layer_publishes_new_versions(template):
    def versions(layer_key: str) -> set[str]:
        resources = transformed(template, {}, layer_key)["Resources"]
        return {name for name, r in resources.items() if r["Type"] == "AWS::Lambda::Version"}

    before, after = versions("layer-a.zip"), versions("layer-b.zip")
    assert len(before) == len(serverless_functions(template)) and before.isdisjoint(after)
